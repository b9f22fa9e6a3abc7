//! `TestStore`: a `PgStore` that owns its test database, so the database lives exactly
//! as long as the last handle to the store (for suites that only keep trait objects).

use super::TestDb;
use crate::store::PgStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::model::{
    Chat, ChatCursor, ChatId, ChatTitle, Event, Message, MessageCursor, MessageId, SearchQuery,
    UserId,
};
use domain::ports::{
    ChatRepository, DeadEntry, DeadFilter, FailedAttempt, MessageRepository, NewTurn, Outbox,
    OutboxCounts, OutboxEntry, StoreError,
};
use std::sync::Arc;
use std::time::Duration;

/// A store on a database of its own; the database is dropped with the last clone.
#[derive(Debug, Clone)]
pub struct TestStore {
    store: PgStore,
    db: Arc<TestDb>,
}

impl TestStore {
    /// A new test database and a store on it.
    pub fn new() -> Self {
        let db = Arc::new(TestDb::new());
        Self {
            store: db.store(),
            db,
        }
    }

    /// The store.
    pub fn store(&self) -> &PgStore {
        &self.store
    }

    /// The database.
    pub fn db(&self) -> &TestDb {
        &self.db
    }
}

impl Default for TestStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl ChatRepository for TestStore {
    async fn insert_chat(&self, chat: &Chat, event: &Event) -> Result<(), StoreError> {
        self.store.insert_chat(chat, event).await
    }
    async fn find_chat(&self, id: ChatId) -> Result<Option<Chat>, StoreError> {
        self.store.find_chat(id).await
    }
    async fn update_chat(
        &self,
        chat: &Chat,
        expected: &Chat,
        event: &Event,
    ) -> Result<(), StoreError> {
        self.store.update_chat(chat, expected, event).await
    }
    async fn retitle_chat(
        &self,
        chat: &Chat,
        expected: &ChatTitle,
        event: &Event,
    ) -> Result<bool, StoreError> {
        self.store.retitle_chat(chat, expected, event).await
    }
    async fn delete_chat(&self, id: ChatId, event: &Event) -> Result<(), StoreError> {
        self.store.delete_chat(id, event).await
    }
    async fn list_chats(
        &self,
        owner: &UserId,
        after: Option<ChatCursor>,
        limit: u32,
    ) -> Result<Vec<Chat>, StoreError> {
        self.store.list_chats(owner, after, limit).await
    }
    async fn search_chats(
        &self,
        owner: &UserId,
        query: &SearchQuery,
        after: Option<ChatCursor>,
        limit: u32,
    ) -> Result<Vec<Chat>, StoreError> {
        self.store.search_chats(owner, query, after, limit).await
    }
}

