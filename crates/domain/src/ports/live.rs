//! The live-reply port: the state of replies while they are generated, shared by
//! every process that serves the API (in-process when there is one; Redis when there
//! are several).
//!
//! - **Text**: the generating process appends a reply's text as it arrives (coalesced:
//!   every few milliseconds or chunks), at a byte offset, so a retried append is never
//!   doubled. Anyone reads it from a byte offset, or follows it live: the text from an
//!   offset, then each piece as it is appended, then how the reply ended.
//! - **Cancel**: anyone requests that a reply stop; the generating process watches
//!   for the request.
//! - **Lease**: the generating process holds a lease on its reply and renews it; a
//!   reply whose lease lapsed belongs to a dead process.
//! - **Token buckets**: an atomic take of N tokens, allowed or refused with how long to
//!   wait.
//!
//! Offsets are byte offsets into the reply's UTF-8 text. Times are given by the caller
//! (its [`Clock`](super::Clock)), so every adapter behaves the same under a test clock.
//! A finished reply's text and a cancel request are kept for a while (minutes, the
//! adapter's setting), then forgotten: the stored message is the durable record.

use crate::model::MessageId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use std::time::Duration;

/// How a reply ended, as live state knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LiveEnd {
    /// Generated to the end and stored `complete`.
    Complete,
    /// Stored `failed` (the provider failed, or the generating process died).
    Failed,
    /// Stored `cancelled`.
    Cancelled,
}

impl LiveEnd {
    /// The name used in storage backends (`complete`, `failed`, `cancelled`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// The end of that name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "complete" => Some(Self::Complete),
            "failed" => Some(Self::Failed),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// A reply's text read from an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveText {
    /// The text from the offset read (empty when the offset is at or past the end).
    pub text: String,
    /// The length in bytes of the whole text so far.
    pub len: u64,
    /// How the reply ended, once it has.
    pub end: Option<LiveEnd>,
}

/// What following a reply yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// Text starting at byte `offset` of the reply. Deltas are contiguous: each one
    /// starts where the previous one (or the offset followed from) ended.
    Delta {
        /// Where `text` starts in the reply.
        offset: u64,
        /// The text (never empty).
        text: String,
    },
    /// The reply ended; the stream ends after this.
    End(LiveEnd),
}

impl LiveEvent {
    /// Where the text received ends after this event, for a delta.
    pub fn end_offset(&self) -> Option<u64> {
        match self {
            Self::Delta { offset, text } => Some(offset + text.len() as u64),
            Self::End(_) => None,
        }
    }
}

/// A followed reply: deltas, then [`LiveEvent::End`]. An `Err` item (the backend went
/// away) ends it early.
pub type LiveStream = BoxStream<'static, Result<LiveEvent, LiveError>>;

/// Resolves with `Ok(())` once a cancel of the reply is requested (at once if it
/// already was); with `Err` if the adapter lost the means to tell (watch again).
pub type CancelWatch = BoxFuture<'static, Result<(), LiveError>>;

/// Who holds a reply's lease, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The holder, as it named itself (a process instance id).
    pub holder: String,
    /// When it lapses unless renewed.
    pub until: DateTime<Utc>,
}

/// A token bucket's size: `per_sec` tokens come back every second, up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketLimit {
    /// Tokens refilled per second (positive).
    pub per_sec: f64,
    /// Most tokens held (at least one); a new bucket is full.
    pub burst: u32,
}

/// The answer of a take from a token bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Take {
    /// The tokens were taken.
    Allowed,
    /// Not enough tokens: none were taken; enough will be there after `retry_after`.
    Limited {
        /// How long until the take would succeed.
        retry_after: Duration,
    },
}

/// How a live-state operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveError {
    /// The backend cannot be reached (or timed out): callers degrade (the generating
    /// process goes on without shared state; cross-process features answer 503).
    #[error("live reply state is unavailable: {0}")]
    Unavailable(String),
    /// An append starts past the end of the text held: the backend holds `len` bytes
    /// (it may have lost the buffer); append again from `len`.
    #[error("append past the end of the live text (it holds {len} bytes)")]
    Gap {
        /// The length of the text held.
        len: u64,
    },
    /// The offset is inside a UTF-8 character of the text.
    #[error("offset {0} is not on a character boundary of the reply")]
    InvalidOffset(u64),
    /// Anything else (an unexpected answer of the backend).
    #[error("live reply state failed: {0}")]
    Other(String),
}

