-- Messages: the conversation of a chat, numbered 1, 2, 3… by seq without gaps.
CREATE TABLE messages (
    id                uuid        PRIMARY KEY,
    chat_id           uuid        NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    seq               integer     NOT NULL,
    role              text        NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content           text        NOT NULL,
    status            text        NOT NULL
                                  CHECK (status IN ('complete', 'streaming', 'failed', 'cancelled')),
    model             text,
    prompt_tokens     bigint,
    completion_tokens bigint,
    error             text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    -- Also the index for listing a chat's messages in order and for the cascade.
    CONSTRAINT messages_chat_seq_key UNIQUE (chat_id, seq)
);

-- Replies being generated, per chat: the "chat busy" check and the stale-reply reaper.
CREATE INDEX messages_streaming_idx ON messages (chat_id, updated_at)
    WHERE status = 'streaming';
