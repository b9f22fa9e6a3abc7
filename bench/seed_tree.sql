-- A deep conversation tree for the branch benchmarks (psql -f bench/seed_tree.sql),
-- run after bench/seed.sql: one chat of user `deep` (chat n = 3000001) whose active
-- branch holds 10,000 messages (user and assistant in turn) and passes through 300
-- regenerated replies, as a chat does where the user regenerates now and then and
-- goes on from the new reply: at every 32nd question (depth 32k + 1, k = 0..299) the
-- first reply was continued by one more question and reply (a 3-message side branch),
-- then the reply was regenerated and the active branch goes on from the regenerated
-- one. 10,900 messages, `seq` in creation order, inserted in `seq` order through the
-- tree trigger as the service would have stored them. So the first reply of each
-- branch point (the side branch) carries its question's line and every regenerated
-- reply starts a line of its own: the active branch is 301 lines, the case the
-- branch reads must stay fast for (a branch that never regenerates is one line).
\set ON_ERROR_STOP on
SET synchronous_commit = off;

-- The id of message s (by `seq`) of the deep chat (UUIDv7-shaped, unique by s).
CREATE OR REPLACE FUNCTION bench_deep_id(s bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (lpad(to_hex(1767225600000 + s), 12, '0') || '70009' || lpad(to_hex(s), 15, '0'))::uuid
$$;

-- The `seq` of the active branch's message at depth i (1..10000): the 3 side messages
-- of each branch point at or above it came first.
CREATE OR REPLACE FUNCTION bench_deep_seq(i bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT i + 3 * CASE WHEN i < 2 THEN 0 ELSE LEAST(300, (i - 2) / 32 + 1) END
$$;

INSERT INTO chats (id, owner, title, settings, message_count, created_at, updated_at)
VALUES (bench_chat_id(3000001), 'deep', 'A very long conversation', '{}'::jsonb, 10900,
        to_timestamp(1735689600), to_timestamp(1735689600));

WITH rows AS (
  -- The active branch: depth i follows depth i - 1.
  SELECT bench_deep_seq(i) AS seq,
         CASE WHEN i > 1 THEN bench_deep_seq(i - 1) END AS parent_seq,
         CASE WHEN i % 2 = 1 THEN 'user' ELSE 'assistant' END AS role,
         CASE WHEN i % 2 = 1 THEN 'Question ' || i || ': and what about this part of it?'
              ELSE 'Answer ' || i || ': a reply of a few short sentences, as a chat model gives.' END
           AS content
  FROM generate_series(1, 10000) AS i
  UNION ALL
  -- Side branch k: the first reply to the question at depth 32k + 1, a question after
  -- it and its reply; created right after that question.
  SELECT bench_deep_seq(32 * k + 1) + 1 + j,
         CASE j WHEN 0 THEN bench_deep_seq(32 * k + 1) ELSE bench_deep_seq(32 * k + 1) + j END,
         CASE j WHEN 1 THEN 'user' ELSE 'assistant' END,
         'Side branch ' || k || ', message ' || j
  FROM generate_series(0, 299) AS k, generate_series(0, 2) AS j
)
INSERT INTO messages (id, chat_id, seq, parent_id, role, content, status, model,
                      prompt_tokens, completion_tokens, error, created_at, updated_at)
SELECT bench_deep_id(seq), bench_chat_id(3000001), seq,
       CASE WHEN parent_seq IS NOT NULL THEN bench_deep_id(parent_seq) END,
       role, content, 'complete', CASE WHEN role = 'assistant' THEN 'gpt-4o-mini' END,
       CASE WHEN role = 'assistant' THEN 40 END, CASE WHEN role = 'assistant' THEN 30 END, NULL,
       to_timestamp(1735689600) + seq * interval '1 s', to_timestamp(1735689600) + seq * interval '1 s'
FROM rows
ORDER BY seq;

UPDATE chats SET active_leaf_id = bench_deep_id(bench_deep_seq(10000))
WHERE id = bench_chat_id(3000001);

VACUUM ANALYZE messages;
VACUUM ANALYZE chats;