/// What live-state operations return.
pub type LiveResult<T> = Result<T, LiveError>;

/// Live state of replies being generated. See the [module docs](self).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LiveReplies: Send + Sync {
    /// Whether the state is shared with other processes (Redis) rather than held by
    /// this one: only then can a lease say that another process died.
    fn is_shared(&self) -> bool;

    /// Appends `text` at byte offset `at` of the reply's text and returns the new
    /// length. The part of `text` already held (a retried append) is not appended
    /// again: with `len` bytes held and `at <= len <= at + text.len()`, only
    /// `text[len - at..]` is. `at > len` is [`LiveError::Gap`]. Once the reply is
    /// finished its text no longer changes (the append returns the length held).
    /// Appending to an unknown reply starts its text.
    async fn append(&self, reply: MessageId, at: u64, text: &str) -> LiveResult<u64>;

    /// Records how the reply ended, wakes its followers and releases its lease; the
    /// text is kept for the adapter's retention, then forgotten. The first end
    /// recorded stays.
    async fn finish(&self, reply: MessageId, end: LiveEnd) -> LiveResult<()>;

    /// The reply's text from byte `from`, its length and its end; `None` for a reply
    /// this state does not know (never appended to, or forgotten).
    /// [`LiveError::InvalidOffset`] when `from` splits a character.
    async fn read(&self, reply: MessageId, from: u64) -> LiveResult<Option<LiveText>>;

    /// Follows the reply from byte `from`: the text held past `from` (in one or more
    /// deltas), then each append as it happens, then [`LiveEvent::End`]. Following a
    /// reply not known yet waits for its first append. [`LiveError::InvalidOffset`]
    /// when `from` splits a character of the text held.
    async fn follow(&self, reply: MessageId, from: u64) -> LiveResult<LiveStream>;

    /// Asks the generating process (wherever it runs) to stop the reply. Kept for the
    /// adapter's retention; harmless for a reply that already ended.
    async fn request_cancel(&self, reply: MessageId) -> LiveResult<()>;

    /// Whether a cancel of the reply was requested.
    async fn cancel_requested(&self, reply: MessageId) -> LiveResult<bool>;

    /// Watches for a cancel request of the reply (see [`CancelWatch`]).
    async fn watch_cancel(&self, reply: MessageId) -> LiveResult<CancelWatch>;

    /// Takes the reply's lease for `holder` until `now + ttl`: `true` when it was free,
    /// lapsed, or already `holder`'s; `false` when another holder has it.
    async fn take_lease(
        &self,
        reply: MessageId,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> LiveResult<bool>;

    /// Extends `holder`'s lease to `now + ttl` (even if it lapsed meanwhile): `false`
    /// when `holder` does not hold it (released, finished, or taken over).
    async fn renew_lease(
        &self,
        reply: MessageId,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> LiveResult<bool>;

    /// Gives up `holder`'s lease (nothing happens when `holder` does not hold it).
    async fn release_lease(&self, reply: MessageId, holder: &str) -> LiveResult<()>;

    /// The reply's lease, lapsed or not, if anyone holds it.
    async fn lease(&self, reply: MessageId) -> LiveResult<Option<Lease>>;

    /// Replies whose lease lapsed before `now` (and was neither renewed, released nor
    /// finished), soonest lapsed first, at most `limit`.
    async fn lapsed_leases(&self, now: DateTime<Utc>, limit: usize) -> LiveResult<Vec<MessageId>>;

    /// Takes `n` tokens (`1 <= n <= limit.burst`) from the bucket `key` at `now`,
    /// atomically: all of them or none. Buckets untouched long enough to be full again
    /// may be forgotten (a forgotten bucket is full).
    async fn take_tokens(
        &self,
        key: &str,
        n: u32,
        limit: BucketLimit,
        now: DateTime<Utc>,
    ) -> LiveResult<Take>;
}
