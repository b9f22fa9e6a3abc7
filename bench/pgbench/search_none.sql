-- GET /api/v1/chats/search?q=nomatch&limit=20 as the heavy user: search_chats(limit + 1) in one
-- read-only repeatable-read transaction, the statements of repo/title_search.rs:
-- 1. the newest 500 chats: no match; 3. the trigram index past them: an empty bitmap.
-- The service chooses each step from the previous one's result; this script runs the
-- steps that query takes on the benchmark's seed (no title holds it). Owner and query are bound
-- (-D owner=heavy -D qnone=… -D pnone=%…%), as the service binds them.
BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
SELECT count(*) FILTER (WHERE hit) AS found, max(updated_at) FILTER (WHERE last) AS e_at, max(id::text) FILTER (WHERE last) AS e_id FROM (SELECT c.id, c.owner, c.title, c.settings, c.message_count, c.active_leaf_id, c.created_at, c.updated_at, r.hit, r.n = 500 AS last FROM (SELECT s.id, s.hit, s.n FROM (SELECT w.id, strpos(lower(w.title), lower(:qnone)) > 0 AS hit, row_number() OVER () AS n FROM (SELECT id, title FROM chats WHERE owner = :owner AND (updated_at, id) < ('9999-12-31 23:59:59+00'::timestamptz, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid) ORDER BY updated_at DESC, id DESC LIMIT 500) w) s WHERE s.hit OR s.n = 500 LIMIT 21) r JOIN chats c ON c.id = r.id) x \gset
WITH m AS MATERIALIZED ( SELECT id, updated_at FROM chats WHERE owner = :owner AND title ILIKE :pnone AND (updated_at, id) < (:e_at::timestamptz, :e_id::uuid) ) SELECT c.id, c.owner, c.title, c.settings, c.message_count, c.active_leaf_id, c.created_at, c.updated_at FROM chats c JOIN (SELECT id FROM m ORDER BY updated_at DESC, id DESC LIMIT 21) t ON t.id = c.id ORDER BY c.updated_at DESC, c.id DESC;
COMMIT;
