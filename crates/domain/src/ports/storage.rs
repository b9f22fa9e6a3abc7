//! Storage ports: chats and messages. Every change is stored together with the
//! events it emits, atomically (the transactional outbox); an adapter without an
//! outbox publishes the events right after the change.

use crate::model::{
    Chat, ChatCursor, ChatId, ChatTitle, Event, IdempotencyKey, IdempotentSend, Message,
    MessageCursor, MessageId, SearchQuery, UsageEntry, UserId,
};
use crate::ports::{TurnDecision, TurnRead, TurnRun};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// How a storage operation failed, classified by what the caller does next.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row the operation needs does not exist (any more).
    #[error("not found")]
    NotFound,
    /// Another writer changed the chat first (its `message_count` is not the one
    /// expected); re-read and try again.
    #[error("conflicting concurrent change")]
    Conflict,
    /// A reply is being generated in the chat (a `streaming` message newer than
    /// the staleness cut-off exists).
    #[error("a reply is being generated in this chat")]
    ChatBusy,
    /// Storage cannot be reached now (down, pool exhausted, timed out): retry later.
    #[error("storage unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else: a bug or corrupt data.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// The start of a turn: a user message (absent when regenerating) and the reply
/// placeholder, both stored at once with their events.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTurn {
    /// The chat.
    pub chat_id: ChatId,
    /// The chat's `message_count` the service read; the messages take the next `seq`s.
    pub expected_count: u32,
    /// The user's message (`seq = expected_count + 1`), or `None` when regenerating.
    pub user_message: Option<Message>,
    /// The assistant reply, status `streaming`, with the following `seq`.
    pub reply: Message,
    /// A `streaming` reply last updated before this instant no longer makes the chat busy.
    pub stale_before: DateTime<Utc>,
    /// The chat's new `updated_at`.
    pub now: DateTime<Utc>,
    /// The events of the change, stored with it.
    pub events: Vec<Event>,
    /// For a send with an `Idempotency-Key`: the record to store with the turn. A live
    /// record (created at or after `now` minus 24 h) with the same user and key makes
    /// the turn fail with `Conflict`; an expired one is replaced.
    pub idempotency: Option<IdempotentSend>,
}

/// Chat storage.
///
/// Contract (checked by the shared contract suite against every adapter):
/// - `NotFound` is returned by `update_chat` and `delete_chat` when the chat does not exist;
/// - `update_chat` is a compare-and-set: `Conflict` when the stored title or settings
///   are no longer the expected ones (nothing written), and `updated_at` never moves back;
/// - lists are ordered by `updated_at` then `id`, both descending, and start strictly after the cursor;
/// - search matches titles containing the query, ignoring case, with `%` and `_` literal;
/// - `retitle_chat` changes the title only while the stored one is the expected one.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ChatRepository: Send + Sync {
    /// Stores a new chat and its event.
    async fn insert_chat(&self, chat: &Chat, event: &Event) -> Result<(), StoreError>;
    /// Reads a chat, whoever owns it.
    async fn find_chat(&self, id: ChatId) -> Result<Option<Chat>, StoreError>;
    /// Sets the chat's title and settings to `chat`'s and moves its `updated_at` forward
    /// to `chat.updated_at` (never back), storing `event` with the change — only while
    /// the stored title and settings are still `expected`'s (the chat as the caller read
    /// it): else `Conflict` and nothing is written, so a concurrent change is never
    /// overwritten with a stale value (re-read and try again). `NotFound` if it is gone.
    async fn update_chat(
        &self,
        chat: &Chat,
        expected: &Chat,
        event: &Event,
    ) -> Result<(), StoreError>;
    /// Sets the chat's title to `chat.title` and moves its `updated_at` forward to
    /// `chat.updated_at` (never back), storing `event` with the change, only if its
    /// stored title is still `expected` — so an automatic title never overwrites one
    /// its user set meanwhile. Says whether it changed the chat (`false` also when the
    /// chat is gone). Nothing else of the chat is written.
    async fn retitle_chat(
        &self,
        chat: &Chat,
        expected: &ChatTitle,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// Deletes a chat and all its messages.
    async fn delete_chat(&self, id: ChatId, event: &Event) -> Result<(), StoreError>;
    /// Up to `limit` of the owner's chats, newest activity first, after `after`.
    async fn list_chats(
        &self,
        owner: &UserId,
        after: Option<ChatCursor>,
        limit: u32,
    ) -> Result<Vec<Chat>, StoreError>;
    /// Like `list_chats`, only chats whose title contains `query`.
    async fn search_chats(
        &self,
        owner: &UserId,
        query: &SearchQuery,
        after: Option<ChatCursor>,
        limit: u32,
    ) -> Result<Vec<Chat>, StoreError>;
}

