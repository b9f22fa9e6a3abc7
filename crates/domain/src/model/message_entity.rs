//! The message entity. Its fields are private: a message is made and changed only
//! through the domain's constructors and methods, each keeping the rules below; a
//! storage adapter rebuilds one it reads back through [`Message::restore`], and a
//! document (an event) is read through the same checks as everything else.
//!
//! The rules: `seq` is at least 1; ids are UUIDv7 (by their types); a message is not
//! its own parent; a user message is `complete` and its content follows
//! [`MessageContent`].

use super::chat_entity::Chat;
use super::ids::{ChatId, MessageId};
use super::message::{Branch, MessageContent, MessageStatus, Role, Usage};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One message of a chat.
///
/// Assistant replies are the only messages whose content can be empty (a reply
/// that failed before its first token), so [`Message::content`] is a plain `&str`;
/// user input is always checked through [`MessageContent`] first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "RawMessage")]
pub struct Message {
    id: MessageId,
    chat_id: ChatId,
    seq: u32,
    parent_id: Option<MessageId>,
    /// Derived, not stored, and not carried by events (siblings added later would
    /// make it stale).
    #[serde(skip)]
    branch: Branch,
    role: Role,
    content: String,
    status: MessageStatus,
    model: Option<String>,
    usage: Option<Usage>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Every field of a [`Message`], for a storage adapter rebuilding one it stored (see
/// [`Message::restore`]) and for tests.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageParts {
    /// Its identifier.
    pub id: MessageId,
    /// The chat it belongs to.
    pub chat_id: ChatId,
    /// Its position in the chat: 1, 2, 3… with no gaps.
    pub seq: u32,
    /// The message it follows: `None` for a first message (a root of the tree).
    pub parent_id: Option<MessageId>,
    /// Its place among its siblings, as of the read that returned it.
    pub branch: Branch,
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
    /// Where it is in its life.
    pub status: MessageStatus,
    /// The model that wrote it (replies only).
    pub model: Option<String>,
    /// Tokens used (replies only, when the provider reported them).
    pub usage: Option<Usage>,
    /// Why it failed (failed replies only).
    pub error: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Why a message document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageRuleError {
    /// `seq` is 0; positions start at 1.
    #[error("seq must be at least 1")]
    SeqZero,
    /// The message names itself as its parent.
    #[error("a message cannot be its own parent")]
    OwnParent,
    /// A user message that is not `complete`.
    #[error("a user message is always complete")]
    UserNotComplete,
    /// A user message whose content breaks the content rules.
    #[error("user message content: {0}")]
    UserContent(#[from] super::message::MessageContentError),
}

/// The document form of a [`Message`], read before its rules are checked.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMessage {
    id: MessageId,
    chat_id: ChatId,
    seq: u32,
    #[serde(default)]
    parent_id: Option<MessageId>,
    role: Role,
    content: String,
    status: MessageStatus,
    model: Option<String>,
    usage: Option<Usage>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RawMessage> for Message {
    type Error = MessageRuleError;
    fn try_from(r: RawMessage) -> Result<Self, Self::Error> {
        let m = Message::restore(MessageParts {
            id: r.id,
            chat_id: r.chat_id,
            seq: r.seq,
            parent_id: r.parent_id,
            branch: Branch::default(),
            role: r.role,
            content: r.content,
            status: r.status,
            model: r.model,
            usage: r.usage,
            error: r.error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        });
        m.check()?;
        Ok(m)
    }
}

impl Message {
    /// Rebuilds a message from its parts. For storage adapters reading back what they
    /// stored (and for tests): it trusts the stored row and checks nothing; whatever
    /// else makes or changes a message goes through the domain's methods.
    pub fn restore(parts: MessageParts) -> Self {
        let MessageParts {
            id,
            chat_id,
            seq,
            parent_id,
            branch,
            role,
            content,
            status,
            model,
            usage,
            error,
            created_at,
            updated_at,
        } = parts;
        Self {
            id,
            chat_id,
            seq,
            parent_id,
            branch,
            role,
            content,
            status,
            model,
            usage,
            error,
            created_at,
            updated_at,
        }
    }

    /// Its parts, to rebuild a changed copy with [`Message::restore`] (tests, adapters).
    pub fn into_parts(self) -> MessageParts {
        MessageParts {
            id: self.id,
            chat_id: self.chat_id,
            seq: self.seq,
            parent_id: self.parent_id,
            branch: self.branch,
            role: self.role,
            content: self.content,
            status: self.status,
            model: self.model,
            usage: self.usage,
            error: self.error,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// Checks the rules a message document must keep (see the module documentation).
    pub fn check(&self) -> Result<(), MessageRuleError> {
        if self.seq == 0 {
            return Err(MessageRuleError::SeqZero);
        }
        if self.parent_id == Some(self.id) {
            return Err(MessageRuleError::OwnParent);
        }
        if self.role == Role::User {
            if self.status != MessageStatus::Complete {
                return Err(MessageRuleError::UserNotComplete);
            }
            MessageContent::parse(&self.content)?;
        }
        Ok(())
    }

    /// A new user message of `chat`, the next in `seq` order, following `parent_id`.
    pub(crate) fn user(
        chat: &Chat,
        id: MessageId,
        parent_id: Option<MessageId>,
        branch: Branch,
        content: &MessageContent,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            chat_id: chat.id(),
            seq: chat.next_seq(),
            parent_id,
            branch,
            role: Role::User,
            content: content.as_str().to_owned(),
            status: MessageStatus::Complete,
            model: None,
            usage: None,
            error: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// A reply placeholder `id` of `chat` at `seq` (at least 1): `streaming`, empty,
    /// written by `model`, a root until [`Message::set_parent_id`] says what it answers.
    pub(crate) fn reply(
        chat: &Chat,
        id: MessageId,
        seq: u32,
        model: String,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            chat_id: chat.id(),
            seq: seq.max(1),
            parent_id: None,
            branch: Branch::default(),
            role: Role::Assistant,
            content: String::new(),
            status: MessageStatus::Streaming,
            model: Some(model),
            usage: None,
            error: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// A copy of this message into `chat` at position `index` (0-based: `seq` is
    /// `index + 1`) under `parent_id`, with a new id (a fork).
    pub(crate) fn copied_into(
        &self,
        chat: &Chat,
        index: usize,
        parent_id: Option<MessageId>,
    ) -> Self {
        Self {
            id: MessageId::new(),
            chat_id: chat.id(),
            seq: seq_at(index),
            parent_id,
            branch: Branch::default(),
            ..self.clone()
        }
    }

    /// Makes it follow `parent_id` (a new message, before it is stored).
    pub(crate) fn set_parent_id(&mut self, parent_id: Option<MessageId>) {
        if parent_id != Some(self.id) {
            self.parent_id = parent_id;
        }
    }

    /// Its place among its siblings, as a read found it (derived, never stored).
    pub fn set_branch(&mut self, branch: Branch) {
        self.branch = branch;
    }

    /// Takes the text generated so far when it is longer than the stored text (the live
    /// state of a reply runs ahead of storage).
    pub(crate) fn catch_up(&mut self, live_text: String) {
        if live_text.len() > self.content.len() {
            self.content = live_text;
        }
    }

    /// Records what generation produced: the text, the model and the usage, at `now`.
    pub(crate) fn record_output(
        &mut self,
        content: String,
        model: String,
        usage: Option<Usage>,
        now: DateTime<Utc>,
    ) {
        self.content = content;
        self.model = Some(model);
        self.usage = usage;
        self.updated_at = now;
    }

    /// Marks a reply complete.
    pub(crate) fn complete(&mut self) {
        self.status = MessageStatus::Complete;
    }

    /// Marks a reply failed, saying why. A user message is always complete: unchanged.
    pub(crate) fn fail(&mut self, error: String) {
        if self.role != Role::User {
            self.status = MessageStatus::Failed;
            self.error = Some(error);
        }
    }

    /// Marks a reply cancelled (its content is the partial text). A user message is
    /// always complete: unchanged.
    pub(crate) fn cancel(&mut self) {
        if self.role != Role::User {
            self.status = MessageStatus::Cancelled;
        }
    }

    /// Drops the text of a failed reply (when even storing it failed).
    pub(crate) fn drop_content(&mut self) {
        if self.role != Role::User {
            self.content = String::new();
        }
    }

    /// Replaces the content (an edit), at `now`.
    pub(crate) fn edit(&mut self, content: MessageContent, now: DateTime<Utc>) {
        self.content = content.into();
        self.updated_at = now;
    }

    /// Notes a change at `now`.
    pub(crate) fn touch(&mut self, now: DateTime<Utc>) {
        self.updated_at = now;
    }

    /// For storage adapters: takes the outcome of a finished reply (content, status,
    /// model, usage, error, time) from `finished`, the same reply as the service
    /// finished it; its place (id, chat, `seq`, parent) stays as stored.
    pub fn take_outcome(&mut self, finished: &Message) {
        self.content.clone_from(&finished.content);
        self.status = finished.status;
        self.model.clone_from(&finished.model);
        self.usage = finished.usage;
        self.error.clone_from(&finished.error);
        self.updated_at = finished.updated_at;
    }

    /// For storage adapters: takes the edit of `edited` (its content and time).
    pub fn take_edit(&mut self, edited: &Message) {
        self.content.clone_from(&edited.content);
        self.updated_at = edited.updated_at;
    }

    /// For storage adapters: renumbers it to position `index` (0-based: `seq` is
    /// `index + 1`) after messages before it were deleted.
    pub fn renumber(&mut self, index: usize) {
        self.seq = seq_at(index);
    }

    /// Its identifier.
    pub fn id(&self) -> MessageId {
        self.id
    }

    /// The chat it belongs to.
    pub fn chat_id(&self) -> ChatId {
        self.chat_id
    }

    /// Its position in the chat: 1, 2, 3… with no gaps.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// The message it follows: `None` for a first message (a root of the tree).
    pub fn parent_id(&self) -> Option<MessageId> {
        self.parent_id
    }

    /// Its place among its siblings, as of the read that returned it.
    pub fn branch(&self) -> Branch {
        self.branch
    }

    /// Who wrote it.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Its text.
    pub fn content(&self) -> &str {
        &self.content
    }

    /// Where it is in its life.
    pub fn status(&self) -> MessageStatus {
        self.status
    }

    /// The model that wrote it (replies only).
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Tokens used (replies only, when the provider reported them).
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Why it failed (failed replies only).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// When it was created.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// When it last changed.
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

/// The `seq` of position `index` (0-based): at least 1.
fn seq_at(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX).saturating_add(1)
}

#[cfg(test)]
#[path = "message_entity_tests.rs"]
mod tests;
