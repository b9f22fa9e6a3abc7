-- Back to flat chats: every message is kept, in `seq` order; the branch structure
-- (parents, lines, active leaves) is dropped.
DROP TRIGGER messages_set_tree ON messages;
DROP FUNCTION messages_set_tree();
DROP INDEX messages_children_idx;
DROP INDEX messages_line_idx;
ALTER TABLE chats DROP COLUMN active_leaf_id;
ALTER TABLE messages
    DROP COLUMN line_id,
    DROP COLUMN depth,
    DROP COLUMN parent_id;
