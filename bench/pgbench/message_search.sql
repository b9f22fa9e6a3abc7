-- GET /api/v1/messages/search?q=…&limit=20 as the heavy user, the statements of
-- repo/search.rs chosen as adapters/data.rs chooses them (the steps depend on the
-- previous step's result, so this script mirrors that logic with \if):
-- 1. the newest 500 messages in index order, filtered, stopping at 100 matches;
-- 2. if short, and the matches found predict at least 50 within 10,000 messages, the
--    scan goes on from where it ended (up to 9,500 more);
-- 3. if still short and messages are left: the GIN index past the end, newest first;
-- then the page's rows and their chats' titles. Here each scan is wrapped in one
-- aggregate row for \gset (counts, end marker, the first 21 ids), and the page reads
-- the first 21 matches found rather than the 21 best ranked (the same amount of work).
-- The query: -D mk=1..5 picks python, term7, "python term7", zzqx, nomatch; mk=0 picks
-- one at random per transaction (the loadgen's mix). That choice is one more trivial
-- statement per transaction, outside the service's work.
\set k CASE WHEN :mk = 0 THEN random(1, 5) ELSE :mk END
SELECT (ARRAY['"python"', '"term7"', '"python" "term7"', '"zzqx"', '"nomatch"'])[:k] AS mws, (ARRAY['python', 'term7', 'python term7', 'zzqx', 'nomatch'])[:k] AS mwanted \gset
BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
SELECT count(*) FILTER (WHERE hit) AS found, (count(*) FILTER (WHERE last) > 0) AS has_end, coalesce(max(created_at) FILTER (WHERE last), now()) AS e_at, coalesce(max(id::text) FILTER (WHERE last), '') AS e_id, coalesce(array_to_string((array_agg(id::text) FILTER (WHERE hit))[1:21], ','), '') AS ids FROM (WITH hits AS ( SELECT r.id, r.created_at, r.seq, (SELECT coalesce(sum(array_length(u.positions, 1)), 0)::int4 FROM unnest(r.content_tsv) u WHERE u.lexeme = ANY((SELECT tsvector_to_array(to_tsvector('simple'::text::regconfig, :mwanted)))::text[])) AS relevance FROM (SELECT m.id, m.created_at, m.seq, m.content_tsv FROM messages m WHERE m.owner = :owner AND '00000000-0000-0000-0000-000000000000'::uuid IS NOT NULL AND (m.created_at, m.id) < ('9999-12-31 23:59:59+00'::timestamptz, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid) AND 2147483647::int4 IS NOT NULL ORDER BY m.created_at DESC, m.id DESC LIMIT 500) r WHERE r.content_tsv @@ (SELECT websearch_to_tsquery('simple'::text::regconfig, :mws)) LIMIT 100) SELECT id, created_at, seq, true AS hit, false AS last, relevance FROM hits UNION ALL SELECT b.id, b.created_at, b.seq, false, true, NULL FROM (SELECT m.id, m.created_at, 0::int4 AS seq FROM messages m WHERE m.owner = :owner AND (m.created_at, m.id) < ('9999-12-31 23:59:59+00'::timestamptz, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid) ORDER BY m.created_at DESC, m.id DESC OFFSET 500 - 1 LIMIT 1) b WHERE (SELECT count(*) FROM hits) < 100) x \gset
\if :has_end AND 2 * :found * 10000 >= 100 * 500
SELECT count(*) FILTER (WHERE hit) AS found2, (count(*) FILTER (WHERE last) > 0) AS has_end, coalesce(max(created_at) FILTER (WHERE last), now()) AS e_at, coalesce(max(id::text) FILTER (WHERE last), '') AS e_id, coalesce(array_to_string((array_agg(id::text) FILTER (WHERE hit))[1:21], ','), '') AS ids2 FROM (WITH hits AS ( SELECT r.id, r.created_at, r.seq, (SELECT coalesce(sum(array_length(u.positions, 1)), 0)::int4 FROM unnest(r.content_tsv) u WHERE u.lexeme = ANY((SELECT tsvector_to_array(to_tsvector('simple'::text::regconfig, :mwanted)))::text[])) AS relevance FROM (SELECT m.id, m.created_at, m.seq, m.content_tsv FROM messages m WHERE m.owner = :owner AND '00000000-0000-0000-0000-000000000000'::uuid IS NOT NULL AND (m.created_at, m.id) < (:e_at::timestamptz, :e_id::uuid) AND 2147483647::int4 IS NOT NULL ORDER BY m.created_at DESC, m.id DESC LIMIT 9500) r WHERE r.content_tsv @@ (SELECT websearch_to_tsquery('simple'::text::regconfig, :mws)) LIMIT 100 - :found) SELECT id, created_at, seq, true AS hit, false AS last, relevance FROM hits UNION ALL SELECT b.id, b.created_at, b.seq, false, true, NULL FROM (SELECT m.id, m.created_at, 0::int4 AS seq FROM messages m WHERE m.owner = :owner AND (m.created_at, m.id) < (:e_at::timestamptz, :e_id::uuid) ORDER BY m.created_at DESC, m.id DESC OFFSET 9500 - 1 LIMIT 1) b WHERE (SELECT count(*) FROM hits) < 100 - :found) x \gset
\set found :found + :found2
\endif
\if :has_end
SELECT coalesce(array_to_string((array_agg(id::text))[1:21], ','), '') AS ids3 FROM (WITH hits AS MATERIALIZED ( SELECT m.id, m.created_at, m.seq, m.content_tsv FROM messages m WHERE m.owner = :owner AND '00000000-0000-0000-0000-000000000000'::uuid IS NOT NULL AND m.content_tsv @@ (SELECT websearch_to_tsquery('simple'::text::regconfig, :mws)) AND (m.created_at, m.id) < (:e_at::timestamptz, :e_id::uuid) AND 2147483647::int4 IS NOT NULL) SELECT r.id, r.created_at, (SELECT coalesce(sum(array_length(u.positions, 1)), 0)::int4 FROM unnest(r.content_tsv) u WHERE u.lexeme = ANY((SELECT tsvector_to_array(to_tsvector('simple'::text::regconfig, :mwanted)))::text[])) AS relevance FROM (SELECT * FROM hits m ORDER BY m.created_at DESC, m.id DESC LIMIT 100 - :found) r) x \gset
\else
SELECT :ids::text AS ids3 \gset
\endif
SELECT id, chat_id, seq, parent_id, role, content, status, model, prompt_tokens, completion_tokens, error, created_at, updated_at FROM messages WHERE id = ANY(string_to_array(CASE WHEN :found > 0 THEN :ids ELSE :ids3 END, ',')::uuid[]);
SELECT id, title FROM chats WHERE id IN (SELECT chat_id FROM messages WHERE id = ANY(string_to_array(CASE WHEN :found > 0 THEN :ids ELSE :ids3 END, ',')::uuid[]));
COMMIT;
