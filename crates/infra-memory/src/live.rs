//! The in-process adapter of the live-reply port: the embedded default and what a
//! single replica uses. Everything is under one lock; followers and cancel watchers
//! are woken through channels. Memory stays bounded: a finished reply (and a cancel
//! request) is forgotten after the retention, an unfinished one idle for an hour, and
//! full token buckets are swept.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::model::MessageId;
use domain::ports::{
    BucketLimit, CancelWatch, Clock, Lease, LiveEnd, LiveError, LiveEvent, LiveReplies, LiveResult,
    LiveStream, LiveText, SystemClock, Take,
};
use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a finished reply's text is kept by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(300);

/// An unfinished reply untouched for this long is forgotten (its process is gone).
const IDLE_UNFINISHED: Duration = Duration::from_secs(3600);

/// Most token buckets tracked; past this, new keys pass unmetered until a sweep.
const MAX_BUCKETS: usize = 100_000;

/// Shortest time between two sweeps.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Reply {
    text: String,
    end: Option<LiveEnd>,
    cancel: bool,
    lease: Option<Lease>,
    followers: Vec<mpsc::UnboundedSender<Result<LiveEvent, LiveError>>>,
    cancel_watchers: Vec<oneshot::Sender<()>>,
    touched: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
}

#[derive(Default)]
struct State {
    replies: HashMap<MessageId, Reply>,
    buckets: HashMap<String, (Bucket, BucketLimit)>,
    last_sweep: Option<DateTime<Utc>>,
}

/// Live reply state held by this process.
pub struct MemoryLive {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    retention: Duration,
}

impl std::fmt::Debug for MemoryLive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLive")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryLive {
    fn default() -> Self {
        Self::new()
    }
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn offset_of(at: u64) -> usize {
    usize::try_from(at).unwrap_or(usize::MAX)
}

impl MemoryLive {
    /// Empty state, on the system clock, keeping finished replies [`DEFAULT_RETENTION`].
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock), DEFAULT_RETENTION)
    }

    /// Empty state on `clock`, keeping finished replies for `retention`.
    pub fn with_clock(clock: Arc<dyn Clock>, retention: Duration) -> Self {
        Self {
            state: Mutex::new(State::default()),
            clock,
            retention,
        }
    }

    /// Replies held now (finished ones included until forgotten).
    pub fn held_replies(&self) -> usize {
        self.lock().replies.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks, forgetting what expired (at most every [`SWEEP_EVERY`]).
    fn locked(&self) -> (std::sync::MutexGuard<'_, State>, DateTime<Utc>) {
        let now = self.clock.now();
        let mut g = self.lock();
        let due = g
            .last_sweep
            .is_none_or(|t| now - t >= chrono_of(SWEEP_EVERY));
        if due {
            let (finished, idle) = (chrono_of(self.retention), chrono_of(IDLE_UNFINISHED));
            g.replies.retain(|_, r| {
                let age = r.touched.map_or(chrono::Duration::zero(), |t| now - t);
                let keep_for = if r.end.is_some() { finished } else { idle };
                age < keep_for
            });
            g.buckets.retain(|_, (b, limit)| !is_full(b, *limit, now));
            g.last_sweep = Some(now);
        }
        (g, now)
    }
}

fn is_full(b: &Bucket, limit: BucketLimit, now: DateTime<Utc>) -> bool {
    refill(b, limit, now) >= f64::from(limit.burst)
}

fn refill(b: &Bucket, limit: BucketLimit, now: DateTime<Utc>) -> f64 {
    let elapsed = (now - b.at).num_microseconds().unwrap_or(i64::MAX).max(0) as f64 / 1e6;
    (b.tokens + elapsed * limit.per_sec).min(f64::from(limit.burst.max(1)))
}

fn text_from(text: &str, from: u64) -> LiveResult<&str> {
    let from = offset_of(from);
    if from >= text.len() {
        return Ok("");
    }
    text.get(from..)
        .ok_or(LiveError::InvalidOffset(from as u64))
}

#[async_trait]
impl LiveReplies for MemoryLive {
    fn is_shared(&self) -> bool {
        false
    }

