-- Title search filters the owner's newest chats in recency order without visiting the
-- table: the list index now carries the title (INCLUDE), so that scan is index-only.
-- Same keys, same name: the chat list keeps using it. Rebuilding it locks `chats`
-- against writes for the time of the build (seconds per million chats).
DROP INDEX chats_owner_updated_idx;
CREATE INDEX chats_owner_updated_idx ON chats (owner, updated_at DESC, id DESC) INCLUDE (title);
