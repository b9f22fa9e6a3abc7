//! Idempotent sends: the client's key, and the record that ties it to the turn it started.

use super::ids::{ChatId, MessageId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdempotencyKey(String);

/// Why an idempotency key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Idempotency-Key must be 1-255 visible ASCII characters")]
pub struct IdempotencyKeyError;

impl IdempotencyKey {
    /// Longest key.
    pub const MAX_LEN: usize = 255;

    /// Checks a key.
    pub fn parse(s: &str) -> Result<Self, IdempotencyKeyError> {
        if s.is_empty() || s.len() > Self::MAX_LEN || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdempotencyKeyError);
        }
        Ok(Self(s.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A send made with an idempotency key: what a retry with the same key gets back.
/// Kept for [`IdempotentSend::TTL_HOURS`] hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotentSend {
    /// The sender.
    pub user: UserId,
    /// The key.
    pub key: IdempotencyKey,
    /// Hash of the request (chat and content): the same key with another request is refused.
    pub fingerprint: String,
    /// The chat sent to.
    pub chat_id: ChatId,
    /// The stored user message.
    pub message_id: MessageId,
    /// The reply it started.
    pub reply_id: MessageId,
    /// When the send was made.
    pub created_at: DateTime<Utc>,
}

impl IdempotentSend {
    /// How long a key is remembered.
    pub const TTL_HOURS: i64 = 24;

    /// The fingerprint of a send: SHA-256 of the chat id and the content.
    pub fn fingerprint(chat_id: ChatId, content: &str) -> String {
        let mut h = Sha256::new();
        h.update(chat_id.to_string().as_bytes());
        h.update(b"\n");
        h.update(content.as_bytes());
        hex::encode(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(IdempotencyKey::parse("abc-123_XYZ").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse("ü").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }

    #[test]
    fn fingerprint_depends_on_chat_and_content() {
        let c = ChatId::new();
        assert_eq!(
            IdempotentSend::fingerprint(c, "a"),
            IdempotentSend::fingerprint(c, "a")
        );
        assert_ne!(
            IdempotentSend::fingerprint(c, "a"),
            IdempotentSend::fingerprint(c, "b")
        );
        assert_ne!(
            IdempotentSend::fingerprint(c, "a"),
            IdempotentSend::fingerprint(ChatId::new(), "a")
        );
    }
}
