//! The subscriber: one RESP3 connection per process, subscribed to the channels of the
//! replies followed here and to the cancel channel, fanning notifications out to local
//! followers. Notifications are hints: followers re-read the stored buffer when one is
//! missing (a gap, a lagged receiver, a reconnection), and poll it now and then, so a
//! lost message only delays them. Cancel watchers re-check the cancel key whenever the
//! subscriber (re)subscribes or loses its connection.

use crate::conn::Redis;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, PushKind, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// What a reply's channel says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Note {
    /// Text appended at `offset`.
    Delta { offset: u64, text: String },
    /// The reply ended (named as stored).
    End(String),
    /// Messages may have been missed (reconnection): re-read.
    Resync,
}

impl Note {
    fn parse(payload: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(payload).ok()?;
        if let Some(rest) = s.strip_prefix('d') {
            let (offset, text) = rest.split_once(':')?;
            return Some(Self::Delta {
                offset: offset.parse().ok()?,
                text: text.to_owned(),
            });
        }
        s.strip_prefix('e').map(|e| Self::End(e.to_owned()))
    }
}

const NOTE_BUFFER: usize = 256;
const RECONNECT_BACKOFF: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Channels {
    replies: HashMap<String, (broadcast::Sender<Note>, usize)>,
}

struct Inner {
    redis: Redis,
    cancel_channel: String,
    channels: Mutex<Channels>,
    cancels: broadcast::Sender<String>,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    last_failed: Mutex<Option<Instant>>,
}

/// The process's subscriber, cheap to clone.
#[derive(Clone)]
pub(crate) struct Hub {
    inner: Arc<Inner>,
}

/// A follower's registration: notes of one reply's channel; unsubscribes when dropped.
pub(crate) struct Subscription {
    pub(crate) notes: broadcast::Receiver<Note>,
    channel: String,
    hub: Weak<Inner>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let Some(inner) = self.hub.upgrade() else {
            return;
        };
        let last = {
            let Ok(mut ch) = inner.channels.lock() else {
                return;
            };
            match ch.replies.get_mut(&self.channel) {
                Some((_, n)) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    ch.replies.remove(&self.channel);
                    true
                }
                None => false,
            }
        };
        if last {
            let (hub, channel) = (Hub { inner }, self.channel.clone());
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { hub.unsubscribe(&channel).await });
            }
        }
    }
}

impl Hub {
    pub(crate) fn new(redis: Redis) -> Self {
        let cancel_channel = redis.key("cancel");
        Self {
            inner: Arc::new(Inner {
                redis,
                cancel_channel,
                channels: Mutex::new(Channels::default()),
                cancels: broadcast::channel(NOTE_BUFFER).0,
                conn: tokio::sync::Mutex::new(None),
                last_failed: Mutex::new(None),
            }),
        }
    }

    /// Reply ids whose cancel was announced from now on; an empty id means "announcements
    /// may have been missed (the subscriber reconnected): check again".
    pub(crate) async fn cancels(&self) -> broadcast::Receiver<String> {
        let rx = self.inner.cancels.subscribe();
        let _ = self.connection().await;
        rx
    }

    /// Subscribes to `channel` (a reply's); the subscription is live once this returns
    /// `true` (`false`: not subscribed in Redis now, so the follower must poll).
    pub(crate) async fn subscribe(&self, channel: &str) -> (Subscription, bool) {
        let (rx, first) = {
            let mut ch = match self.inner.channels.lock() {
                Ok(ch) => ch,
                Err(poisoned) => poisoned.into_inner(),
            };
            let entry = ch
                .replies
                .entry(channel.to_owned())
                .or_insert_with(|| (broadcast::channel(NOTE_BUFFER).0, 0));
            entry.1 += 1;
            (entry.0.subscribe(), entry.1 == 1)
        };
        let sub = Subscription {
            notes: rx,
            channel: channel.to_owned(),
            hub: Arc::downgrade(&self.inner),
        };
        let live = match self.connection().await {
            None => false,
            Some(_) if !first => true,
            Some(mut conn) => self
                .inner
                .redis
                .observe("subscribe", async move { conn.subscribe(channel).await })
                .await
                .is_ok(),
        };
        (sub, live)
    }

    async fn unsubscribe(&self, channel: &str) {
        if let Some(mut conn) = self.inner.conn.lock().await.clone() {
            let _ = self
                .inner
                .redis
                .observe(
                    "unsubscribe",
                    async move { conn.unsubscribe(channel).await },
                )
                .await;
        }
    }