    async fn append(&self, reply: MessageId, at: u64, text: &str) -> LiveResult<u64> {
        let (mut g, now) = self.locked();
        let r = g.replies.entry(reply).or_default();
        r.touched = Some(now);
        let len = r.text.len() as u64;
        if r.end.is_some() {
            return Ok(len);
        }
        if at > len {
            return Err(LiveError::Gap { len });
        }
        let skip = offset_of(len - at);
        if skip >= text.len() {
            return Ok(len);
        }
        let new = text
            .get(skip..)
            .ok_or(LiveError::InvalidOffset(len))?
            .to_owned();
        r.text.push_str(&new);
        let event = LiveEvent::Delta {
            offset: len,
            text: new,
        };
        r.followers
            .retain(|f| f.unbounded_send(Ok(event.clone())).is_ok());
        Ok(r.text.len() as u64)
    }

    async fn finish(&self, reply: MessageId, end: LiveEnd) -> LiveResult<()> {
        let (mut g, now) = self.locked();
        let r = g.replies.entry(reply).or_default();
        r.touched = Some(now);
        r.lease = None;
        if r.end.is_some() {
            return Ok(());
        }
        r.end = Some(end);
        for f in r.followers.drain(..) {
            let _ = f.unbounded_send(Ok(LiveEvent::End(end)));
        }
        Ok(())
    }

    async fn read(&self, reply: MessageId, from: u64) -> LiveResult<Option<LiveText>> {
        let (g, _) = self.locked();
        let Some(r) = g.replies.get(&reply) else {
            return Ok(None);
        };
        if r.end.is_none() && r.text.is_empty() {
            // Nothing appended yet (only a lease, a cancel or a follower made the entry).
            return Ok(None);
        }
        Ok(Some(LiveText {
            text: text_from(&r.text, from)?.to_owned(),
            len: r.text.len() as u64,
            end: r.end,
        }))
    }

    async fn follow(&self, reply: MessageId, from: u64) -> LiveResult<LiveStream> {
        let (mut g, now) = self.locked();
        let r = g.replies.entry(reply).or_default();
        r.touched.get_or_insert(now);
        let rest = text_from(&r.text, from)?;
        let mut first = Vec::new();
        if !rest.is_empty() {
            first.push(Ok(LiveEvent::Delta {
                offset: from,
                text: rest.to_owned(),
            }));
        }
        if let Some(end) = r.end {
            first.push(Ok(LiveEvent::End(end)));
            return Ok(futures::stream::iter(first).boxed());
        }
        let (tx, rx) = mpsc::unbounded();
        r.followers.push(tx);
        // Appends before `from` (a follower ahead of the text) are cut to what is past it.
        let live = rx.filter_map(move |item| {
            futures::future::ready(match item {
                Ok(LiveEvent::Delta { offset, text }) => {
                    let end = offset + text.len() as u64;
                    if end <= from {
                        None
                    } else if offset >= from {
                        Some(Ok(LiveEvent::Delta { offset, text }))
                    } else {
                        text.get(offset_of(from - offset)..).map(|t| {
                            Ok(LiveEvent::Delta {
                                offset: from,
                                text: t.to_owned(),
                            })
                        })
                    }
                }
                other => Some(other),
            })
        });
        Ok(futures::stream::iter(first).chain(live).boxed())
    }

    async fn request_cancel(&self, reply: MessageId) -> LiveResult<()> {
        let (mut g, now) = self.locked();
        let r = g.replies.entry(reply).or_default();
        r.touched = Some(now);
        r.cancel = true;
        for w in r.cancel_watchers.drain(..) {
            let _ = w.send(());
        }
        Ok(())
    }

    async fn cancel_requested(&self, reply: MessageId) -> LiveResult<bool> {
        let (g, _) = self.locked();
        Ok(g.replies.get(&reply).is_some_and(|r| r.cancel))
    }

    async fn watch_cancel(&self, reply: MessageId) -> LiveResult<CancelWatch> {
        let (mut g, now) = self.locked();
        let r = g.replies.entry(reply).or_default();
        r.touched.get_or_insert(now);
        if r.cancel {
            return Ok(futures::future::ready(Ok(())).boxed());
        }
        let (tx, rx) = oneshot::channel();
        r.cancel_watchers.push(tx);
        Ok(rx
            .map(|r| r.map_err(|_| LiveError::Other("the reply was forgotten".into())))
            .boxed())
    }

