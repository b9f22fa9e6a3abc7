-- GET /api/v1/messages/search?q=…&limit=20 as the heavy user: the statements the service
-- sends on its search connection for a query of words only, as the bench's five are
-- (crates/infra-postgres/src/local_reads/search.rs with repo/search_words.rs), whose
-- session has `enable_sort = off` and `default_transaction_read_only = on` (bench/run.sh
-- gives pgbench's sessions the same for this script). Run with -M prepared, as the
-- service prepares both. No transaction: each statement stands alone, as on the
-- service's shared, pipelined connection.
-- 1. the word index (`message_terms`): the newest 100 messages holding every word, read
--    from the rarest word's postings, with their relevance (one statement, the text of
--    `WORDS_SQL` with its values as variables);
-- 2. the page's rows, each with its chat's title: one statement.
-- The matches are wrapped in one aggregate row for \gset (the first 21 ids), and the
-- page reads the first 21 matches found rather than the 21 best ranked (the same amount
-- of work). The query: -D mk=1..5 picks python, term7, "python term7", zzqx, nomatch;
-- mk=0 picks one at random per search (the loadgen's mix). That choice is one more
-- trivial statement per search, outside the service's work. (Other queries, and one
-- chat's, take the scan's statements: repo/search_recent.rs, repo/search.rs.)
\set window 100
\set k CASE WHEN :mk = 0 THEN random(1, 5) ELSE :mk END
SELECT (ARRAY['"python"', '"term7"', '"python" "term7"', '"zzqx"', '"nomatch"'])[:k] AS mws, 'simple' AS tsconf \gset
SELECT coalesce(array_to_string((array_agg(id::text) FILTER (WHERE hit))[1:21], ','), '') AS ids FROM (WITH a AS MATERIALIZED (SELECT :tsconf::text::regconfig AS cfg, :mws::text AS ws, :owner::text AS owner, :window::int8 AS win), q AS MATERIALIZED (SELECT websearch_to_tsquery(cfg, ws)::text AS t FROM a), l AS MATERIALIZED (SELECT DISTINCT x[1] AS lexeme FROM q, regexp_matches(q.t, '''([^''\\]*)''', 'g') AS x), ok AS MATERIALIZED (SELECT regexp_replace(t, '''[^''\\]*''', '', 'g') ~ '^[ &]*$' AND (SELECT count(*) FROM l) <= 8 AS pure FROM q), sized AS MATERIALIZED (SELECT l.lexeme, (SELECT t.created_at FROM message_terms t WHERE t.owner = (SELECT owner FROM a) AND t.lexeme = l.lexeme ORDER BY t.created_at DESC, t.message_id DESC OFFSET (SELECT win - 1 FROM a) LIMIT 1) AS at FROM l WHERE (SELECT pure FROM ok)), d AS MATERIALIZED (SELECT lexeme FROM sized ORDER BY at NULLS FIRST, lexeme LIMIT 1), r AS MATERIALIZED (SELECT lexeme FROM sized WHERE lexeme <> (SELECT lexeme FROM d)), k AS MATERIALIZED (SELECT count(*) AS k FROM r), hits AS MATERIALIZED (SELECT t.message_id AS id, t.created_at, (t.n + p.s)::int4 AS relevance FROM message_terms t CROSS JOIN LATERAL (SELECT count(x.n) AS c, coalesce(sum(x.n), 0) AS s FROM r, LATERAL (SELECT u.n FROM message_terms u WHERE u.owner = t.owner AND u.lexeme = r.lexeme AND u.created_at = t.created_at AND u.message_id = t.message_id) x) p WHERE t.owner = (SELECT owner FROM a) AND t.lexeme = (SELECT lexeme FROM d) AND p.c = (SELECT k FROM k) ORDER BY t.created_at DESC, t.message_id DESC LIMIT (SELECT win FROM a)) SELECT id, created_at, relevance, true AS hit FROM hits UNION ALL SELECT NULL::uuid, NULL::timestamptz, NULL::int4, false WHERE NOT (SELECT pure FROM ok)) x \gset
SELECT m.id, m.chat_id, m.seq, m.parent_id, m.role, m.content, m.status, m.model, m.prompt_tokens, m.completion_tokens, m.error, m.created_at, m.updated_at, c.title FROM messages m INNER JOIN chats c ON m.chat_id = c.id WHERE m.id = ANY(string_to_array(:ids, ',')::uuid[]);
