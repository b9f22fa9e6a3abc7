//! [`RedisLive`]: the domain's `LiveReplies` port on Redis.
//!
//! A reply's text is a string appended by one script (which also publishes the piece on
//! the reply's channel); followers read the string from their offset, then take the
//! published pieces, re-reading the string whenever a piece is missing. Its end, its
//! cancel request and its lease are keys beside it; every key of a finished reply
//! expires after `finished_ttl`, and a reply abandoned without an end after
//! [`ACTIVE_TTL`] of silence.

mod bucket;
mod follow;
mod lease;

use crate::conn::{Redis, RedisFailure};
use crate::hub::Hub;
use crate::scripts;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ports::{
    BucketLimit, CancelWatch, Lease, LiveEnd, LiveError, LiveReplies, LiveResult, LiveStream,
    LiveText, Take,
};
use domain::MessageId;
use futures::FutureExt;
use std::time::Duration;

/// A reply's buffer (and lease) with no append, end or renewal for this long is
/// dropped by Redis: a process that died mid-reply leaves nothing behind for ever.
pub const ACTIVE_TTL: Duration = Duration::from_secs(3600);

/// How often a follower re-reads the buffer when no notification came (a missed one
/// only delays it by this much); a follower whose subscription is not live (the
/// subscriber could not subscribe) re-reads every [`POLL_UNSUBSCRIBED`].
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// How often a follower without a live subscription re-reads the buffer.
pub const POLL_UNSUBSCRIBED: Duration = Duration::from_millis(500);

impl From<RedisFailure> for LiveError {
    fn from(f: RedisFailure) -> Self {
        match f {
            RedisFailure::Unavailable(why) | RedisFailure::Timeout(why) => {
                LiveError::Unavailable(why)
            }
            RedisFailure::Unexpected(why) => LiveError::Other(why),
        }
    }
}

/// Live reply state in Redis, shared by every process on the same Redis and prefix.
#[derive(Clone)]
pub struct RedisLive {
    redis: Redis,
    hub: Hub,
}

