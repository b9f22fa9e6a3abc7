//! Diesel table definitions, matching the SQL in the top-level `migrations/`.

diesel::table! {
    chats (id) {
        id -> Uuid,
        owner -> Text,
        title -> Text,
        settings -> Jsonb,
        message_count -> Int4,
        active_leaf_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    messages (id) {
        id -> Uuid,
        chat_id -> Uuid,
        seq -> Int4,
        // `depth` and `line_id` (the tree's derived columns, see the migration
        // `conversation_trees`) are filled by a trigger and read only by raw SQL.
        parent_id -> Nullable<Uuid>,
        role -> Text,
        content -> Text,
        status -> Text,
        model -> Nullable<Text>,
        prompt_tokens -> Nullable<Int8>,
        completion_tokens -> Nullable<Int8>,
        error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        // Set by a trigger from the chat. (`content_tsv`, the generated tsvector of
        // message search, is read only by raw SQL: diesel has no type for it.)
        owner -> Text,
    }
}

diesel::table! {
    outbox (position) {
        position -> Int8,
        event_id -> Uuid,
        chat_id -> Uuid,
        event_type -> Text,
        payload -> Jsonb,
        created_at -> Timestamptz,
        published_at -> Nullable<Timestamptz>,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamptz>,
        attempts -> Int4,
        next_attempt_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        dead_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    idempotency_keys (user_id, key) {
        user_id -> Text,
        key -> Text,
        fingerprint -> Text,
        chat_id -> Uuid,
        message_id -> Uuid,
        reply_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    erasure_requests (user_id) {
        user_id -> Text,
        requested_at -> Timestamptz,
        renewed_at -> Timestamptz,
    }
}

diesel::table! {
    usage_ledger (user_id, day, model, purpose, estimated) {
        user_id -> Text,
        day -> Date,
        model -> Text,
        purpose -> Text,
        estimated -> Bool,
        prompt_tokens -> Int8,
        completion_tokens -> Int8,
        requests -> Int8,
    }
}

diesel::joinable!(messages -> chats (chat_id));
diesel::joinable!(idempotency_keys -> chats (chat_id));
diesel::allow_tables_to_appear_in_same_query!(
    chats,
    messages,
    outbox,
    idempotency_keys,
    erasure_requests,
    usage_ledger
);
