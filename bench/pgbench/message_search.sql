-- GET /api/v1/messages/search?q=…&limit=20 as the heavy user: the statements the service
-- sends on its search connection (crates/infra-postgres/src/local_reads/search.rs, with
-- repo/search_recent.rs and repo/search.rs), whose session has `enable_sort = off` and
-- `default_transaction_read_only = on` (bench/run.sh gives pgbench's sessions the same
-- for this script). Run with -M prepared, as the service sends them: it prepares the
-- scan and the page's read, and sends step 3 unnamed. No transaction: each statement
-- stands alone, as on the service's shared, pipelined connection.
-- 1. the scan, one prepared statement: the newest 500 messages in index order, filtered,
--    stopping at 100 matches; if short, and the matches found predict at least 50 within
--    10,000 messages, on up to 9,500 more; the matches with their relevance, and the
--    position to go on from when they may be incomplete;
-- 2. only then: the GIN index past that position, newest first (its plan is the same
--    with `enable_sort` off: the matching set is materialised, then sorted). The service
--    sends this one unnamed, planned with its values each time; under -M prepared a
--    `set_config` before it sets `plan_cache_mode` to `force_custom_plan` and one after
--    it sets it back, so it is planned each time too (two statements the service does
--    not send);
-- 3. the page's rows, each with its chat's title: one statement.
-- Each scan is wrapped in one aggregate row for \gset (counts, end marker, the first 21
-- ids), and the page reads the first 21 matches found rather than the 21 best ranked
-- (the same amount of work). The query: -D mk=1..5 picks python, term7, "python term7",
-- zzqx, nomatch; mk=0 picks one at random per search (the loadgen's mix). That
-- choice is one more trivial statement per search, outside the service's work.
\set first 500
\set budget 10000
\set window 100
\set k CASE WHEN :mk = 0 THEN random(1, 5) ELSE :mk END
SELECT (ARRAY['"python"', '"term7"', '"python" "term7"', '"zzqx"', '"nomatch"'])[:k] AS mws, (ARRAY['python', 'term7', 'python term7', 'zzqx', 'nomatch'])[:k] AS mwanted, 'simple' AS tsconf, '00000000-0000-0000-0000-000000000000' AS nil \gset
SELECT count(*) FILTER (WHERE hit) AS found, (count(*) FILTER (WHERE NOT hit) > 0) AS has_end, coalesce(max(created_at) FILTER (WHERE NOT hit), now()) AS e_at, coalesce(max(id::text) FILTER (WHERE NOT hit), '') AS e_id, coalesce(array_to_string((array_agg(id::text) FILTER (WHERE hit))[1:21], ','), '') AS ids FROM (WITH a AS MATERIALIZED (SELECT :tsconf::regconfig AS cfg, :mws::text AS ws, :mwanted::text AS wanted, :owner::text AS owner, :nil::uuid AS chat, :window::int8 AS win, :first::int8 AS first, :budget::int8 AS budget), p AS MATERIALIZED (SELECT websearch_to_tsquery(cfg, ws) AS q, tsvector_to_array(to_tsvector(cfg, wanted)) AS w FROM a), s1 AS MATERIALIZED ( SELECT r.id, r.created_at, r.seq, r.content_tsv FROM ( SELECT m.id, m.created_at, m.seq, m.content_tsv FROM messages m WHERE m.owner = (SELECT owner FROM a) ORDER BY m.created_at DESC, m.id DESC LIMIT (SELECT first FROM a)) r WHERE r.content_tsv @@ (SELECT q FROM p) LIMIT (SELECT win FROM a)), n1 AS MATERIALIZED (SELECT count(*) AS n, 2 * count(*) * (SELECT budget FROM a) >= (SELECT win * first FROM a) AS go FROM s1), e1 AS MATERIALIZED ( SELECT m.created_at, m.id, m.seq FROM messages m WHERE m.owner = (SELECT owner FROM a) AND (SELECT n FROM n1) < (SELECT win FROM a) ORDER BY m.created_at DESC, m.id DESC OFFSET (SELECT first - 1 FROM a) LIMIT 1), s2 AS MATERIALIZED ( SELECT r.id, r.created_at, r.seq, r.content_tsv FROM ( SELECT m.id, m.created_at, m.seq, m.content_tsv FROM messages m WHERE m.owner = (SELECT owner FROM a) AND (SELECT go FROM n1) AND (m.created_at, m.id) < ((SELECT created_at FROM e1), (SELECT id FROM e1)) ORDER BY m.created_at DESC, m.id DESC LIMIT (SELECT budget - first FROM a)) r WHERE r.content_tsv @@ (SELECT q FROM p) LIMIT (SELECT win FROM a) - (SELECT n FROM n1)), e2 AS MATERIALIZED ( SELECT m.created_at, m.id, m.seq FROM messages m WHERE m.owner = (SELECT owner FROM a) AND (SELECT go FROM n1) AND (m.created_at, m.id) < ((SELECT created_at FROM e1), (SELECT id FROM e1)) AND (SELECT n FROM n1) + (SELECT count(*) FROM s2) < (SELECT win FROM a) ORDER BY m.created_at DESC, m.id DESC OFFSET (SELECT budget - first - 1 FROM a) LIMIT 1) SELECT r.id, r.created_at, r.seq, true AS hit, (SELECT coalesce(sum(array_length(u.positions, 1)), 0)::int4 FROM unnest(ts_filter(setweight(r.content_tsv, 'A', (SELECT w FROM p)), '{a}')) u) AS relevance FROM (SELECT * FROM s1 UNION ALL SELECT * FROM s2) r UNION ALL SELECT id, created_at, seq, false, NULL FROM e2 UNION ALL SELECT id, created_at, seq, false, NULL FROM e1 WHERE NOT (SELECT go FROM n1)) x \gset
\if :has_end
\set missing :window - :found
SELECT set_config('plan_cache_mode', 'force_custom_plan', false);
SELECT coalesce(array_to_string((array_agg(id::text))[1:21], ','), '') AS ids3 FROM (WITH hits AS MATERIALIZED ( SELECT m.id, m.created_at, m.seq, m.content_tsv FROM messages m WHERE m.owner = :owner AND '00000000-0000-0000-0000-000000000000'::uuid IS NOT NULL AND m.content_tsv @@ (SELECT websearch_to_tsquery('simple'::text::regconfig, :mws)) AND (m.created_at, m.id) < (:e_at::timestamptz, :e_id::uuid) AND 2147483647::int4 IS NOT NULL) SELECT r.id, r.created_at, (SELECT coalesce(sum(array_length(u.positions, 1)), 0)::int4 FROM unnest(ts_filter(setweight(r.content_tsv, 'A', (SELECT tsvector_to_array(to_tsvector('simple'::text::regconfig, :mwanted)))), '{a}')) u) AS relevance FROM (SELECT * FROM hits m ORDER BY m.created_at DESC, m.id DESC LIMIT :missing) r) x \gset
SELECT set_config('plan_cache_mode', 'auto', false);
\else
SELECT :ids::text AS ids3 \gset
\endif
SELECT m.id, m.chat_id, m.seq, m.parent_id, m.role, m.content, m.status, m.model, m.prompt_tokens, m.completion_tokens, m.error, m.created_at, m.updated_at, c.title FROM messages m INNER JOIN chats c ON m.chat_id = c.id WHERE m.id = ANY(string_to_array(CASE WHEN :found > 0 THEN :ids ELSE :ids3 END, ',')::uuid[]);
