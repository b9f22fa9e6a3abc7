//! Live reply state on the generation side: the generating process publishes the
//! reply's text to the [`LiveReplies`] port (coalesced), holds and renews the reply's
//! lease, and watches for cancel requests from any process. When the live backend is
//! unavailable the generation goes on for its own client and catches up later (the
//! text is appended from the last offset the backend holds, so nothing is doubled).

use crate::model::MessageId;
use crate::ports::{CancelWatch, Clock, LiveEnd, LiveError, LiveReplies, Sleeper};
use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, Fuse, FutureExt};
use std::sync::Arc;
use std::time::Duration;

/// Settings of live reply state.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveConfig {
    /// How long a generating process's lease lasts unless renewed. A reply whose lease
    /// lapsed (its process died) is marked failed by the next process that notices.
    pub lease_ttl: Duration,
    /// How often the generating process renews its lease.
    pub renew_every: Duration,
    /// Longest time text waits before it is appended to the live state.
    pub flush_every: Duration,
    /// Most provider chunks coalesced into one append.
    pub flush_chunks: u32,
    /// After the backend failed, how long the generation stops trying it.
    pub backoff: Duration,
    /// How long a cancel waits for the generating process to store the cancelled reply
    /// before cancelling in storage itself.
    pub cancel_wait: Duration,
    /// How often a follower re-reads the stored reply (in case the live state missed
    /// its end, such as when the backend was down).
    pub follow_check_every: Duration,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            flush_every: Duration::from_millis(10),
            flush_chunks: 16,
            backoff: Duration::from_secs(1),
            cancel_wait: Duration::from_secs(5),
            follow_check_every: Duration::from_secs(2),
        }
    }
}

pub(crate) fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn std_of(d: chrono::Duration) -> Duration {
    d.to_std().unwrap_or(Duration::ZERO)
}

/// The live side of one generation.
pub(crate) struct LiveWriter {
    live: Option<Arc<dyn LiveReplies>>,
    clock: Arc<dyn Clock>,
    sleeper: Option<Arc<dyn Sleeper>>,
    config: LiveConfig,
    reply: MessageId,
    holder: String,
    /// Bytes of the text the backend is known to hold.
    published: usize,
    pending_chunks: u32,
    pending_since: Option<DateTime<Utc>>,
    renewed_at: DateTime<Utc>,
    down_until: Option<DateTime<Utc>>,
    /// The cancel watch failed: look for a request at each renewal instead.
    watch_failed: bool,
}

/// Why the generation should stop, from the live side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LiveStop {
    /// A cancel was requested (possibly by another process).
    Cancelled,
    /// Another process took the reply over (it found the lease lapsed).
    LeaseLost,
}

