-- The paths of the lines (issue 11, item 11): a branch page reads the lines of its
-- branch from a row per 64 of them instead of walking them one by one.
--
-- The tree is cut into lines (migration `conversation_trees`): chains through first
-- children, `seq` growing along each. A branch root → leaf is the leaf's line and the
-- lines above it, line L_i holding the branch's messages from its head h_i to the
-- message L_{i+1} branched from. Reading a page walked from the leaf's line up to the
-- cursor's, two primary-key probes per line: up to 600 for a cursor near the root of
-- the bench's 301-line branch.
--
-- Now each line (at level n: the root's line is level 0, a line branching from a
-- line of level n - 1 is level n) has a row here holding its path from level
-- 64 * (n / 64) to itself, in order — its "block", at most 64 lines:
-- * `lines`: the ids of those lines (a line's id is its head's id);
-- * `head_seqs`, `head_depths`: the `seq` and `depth` of each one's head;
-- * `from_seqs`: the `seq` of the message each head follows (its parent; 0 for a root),
--   i.e. where the branch leaves the line before it;
-- * `up_line`: the line the block's first head follows (NULL at the root), whose row
--   holds the block before.
-- On a branch through this line, line i of the block holds the `seq`s `head_seqs[i]
-- .. from_seqs[i + 1]` (the last one up to the leaf) and `head_depths[i + 1] -
-- head_depths[i]` messages. A page reads the leaf's line's row, then the rows of the
-- blocks before it while the branch has rows after the cursor there, and reads only
-- the line ranges it needs (`messages_line_idx`): one probe for a cursor in the leaf's
-- block, one more per 64 lines between them (at most 5 on the bench's deep chat). See
-- `repo::branches::PAGE_SQL`. Storage is linear: at most 64 entries (≈ 1.8 kB) per line.
--
-- Kept up to date by every write:
-- * inserts (turns, forks, anything): the trigger below adds the row of a message that
--   starts a line, after `messages_set_tree` has set its `line_id` and `depth` (a
--   chat's inserts are serialised by its row lock, and the parent line's row is
--   there: a parent is inserted before its children);
-- * deletions (a subtree, a chat by erasure or retention): the row goes with its head
--   (`ON DELETE CASCADE`); a line whose head survives keeps every line of its path
--   (they are its ancestors);
-- * renumbering (`repo::branches::close_up`, after a subtree deletion) maps the `seq`s
--   in the chat's rows in the same transaction;
-- * existing trees: filled here, from the root lines down.
CREATE TABLE message_lines (
    line_id     uuid PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    chat_id     uuid NOT NULL,
    up_line     uuid,
    lines       uuid[] NOT NULL,
    head_seqs   integer[] NOT NULL,
    head_depths integer[] NOT NULL,
    from_seqs   integer[] NOT NULL
);
-- The chat's rows, for renumbering.
CREATE INDEX message_lines_chat_idx ON message_lines (chat_id);

-- Existing trees: the heads with the line of their parent, then the rows from the root
-- lines down, one level per step (nested loops on the heads' index, so the work is the
-- number of lines, not lines × levels).
CREATE TEMPORARY TABLE line_heads AS
SELECT h.id, h.chat_id, h.seq, h.depth, p.line_id AS parent_line, COALESCE(p.seq, 0) AS from_seq
  FROM messages h LEFT JOIN messages p ON p.id = h.parent_id
 WHERE h.line_id = h.id;
CREATE INDEX ON line_heads (parent_line);
ANALYZE line_heads;
SET LOCAL enable_hashjoin = off;
SET LOCAL enable_mergejoin = off;
WITH RECURSIVE rows AS (
    SELECT h.id, h.chat_id, NULL::uuid AS up_line, ARRAY[h.id] AS lines,
           ARRAY[h.seq] AS head_seqs, ARRAY[h.depth] AS head_depths,
           ARRAY[h.from_seq] AS from_seqs
      FROM line_heads h WHERE h.parent_line IS NULL
    UNION ALL
    SELECT h.id, h.chat_id,
           CASE WHEN cardinality(r.lines) = 64 THEN r.id ELSE r.up_line END,
           CASE WHEN cardinality(r.lines) = 64 THEN ARRAY[h.id] ELSE r.lines || h.id END,
           CASE WHEN cardinality(r.lines) = 64 THEN ARRAY[h.seq] ELSE r.head_seqs || h.seq END,
           CASE WHEN cardinality(r.lines) = 64 THEN ARRAY[h.depth] ELSE r.head_depths || h.depth END,
           CASE WHEN cardinality(r.lines) = 64 THEN ARRAY[h.from_seq] ELSE r.from_seqs || h.from_seq END
      FROM rows r JOIN line_heads h ON h.parent_line = r.id
)
INSERT INTO message_lines (line_id, chat_id, up_line, lines, head_seqs, head_depths, from_seqs)
SELECT id, chat_id, up_line, lines, head_seqs, head_depths, from_seqs FROM rows;
RESET enable_hashjoin;
RESET enable_mergejoin;
DROP TABLE line_heads;

-- A message that starts a line (its `line_id` is its own id): its row is its parent
-- line's block plus itself, or a new block of itself when that one is full.
CREATE FUNCTION message_lines_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.parent_id IS NULL THEN
        INSERT INTO message_lines (line_id, chat_id, up_line, lines, head_seqs, head_depths, from_seqs)
        VALUES (NEW.id, NEW.chat_id, NULL, ARRAY[NEW.id], ARRAY[NEW.seq], ARRAY[NEW.depth], ARRAY[0]);
        RETURN NULL;
    END IF;
    INSERT INTO message_lines (line_id, chat_id, up_line, lines, head_seqs, head_depths, from_seqs)
    SELECT NEW.id, NEW.chat_id,
           CASE WHEN cardinality(l.lines) = 64 THEN l.line_id ELSE l.up_line END,
           CASE WHEN cardinality(l.lines) = 64 THEN ARRAY[NEW.id] ELSE l.lines || NEW.id END,
           CASE WHEN cardinality(l.lines) = 64 THEN ARRAY[NEW.seq] ELSE l.head_seqs || NEW.seq END,
           CASE WHEN cardinality(l.lines) = 64 THEN ARRAY[NEW.depth] ELSE l.head_depths || NEW.depth END,
           CASE WHEN cardinality(l.lines) = 64 THEN ARRAY[p.seq] ELSE l.from_seqs || p.seq END
      FROM messages p JOIN message_lines l ON l.line_id = p.line_id
     WHERE p.id = NEW.parent_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the line of parent % has no row in message_lines', NEW.parent_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER message_lines_add AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.line_id = NEW.id) EXECUTE FUNCTION message_lines_add();
