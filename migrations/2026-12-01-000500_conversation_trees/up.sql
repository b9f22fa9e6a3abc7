-- Conversations are trees (issue 11): every message follows a parent (`NULL` for a
-- root), and every chat shows one branch by default, ending at its active leaf.
--
-- Reading a branch must be one indexed query even on a 10,000-message branch, so the
-- tree is stored with two derived columns, both kept by a trigger on insert:
-- * `depth`: 1 for a root, the parent's depth + 1 otherwise;
-- * `line_id`: the tree cut into "lines", chains that continue through each message's
--   FIRST child (lowest `seq`). A message that is not the first child of its parent
--   (a regenerated reply, an edit-and-resend, a second root) starts a new line named
--   by its own id; a first child carries its parent's line. A line is a chain, and
--   `seq` grows along it, so "the part of line L up to message X" is the index range
--   `line_id = L AND seq <= X.seq` on `messages_line_idx`.
-- A branch root → leaf is then a few line ranges: walk from the leaf's line to the
-- line its head branched from (one primary-key probe per branch point, not per
-- message), and read each range from the index. See the README ("Conversation trees").
ALTER TABLE messages
    ADD COLUMN parent_id uuid,
    ADD COLUMN depth     integer,
    ADD COLUMN line_id   uuid;
ALTER TABLE chats ADD COLUMN active_leaf_id uuid;

-- Old chats were flat logs. Each message's parent is the one before it in `seq`, except
-- that a reply following another reply (a regenerated reply: both answer the same user
-- message) becomes its sibling: a reply's parent is the nearest earlier message that
-- is not a reply. In that layout a message is its parent's first child exactly when
-- its parent is the message right before it, so depths and lines follow in one pass.
WITH w AS (
    SELECT id, chat_id, seq, role,
           lag(id)   OVER chat_order AS prev_id,
           lag(role) OVER chat_order AS prev_role,
           max(CASE WHEN role <> 'assistant' THEN seq END)
               OVER (chat_order ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS asked_seq
      FROM messages
    WINDOW chat_order AS (PARTITION BY chat_id ORDER BY seq)
), steps AS (
    SELECT w.*,
           -- A regenerated reply (a reply after a reply) is its predecessor's sibling:
           -- same depth, and it starts a line of its own.
           (w.role = 'assistant' AND w.prev_role = 'assistant') AS sibling_of_prev
      FROM w
), numbered AS (
    SELECT s.*,
           sum(CASE WHEN s.sibling_of_prev THEN 0 ELSE 1 END)
               OVER (PARTITION BY s.chat_id ORDER BY s.seq) AS new_depth,
           count(*) FILTER (WHERE s.prev_id IS NULL OR s.sibling_of_prev)
               OVER (PARTITION BY s.chat_id ORDER BY s.seq) AS line_no
      FROM steps s
), lined AS (
    SELECT n.*,
           first_value(n.id) OVER (PARTITION BY n.chat_id, n.line_no ORDER BY n.seq) AS new_line
      FROM numbered n
)
UPDATE messages m
   SET parent_id = CASE WHEN l.role = 'assistant' THEN q.id ELSE l.prev_id END,
       depth     = l.new_depth,
       line_id   = l.new_line
  FROM lined l
  LEFT JOIN messages q ON q.chat_id = l.chat_id AND q.seq = l.asked_seq
 WHERE m.id = l.id;

-- The active leaf of an old chat is its last message.
UPDATE chats c
   SET active_leaf_id = m.id
  FROM messages m
 WHERE m.chat_id = c.id AND m.seq = c.message_count;

ALTER TABLE messages
    ALTER COLUMN depth   SET NOT NULL,
    ALTER COLUMN line_id SET NOT NULL;

-- A line's messages in order: the ranges of a branch read.
CREATE INDEX messages_line_idx ON messages (line_id, seq);
-- The children of a message (the roots of a chat under the nil uuid) in `seq` order:
-- siblings and `branch {index, count, prevId, nextId}`, the newest-descendant walk,
-- subtree deletion. One expression so roots use the same index as everyone else.
CREATE INDEX messages_children_idx ON messages
    (chat_id, (COALESCE(parent_id, '00000000-0000-0000-0000-000000000000'::uuid)), seq);

-- Fills `depth` and `line_id` from the parent, so every statement inserting messages
-- (turns, forks) stays as it was. Inserts of a chat's messages are serialised by the
-- chat row lock, so "has the parent a child already" cannot race.
CREATE FUNCTION messages_set_tree() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent_line  uuid;
    parent_depth integer;
BEGIN
    IF NEW.parent_id IS NULL THEN
        NEW.depth := 1;
        NEW.line_id := NEW.id;
        RETURN NEW;
    END IF;
    SELECT p.line_id, p.depth INTO parent_line, parent_depth
      FROM messages p WHERE p.id = NEW.parent_id AND p.chat_id = NEW.chat_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'parent % is not a message of chat %', NEW.parent_id, NEW.chat_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    NEW.depth := parent_depth + 1;
    IF EXISTS (SELECT 1 FROM messages s
                WHERE s.chat_id = NEW.chat_id
                  AND COALESCE(s.parent_id, '00000000-0000-0000-0000-000000000000'::uuid)
                      = NEW.parent_id) THEN
        NEW.line_id := NEW.id;
    ELSE
        NEW.line_id := parent_line;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER messages_set_tree BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_set_tree();
