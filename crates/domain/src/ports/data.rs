//! Storage ports of a user's own data: message search, export, erasure and retention.
//! Each is implemented by every storage adapter and checked by the data contract suite
//! (`domain::testing::data_contract_tests!`).

use crate::model::{
    Chat, ChatId, Event, Message, MessageQuery, MessageSearchCursor, SearchRow, UserId,
};
use crate::ports::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A message search, as the service asks storage for it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageSearch {
    /// Whose messages.
    pub owner: UserId,
    /// Only this chat's messages (the service checked it is the owner's).
    pub chat_id: Option<ChatId>,
    /// What to look for.
    pub query: MessageQuery,
    /// Start strictly after this position.
    pub after: Option<MessageSearchCursor>,
    /// Most rows to return.
    pub limit: u32,
    /// How many of the newest matches are ranked (see [`MessageSearchRepository`]).
    pub window: u32,
}

/// Full-text search over a user's messages.
///
/// Contract (checked by the data contract suite against every adapter):
/// - a message matches when [`MessageQuery::matches`] says so for the words of its
///   content ([`crate::model::text::WordIndex`]), and it is the owner's (in `chat_id`
///   when given);
/// - only the newest `window` matches are ranked: newest by `(created_at, id)`, or
///   within one chat by `seq`; older matches are never returned;
/// - those are ordered by [`MessageQuery::relevance`] descending, then `created_at`
///   descending, then `id` descending, and start strictly after `after`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MessageSearchRepository: Send + Sync {
    /// Up to `search.limit` matching messages in rank order.
    async fn search_messages(&self, search: &MessageSearch) -> Result<Vec<SearchRow>, StoreError>;
}

/// Reading everything a user owns, page by page, in an order that does not change while
/// it is read (chats by id, messages by `seq`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ExportRepository: Send + Sync {
    /// Up to `limit` of the owner's chats with an id greater than `after`, by id.
    async fn export_chats(
        &self,
        owner: &UserId,
        after: Option<ChatId>,
        limit: u32,
    ) -> Result<Vec<Chat>, StoreError>;
    /// Up to `limit` messages of the chat with `seq > after_seq`, every branch, by `seq`.
    async fn export_messages(
        &self,
        chat_id: ChatId,
        after_seq: u32,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
}

/// What one erasure batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErasedBatch {
    /// Chats deleted (their messages with them).
    pub chats: u64,
    /// Messages deleted with those chats.
    pub messages: u64,
    /// Whether the user still has chats.
    pub more: bool,
}

/// Erasing a user: a durable request, batches of chats, then one final step.
///
/// Contract (checked by the data contract suite against every adapter):
/// - `request_erasure` records that `user` is being erased (again: renews it);
/// - `erase_chats` deletes up to `limit` of the user's chats with their messages and
///   renews the request;
/// - `finish_erasure`, in one change: deletes whatever of the user is left (chats,
///   messages, idempotency records, usage rows, the user's outbox events, whatever their
///   state), removes the request and stores `event`; if no request was pending (another
///   runner finished first) it changes nothing and returns `false`;
/// - `stalled_erasures` lists users whose request was last renewed before `idle_before`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ErasureRepository: Send + Sync {
    /// Records (or renews) the erasure request of `user` at `at`.
    async fn request_erasure(&self, user: &UserId, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Deletes up to `limit` of the user's chats and their messages.
    async fn erase_chats(
        &self,
        user: &UserId,
        limit: u32,
        at: DateTime<Utc>,
    ) -> Result<ErasedBatch, StoreError>;
    /// The final step; see the trait's contract.
    async fn finish_erasure(&self, user: &UserId, event: &Event) -> Result<bool, StoreError>;
    /// Up to `limit` users whose erasure stalled (its runner died).
    async fn stalled_erasures(
        &self,
        idle_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<UserId>, StoreError>;
}

/// Builds the event of a chat deleted by retention, at a time.
pub type DeletedEvent = fn(&Chat, DateTime<Utc>) -> Event;

/// Deleting idle chats.
///
/// Contract (checked by the data contract suite against every adapter):
/// `delete_idle_chats` deletes, in one change, up to `limit` chats whose `updated_at`
/// is before `idle_before`, oldest first, with their messages, storing `event(chat, at)`
/// for each, and returns them. Only one caller at a time does so (across replicas): a
/// caller that finds another one at work returns `None` and changes nothing.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RetentionRepository: Send + Sync {
    /// One batch of the retention job.
    async fn delete_idle_chats(
        &self,
        idle_before: DateTime<Utc>,
        limit: u32,
        at: DateTime<Utc>,
        event: DeletedEvent,
    ) -> Result<Option<Vec<Chat>>, StoreError>;
}