    async fn take_lease(
        &self,
        reply: MessageId,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> LiveResult<bool> {
        let (mut g, at) = self.locked();
        let r = g.replies.entry(reply).or_default();
        r.touched = Some(at);
        if let Some(l) = &r.lease {
            if l.holder != holder && l.until >= now {
                return Ok(false);
            }
        }
        r.lease = Some(Lease {
            holder: holder.to_owned(),
            until: now + chrono_of(ttl),
        });
        Ok(true)
    }

    async fn renew_lease(
        &self,
        reply: MessageId,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> LiveResult<bool> {
        let (mut g, at) = self.locked();
        let Some(r) = g.replies.get_mut(&reply) else {
            return Ok(false);
        };
        match &mut r.lease {
            Some(l) if l.holder == holder => {
                l.until = now + chrono_of(ttl);
                r.touched = Some(at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_lease(&self, reply: MessageId, holder: &str) -> LiveResult<()> {
        let (mut g, _) = self.locked();
        if let Some(r) = g.replies.get_mut(&reply) {
            if r.lease.as_ref().is_some_and(|l| l.holder == holder) {
                r.lease = None;
            }
        }
        Ok(())
    }

    async fn lease(&self, reply: MessageId) -> LiveResult<Option<Lease>> {
        let (g, _) = self.locked();
        Ok(g.replies.get(&reply).and_then(|r| r.lease.clone()))
    }

    async fn lapsed_leases(&self, now: DateTime<Utc>, limit: usize) -> LiveResult<Vec<MessageId>> {
        let (g, _) = self.locked();
        let mut lapsed: Vec<(DateTime<Utc>, MessageId)> = g
            .replies
            .iter()
            .filter_map(|(id, r)| r.lease.as_ref().map(|l| (l.until, *id)))
            .filter(|(until, _)| *until < now)
            .collect();
        lapsed.sort();
        Ok(lapsed.into_iter().take(limit).map(|(_, id)| id).collect())
    }

    async fn take_tokens(
        &self,
        key: &str,
        n: u32,
        limit: BucketLimit,
        now: DateTime<Utc>,
    ) -> LiveResult<Take> {
        let (mut g, _) = self.locked();
        if !g.buckets.contains_key(key) && g.buckets.len() >= MAX_BUCKETS {
            return Ok(Take::Allowed);
        }
        let burst = f64::from(limit.burst.max(1));
        let (bucket, stored_limit) = g.buckets.entry(key.to_owned()).or_insert((
            Bucket {
                tokens: burst,
                at: now,
            },
            limit,
        ));
        *stored_limit = limit;
        let tokens = refill(bucket, limit, now);
        let want = f64::from(n);
        if tokens >= want {
            *bucket = Bucket {
                tokens: tokens - want,
                at: now.max(bucket.at),
            };
            Ok(Take::Allowed)
        } else {
            *bucket = Bucket {
                tokens,
                at: now.max(bucket.at),
            };
            let wait = (want - tokens) / limit.per_sec;
            Ok(Take::Limited {
                retry_after: Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Under(Arc<MemoryLive>);

    impl domain::testing::LiveUnderTest for Under {
        fn live(&self) -> &dyn LiveReplies {
            self.0.as_ref()
        }
        fn peer(&self) -> &dyn LiveReplies {
            self.0.as_ref()
        }
    }

    domain::live_contract_tests!(async { Under(Arc::new(MemoryLive::new())) });

    #[derive(Debug)]
    struct At(Mutex<DateTime<Utc>>);
    impl Clock for At {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().unwrap()
        }
    }

    #[tokio::test]
    async fn finished_replies_are_forgotten_after_the_retention() {
        let start = Utc::now();
        let clock = Arc::new(At(Mutex::new(start)));
        let live = MemoryLive::with_clock(clock.clone(), Duration::from_secs(60));
        let (a, b) = (MessageId::new(), MessageId::new());
        live.append(a, 0, "done").await.unwrap();
        live.finish(a, LiveEnd::Complete).await.unwrap();
        live.append(b, 0, "going").await.unwrap();
        *clock.0.lock().unwrap() = start + chrono::Duration::seconds(61);
        assert!(
            live.read(a, 0).await.unwrap().is_none(),
            "finished: forgotten"
        );
        assert_eq!(live.read(b, 0).await.unwrap().unwrap().text, "going");
        assert_eq!(live.held_replies(), 1);
    }
}
