-- Back to reading the active branch through `message_lines` and to computing each
-- message's place among its siblings when it is read: the table and the columns are
-- derived data (every message keeps its `parent_id`, `seq` and `line_id`, every chat
-- its `active_leaf_id`), so nothing is lost; `up.sql` fills them again from the trees
-- as they are then.
DROP TRIGGER chat_active_lines_insert ON chats;
DROP TRIGGER chat_active_lines_update ON chats;
DROP FUNCTION chat_active_lines_follow();
DROP FUNCTION chat_active_lines_refresh(uuid);
DROP TABLE chat_active_lines;
DROP TRIGGER messages_branch_add ON messages;
DROP FUNCTION messages_branch_add();
CREATE OR REPLACE FUNCTION messages_set_tree() RETURNS trigger LANGUAGE plpgsql AS $$
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
ALTER TABLE messages
    DROP COLUMN branch_index,
    DROP COLUMN prev_id,
    DROP COLUMN next_id;
