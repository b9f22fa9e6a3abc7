//! The LLM port: one chat completion, whole or streamed.

use crate::model::{Role, Usage};
use async_trait::async_trait;
use futures::stream::BoxStream;
use std::time::Duration;

/// One message of the prompt sent to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptMessage {
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
}

/// A chat completion request.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRequest {
    /// The model to use.
    pub model: String,
    /// System prompt first, then history oldest first, then the new user message.
    pub messages: Vec<PromptMessage>,
    /// Sampling temperature, if the chat sets one.
    pub temperature: Option<f64>,
    /// Largest reply in tokens, if the chat sets one.
    pub max_tokens: Option<u32>,
    /// The request id to pass on to the provider, for tracing.
    pub request_id: Option<String>,
}

/// A whole reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmReply {
    /// The text.
    pub content: String,
    /// The model that answered, as the provider names it.
    pub model: String,
    /// Tokens used, when reported.
    pub usage: Option<Usage>,
    /// Why generation stopped (`stop`, `length`, …), when reported.
    pub finish_reason: Option<String>,
}

/// One piece of a streamed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LlmChunk {
    /// More text.
    Delta(String),
    /// Token usage (usually near the end).
    Usage(Usage),
    /// The model that is answering, as the provider names it.
    Model(String),
    /// Why generation stopped.
    Finish(String),
}

/// A streamed reply: chunks until the stream ends; an `Err` item ends it early.
pub type LlmStream = BoxStream<'static, Result<LlmChunk, LlmError>>;

/// Which time limit ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// Connecting to the provider.
    Connect,
    /// Waiting for the first token.
    FirstToken,
    /// The whole reply (or a stall between tokens).
    Total,
}

/// How a provider call failed, classified by what happens next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The provider throttled us (429) and retries ran out.
    #[error("the LLM provider is rate limiting requests")]
    RateLimited {
        /// How long the provider asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The provider refused our credentials (401/403).
    #[error("the LLM provider refused the service's credentials")]
    Unauthorized,
    /// The provider refused the request itself (400/404/413/422), such as a context that is too long.
    #[error("the LLM provider rejected the request: {0}")]
    BadRequest(String),
    /// The provider failed (5xx) or could not be reached, and retries ran out.
    #[error("the LLM provider failed{}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Upstream {
        /// The HTTP status, if one was received.
        status: Option<u16>,
    },
    /// A time limit ran out.
    #[error("the LLM provider timed out ({0:?})")]
    Timeout(TimeoutKind),
    /// The stream broke or carried something unreadable after it started.
    #[error("the LLM reply stream broke: {0}")]
    Stream(String),
}

/// A chat-completions provider.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LlmClient: Send + Sync {
    /// Generates a whole reply.
    async fn complete(&self, request: LlmRequest) -> Result<LlmReply, LlmError>;
    /// Starts a streamed reply. Failing before the first chunk is an `Err` here;
    /// failing later is an `Err` item of the stream. Dropping the stream closes
    /// the upstream request.
    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, LlmError>;
}
