-- The prompt history of a send in the deep chat (bench/seed_tree.sql): the branch
-- root → the active leaf, newest first, 200 messages (repo::branches::HISTORY_SQL), as a
-- send reads it before storing the turn. The statement is the service's, its parameters
-- replaced by the deep chat's values; a unit test of infra-postgres
-- (repo/branches/bench_scripts.rs) keeps them equal.
\set lim 200
WITH RECURSIVE seg AS (SELECT m.line_id, m.seq AS hi, m.depth - h.depth + 1 AS acc, h.parent_id AS up FROM messages m JOIN messages h ON h.id = m.line_id WHERE m.id = bench_deep_id(10900) AND m.chat_id = bench_chat_id(3000001) UNION ALL SELECT p.line_id, p.seq, s.acc + p.depth - ph.depth + 1, ph.parent_id FROM seg s JOIN messages p ON p.id = s.up JOIN messages ph ON ph.id = p.line_id WHERE s.acc < :lim) SELECT b.* FROM seg s CROSS JOIN LATERAL (SELECT m.id, m.chat_id, m.seq, m.parent_id, m.role, m.content, m.status, m.model, m.prompt_tokens, m.completion_tokens, m.error, m.created_at, m.updated_at FROM messages m WHERE m.line_id = s.line_id AND m.seq <= s.hi ORDER BY m.seq DESC LIMIT :lim) b ORDER BY b.seq DESC LIMIT :lim;
