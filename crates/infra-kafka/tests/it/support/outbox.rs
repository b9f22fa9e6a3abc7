//! An in-memory outbox following the port contract (it passes the outbox contract
//! suite, `outbox_contract.rs`), with switches to make marking fail or hang like a
//! crashing relay, and a count of claims.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::model::{ChatId, Event};
use domain::ports::{
    AfterFailure, DeadEntry, DeadFilter, FailedAttempt, Outbox, OutboxCounts, OutboxEntry,
    StoreError,
};
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
    next_attempt: Option<Instant>,
    last_error: Option<String>,
    dead_at: Option<DateTime<Utc>>,
}

impl Row {
    fn pending(&self) -> bool {
        self.published_at.is_none() && self.dead_at.is_none()
    }

    fn leased(&self, now: Instant) -> bool {
        self.lease.as_ref().is_some_and(|(_, until)| *until > now)
    }

    fn waiting(&self, now: Instant) -> bool {
        self.next_attempt.is_some_and(|at| at > now)
    }

    fn held_by(&self, relay: &str) -> bool {
        self.lease.as_ref().is_some_and(|(r, _)| r == relay)
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
    /// Calls to `claim` so far.
    pub claim_calls: AtomicUsize,
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
                    next_attempt: None,
                    last_error: None,
                    dead_at: None,
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

    /// Entries neither published nor dead.
    pub fn unpublished(&self) -> usize {
        self.rows
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.pending())
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
        self.claim_calls.fetch_add(1, Ordering::SeqCst);
        let now = Instant::now();
        let mut rows = self.rows.lock().unwrap();
        // A chat with a pending entry leased or waiting for its retry is off limits.
        let busy: HashSet<ChatId> = rows
            .iter()
            .filter(|r| r.pending() && (r.leased(now) || r.waiting(now)))
            .map(|r| r.event.chat_id)
            .collect();
        let mut claimed = Vec::new();
        for row in rows.iter_mut() {
            if claimed.len() >= limit as usize {
                break;
            }
            if !row.pending() || busy.contains(&row.event.chat_id) {
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
            if positions.contains(&row.position) && row.published_at.is_none() {
                row.published_at = Some(now);
                row.lease = None;
                row.next_attempt = None;
            }
        }
        Ok(())
    }

    async fn release(&self, relay: &str, positions: &[i64]) -> Result<(), StoreError> {
        for row in self.rows.lock().unwrap().iter_mut() {
            if positions.contains(&row.position) && row.pending() && row.held_by(relay) {
                row.lease = None;
            }
        }
        Ok(())
    }

    async fn record_failures(
        &self,
        relay: &str,
        failures: &[FailedAttempt],
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut rows = self.rows.lock().unwrap();
        for f in failures {
            let Some(row) = rows.iter_mut().find(|r| r.position == f.position) else {
                continue;
            };
            if !row.pending() || !row.held_by(relay) {
                continue;
            }
            row.attempts += 1;
            row.last_error = Some(f.error.clone());
            row.lease = None;
            match f.then {
                AfterFailure::RetryAfter(d) => row.next_attempt = Some(now + d),
                AfterFailure::SetAside => {
                    row.next_attempt = None;
                    row.dead_at = Some(Utc::now());
                }
            }
        }
        Ok(())
    }

    async fn backlog(&self) -> Result<OutboxCounts, StoreError> {
        let rows = self.rows.lock().unwrap();
        let unpublished = rows.iter().filter(|r| r.published_at.is_none());
        let dead = unpublished.clone().filter(|r| r.dead_at.is_some()).count();
        Ok(OutboxCounts {
            pending: (unpublished.count() - dead) as u64,
            dead: dead as u64,
        })
    }

    async fn dead(&self, limit: u32) -> Result<Vec<DeadEntry>, StoreError> {
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .iter()
            .filter_map(|r| match (r.published_at, r.dead_at) {
                (None, Some(dead_at)) => Some(DeadEntry {
                    position: r.position,
                    event_id: r.event.id,
                    chat_id: r.event.chat_id,
                    event_type: r.event.kind.type_name().to_owned(),
                    attempts: r.attempts,
                    dead_at,
                    last_error: r.last_error.clone(),
                }),
                _ => None,
            })
            .take(limit as usize)
            .collect())
    }

    async fn retry_dead(&self, filter: DeadFilter) -> Result<u64, StoreError> {
        let mut n = 0;
        for row in self.rows.lock().unwrap().iter_mut() {
            let wanted = match filter {
                DeadFilter::All => true,
                DeadFilter::Event(id) => row.event.id == id,
            };
            if wanted && row.published_at.is_none() && row.dead_at.is_some() {
                row.dead_at = None;
                row.attempts = 0;
                row.next_attempt = None;
                row.lease = None;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut rows = self.rows.lock().unwrap();
        let n = rows.len();
        rows.retain(|r| r.published_at.is_none_or(|t| t >= before));
        Ok((n - rows.len()) as u64)
    }
}

impl MemoryOutbox {
    /// Failed attempts counted for the entry of `event`.
    pub fn attempts_of(&self, event: domain::model::EventId) -> Option<u32> {
        let rows = self.rows.lock().unwrap();
        rows.iter()
            .find(|r| r.event.id == event)
            .map(|r| r.attempts)
    }

    /// Whether the entry of `event` is published.
    pub fn is_published(&self, event: domain::model::EventId) -> bool {
        let rows = self.rows.lock().unwrap();
        rows.iter()
            .any(|r| r.event.id == event && r.published_at.is_some())
    }
}