impl std::fmt::Debug for RedisLive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLive")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Keys {
    pub(crate) text: String,
    pub(crate) end: String,
    pub(crate) cancel: String,
    pub(crate) lease: String,
    pub(crate) channel: String,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisLive {
    /// The port on `redis` (nothing is connected until the first use).
    pub fn new(redis: Redis) -> Self {
        let hub = Hub::new(redis.clone());
        Self { redis, hub }
    }

    /// The connection handle (for readiness checks).
    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    pub(crate) fn keys(&self, reply: MessageId) -> Keys {
        let base = self.redis.key(&format!("reply:{reply}"));
        Keys {
            text: format!("{base}:text"),
            end: format!("{base}:end"),
            cancel: format!("{base}:cancel"),
            lease: format!("{base}:lease"),
            channel: base,
        }
    }

    pub(crate) fn leases_key(&self) -> String {
        self.redis.key("leases")
    }

    fn retention_ms(&self) -> u64 {
        ms(self.redis.config().finished_ttl)
    }

    /// Reads `{exists, len, text, end}` from `from`.
    pub(crate) async fn read_raw(
        &self,
        reply: MessageId,
        from: u64,
    ) -> LiveResult<Option<LiveText>> {
        let k = self.keys(reply);
        let (exists, len, text, end): (u64, u64, Vec<u8>, String) = self
            .redis
            .run("read", |mut c| async move {
                scripts::READ
                    .key(&k.text)
                    .key(&k.end)
                    .arg(from)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        if exists == 0 {
            return Ok(None);
        }
        if from < len && text.first().is_some_and(|b| (b & 0xC0) == 0x80) {
            return Err(LiveError::InvalidOffset(from));
        }
        let text = String::from_utf8(text)
            .map_err(|_| LiveError::Other("the stored text is not UTF-8".into()))?;
        let end = match end.as_str() {
            "" => None,
            e => Some(
                LiveEnd::parse(e).ok_or_else(|| LiveError::Other(format!("unknown end {e:?}")))?,
            ),
        };
        Ok(Some(LiveText { text, len, end }))
    }
}

#[async_trait]
impl LiveReplies for RedisLive {
    fn is_shared(&self) -> bool {
        true
    }

    async fn append(&self, reply: MessageId, at: u64, text: &str) -> LiveResult<u64> {
        let k = self.keys(reply);
        let ttl = ms(ACTIVE_TTL);
        let (status, len): (i64, u64) = self
            .redis
            .run("append", |mut c| async move {
                scripts::APPEND
                    .key(&k.text)
                    .key(&k.end)
                    .arg(at)
                    .arg(text)
                    .arg(ttl)
                    .arg(&k.channel)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        if status < 0 {
            return Err(LiveError::Gap { len });
        }
        Ok(len)
    }

    async fn finish(&self, reply: MessageId, end: LiveEnd) -> LiveResult<()> {
        let k = self.keys(reply);
        let leases = self.leases_key();
        let keep = self.retention_ms();
        let id = reply.to_string();
        let _: String = self
            .redis
            .run("finish", |mut c| async move {
                scripts::FINISH
                    .key(&k.text)
                    .key(&k.end)
                    .key(&k.lease)
                    .key(&leases)
                    .arg(end.as_str())
                    .arg(keep)
                    .arg(&k.channel)
                    .arg(&id)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(())
    }

    async fn read(&self, reply: MessageId, from: u64) -> LiveResult<Option<LiveText>> {
        self.read_raw(reply, from).await
    }

    async fn follow(&self, reply: MessageId, from: u64) -> LiveResult<LiveStream> {
        follow::follow(self.clone(), reply, from).await
    }

    async fn request_cancel(&self, reply: MessageId) -> LiveResult<()> {
        let k = self.keys(reply);
        let keep = self.retention_ms().max(ms(ACTIVE_TTL));
        let channel = self.redis.key("cancel");
        let id = reply.to_string();
        self.redis
            .run("cancel", |mut c| async move {
                redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(&k.cancel)
                    .arg(1)
                    .arg("PX")
                    .arg(keep)
                    .ignore()
                    .cmd("PUBLISH")
                    .arg(&channel)
                    .arg(&id)
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            })
            .await?;
        Ok(())
    }

    async fn cancel_requested(&self, reply: MessageId) -> LiveResult<bool> {
        let k = self.keys(reply);
        let n: u64 = self
            .redis
            .run("cancel_check", |mut c| async move {
                redis::cmd("EXISTS")
                    .arg(&k.cancel)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(n > 0)
    }

    async fn watch_cancel(&self, reply: MessageId) -> LiveResult<CancelWatch> {
        // Subscribed before the check: a cancel between the two is not missed.
        let mut cancels = self.hub.cancels().await;
        if self.cancel_requested(reply).await? {
            return Ok(futures::future::ready(Ok(())).boxed());
        }
        let this = self.clone();
        let id = reply.to_string();
        Ok(async move {
            loop {
                match cancels.recv().await {
                    Ok(r) if r == id => return Ok(()),
                    // Announcements may have been missed: check the key.
                    Ok(r) if r.is_empty() => {}
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        return Err(LiveError::Unavailable("the subscriber stopped".into()));
                    }
                }
                if this.cancel_requested(reply).await? {
                    return Ok(());
                }
            }
        }
        .boxed())
    }

    async fn take_lease(
        &self,
        reply: MessageId,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> LiveResult<bool> {
        lease::take(self, reply, holder, now, ttl).await
    }

    async fn renew_lease(
        &self,
        reply: MessageId,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> LiveResult<bool> {
        lease::renew(self, reply, holder, now, ttl).await
    }

    async fn release_lease(&self, reply: MessageId, holder: &str) -> LiveResult<()> {
        lease::release(self, reply, holder).await
    }

    async fn lease(&self, reply: MessageId) -> LiveResult<Option<Lease>> {
        lease::get(self, reply).await
    }

    async fn lapsed_leases(&self, now: DateTime<Utc>, limit: usize) -> LiveResult<Vec<MessageId>> {
        lease::lapsed(self, now, limit).await
    }

    async fn take_tokens(
        &self,
        key: &str,
        n: u32,
        limit: BucketLimit,
        now: DateTime<Utc>,
    ) -> LiveResult<Take> {
        bucket::take_tokens(self, key, n, limit, now).await
    }
}

impl RedisLive {
    pub(crate) fn redis_handle(&self) -> &Redis {
        &self.redis
    }

    pub(crate) fn hub(&self) -> &Hub {
        &self.hub
    }
}