#[async_trait]
impl MessageRepository for TestStore {
    async fn find_message(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        self.store.find_message(id).await
    }
    async fn find_owned_message(
        &self,
        owner: &UserId,
        id: MessageId,
    ) -> Result<Option<(Chat, Message)>, StoreError> {
        self.store.find_owned_message(owner, id).await
    }
    async fn list_messages(
        &self,
        chat_id: ChatId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.store.list_messages(chat_id, after, limit).await
    }
    async fn list_owned_active_branch(
        &self,
        owner: &UserId,
        chat_id: ChatId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Option<Vec<Message>>, StoreError> {
        self.store
            .list_owned_active_branch(owner, chat_id, after, limit)
            .await
    }
    async fn recent_messages(
        &self,
        chat_id: ChatId,
        before_seq: u32,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.store.recent_messages(chat_id, before_seq, limit).await
    }
    async fn streaming_messages(&self, chat_id: ChatId) -> Result<Vec<Message>, StoreError> {
        self.store.streaming_messages(chat_id).await
    }
    async fn find_idempotent(
        &self,
        user: &domain::model::UserId,
        key: &domain::model::IdempotencyKey,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<domain::model::IdempotentSend>, StoreError> {
        self.store.find_idempotent(user, key, since).await
    }
    async fn start_turn(&self, turn: &NewTurn) -> Result<(), StoreError> {
        self.store.start_turn(turn).await
    }
    async fn run_turn(
        &self,
        read: &domain::ports::TurnRead,
        decide: domain::ports::TurnDecision,
    ) -> Result<domain::ports::TurnRun, StoreError> {
        self.store.run_turn(read, decide).await
    }
    async fn finish_reply<'u>(
        &self,
        reply: &Message,
        event: &Event,
        usage: Option<&'u domain::model::UsageEntry>,
    ) -> Result<bool, StoreError> {
        self.store.finish_reply(reply, event, usage).await
    }
    async fn update_message(&self, message: &Message, event: &Event) -> Result<(), StoreError> {
        self.store.update_message(message, event).await
    }
    async fn delete_message(
        &self,
        message: &Message,
        stale_before: DateTime<Utc>,
        event: &Event,
    ) -> Result<(), StoreError> {
        self.store
            .delete_message(message, stale_before, event)
            .await
    }
    async fn list_branch(
        &self,
        chat_id: ChatId,
        through: MessageId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.store.list_branch(chat_id, through, after, limit).await
    }
    async fn branch_history(
        &self,
        chat_id: ChatId,
        leaf: MessageId,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.store.branch_history(chat_id, leaf, limit).await
    }
    async fn newest_leaf(
        &self,
        chat_id: ChatId,
        below: Option<MessageId>,
    ) -> Result<Option<MessageId>, StoreError> {
        self.store.newest_leaf(chat_id, below).await
    }
    async fn children(
        &self,
        chat_id: ChatId,
        parent: Option<MessageId>,
    ) -> Result<Vec<MessageId>, StoreError> {
        self.store.children(chat_id, parent).await
    }
    async fn select_branch(&self, chat: &Chat, event: &Event) -> Result<(), StoreError> {
        self.store.select_branch(chat, event).await
    }
    async fn insert_chat_with_messages(
        &self,
        chat: &Chat,
        messages: &[Message],
        events: &[Event],
    ) -> Result<(), StoreError> {
        self.store
            .insert_chat_with_messages(chat, messages, events)
            .await
    }
}

#[async_trait]
impl domain::ports::UsageRepository for TestStore {
    async fn record_usage(&self, entry: &domain::model::UsageEntry) -> Result<(), StoreError> {
        self.store.record_usage(entry).await
    }
    async fn daily_usage(
        &self,
        user: &UserId,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<domain::model::UsageRow>, StoreError> {
        self.store.daily_usage(user, from, to).await
    }
}

#[async_trait]
impl Outbox for TestStore {
    async fn claim(
        &self,
        relay: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.store.claim(relay, limit, lease).await
    }
    async fn mark_published(&self, relay: &str, positions: &[i64]) -> Result<(), StoreError> {
        self.store.mark_published(relay, positions).await
    }
    async fn release(&self, relay: &str, positions: &[i64]) -> Result<(), StoreError> {
        self.store.release(relay, positions).await
    }
    async fn record_failures(
        &self,
        relay: &str,
        failures: &[FailedAttempt],
    ) -> Result<(), StoreError> {
        self.store.record_failures(relay, failures).await
    }
    async fn backlog(&self) -> Result<OutboxCounts, StoreError> {
        self.store.backlog().await
    }
    async fn dead(&self, limit: u32) -> Result<Vec<DeadEntry>, StoreError> {
        self.store.dead(limit).await
    }
    async fn retry_dead(&self, filter: DeadFilter) -> Result<u64, StoreError> {
        self.store.retry_dead(filter).await
    }
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.store.prune(before).await
    }
}

/// Stores `events` in the outbox as one committed change, without the change itself
/// (for outbox tests that need entries of any chat).
pub async fn append_to_outbox(store: &PgStore, events: &[Event]) -> Result<(), StoreError> {
    let rows = crate::rows::NewOutboxRow::all(events).map_err(StoreError::from)?;
    store
        .run(move |c| crate::repo::outbox::append(c, &rows))
        .await
}

/// The value of a setting (`current_setting`) on a connection of `store`'s pool.
pub async fn session_setting(store: &PgStore, name: &str) -> Result<String, StoreError> {
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let name = name.to_owned();
    store
        .run(move |c| {
            use diesel::RunQueryDsl;
            let row: Setting = diesel::sql_query("SELECT current_setting($1) AS value")
                .bind::<diesel::sql_types::Text, _>(&name)
                .get_result(c)?;
            Ok(row.value)
        })
        .await
}

/// The server process id of a connection of `store`'s pool, which is held until
/// `release` fires (or its sender is dropped): for tests of which connection the pool
/// hands out.
pub async fn backend_pid_held(
    store: &PgStore,
    release: std::sync::mpsc::Receiver<()>,
) -> Result<i32, StoreError> {
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    store
        .run(move |c| {
            use diesel::RunQueryDsl;
            let row: Pid = diesel::sql_query("SELECT pg_backend_pid() AS pid").get_result(c)?;
            let _ = release.recv();
            Ok(row.pid)
        })
        .await
}