impl LiveWriter {
    /// Takes the lease; returns the writer and the cancel watch (never resolving
    /// without live state).
    pub(crate) async fn start(
        live: Option<Arc<dyn LiveReplies>>,
        clock: Arc<dyn Clock>,
        sleeper: Option<Arc<dyn Sleeper>>,
        config: LiveConfig,
        reply: MessageId,
        holder: String,
    ) -> (Self, Fuse<CancelWatch>) {
        let now = clock.now();
        let mut w = Self {
            live,
            clock,
            sleeper,
            config,
            reply,
            holder,
            published: 0,
            pending_chunks: 0,
            pending_since: None,
            renewed_at: now,
            down_until: None,
            watch_failed: false,
        };
        let Some(live) = w.live.clone() else {
            return (w, Fuse::terminated());
        };
        match live
            .take_lease(reply, &w.holder, now, w.config.lease_ttl)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(message_id = %reply, "the reply's lease is held by another process")
            }
            Err(e) => w.failed("take the lease", &e),
        }
        let watch = w.watch().await;
        (w, watch)
    }

    async fn watch(&mut self) -> Fuse<CancelWatch> {
        let Some(live) = self.live.clone() else {
            return Fuse::terminated();
        };
        match live.watch_cancel(self.reply).await {
            Ok(w) => {
                self.watch_failed = false;
                w.fuse()
            }
            Err(e) => {
                self.watch_failed = true;
                self.failed("watch for a cancel", &e);
                Fuse::terminated()
            }
        }
    }

    /// The cancel watch failed: the generation falls back to polling.
    pub(crate) fn watch_lost(&mut self, e: &LiveError) {
        self.watch_failed = true;
        self.failed("watch for a cancel", e);
    }

    fn failed(&mut self, what: &str, e: &LiveError) {
        tracing::warn!(error = %e, message_id = %self.reply, "live reply state: cannot {what}; going on without it");
        if matches!(e, LiveError::Unavailable(_)) {
            self.down_until = Some(self.clock.now() + chrono_of(self.config.backoff));
        }
    }

    fn is_down(&self, now: DateTime<Utc>) -> bool {
        self.down_until.is_some_and(|t| now < t)
    }

    /// Text was added to the reply (`content` is all of it).
    pub(crate) fn pushed(&mut self) {
        self.pending_chunks += 1;
        self.pending_since.get_or_insert_with(|| self.clock.now());
    }

    /// A timer to wake the generation for its next flush or renewal, if it needs one.
    pub(crate) fn timer(&self) -> Option<BoxFuture<'static, ()>> {
        self.live.as_ref()?;
        let sleeper = self.sleeper.clone()?;
        let now = self.clock.now();
        let renew_at = self.renewed_at + chrono_of(self.config.renew_every);
        let mut at = renew_at;
        if let Some(since) = self.pending_since {
            at = at.min(since + chrono_of(self.config.flush_every));
        }
        if let Some(down) = self.down_until {
            at = at.max(down.min(renew_at));
        }
        let wait = std_of(at - now);
        Some(async move { sleeper.sleep(wait).await }.boxed())
    }

    /// Does what is due: appends the pending text, renews the lease (looking for a
    /// cancel when the watch failed). Returns why to stop, if the live side says so.
    pub(crate) async fn tick(
        &mut self,
        content: &str,
        watch: &mut Fuse<CancelWatch>,
    ) -> Option<LiveStop> {
        let live = self.live.clone()?;
        let now = self.clock.now();
        if self.is_down(now) {
            return None;
        }
        let flush_due = self.pending_since.is_some_and(|since| {
            self.pending_chunks >= self.config.flush_chunks
                || now - since >= chrono_of(self.config.flush_every)
        });
        if flush_due {
            self.flush(live.as_ref(), content).await;
        }
        if now - self.renewed_at >= chrono_of(self.config.renew_every) && !self.is_down(now) {
            match live
                .renew_lease(self.reply, &self.holder, now, self.config.lease_ttl)
                .await
            {
                Ok(true) => self.renewed_at = now,
                // Not held any more: the backend forgot it (restarted), or another
                // process found it lapsed and ended the reply.
                Ok(false) if self.ended_elsewhere(live.as_ref()).await => {
                    return Some(LiveStop::LeaseLost);
                }
                Ok(false) => match live
                    .take_lease(self.reply, &self.holder, now, self.config.lease_ttl)
                    .await
                {
                    Ok(true) => self.renewed_at = now,
                    Ok(false) => {
                        return Some(LiveStop::LeaseLost);
                    }
                    Err(e) => self.failed("take the lease again", &e),
                },
                Err(e) => {
                    self.renewed_at = now;
                    self.failed("renew the lease", &e);
                }
            }
            if self.watch_failed {
                if let Ok(true) = live.cancel_requested(self.reply).await {
                    return Some(LiveStop::Cancelled);
                }
                *watch = self.watch().await;
            }
        }
        None
    }

    async fn ended_elsewhere(&self, live: &dyn LiveReplies) -> bool {
        matches!(live.read(self.reply, u64::MAX).await, Ok(Some(t)) if t.end.is_some())
    }

    async fn flush(&mut self, live: &dyn LiveReplies, content: &str) {
        if self.published >= content.len() {
            self.pending_chunks = 0;
            self.pending_since = None;
            return;
        }
        let mut at = self.published;
        for _ in 0..2 {
            match live.append(self.reply, at as u64, &content[at..]).await {
                Ok(len) => {
                    self.published = usize::try_from(len).unwrap_or(usize::MAX);
                    self.pending_chunks = 0;
                    self.pending_since = None;
                    return;
                }
                // The backend lost part of the text (restarted): append again from
                // what it holds.
                Err(LiveError::Gap { len })
                    if (len as usize) < at && content.is_char_boundary(len as usize) =>
                {
                    at = len as usize;
                }
                Err(e) => {
                    self.failed("append text", &e);
                    return;
                }
            }
        }
    }

    /// Appends whatever is pending (before the reply is stored).
    pub(crate) async fn flush_all(&mut self, content: &str) {
        if let Some(live) = self.live.clone() {
            self.down_until = None;
            self.flush(live.as_ref(), content).await;
        }
    }

    /// Records the stored end (waking followers and releasing the lease).
    pub(crate) async fn finish(&mut self, end: LiveEnd) {
        if let Some(live) = self.live.clone() {
            if let Err(e) = live.finish(self.reply, end).await {
                self.failed("record the end", &e);
            }
        }
    }
}
