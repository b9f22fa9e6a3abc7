//! The chat entity. Its fields are private: a chat is made and changed only through
//! the domain's constructors and methods; a storage adapter rebuilds one it reads
//! back through [`Chat::restore`], and a document (an event) is read through the same
//! checks as everything else.
//!
//! The rules: ids are UUIDv7 and the owner, title and settings follow their own
//! rules (by their types); `message_count` is the number of messages, which is also
//! the `seq` of the last one; a chat without messages has no active leaf.

use super::chat::{ChatSettings, ChatTitle};
use super::ids::{ChatId, MessageId, UserId};
use super::message_entity::Message;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A conversation owned by one user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "RawChat")]
pub struct Chat {
    id: ChatId,
    owner: UserId,
    title: ChatTitle,
    settings: ChatSettings,
    message_count: u32,
    active_leaf_id: Option<MessageId>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Every field of a [`Chat`], for a storage adapter rebuilding one it stored (see
/// [`Chat::restore`]) and for tests.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatParts {
    /// Its identifier.
    pub id: ChatId,
    /// The user who owns it; nobody else can see it.
    pub owner: UserId,
    /// Its title.
    pub title: ChatTitle,
    /// How its replies are generated.
    pub settings: ChatSettings,
    /// How many messages it holds; also the `seq` of its last message.
    pub message_count: u32,
    /// The last message of the branch shown by default (`None` while it has none).
    pub active_leaf_id: Option<MessageId>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Last activity: a change to the chat or to any of its messages.
    pub updated_at: DateTime<Utc>,
}

/// Why a chat document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatRuleError {
    /// An active leaf in a chat without messages.
    #[error("a chat without messages has no active leaf")]
    LeafWithoutMessages,
}

/// The document form of a [`Chat`], read before its rules are checked.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawChat {
    id: ChatId,
    owner: UserId,
    title: ChatTitle,
    settings: ChatSettings,
    message_count: u32,
    #[serde(default)]
    active_leaf_id: Option<MessageId>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RawChat> for Chat {
    type Error = ChatRuleError;
    fn try_from(r: RawChat) -> Result<Self, Self::Error> {
        let c = Chat::restore(ChatParts {
            id: r.id,
            owner: r.owner,
            title: r.title,
            settings: r.settings,
            message_count: r.message_count,
            active_leaf_id: r.active_leaf_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        });
        c.check()?;
        Ok(c)
    }
}

impl Chat {
    /// Rebuilds a chat from its parts. For storage adapters reading back what they
    /// stored (and for tests): it trusts the stored row and checks nothing; whatever
    /// else makes or changes a chat goes through the domain's methods.
    pub fn restore(parts: ChatParts) -> Self {
        let ChatParts {
            id,
            owner,
            title,
            settings,
            message_count,
            active_leaf_id,
            created_at,
            updated_at,
        } = parts;
        Self {
            id,
            owner,
            title,
            settings,
            message_count,
            active_leaf_id,
            created_at,
            updated_at,
        }
    }

    /// Its parts, to rebuild a changed copy with [`Chat::restore`] (tests, adapters).
    pub fn into_parts(self) -> ChatParts {
        ChatParts {
            id: self.id,
            owner: self.owner,
            title: self.title,
            settings: self.settings,
            message_count: self.message_count,
            active_leaf_id: self.active_leaf_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// Checks the rules a chat document must keep (see the module documentation).
    pub fn check(&self) -> Result<(), ChatRuleError> {
        if self.message_count == 0 && self.active_leaf_id.is_some() {
            return Err(ChatRuleError::LeafWithoutMessages);
        }
        Ok(())
    }

    /// A new chat of `owner`, without messages.
    pub(crate) fn new(
        owner: UserId,
        title: ChatTitle,
        settings: ChatSettings,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: ChatId::new(),
            owner,
            title,
            settings,
            message_count: 0,
            active_leaf_id: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Takes `messages` as all of its messages (a new chat filled at once, such as a
    /// fork): the count is theirs and the last one is the active leaf.
    pub(crate) fn holding(mut self, messages: &[Message]) -> Self {
        self.message_count = u32::try_from(messages.len()).unwrap_or(u32::MAX);
        self.active_leaf_id = messages.last().map(Message::id);
        self
    }

    /// Changes the title and/or the settings, at `now` (never earlier than the last
    /// activity).
    pub(crate) fn update(
        &mut self,
        title: Option<&ChatTitle>,
        settings: Option<&ChatSettings>,
        now: DateTime<Utc>,
    ) {
        if let Some(t) = title {
            self.title = t.clone();
        }
        if let Some(s) = settings {
            self.settings = s.clone();
        }
        self.touch(now);
    }

    /// Selects the branch shown by default: the one ending at `leaf`.
    pub fn select_leaf(&mut self, leaf: MessageId) {
        self.active_leaf_id = Some(leaf);
    }

    /// Notes activity at `at`: `updated_at` never goes back.
    pub fn touch(&mut self, at: DateTime<Utc>) {
        self.updated_at = self.updated_at.max(at);
    }

    /// For storage adapters: takes the title and settings of `changed` (the same chat
    /// as the service changed it), and its time.
    pub fn take_update(&mut self, changed: &Chat) {
        self.title = changed.title.clone();
        self.settings = changed.settings.clone();
        self.touch(changed.updated_at);
    }

    /// For storage adapters: takes the title of `retitled` (the same chat, retitled),
    /// and its time.
    pub fn take_title(&mut self, retitled: &Chat) {
        self.title = retitled.title.clone();
        self.touch(retitled.updated_at);
    }

    /// For storage adapters: a turn of `added` new messages ending at `leaf` was stored
    /// at `at`; the leaf becomes the active one.
    pub fn record_turn(&mut self, added: u32, leaf: MessageId, at: DateTime<Utc>) {
        self.message_count = self.message_count.saturating_add(added);
        self.active_leaf_id = Some(leaf);
        self.updated_at = at;
    }

    /// For storage adapters: messages were deleted at `at` and `remaining` are the ones
    /// left; when the active leaf is among the deleted (`gone` says which), `fallback`
    /// becomes it.
    pub fn record_delete(
        &mut self,
        remaining: &[Message],
        gone: impl Fn(MessageId) -> bool,
        fallback: Option<MessageId>,
        at: DateTime<Utc>,
    ) {
        self.message_count = u32::try_from(remaining.len()).unwrap_or(u32::MAX);
        self.touch(at);
        if self.active_leaf_id.is_some_and(&gone) {
            self.active_leaf_id = fallback;
        }
    }

    /// The `seq` its next message gets.
    pub fn next_seq(&self) -> u32 {
        self.message_count.saturating_add(1)
    }

    /// Its identifier.
    pub fn id(&self) -> ChatId {
        self.id
    }

    /// The user who owns it; nobody else can see it.
    pub fn owner(&self) -> &UserId {
        &self.owner
    }

    /// Its title.
    pub fn title(&self) -> &ChatTitle {
        &self.title
    }

    /// How its replies are generated.
    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    /// How many messages it holds; also the `seq` of its last message.
    pub fn message_count(&self) -> u32 {
        self.message_count
    }

    /// The last message of the branch shown by default (`None` while it has none).
    pub fn active_leaf_id(&self) -> Option<MessageId> {
        self.active_leaf_id
    }

    /// When it was created.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// Last activity: a change to the chat or to any of its messages.
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

#[cfg(test)]
#[path = "chat_entity_tests.rs"]
mod tests;
