//! Error enums of the service operations. Each names the business outcomes a caller
//! must handle, plus `Unavailable` (storage down: retry later) and `Unknown` (a bug).

use crate::model::{Message, ModelChoiceError};
use crate::ports::{LlmError, StoreError};
use std::time::Duration;

/// Failure of a chat operation (create, get, update, delete, list, search).
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// No such chat for this user (a chat of another user is reported the same way).
    #[error("chat not found")]
    NotFound,
    /// The settings name a model that is not offered, or a `maxTokens` above its ceiling.
    #[error(transparent)]
    InvalidSettings(ModelChoiceError),
    /// Storage cannot be reached.
    #[error("storage unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unknown(anyhow::Error),
}

/// Failure of a message operation (get, list, edit, delete).
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// No such message or chat for this user.
    #[error("message not found")]
    NotFound,
    /// A reply is being generated in the chat; try again shortly.
    #[error("a reply is being generated in this chat")]
    ChatBusy {
        /// When to try again.
        retry_after: Duration,
    },
    /// Storage cannot be reached.
    #[error("storage unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unknown(anyhow::Error),
}

/// Failure of a send or a regenerate.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No such chat (or message, for regenerate) for this user.
    #[error("not found")]
    NotFound,
    /// The chat's model is not (or no longer) offered, or no model is available at all;
    /// nothing was stored.
    #[error(transparent)]
    Model(ModelChoiceError),
    /// A reply is being generated in the chat; nothing was stored.
    #[error("a reply is being generated in this chat")]
    ChatBusy {
        /// When to try again.
        retry_after: Duration,
    },
    /// The user's token quota is spent; nothing was stored and the provider was not called.
    #[error(transparent)]
    QuotaExceeded(super::QuotaExceeded),
    /// The idempotency key was used before with a different request.
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyMismatch,
    /// Regenerate was asked of a message that is not an assistant reply to a user message.
    #[error("only an assistant reply that answers a user message can be regenerated")]
    NotAReply,
    /// The provider failed; the user's message is stored and the reply is stored as `failed`.
    #[error("{error}")]
    Llm {
        /// What the provider did.
        error: LlmError,
        /// The stored, failed reply.
        reply: Box<Message>,
    },
    /// Storage cannot be reached.
    #[error("storage unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unknown(anyhow::Error),
}

/// Failure of a cancel.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// No such message for this user.
    #[error("message not found")]
    NotFound,
    /// The message is not a reply being generated.
    #[error("the message is not being generated")]
    NotStreaming,
    /// Storage cannot be reached.
    #[error("storage unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unknown(anyhow::Error),
}

/// How long a client is asked to wait when a chat is busy.
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

macro_rules! from_store {
    ($t:ident, busy => $busy:expr) => {
        impl From<StoreError> for $t {
            fn from(e: StoreError) -> Self {
                match e {
                    StoreError::NotFound => $t::NotFound,
                    StoreError::ChatBusy => $busy,
                    StoreError::Unavailable(e) => $t::Unavailable(e),
                    StoreError::Conflict => {
                        $t::Unknown(anyhow::anyhow!("unresolved write conflict"))
                    }
                    StoreError::Unknown(e) => $t::Unknown(e),
                }
            }
        }
    };
}

from_store!(ChatError, busy => ChatError::Unknown(anyhow::anyhow!("unexpected busy chat")));
from_store!(MessageError, busy => MessageError::ChatBusy { retry_after: BUSY_RETRY_AFTER });
from_store!(SendError, busy => SendError::ChatBusy { retry_after: BUSY_RETRY_AFTER });
from_store!(CancelError, busy => CancelError::NotStreaming);