/// Message storage.
///
/// Contract (checked by the shared contract suite against every adapter):
/// - `start_turn` is atomic: it returns `NotFound` when the chat is gone, `ChatBusy`
///   when the chat has a `streaming` message updated at or after `stale_before`, and
///   `Conflict` when the chat's `message_count` is not `expected_count`; otherwise it
///   inserts the messages, sets the chat's `message_count` and `updated_at`, and stores
///   the events, all or nothing. So `seq` stays 1, 2, 3… with any number of writers.
/// - `finish_reply` changes a reply only while it is `streaming`, and says whether it did.
/// - `delete_message` moves every later message of the chat up one `seq`.
/// - `start_turn` stores `NewTurn::idempotency` in the same transaction, and fails with
///   `Conflict` if a live record with the same user and key exists — checked BEFORE the
///   busy check, so a retry racing the send it repeats is told to re-read (and then finds
///   the record), never that the chat is busy.
/// - Trees (DESIGN.md §2.1): `start_turn` fails with `Conflict` when a new message's
///   `parent_id` is no longer a message of the chat, and makes the reply the chat's
///   active leaf. Every message an adapter returns from `find_message` and
///   `list_branch` carries its `branch` (siblings: same chat and `parent_id`, in `seq`
///   order). `delete_message` deletes the message with its whole subtree, closes up the
///   `seq`s and moves an active leaf that was inside the subtree to the newest
///   descendant of the deleted message's parent (of the newest root, for a root).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MessageRepository: Send + Sync {
    /// Reads a message, whoever owns its chat.
    async fn find_message(&self, id: MessageId) -> Result<Option<Message>, StoreError>;
    /// Reads a message of one of `owner`'s chats with its chat, in one read: `None`
    /// alike when the message does not exist and when another user owns it, so the two
    /// cost the same (a leaked id cannot be confirmed by timing).
    async fn find_owned_message(
        &self,
        owner: &UserId,
        id: MessageId,
    ) -> Result<Option<(Chat, Message)>, StoreError>;
    /// Up to `limit` of a chat's messages in `seq` order, after `after`.
    async fn list_messages(
        &self,
        chat_id: ChatId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// Up to `limit` messages with `seq < before_seq`, newest first (history for a prompt).
    async fn recent_messages(
        &self,
        chat_id: ChatId,
        before_seq: u32,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// The record of an idempotent send by `user` with `key`, if one was created at or
    /// after `since` (older records are expired and ignored).
    async fn find_idempotent(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        since: DateTime<Utc>,
    ) -> Result<Option<IdempotentSend>, StoreError>;
    /// The chat's `streaming` messages, if any.
    async fn streaming_messages(&self, chat_id: ChatId) -> Result<Vec<Message>, StoreError>;
    /// Starts a turn; see the trait's contract.
    async fn start_turn(&self, turn: &NewTurn) -> Result<(), StoreError>;
    /// Starts a turn as one unit of work (one connection, one transaction): locks the
    /// chat, claims [`TurnRead::claim`] (or finds the live record holding its key), reads
    /// the other [`TurnFacts`], calls `decide` exactly once with them, and, if it returns
    /// a turn, stores it as `start_turn` would (messages, the chat's `message_count`,
    /// `updated_at` and active leaf = the reply, the events) with the claim, and commits.
    /// If `decide` returns `None`, nothing is stored (the claim neither).
    ///
    /// The decision's turn must follow the facts: its messages take the `seq`s after the
    /// locked chat's `message_count` and carry the claim's ids; `NewTurn::idempotency`,
    /// `expected_count` and `stale_before` are not used (the chat is locked and the
    /// decision saw the streaming messages). A turn returned although the chat is
    /// missing is `NotFound`, one returned over a found record `Conflict`; a claim lost
    /// to a record that cannot be read any more is `Conflict` (try again).
    async fn run_turn(&self, read: &TurnRead, decide: TurnDecision) -> Result<TurnRun, StoreError>;
    /// Stores a reply's final state (complete, failed or cancelled) if it is still
    /// `streaming`; returns whether it was. Bumps the chat's `updated_at`. When it
    /// changes the reply, `usage` (what the reply cost) is added to the usage ledger
    /// in the same change (see [`crate::ports::UsageRepository`]).
    async fn finish_reply<'u>(
        &self,
        reply: &Message,
        event: &Event,
        usage: Option<&'u UsageEntry>,
    ) -> Result<bool, StoreError>;
    /// Replaces a message's content and `updated_at`; `NotFound` if it is gone.
    async fn update_message(&self, message: &Message, event: &Event) -> Result<(), StoreError>;
    /// Deletes a message and everything below it, renumbers the later ones and lowers
    /// the chat's `message_count` by the number deleted; `NotFound` if it is gone,
    /// `ChatBusy` as in `start_turn`.
    async fn delete_message(
        &self,
        message: &Message,
        stale_before: DateTime<Utc>,
        event: &Event,
    ) -> Result<(), StoreError>;
    /// Up to `limit` messages of the branch through `through` — its ancestors from the
    /// root, itself, then its newest descendants (at each step the child with the
    /// highest `seq`) — in conversation order, with `seq` after `after`, each with its
    /// `branch`. Empty when `through` is not a message of the chat.
    async fn list_branch(
        &self,
        chat_id: ChatId,
        through: MessageId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// Up to `limit` messages of the active branch of `owner`'s chat `chat_id` after
    /// `after` (as `list_branch` through its active leaf; none when it has no
    /// messages), with the owner check in the same read: `None` alike when the chat does
    /// not exist and when another user owns it. The read of a chat's page
    /// (`GET /messages?chatId`).
    async fn list_owned_active_branch(
        &self,
        owner: &UserId,
        chat_id: ChatId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Option<Vec<Message>>, StoreError>;
    /// Up to `limit` messages of the branch from the root to `leaf` (inclusive), newest
    /// first: the history of a prompt. (`branch` is not filled in.)
    async fn branch_history(
        &self,
        chat_id: ChatId,
        leaf: MessageId,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// The newest descendant of `below` (itself when it has no children), or of the
    /// chat's newest root when `below` is `None`; `None` when there is no such message.
    async fn newest_leaf(
        &self,
        chat_id: ChatId,
        below: Option<MessageId>,
    ) -> Result<Option<MessageId>, StoreError>;
    /// The ids of the children of `parent` (the chat's roots for `None`), in `seq` order.
    async fn children(
        &self,
        chat_id: ChatId,
        parent: Option<MessageId>,
    ) -> Result<Vec<MessageId>, StoreError>;
    /// Stores `chat.active_leaf_id` (nothing else of the chat) and `event`; `NotFound`
    /// when the chat, or the leaf in it, is gone.
    async fn select_branch(&self, chat: &Chat, event: &Event) -> Result<(), StoreError>;
    /// Stores a new chat with its messages (`seq` 1..k, each `parent_id` an earlier one
    /// of them or `None`) and the events, all or nothing.
    async fn insert_chat_with_messages(
        &self,
        chat: &Chat,
        messages: &[Message],
        events: &[Event],
    ) -> Result<(), StoreError>;
}
