-- GET /api/v1/chats/search?q=lisbon&limit=20 as the heavy user: search_chats(limit + 1) in one
-- read-only repeatable-read transaction, the statements of repo/title_search.rs:
-- 1. the newest 300 chats, index-only, filtered by strpos: 21 matches within the first ~210 chats.
-- The service chooses each step from the previous one's result; this script runs the
-- steps that query takes on the benchmark's seed (10% of the titles: the first scan fills the page). Owner and query are bound
-- (-D owner=heavy -D qcommon=… -D pcommon=%…%), as the service binds them.
BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
WITH hits AS ( SELECT w.id FROM (SELECT id, title FROM chats WHERE owner = :owner AND (updated_at, id) < ('9999-12-31 23:59:59+00'::timestamptz, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid) ORDER BY updated_at DESC, id DESC LIMIT 300) w WHERE strpos(lower(w.title), lower(:qcommon)) > 0 LIMIT 21) SELECT c.id, c.owner, c.title, c.settings, c.message_count, c.active_leaf_id, c.created_at, c.updated_at, true AS hit, false AS last FROM hits h JOIN chats c ON c.id = h.id UNION ALL SELECT c.id, c.owner, c.title, c.settings, c.message_count, c.active_leaf_id, c.created_at, c.updated_at, false, true FROM (SELECT id FROM chats WHERE owner = :owner AND (updated_at, id) < ('9999-12-31 23:59:59+00'::timestamptz, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid) ORDER BY updated_at DESC, id DESC OFFSET 300 - 1 LIMIT 1) b JOIN chats c ON c.id = b.id WHERE (SELECT count(*) FROM hits) < 21;
COMMIT;
