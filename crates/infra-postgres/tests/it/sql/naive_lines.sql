-- For chat $1: how many lines it has, and how many rows of `message_lines` differ from
-- the walk of the parents (a line missing, a row too many, or other values): each
-- line's ancestors that start lines, by depth, are its path; level n's row holds the
-- levels from 64 * (n / 64) on, `up_line` the one just before them.
WITH RECURSIVE up AS (
    SELECT h.id AS line, h.id AS a FROM messages h WHERE h.chat_id = $1 AND h.line_id = h.id
    UNION ALL
    SELECT up.line, m.parent_id FROM up JOIN messages m ON m.id = up.a WHERE m.parent_id IS NOT NULL
), heads AS (
    SELECT up.line, a.id, a.seq, a.depth, COALESCE(p.seq, 0) AS from_seq,
           row_number() OVER (PARTITION BY up.line ORDER BY a.depth) - 1 AS level,
           count(*) OVER (PARTITION BY up.line) - 1 AS n
      FROM up JOIN messages a ON a.id = up.a AND a.line_id = a.id
      LEFT JOIN messages p ON p.id = a.parent_id
), naive AS (
    SELECT line,
           (array_agg(id) FILTER (WHERE level = 64 * (n / 64) - 1))[1] AS up_line,
           array_agg(id ORDER BY level) FILTER (WHERE level >= 64 * (n / 64)) AS lines,
           array_agg(seq ORDER BY level) FILTER (WHERE level >= 64 * (n / 64)) AS head_seqs,
           array_agg(depth ORDER BY level) FILTER (WHERE level >= 64 * (n / 64)) AS head_depths,
           array_agg(from_seq ORDER BY level) FILTER (WHERE level >= 64 * (n / 64)) AS from_seqs
      FROM heads GROUP BY line
), stored AS (
    SELECT * FROM message_lines WHERE chat_id = $1
)
SELECT (SELECT count(*) FROM naive) AS lines,
       (SELECT count(*) FROM naive FULL JOIN stored s ON s.line_id = naive.line
         WHERE s.line_id IS NULL OR naive.line IS NULL
            OR (naive.up_line, naive.lines, naive.head_seqs, naive.head_depths, naive.from_seqs)
               IS DISTINCT FROM (s.up_line, s.lines, s.head_seqs, s.head_depths, s.from_seqs)) AS wrong
