-- A deep conversation tree for the branch benchmarks (psql -f bench/seed_tree.sql),
-- run after bench/seed.sql: one chat of user `deep` (chat n = 3000001) whose active
-- branch holds 10,000 messages (user and assistant in turn), with 300 side branches:
-- at every 16th question, a regenerated reply (a sibling of the branch's reply) that
-- was continued by one more question and reply. 10,900 messages, `seq` in creation
-- order (the main branch first, then the side branches). Inserted in `seq` order
-- through the tree trigger, as the service would have stored them.
\set ON_ERROR_STOP on
SET synchronous_commit = off;

-- The id of message s of the deep chat (UUIDv7-shaped, unique by s).
CREATE OR REPLACE FUNCTION bench_deep_id(s bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (lpad(to_hex(1767225600000 + s), 12, '0') || '70009' || lpad(to_hex(s), 15, '0'))::uuid
$$;

INSERT INTO chats (id, owner, title, settings, message_count, created_at, updated_at)
VALUES (bench_chat_id(3000001), 'deep', 'A very long conversation', '{}'::jsonb, 10900,
        to_timestamp(1735689600), to_timestamp(1735689600));

-- Main branch: message s (1..10000) follows s - 1.
INSERT INTO messages (id, chat_id, seq, parent_id, role, content, status, model,
                      prompt_tokens, completion_tokens, error, created_at, updated_at)
SELECT bench_deep_id(s), bench_chat_id(3000001), s,
       CASE WHEN s > 1 THEN bench_deep_id(s - 1) END,
       CASE WHEN s % 2 = 1 THEN 'user' ELSE 'assistant' END,
       CASE WHEN s % 2 = 1 THEN 'Question ' || s || ': and what about this part of it?'
            ELSE 'Answer ' || s || ': a reply of a few short sentences, as a chat model gives.' END,
       'complete', CASE WHEN s % 2 = 0 THEN 'gpt-4o-mini' END,
       CASE WHEN s % 2 = 0 THEN 40 END, CASE WHEN s % 2 = 0 THEN 30 END, NULL,
       to_timestamp(1735689600) + s * interval '1 s', to_timestamp(1735689600) + s * interval '1 s'
FROM generate_series(1, 10000) AS s
ORDER BY s;

-- Side branch k (0..299), seqs 10001 + 3k .. 10003 + 3k: a second reply to question
-- 32k + 1 (seq), then a question after it and its reply.
INSERT INTO messages (id, chat_id, seq, parent_id, role, content, status, model,
                      prompt_tokens, completion_tokens, error, created_at, updated_at)
SELECT bench_deep_id(10001 + 3 * k + j), bench_chat_id(3000001), 10001 + 3 * k + j,
       CASE j WHEN 0 THEN bench_deep_id(32 * k + 1)
              ELSE bench_deep_id(10000 + 3 * k + j) END,
       CASE j WHEN 1 THEN 'user' ELSE 'assistant' END,
       'Side branch ' || k || ', message ' || j, 'complete',
       CASE WHEN j <> 1 THEN 'gpt-4o-mini' END, NULL, NULL, NULL,
       to_timestamp(1735689600 + 20000 + 3 * k + j), to_timestamp(1735689600 + 20000 + 3 * k + j)
FROM generate_series(0, 299) AS k, generate_series(0, 2) AS j
ORDER BY k, j;

UPDATE chats SET active_leaf_id = bench_deep_id(10000)
WHERE id = bench_chat_id(3000001);

VACUUM ANALYZE messages;
VACUUM ANALYZE chats;
