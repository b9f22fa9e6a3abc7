-- GET /api/v1/messages?chatId=<deep chat>&limit=20 (bench/seed_tree.sql) as user `deep`:
-- the page of the active branch with the owner check in it (repo::branches::ACTIVE_PAGE_SQL,
-- limit + 1), from a random cursor along the 10,900-seq chat (as the loadgen's
-- `--cursor-below`); the service sends a second statement (the owner check alone) only
-- when the page is empty. The statement is the service's, its parameters replaced by
-- the deep chat's values (pgbench variables where they vary); a unit test of
-- infra-postgres (repo/branches/bench_scripts.rs) keeps them equal.
\set after random(0, 10880)
\set lim 21
SELECT b.*, CASE WHEN b.next_id IS NULL THEN b.branch_index ELSE (SELECT l.branch_index FROM messages l WHERE l.chat_id = b.chat_id AND COALESCE(l.parent_id, '00000000-0000-0000-0000-000000000000'::uuid) = COALESCE(b.parent_id, '00000000-0000-0000-0000-000000000000'::uuid) ORDER BY l.seq DESC LIMIT 1) END AS branch_count FROM (SELECT m.* FROM chat_active_lines a CROSS JOIN LATERAL (SELECT m.id, m.chat_id, m.seq, m.parent_id, m.role, m.content, m.status, m.model, m.prompt_tokens, m.completion_tokens, m.error, m.created_at, m.updated_at, m.branch_index, m.prev_id, m.next_id FROM messages m WHERE m.line_id = a.line_id AND m.seq > (SELECT :after::int4) AND m.seq <= a.hi ORDER BY m.seq LIMIT (SELECT :lim::int8)) m WHERE a.chat_id = (SELECT c.id FROM chats c WHERE c.id = bench_chat_id(3000001) AND c.owner = 'deep') AND a.hi > (SELECT :after::int4) ORDER BY a.hi LIMIT (SELECT :lim::int8)) b ORDER BY b.seq;
