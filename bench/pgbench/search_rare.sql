-- GET /api/v1/chats/search?q=zzqx&limit=20 as the heavy user: search_chats(limit + 1) in one
-- read-only repeatable-read transaction, the statements of repo/title_search.rs:
-- 1. the newest 500 chats: ~5 matches; 2. the scan goes on (that density fills the page
--    within the 5,000-chat budget) and finds the rest by ~2,100 chats.
-- The service chooses each step from the previous one's result; this script runs the
-- steps that query takes on the benchmark's seed (1% of the heavy user's titles). Owner and query are bound
-- (-D owner=heavy -D qrare=… -D prare=%…%), as the service binds them.
BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
SELECT count(*) FILTER (WHERE hit) AS found, max(updated_at) FILTER (WHERE last) AS e_at, max(id::text) FILTER (WHERE last) AS e_id FROM (SELECT c.id, c.owner, c.title, c.settings, c.message_count, c.active_leaf_id, c.created_at, c.updated_at, r.hit, r.n = 500 AS last FROM (SELECT s.id, s.hit, s.n FROM (SELECT w.id, strpos(lower(w.title), lower(:qrare)) > 0 AS hit, row_number() OVER () AS n FROM (SELECT id, title FROM chats WHERE owner = :owner AND (updated_at, id) < ('9999-12-31 23:59:59+00'::timestamptz, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid) ORDER BY updated_at DESC, id DESC LIMIT 500) w) s WHERE s.hit OR s.n = 500 LIMIT 21) r JOIN chats c ON c.id = r.id) x \gset
SELECT c.id, c.owner, c.title, c.settings, c.message_count, c.active_leaf_id, c.created_at, c.updated_at, r.hit, r.n = 4500 AS last FROM (SELECT s.id, s.hit, s.n FROM (SELECT w.id, strpos(lower(w.title), lower(:qrare)) > 0 AS hit, row_number() OVER () AS n FROM (SELECT id, title FROM chats WHERE owner = :owner AND (updated_at, id) < (:e_at::timestamptz, :e_id::uuid) ORDER BY updated_at DESC, id DESC LIMIT 4500) w) s WHERE s.hit OR s.n = 4500 LIMIT 21 - :found) r JOIN chats c ON c.id = r.id;
COMMIT;
