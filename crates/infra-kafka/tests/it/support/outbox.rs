//! An in-memory outbox following the port contract (oldest first, per-chat
//! leases), with switches to make marking fail or hang like a crashing relay.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::model::{ChatId, Event};
use domain::ports::{Outbox, OutboxEntry, StoreError};
use futures::stream::BoxStream;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

struct Row {
    position: i64,
    event: Event,
    attempts: u32,
    published_at: Option<DateTime<Utc>>,
    lease: Option<(String, Instant)>,
}

impl Row {
    fn leased(&self, now: Instant) -> bool {
        self.published_at.is_none() && self.lease.as_ref().is_some_and(|(_, until)| *until > now)
    }
}

#[derive(Default)]
pub struct MemoryOutbox {
    rows: Mutex<Vec<Row>>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<()>>>,
    /// How many `mark_published` calls fail before they work again.
    pub failing_marks: AtomicUsize,
    /// While set, `mark_published` never returns (the relay "crashes" there).
    pub hanging_marks: AtomicBool,
    /// Calls to `mark_published` so far.
    pub mark_calls: AtomicUsize,
}

impl MemoryOutbox {
    /// Stores events as one committed change and notifies the relays.
    pub fn append(&self, events: Vec<Event>) {
        {
            let mut rows = self.rows.lock().unwrap();
            for event in events {
                let position = rows.last().map_or(1, |r| r.position + 1);
                rows.push(Row {
                    position,
                    event,
                    attempts: 0,
                    published_at: None,
                    lease: None,
                });
            }
        }
        self.subscribers
            .lock()
            .unwrap()
            .retain(|s| s.send(()).is_ok());
    }

    /// A NOTIFY-like stream: one item per `append`.
    pub fn wakeups(&self) -> BoxStream<'static, ()> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.lock().unwrap().push(tx);
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|()| ((), rx))
        }))
    }

    pub fn unpublished(&self) -> usize {
        self.rows
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.published_at.is_none())
            .count()
    }

    /// Every stored event in commit order.
    pub fn events(&self) -> Vec<Event> {
        self.rows
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.event.clone())
            .collect()
    }
}

#[async_trait]
impl Outbox for MemoryOutbox {
    async fn claim(
        &self,
        relay: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let now = Instant::now();
        let mut rows = self.rows.lock().unwrap();
        // A chat with any entry leased (to anyone) is off limits until it is settled.
        let busy: HashSet<ChatId> = rows
            .iter()
            .filter(|r| r.leased(now))
            .map(|r| r.event.chat_id)
            .collect();
        let mut claimed = Vec::new();
        for row in rows.iter_mut() {
            if claimed.len() >= limit as usize {
                break;
            }
            if row.published_at.is_some() || busy.contains(&row.event.chat_id) {
                continue;
            }
            row.lease = Some((relay.to_owned(), now + lease));
            claimed.push(OutboxEntry {
                position: row.position,
                event: row.event.clone(),
                attempts: row.attempts,
            });
        }
        Ok(claimed)
    }

    async fn mark_published(&self, _relay: &str, positions: &[i64]) -> Result<(), StoreError> {
        self.mark_calls.fetch_add(1, Ordering::SeqCst);
        if self.hanging_marks.load(Ordering::SeqCst) {
            futures::future::pending::<()>().await;
        }
        let failing = self.failing_marks.load(Ordering::SeqCst);
        if failing > 0 {
            self.failing_marks.store(failing - 1, Ordering::SeqCst);
            return Err(StoreError::Unavailable(anyhow::anyhow!("database down")));
        }
        let now = Utc::now();
        for row in self.rows.lock().unwrap().iter_mut() {
            if positions.contains(&row.position) {
                row.published_at.get_or_insert(now);
                row.lease = None;
            }
        }
        Ok(())
    }

    async fn release(&self, relay: &str, positions: &[i64]) -> Result<(), StoreError> {
        for row in self.rows.lock().unwrap().iter_mut() {
            let mine = row.lease.as_ref().is_some_and(|(r, _)| r == relay);
            if positions.contains(&row.position) && mine && row.published_at.is_none() {
                row.lease = None;
                row.attempts += 1;
            }
        }
        Ok(())
    }

    async fn backlog(&self) -> Result<u64, StoreError> {
        Ok(self.unpublished() as u64)
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut rows = self.rows.lock().unwrap();
        let n = rows.len();
        rows.retain(|r| r.published_at.is_none_or(|t| t >= before));
        Ok((n - rows.len()) as u64)
    }
}