    /// The subscriber connection, made on first use (and retried after a failure); a
    /// new one subscribes to every channel followed here and to the cancel channel.
    async fn connection(&self) -> Option<ConnectionManager> {
        let mut slot = self.inner.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Some(c.clone());
        }
        if let Ok(last) = self.inner.last_failed.lock() {
            if last.is_some_and(|t| t.elapsed() < RECONNECT_BACKOFF) {
                return None;
            }
        }
        let made = self.connect().await;
        match made {
            Some(c) => {
                *slot = Some(c.clone());
                Some(c)
            }
            None => {
                if let Ok(mut last) = self.inner.last_failed.lock() {
                    *last = Some(Instant::now());
                }
                None
            }
        }
    }

    async fn connect(&self) -> Option<ConnectionManager> {
        let redis = &self.inner.redis;
        let mut info = redis.client().get_connection_info().clone();
        info.redis.protocol = redis::ProtocolVersion::RESP3;
        let client = redis::Client::open(info).ok()?;
        let weak = Arc::downgrade(&self.inner);
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(redis.config().connect_timeout)
            .set_response_timeout(redis.config().op_timeout)
            .set_number_of_retries(1)
            .set_max_delay(200)
            .set_automatic_resubscription()
            .set_push_sender(move |push: PushInfo| {
                if let Some(inner) = weak.upgrade() {
                    deliver(&inner, push);
                }
                Ok::<(), redis::aio::SendError>(())
            });
        let limit = redis.config().connect_timeout * 2;
        let connect = ConnectionManager::new_with_config(client, cfg);
        let conn = match tokio::time::timeout(limit, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "redis: subscriber cannot connect");
                return None;
            }
            Err(_) => return None,
        };
        let mut channels: Vec<String> = match self.inner.channels.lock() {
            Ok(ch) => ch.replies.keys().cloned().collect(),
            Err(_) => Vec::new(),
        };
        channels.push(self.inner.cancel_channel.clone());
        let mut c = conn.clone();
        let subscribed = redis
            .observe("subscribe", async move { c.subscribe(channels).await })
            .await;
        if subscribed.is_err() {
            return None;
        }
        // Followers registered before the connection existed re-read now.
        resync_all(&self.inner);
        Some(conn)
    }
}

fn resync_all(inner: &Inner) {
    if let Ok(ch) = inner.channels.lock() {
        for (tx, _) in ch.replies.values() {
            let _ = tx.send(Note::Resync);
        }
    }
}

fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn deliver(inner: &Inner, push: PushInfo) {
    match push.kind {
        PushKind::Message => {
            let (Some(channel), Some(payload)) = (
                push.data.first().and_then(bytes),
                push.data.get(1).and_then(bytes),
            ) else {
                return;
            };
            let Ok(channel) = std::str::from_utf8(channel) else {
                return;
            };
            if channel == inner.cancel_channel {
                if let Ok(id) = std::str::from_utf8(payload) {
                    let _ = inner.cancels.send(id.to_owned());
                }
                return;
            }
            let Some(note) = Note::parse(payload) else {
                tracing::warn!(channel, "redis: unreadable notification ignored");
                return;
            };
            if let Ok(ch) = inner.channels.lock() {
                if let Some((tx, _)) = ch.replies.get(channel) {
                    let _ = tx.send(note);
                }
            }
        }
        // Messages may have been lost: everyone re-reads (or re-checks) once.
        PushKind::Disconnection => {
            resync_all(inner);
            let _ = inner.cancels.send(String::new());
        }
        // A (re)subscription is live: what was published before it may have been missed.
        PushKind::Subscribe => {
            let Some(channel) = push.data.first().and_then(bytes) else {
                return;
            };
            let Ok(channel) = std::str::from_utf8(channel) else {
                return;
            };
            if channel == inner.cancel_channel {
                let _ = inner.cancels.send(String::new());
            } else if let Ok(ch) = inner.channels.lock() {
                if let Some((tx, _)) = ch.replies.get(channel) {
                    let _ = tx.send(Note::Resync);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_parse() {
        assert_eq!(
            Note::parse(b"d12:h\xc3\xa9:llo"),
            Some(Note::Delta {
                offset: 12,
                text: "hé:llo".into()
            })
        );
        assert_eq!(
            Note::parse(b"ecomplete"),
            Some(Note::End("complete".into()))
        );
        assert_eq!(Note::parse(b"dx:y"), None);
        assert_eq!(Note::parse(b"\xff"), None);
        assert_eq!(Note::parse(b"zzz"), None);
    }
}
