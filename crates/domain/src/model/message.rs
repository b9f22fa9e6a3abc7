//! The values of a message: content, role, status, token usage and branch place (the
//! entity is in `message_entity`).

use super::ids::MessageId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The text of a message: 1 to 100,000 characters, not only white space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageContent(String);

/// Why message content was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageContentError {
    /// Empty or only white space.
    #[error("the content is empty")]
    Empty,
    /// More than [`MessageContent::MAX_CHARS`] characters.
    #[error("the content is longer than {} characters", MessageContent::MAX_CHARS)]
    TooLong,
    /// Contains a NUL character, which no storage keeps faithfully.
    #[error("the content contains a NUL character")]
    Nul,
}

impl MessageContent {
    /// Longest content, in characters.
    pub const MAX_CHARS: usize = 100_000;

    /// Checks user-written content. It is kept exactly as given (not trimmed).
    pub fn parse(s: &str) -> Result<Self, MessageContentError> {
        if s.trim().is_empty() {
            return Err(MessageContentError::Empty);
        }
        if s.len() > Self::MAX_CHARS * 4 || s.chars().count() > Self::MAX_CHARS {
            return Err(MessageContentError::TooLong);
        }
        if s.contains('\0') {
            return Err(MessageContentError::Nul);
        }
        Ok(Self(s.to_owned()))
    }

    /// The content as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MessageContent {
    type Error = MessageContentError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<MessageContent> for String {
    fn from(c: MessageContent) -> Self {
        c.0
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The human user.
    User,
    /// The model.
    Assistant,
    /// Instructions to the model.
    System,
}

impl Role {
    /// The wire name: `user`, `assistant` or `system`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            "system" => Some(Role::System),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    /// Finished. User messages are always complete.
    Complete,
    /// A reply being generated.
    Streaming,
    /// A reply whose generation failed; `error` says why.
    Failed,
    /// A reply stopped on request; its content is the partial text.
    Cancelled,
}

impl MessageStatus {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            MessageStatus::Complete => "complete",
            MessageStatus::Streaming => "streaming",
            MessageStatus::Failed => "failed",
            MessageStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "complete" => Some(MessageStatus::Complete),
            "streaming" => Some(MessageStatus::Streaming),
            "failed" => Some(MessageStatus::Failed),
            "cancelled" => Some(MessageStatus::Cancelled),
            _ => None,
        }
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tokens a reply used, as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Tokens of the request.
    pub prompt_tokens: u32,
    /// Tokens of the reply.
    pub completion_tokens: u32,
}

/// A message's place among its siblings (the messages with the same parent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Branch {
    /// 1-based position among the siblings, in `seq` order.
    pub index: u32,
    /// How many siblings there are (itself included).
    pub count: u32,
    /// The sibling before it, if any.
    pub prev_id: Option<MessageId>,
    /// The sibling after it, if any.
    pub next_id: Option<MessageId>,
}

impl Default for Branch {
    /// An only child.
    fn default() -> Self {
        Self {
            index: 1,
            count: 1,
            prev_id: None,
            next_id: None,
        }
    }
}

impl Branch {
    /// The place of `id` among `siblings` (ids in `seq` order); an only child when
    /// `id` is not among them.
    pub fn among(siblings: &[MessageId], id: MessageId) -> Self {
        let Some(pos) = siblings.iter().position(|s| *s == id) else {
            return Self::default();
        };
        Self {
            index: u32::try_from(pos + 1).unwrap_or(u32::MAX),
            count: u32::try_from(siblings.len()).unwrap_or(u32::MAX),
            prev_id: pos.checked_sub(1).map(|p| siblings[p]),
            next_id: siblings.get(pos + 1).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn blank_content_is_refused() {
        assert_eq!(MessageContent::parse(""), Err(MessageContentError::Empty));
        assert_eq!(
            MessageContent::parse(" \n\t"),
            Err(MessageContentError::Empty)
        );
    }

    #[test]
    fn content_is_kept_verbatim() {
        assert_eq!(
            MessageContent::parse("  hi\n").map(String::from),
            Ok("  hi\n".into())
        );
    }

    #[test]
    fn content_limit_counts_characters() {
        assert!(MessageContent::parse(&"ü".repeat(100_000)).is_ok());
        assert_eq!(
            MessageContent::parse(&"a".repeat(100_001)),
            Err(MessageContentError::TooLong)
        );
    }

    #[test]
    fn nul_is_refused() {
        assert_eq!(MessageContent::parse("a\0b"), Err(MessageContentError::Nul));
    }

    #[test]
    fn roles_and_statuses_round_trip() {
        for r in [Role::User, Role::Assistant, Role::System] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        for s in [
            MessageStatus::Complete,
            MessageStatus::Streaming,
            MessageStatus::Failed,
            MessageStatus::Cancelled,
        ] {
            assert_eq!(MessageStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(Role::parse("robot"), None);
        assert_eq!(
            serde_json::to_string(&Role::Assistant).unwrap(),
            "\"assistant\""
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_keeps_text(s in "\\PC{0,300}") {
            if let Ok(c) = MessageContent::parse(&s) {
                prop_assert_eq!(c.as_str(), s.as_str());
            }
        }
    }
}
