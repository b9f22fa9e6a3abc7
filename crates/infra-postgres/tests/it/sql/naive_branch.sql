-- For chat $1: how many messages hold another place among their siblings than the
-- children of their parent in `seq` order give (`branch_index`, `prev_id`, `next_id`),
-- and how many rows of `chat_active_lines` differ from the walk
-- of the parents from the active leaf (each line of the branch up to its last message
-- there, the leaf's line open-ended; a row missing, a row too many, or other values).
WITH RECURSIVE places AS (
    SELECT id, row_number() OVER w AS i, lag(id) OVER w AS prev, lead(id) OVER w AS next
      FROM messages WHERE chat_id = $1
    WINDOW w AS (PARTITION BY parent_id ORDER BY seq)
), up AS (
    SELECT m.id, m.parent_id, m.line_id, m.seq FROM chats c JOIN messages m ON m.id = c.active_leaf_id
     WHERE c.id = $1
    UNION ALL
    SELECT p.id, p.parent_id, p.line_id, p.seq FROM up JOIN messages p ON p.id = up.parent_id
), naive AS (
    SELECT line_id,
           CASE WHEN bool_or(id = (SELECT active_leaf_id FROM chats WHERE id = $1))
                THEN 2147483647 ELSE max(seq) END AS hi
      FROM up GROUP BY line_id
), stored AS (
    SELECT line_id, hi FROM chat_active_lines WHERE chat_id = $1
)
SELECT (SELECT count(*) FROM places p JOIN messages m ON m.id = p.id
         WHERE (m.branch_index, m.prev_id, m.next_id)
               IS DISTINCT FROM (p.i::int4, p.prev, p.next)) AS wrong_places,
       (SELECT count(*) FROM naive FULL JOIN stored s ON s.line_id = naive.line_id
         WHERE s.line_id IS NULL OR naive.line_id IS NULL OR s.hi IS DISTINCT FROM naive.hi)
         AS wrong_lines
