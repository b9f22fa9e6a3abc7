-- Back to walking the lines one by one: the rows here are derived data (every message
-- keeps its `parent_id`, `depth` and `line_id`), so nothing is lost; `up.sql` fills them
-- again from the trees as they are then.
DROP TRIGGER message_lines_add ON messages;
DROP FUNCTION message_lines_add();
DROP TABLE message_lines;
