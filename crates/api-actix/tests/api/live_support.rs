//! Test doubles for live replies: a provider that ticks words until told to stop (and
//! tells when its stream was closed), and live state shared by two apps in one process
//! (standing for Redis), which can be made unreachable for one of them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::model::MessageId;
use domain::ports::*;
use futures::StreamExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Streams `words` (cycling, with multi-byte ones), one chunk every `every`, `count`
/// chunks in all; `closed` is set when the stream is dropped before its end.
#[derive(Clone)]
pub struct Ticker {
    pub every: Duration,
    pub count: usize,
    pub closed: Arc<AtomicBool>,
    pub started: Arc<AtomicUsize>,
    pub words: Vec<&'static str>,
}

impl Ticker {
    pub fn new(every_ms: u64, count: usize) -> Self {
        Self {
            every: Duration::from_millis(every_ms),
            count,
            closed: Arc::default(),
            started: Arc::default(),
            words: vec![
                "Héllo ",
                "wörld, ",
                "🦀 ",
                "a",
                "bc ",
                "naïve ",
                "\u{0}nul ",
                "x",
            ],
        }
    }

    /// The whole text the ticker streams (U+0000 removed, as the service stores it).
    pub fn text(&self) -> String {
        (0..self.count)
            .map(|i| self.words[i % self.words.len()].replace('\0', ""))
            .collect()
    }
}

struct Closed(Arc<AtomicBool>, Arc<AtomicBool>);

impl Drop for Closed {
    fn drop(&mut self) {
        if !self.1.load(Ordering::SeqCst) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

#[async_trait]
impl LlmClient for Ticker {
    async fn complete(&self, _: LlmRequest) -> Result<LlmReply, LlmError> {
        Ok(LlmReply {
            content: self.text(),
            model: "ticker".into(),
            usage: None,
            finish_reason: Some("stop".into()),
        })
    }

    async fn stream(&self, _: LlmRequest) -> Result<LlmStream, LlmError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let me = self.clone();
        let guard = Closed(self.closed.clone(), Arc::default());
        let s = futures::stream::unfold((0usize, guard), move |(i, guard)| {
            let me = me.clone();
            async move {
                if i >= me.count {
                    guard.1.store(true, Ordering::SeqCst);
                    return None;
                }
                tokio::time::sleep(me.every).await;
                let word = me.words[i % me.words.len()].to_owned();
                Some((Ok(LlmChunk::Delta(word)), (i + 1, guard)))
            }
        });
        Ok(s.boxed())
    }
}

/// Live state shared by several apps (as Redis would be); `down` makes it unreachable
/// for the apps holding this handle.
#[derive(Clone)]
pub struct SharedLive {
    pub inner: Arc<infra_memory::MemoryLive>,
    pub down: Arc<AtomicBool>,
}

impl SharedLive {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(infra_memory::MemoryLive::new()),
            down: Arc::default(),
        }
    }

    /// Another handle on the same state, with its own `down` switch.
    pub fn handle(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            down: Arc::default(),
        }
    }

    fn up(&self) -> LiveResult<&infra_memory::MemoryLive> {
        if self.down.load(Ordering::SeqCst) {
            Err(LiveError::Unavailable("switched off by the test".into()))
        } else {
            Ok(&self.inner)
        }
    }
}

#[async_trait]
impl LiveReplies for SharedLive {
    fn is_shared(&self) -> bool {
        true
    }
    async fn append(&self, reply: MessageId, at: u64, text: &str) -> LiveResult<u64> {
        self.up()?.append(reply, at, text).await
    }
    async fn finish(&self, reply: MessageId, end: LiveEnd) -> LiveResult<()> {
        self.up()?.finish(reply, end).await
    }
    async fn read(&self, reply: MessageId, from: u64) -> LiveResult<Option<LiveText>> {
        self.up()?.read(reply, from).await
    }
    async fn follow(&self, reply: MessageId, from: u64) -> LiveResult<LiveStream> {
        self.up()?.follow(reply, from).await
    }
    async fn request_cancel(&self, reply: MessageId) -> LiveResult<()> {
        self.up()?.request_cancel(reply).await
    }
    async fn cancel_requested(&self, reply: MessageId) -> LiveResult<bool> {
        self.up()?.cancel_requested(reply).await
    }
    async fn watch_cancel(&self, reply: MessageId) -> LiveResult<CancelWatch> {
        self.up()?.watch_cancel(reply).await
    }
    async fn take_lease(
        &self,
        reply: MessageId,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> LiveResult<bool> {
        self.up()?.take_lease(reply, holder, now, ttl).await
    }
    async fn renew_lease(
        &self,
        reply: MessageId,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> LiveResult<bool> {
        self.up()?.renew_lease(reply, holder, now, ttl).await
    }
    async fn release_lease(&self, reply: MessageId, holder: &str) -> LiveResult<()> {
        self.up()?.release_lease(reply, holder).await
    }
    async fn lease(&self, reply: MessageId) -> LiveResult<Option<Lease>> {
        self.up()?.lease(reply).await
    }
    async fn lapsed_leases(&self, now: DateTime<Utc>, limit: usize) -> LiveResult<Vec<MessageId>> {
        self.up()?.lapsed_leases(now, limit).await
    }
    async fn take_tokens(
        &self,
        key: &str,
        n: u32,
        limit: BucketLimit,
        now: DateTime<Utc>,
    ) -> LiveResult<Take> {
        self.up()?.take_tokens(key, n, limit, now).await
    }
}
