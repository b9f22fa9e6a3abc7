//! Test doubles for the provider call overlapped with the turn's commit: a provider
//! that hangs until dropped (and tells that it was started and that it was dropped),
//! and message storage whose turn commits fail once the provider has the request.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::model::*;
use domain::ports::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// A provider whose call never answers: `started` counts calls, `dropped` the calls
/// cancelled (their future dropped), `asked` is notified at each call.
#[derive(Clone, Default)]
pub struct Hanging {
    pub started: Arc<AtomicUsize>,
    pub dropped: Arc<AtomicUsize>,
    pub asked: Arc<Notify>,
}

struct CountDrop(Arc<AtomicUsize>);

impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl LlmClient for Hanging {
    async fn complete(&self, _: LlmRequest) -> Result<LlmReply, LlmError> {
        futures::future::pending().await
    }
    async fn stream(&self, _: LlmRequest) -> Result<LlmStream, LlmError> {
        let _dropped = CountDrop(self.dropped.clone());
        self.started.fetch_add(1, Ordering::SeqCst);
        self.asked.notify_one();
        futures::future::pending().await
    }
}

/// Message storage over `inner` whose `run_turn` runs the decision, stores nothing,
/// waits until the provider was asked (so its call is in flight), then fails as a
/// commit that did not go through.
pub struct CommitFails {
    pub inner: Arc<dyn MessageRepository>,
    pub asked: Arc<Notify>,
}

#[async_trait]
impl MessageRepository for CommitFails {
    async fn run_turn(&self, read: &TurnRead, decide: TurnDecision) -> Result<TurnRun, StoreError> {
        let decided = Arc::new(AtomicUsize::new(0));
        let seen = decided.clone();
        self.inner
            .run_turn(
                read,
                Box::new(move |facts| {
                    if decide(facts).is_some() {
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                    None
                }),
            )
            .await?;
        if decided.load(Ordering::SeqCst) > 0 {
            self.asked.notified().await;
        }
        Err(StoreError::Unavailable(anyhow::anyhow!(
            "the commit failed"
        )))
    }
    async fn find_message(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        self.inner.find_message(id).await
    }
    async fn find_owned_message(
        &self,
        owner: &UserId,
        id: MessageId,
    ) -> Result<Option<(Chat, Message)>, StoreError> {
        self.inner.find_owned_message(owner, id).await
    }
    async fn list_owned_active_branch(
        &self,
        owner: &UserId,
        chat_id: ChatId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Option<Vec<Message>>, StoreError> {
        self.inner
            .list_owned_active_branch(owner, chat_id, after, limit)
            .await
    }
    async fn list_messages(
        &self,
        chat_id: ChatId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.inner.list_messages(chat_id, after, limit).await
    }
    async fn recent_messages(
        &self,
        chat_id: ChatId,
        before_seq: u32,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.inner.recent_messages(chat_id, before_seq, limit).await
    }
    async fn find_idempotent(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        since: DateTime<Utc>,
    ) -> Result<Option<IdempotentSend>, StoreError> {
        self.inner.find_idempotent(user, key, since).await
    }
    async fn streaming_messages(&self, chat_id: ChatId) -> Result<Vec<Message>, StoreError> {
        self.inner.streaming_messages(chat_id).await
    }
    async fn start_turn(&self, turn: &NewTurn) -> Result<(), StoreError> {
        self.inner.start_turn(turn).await
    }
    async fn finish_reply<'u>(
        &self,
        reply: &Message,
        event: &Event,
        usage: Option<&'u UsageEntry>,
    ) -> Result<bool, StoreError> {
        self.inner.finish_reply(reply, event, usage).await
    }
    async fn update_message(&self, message: &Message, event: &Event) -> Result<(), StoreError> {
        self.inner.update_message(message, event).await
    }
    async fn delete_message(
        &self,
        message: &Message,
        stale_before: DateTime<Utc>,
        event: &Event,
    ) -> Result<(), StoreError> {
        self.inner
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
        self.inner.list_branch(chat_id, through, after, limit).await
    }
    async fn branch_history(
        &self,
        chat_id: ChatId,
        leaf: MessageId,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.inner.branch_history(chat_id, leaf, limit).await
    }
    async fn newest_leaf(
        &self,
        chat_id: ChatId,
        below: Option<MessageId>,
    ) -> Result<Option<MessageId>, StoreError> {
        self.inner.newest_leaf(chat_id, below).await
    }
    async fn children(
        &self,
        chat_id: ChatId,
        parent: Option<MessageId>,
    ) -> Result<Vec<MessageId>, StoreError> {
        self.inner.children(chat_id, parent).await
    }
    async fn select_branch(&self, chat: &Chat, event: &Event) -> Result<(), StoreError> {
        self.inner.select_branch(chat, event).await
    }
    async fn insert_chat_with_messages(
        &self,
        chat: &Chat,
        messages: &[Message],
        events: &[Event],
    ) -> Result<(), StoreError> {
        self.inner
            .insert_chat_with_messages(chat, messages, events)
            .await
    }
}
