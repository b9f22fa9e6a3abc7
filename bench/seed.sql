-- Bulk seed for the benchmark (psql -v chats=N -f bench/seed.sql), run on a freshly
-- migrated database. Chats are generated with generate_series, not through the API:
--   * every 10th chat belongs to the heavy user `heavy` (10% of all chats);
--   * 1 in 1000 belongs to one of 20 users `m0`..`m19` and holds 40 messages
--     (the list-messages scenario reads those);
--   * the rest spread over `u0`..`u8998` (about 100 chats each);
--   * 4096 extra chats of user `pgb` for pgbench's send script.
-- Ids are valid UUIDv7 built from n (bench_chat_id), so pgbench can address chat n.
-- Titles: 'Chat about <topic> #n', topic cycling over ten words (`lisbon` in 10% of
-- them); 2 titles in 1000 also hold `zzqx` (rare: 1% of the heavy user's); no title holds `nomatch`.
\set ON_ERROR_STOP on
SET maintenance_work_mem = '256MB';
SET synchronous_commit = off;

-- The id of seeded chat n: 48-bit ms time (2025-01-01 + n s), version 7, variant 8.
CREATE OR REPLACE FUNCTION bench_chat_id(n bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (lpad(to_hex(1735689600000 + n * 1000), 12, '0') || '70008' || lpad(to_hex(n), 15, '0'))::uuid
$$;

CREATE OR REPLACE FUNCTION bench_owner(n bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN n % 10 = 0 THEN 'heavy'
    WHEN n % 1000 = 1 THEN 'm' || ((n / 1000) % 20)
    ELSE 'u' || (n % 8999)
  END
$$;

-- Secondary indexes of `chats` are dropped and rebuilt around the bulk insert (a
-- bulk build is much faster than a million index insertions); their definitions
-- are taken from the catalogue, so they stay exactly the migrations'.
CREATE TEMP TABLE saved_indexes AS
  SELECT i.indexname, i.indexdef FROM pg_indexes i
  WHERE i.schemaname = 'public' AND i.tablename = 'chats'
    AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname);
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT indexname FROM saved_indexes LOOP
    EXECUTE format('DROP INDEX %I', r.indexname);
  END LOOP;
END $$;

INSERT INTO chats (id, owner, title, settings, message_count, created_at, updated_at)
SELECT bench_chat_id(n), bench_owner(n),
       'Chat about ' || (ARRAY['lisbon','python','recipes','travel','budget',
                               'garden','music','fitness','career','physics'])[1 + (n / 7) % 10]
         || CASE WHEN n % 1000 IN (0, 7) THEN ' zzqx' ELSE '' END || ' #' || n,
       '{}'::jsonb,
       CASE WHEN n % 1000 = 1 THEN 40 ELSE 0 END,
       to_timestamp(1735689600 + n), to_timestamp(1735689600 + n)
FROM generate_series(1, :chats) AS n;

INSERT INTO chats (id, owner, title, settings, message_count, created_at, updated_at)
SELECT bench_chat_id(n), 'pgb', 'pgbench chat #' || n, '{}'::jsonb, 0,
       to_timestamp(1735689600 + n), to_timestamp(1735689600 + n)
FROM generate_series(2000001, 2004096) AS n;

-- The id of seeded message s of chat n.
CREATE OR REPLACE FUNCTION bench_message_id(n bigint, s bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (lpad(to_hex(1735689600000 + n * 1000 + s), 12, '0') || '7' || lpad(to_hex(s), 3, '0')
          || '8' || lpad(to_hex(n), 15, '0'))::uuid
$$;

-- Seeded chats are single branches: message s follows s - 1, all on one line (the
-- tree columns are written here; the trigger that fills them is off for the bulk load).
ALTER TABLE messages DISABLE TRIGGER messages_set_tree;
INSERT INTO messages (id, chat_id, seq, parent_id, depth, line_id, role, content, status, model,
                      prompt_tokens, completion_tokens, error, created_at, updated_at)
SELECT bench_message_id(n, s),
       bench_chat_id(n), s,
       CASE WHEN s > 1 THEN bench_message_id(n, s - 1) END, s, bench_message_id(n, 1),
       CASE WHEN s % 2 = 1 THEN 'user' ELSE 'assistant' END,
       CASE WHEN s % 2 = 1 THEN 'Question ' || s || ': what should I know about this topic?'
            ELSE 'Answer ' || s || ': here are a few things worth knowing, in short sentences, '
                 || 'about as long as a typical short reply from a chat model.' END,
       'complete',
       CASE WHEN s % 2 = 0 THEN 'gpt-4o-mini' END,
       CASE WHEN s % 2 = 0 THEN 40 + s END,
       CASE WHEN s % 2 = 0 THEN 30 END,
       NULL,
       to_timestamp(1735689600 + n) + s * interval '1 ms',
       to_timestamp(1735689600 + n) + s * interval '1 ms'
FROM generate_series(1, :chats) AS n, generate_series(1, 40) AS s
WHERE n % 1000 = 1;
ALTER TABLE messages ENABLE TRIGGER messages_set_tree;
UPDATE chats SET active_leaf_id = bench_message_id(n, 40)
FROM generate_series(1, :chats) AS n
WHERE n % 1000 = 1 AND chats.id = bench_chat_id(n);

DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT indexdef FROM saved_indexes LOOP
    EXECUTE r.indexdef;
  END LOOP;
END $$;

VACUUM ANALYZE chats;
VACUUM ANALYZE messages;
