DROP INDEX chats_owner_updated_idx;
CREATE INDEX chats_owner_updated_idx ON chats (owner, updated_at DESC, id DESC);
