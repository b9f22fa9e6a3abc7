-- Each message's place among its siblings, stored on it (issue 11, item 11): a branch
-- page returns `branch {index, count, prevId, nextId}` for each of its rows, and
-- computing it meant one aggregate over `messages_children_idx` per row returned —
-- half of a page's database time on the bench's deep chat (pgbench, 16 clients:
-- 11,200 pages/s without it, 5,300 with it). Now a page reads it with the row:
-- * `branch_index`: the message's position among the children of its parent (the
--   chat's roots for a root), 1-based, in `seq` order;
-- * `prev_id`, `next_id`: the siblings just before and after it (NULL at the ends).
-- The count is the last sibling's `branch_index`: a row whose `next_id` is NULL is the
-- last, so only a row with later siblings reads it (one probe of
-- `messages_children_idx`). It is not stored on every sibling: a new sibling would
-- then rewrite all of them, and a parent with thousands of children (a client that
-- sends every message as a new root) would make each send rewrite thousands of rows.
--
-- Kept up to date by every write, in the transaction that makes it:
-- * inserts (turns, regenerations, forks, anything): `messages_set_tree` sets the new
--   row's place after its parent's last child, found by the probe that already decided
--   whether it starts a line (a chat's inserts are serialised by its row lock, and
--   `seq` grows with each insert, so the new row is the last sibling), and
--   `messages_branch_add` points that sibling to it — one row, only when there is one,
--   so a reply that continues a branch costs no extra write;
-- * deletions: a subtree deletion renumbers the siblings of the subtree's root
--   (`repo::branches::renumber_siblings`); every other deletion takes whole chats;
-- * renumbering (`repo::branches::close_up`) keeps the order of `seq`s, so no
--   position changes;
-- * existing trees: filled here. A message without siblings holds the defaults
--   (1, NULL, NULL), which need no rewrite of the table; only the rows of parents with
--   several children are written.
ALTER TABLE messages
    ADD COLUMN branch_index integer NOT NULL DEFAULT 1,
    ADD COLUMN prev_id uuid,
    ADD COLUMN next_id uuid;

WITH forked AS (
    SELECT chat_id, COALESCE(parent_id, '00000000-0000-0000-0000-000000000000'::uuid) AS parent
      FROM messages
     GROUP BY 1, 2
    HAVING count(*) > 1
), places AS (
    SELECT m.id,
           row_number() OVER w AS branch_index,
           lag(m.id) OVER w AS prev_id,
           lead(m.id) OVER w AS next_id
      FROM forked f
      JOIN messages m
        ON m.chat_id = f.chat_id
       AND COALESCE(m.parent_id, '00000000-0000-0000-0000-000000000000'::uuid) = f.parent
    WINDOW w AS (PARTITION BY m.chat_id, f.parent ORDER BY m.seq)
)
UPDATE messages m
   SET branch_index = p.branch_index, prev_id = p.prev_id, next_id = p.next_id
  FROM places p
 WHERE m.id = p.id;

-- `messages_set_tree` as before (migration `conversation_trees`: `depth` and
-- `line_id` from the parent), now also the new row's place: after its parent's last
-- child (the last root for a root), found by the same probe of `messages_children_idx`
-- that decided whether it starts a line.
CREATE OR REPLACE FUNCTION messages_set_tree() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent_line  uuid;
    parent_depth integer;
    last_id      uuid;
    last_index   integer;
BEGIN
    SELECT s.id, s.branch_index INTO last_id, last_index
      FROM messages s
     WHERE s.chat_id = NEW.chat_id
       AND COALESCE(s.parent_id, '00000000-0000-0000-0000-000000000000'::uuid)
           = COALESCE(NEW.parent_id, '00000000-0000-0000-0000-000000000000'::uuid)
     ORDER BY s.seq DESC
     LIMIT 1;
    IF FOUND THEN
        NEW.branch_index := last_index + 1;
        NEW.prev_id := last_id;
    ELSE
        NEW.branch_index := 1;
        NEW.prev_id := NULL;
    END IF;
    NEW.next_id := NULL;
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
    IF last_id IS NOT NULL THEN
        NEW.line_id := NEW.id;
    ELSE
        NEW.line_id := parent_line;
    END IF;
    RETURN NEW;
END;
$$;

-- A message with a sibling before it: that one now points to it.
CREATE FUNCTION messages_branch_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE messages SET next_id = NEW.id WHERE id = NEW.prev_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER messages_branch_add AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.prev_id IS NOT NULL) EXECUTE FUNCTION messages_branch_add();

