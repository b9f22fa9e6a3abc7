-- Bulk messages for the message-search benchmark (psql -v chats=N -f
-- bench/seed_messages.sql), run after bench/seed.sql: 2 messages per seeded chat
-- (2,000,000 for the full 1,000,000 chats), one heavy user with 10% of them.
--   * the heavy user `heavy`: chats n with n % 500 = 0 (N/500 chats), 100 messages each;
--   * other users (`u…`): chats n with n % 50 = 3 (N/50 chats), 90 messages each.
-- Content: "Question|Answer <seq>:" and 12 words; 10 drawn from `term1`..`term200`
-- (each in about 5% of messages), plus `python` in 30% (the common word), `zzqx` in
-- 1 message in 2,000 (rare), and no message holds `nomatch`.
\set ON_ERROR_STOP on
SET maintenance_work_mem = '512MB';
SET synchronous_commit = off;

-- Secondary indexes of `messages` are dropped and rebuilt around the bulk insert, as
-- bench/seed.sql does for chats (definitions from the catalogue, so they stay the
-- migrations'); the owner trigger stays (every row needs its owner).
CREATE TEMP TABLE saved_message_indexes AS
  SELECT i.indexname, i.indexdef FROM pg_indexes i
  WHERE i.schemaname = 'public' AND i.tablename = 'messages'
    AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname);
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT indexname FROM saved_message_indexes LOOP
    EXECUTE format('DROP INDEX %I', r.indexname);
  END LOOP;
END $$;

CREATE TEMP TABLE bench_message_chats AS
  SELECT n, CASE WHEN n % 500 = 0 THEN 100 ELSE 90 END AS count
  FROM generate_series(1, :chats) AS n
  WHERE n % 500 = 0 OR n % 50 = 3;

-- The word index of message search (`message_terms`) is filled in bulk after the
-- insert, its trigger off and its index dropped meanwhile (and rebuilt from the
-- catalogue's definition), instead of row by row.
CREATE TEMP TABLE saved_term_indexes AS
  SELECT i.indexname, i.indexdef FROM pg_indexes i
  WHERE i.schemaname = 'public' AND i.tablename = 'message_terms';
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT indexname FROM saved_term_indexes LOOP
    EXECUTE format('DROP INDEX %I', r.indexname);
  END LOOP;
END $$;
ALTER TABLE messages DISABLE TRIGGER messages_terms_follow;
ALTER TABLE messages DISABLE TRIGGER messages_terms_follow_edit;

-- Single branches, as in bench/seed.sql (tree columns written here, trigger off).
ALTER TABLE messages DISABLE TRIGGER messages_set_tree;
INSERT INTO messages (id, chat_id, seq, parent_id, depth, line_id, role, content, status, model,
                      prompt_tokens, completion_tokens, error, created_at, updated_at)
SELECT bench_message_id(c.n, s),
       bench_chat_id(c.n), s,
       CASE WHEN s > 1 THEN bench_message_id(c.n, s - 1) END, s, bench_message_id(c.n, 1),
       CASE WHEN s % 2 = 1 THEN 'user' ELSE 'assistant' END,
       CASE WHEN s % 2 = 1 THEN 'Question ' ELSE 'Answer ' END || s || ': '
         || 'term' || (1 + abs(hashint8((c.n::bigint * 1000 + s) * 16 + 1)) % 200) || ' ' ||
         'term' || (1 + abs(hashint8((c.n::bigint * 1000 + s) * 16 + 2)) % 200) || ' ' ||
         'term' || (1 + abs(hashint8((c.n::bigint * 1000 + s) * 16 + 3)) % 200) || ' ' ||
         'term' || (1 + abs(hashint8((c.n::bigint * 1000 + s) * 16 + 4)) % 200) || ' ' ||
         'term' || (1 + abs(hashint8((c.n::bigint * 1000 + s) * 16 + 5)) % 200) || ' ' ||
         'term' || (1 + abs(hashint8((c.n::bigint * 1000 + s) * 16 + 6)) % 200) || ' ' ||
         'term' || (1 + abs(hashint8((c.n::bigint * 1000 + s) * 16 + 7)) % 200) || ' ' ||
         'term' || (1 + abs(hashint8((c.n::bigint * 1000 + s) * 16 + 8)) % 200) || ' ' ||
         'term' || (1 + abs(hashint8((c.n::bigint * 1000 + s) * 16 + 9)) % 200) || ' ' ||
         'term' || (1 + abs(hashint8((c.n::bigint * 1000 + s) * 16 + 10)) % 200)
         || CASE WHEN abs(hashint8((c.n::bigint * 1000 + s) * 16 + 11)) % 10 < 3 THEN ' python' ELSE ' code' END
         || CASE WHEN abs(hashint8((c.n::bigint * 1000 + s) * 16 + 12)) % 2000 = 0 THEN ' zzqx' ELSE ' done' END,
       'complete',
       CASE WHEN s % 2 = 0 THEN 'gpt-4o-mini' END,
       CASE WHEN s % 2 = 0 THEN 40 + s END,
       CASE WHEN s % 2 = 0 THEN 30 END,
       NULL,
       to_timestamp(1735689600 + c.n) + s * interval '1 ms',
       to_timestamp(1735689600 + c.n) + s * interval '1 ms'
FROM bench_message_chats c, generate_series(1, c.count) AS s;
ALTER TABLE messages ENABLE TRIGGER messages_set_tree;

-- Every message's words (bench/seed.sql's too, which the trigger had indexed), as the
-- migration fills them.
TRUNCATE message_terms;
INSERT INTO message_terms (owner, lexeme, created_at, message_id, n)
SELECT m.owner, u.lexeme, m.created_at, m.id, coalesce(array_length(u.positions, 1), 0)
FROM messages m, unnest(m.content_tsv) u;
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT indexdef FROM saved_term_indexes LOOP
    EXECUTE r.indexdef;
  END LOOP;
END $$;
ALTER TABLE messages ENABLE TRIGGER messages_terms_follow;
ALTER TABLE messages ENABLE TRIGGER messages_terms_follow_edit;

UPDATE chats ch SET message_count = c.count, active_leaf_id = bench_message_id(c.n, c.count)
FROM bench_message_chats c WHERE ch.id = bench_chat_id(c.n);

DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT indexdef FROM saved_message_indexes LOOP
    EXECUTE r.indexdef;
  END LOOP;
END $$;

VACUUM ANALYZE messages;
VACUUM ANALYZE chats;
VACUUM ANALYZE message_terms;