-- The lines of each chat's active branch, one row per line (issue 11, item 11): a page
-- of the active branch is then one range scan here (`hi > cursor`, in order) and one
-- range scan of `messages_line_idx` per line it needs, stopping after the page — no
-- walk of `message_lines` blocks per read. Line `line_id` holds the branch's messages
-- of that line up to `seq` `hi`, where the next line leaves it; the line of the leaf
-- is open-ended (`hi` = 2147483647), so a turn that continues the active branch (its
-- messages continue the leaf's line) changes no row here.
CREATE TABLE chat_active_lines (
    chat_id uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    hi      integer NOT NULL,
    line_id uuid NOT NULL,
    PRIMARY KEY (chat_id, hi)
);

-- The rows of chat `chat`, from its `message_lines`: the lines of the branch through
-- its active leaf and the leaf's newest descendants (as a branch page reads it), each
-- up to where the next one leaves it.
CREATE FUNCTION chat_active_lines_refresh(chat uuid) RETURNS void LANGUAGE sql AS $$
    DELETE FROM chat_active_lines WHERE chat_id = chat;
    INSERT INTO chat_active_lines (chat_id, hi, line_id)
    WITH RECURSIVE down AS (
        SELECT c.active_leaf_id AS id, 0 AS n FROM chats c
         WHERE c.id = chat AND c.active_leaf_id IS NOT NULL
        UNION ALL
        SELECT k.id, d.n + 1 FROM down d CROSS JOIN LATERAL (
            SELECT k.id FROM messages k
             WHERE k.chat_id = chat
               AND COALESCE(k.parent_id, '00000000-0000-0000-0000-000000000000'::uuid) = d.id
             ORDER BY k.seq DESC LIMIT 1) k
    ), leaf AS (
        SELECT id FROM down ORDER BY n DESC LIMIT 1
    ), blocks AS (
        SELECT l.up_line, l.lines, l.from_seqs, 2147483647 AS next_up
          FROM leaf JOIN messages m ON m.id = leaf.id JOIN message_lines l ON l.line_id = m.line_id
        UNION ALL
        SELECT p.up_line, p.lines, p.from_seqs, bl.from_seqs[1]
          FROM blocks bl JOIN message_lines p ON p.line_id = bl.up_line
    )
    SELECT chat,
           CASE WHEN u.i < cardinality(bl.lines) THEN bl.from_seqs[u.i + 1] ELSE bl.next_up END,
           u.line_id
      FROM blocks bl CROSS JOIN LATERAL unnest(bl.lines) WITH ORDINALITY u(line_id, i);
$$;

-- Kept up to date at the commit of every transaction that moves an active leaf (turns,
-- regenerations, branch selection, subtree deletion, forks and imports, whose chat row
-- comes before its messages): a deferred trigger, so it sees the transaction's
-- messages. A new leaf on the open-ended line (the turn that continues the branch)
-- needs nothing; any other leaf rewrites the chat's rows. A subtree deletion renumbers
-- `seq`s, so it rewrites them too (`repo::branches::delete_subtree`).
CREATE FUNCTION chat_active_lines_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.active_leaf_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM chat_active_lines a JOIN messages m ON m.line_id = a.line_id
         WHERE a.chat_id = NEW.id AND a.hi = 2147483647 AND m.id = NEW.active_leaf_id) THEN
        RETURN NULL;
    END IF;
    PERFORM chat_active_lines_refresh(NEW.id);
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER chat_active_lines_insert AFTER INSERT ON chats
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.active_leaf_id IS NOT NULL)
    EXECUTE FUNCTION chat_active_lines_follow();
CREATE CONSTRAINT TRIGGER chat_active_lines_update AFTER UPDATE OF active_leaf_id ON chats
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.active_leaf_id IS DISTINCT FROM NEW.active_leaf_id)
    EXECUTE FUNCTION chat_active_lines_follow();

-- Existing chats: every active branch, read from the stored lines, all chats at once
-- (as `chat_active_lines_refresh` does for one; an active leaf is a leaf, so the
-- descent to its newest descendant is not needed here).
WITH RECURSIVE blocks AS (
    SELECT c.id AS chat, l.up_line, l.lines, l.from_seqs, 2147483647 AS next_up
      FROM chats c JOIN messages m ON m.id = c.active_leaf_id
      JOIN message_lines l ON l.line_id = m.line_id
    UNION ALL
    SELECT bl.chat, p.up_line, p.lines, p.from_seqs, bl.from_seqs[1]
      FROM blocks bl JOIN message_lines p ON p.line_id = bl.up_line
)
INSERT INTO chat_active_lines (chat_id, hi, line_id)
SELECT bl.chat,
       CASE WHEN u.i < cardinality(bl.lines) THEN bl.from_seqs[u.i + 1] ELSE bl.next_up END,
       u.line_id
  FROM blocks bl CROSS JOIN LATERAL unnest(bl.lines) WITH ORDINALITY u(line_id, i);
