//! Counters the outbox relay keeps for `/metrics` and `/readyz`.

use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Live relay counters, shared with the HTTP layer (`Arc<RelayStats>`).
#[derive(Debug)]
pub struct RelayStats {
    published: AtomicU64,
    publish_errors: AtomicU64,
    store_errors: AtomicU64,
    backlog: AtomicU64,
    dead: AtomicU64,
    dead_total: AtomicU64,
    broker_up: AtomicBool,
    last_success_ms: AtomicI64,
    last_error: Mutex<Option<String>>,
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayStatsSnapshot {
    /// Events published and marked since start (duplicates after a failed mark count again).
    pub published_total: u64,
    /// Failed publish attempts (one per failed batch).
    pub publish_errors_total: u64,
    /// Failed outbox operations (claim, mark, release, backlog, prune).
    pub store_errors_total: u64,
    /// Pending outbox entries (neither published nor dead), as last counted.
    pub backlog: u64,
    /// Dead outbox entries (set aside, waiting for an operator), as last counted.
    pub dead: u64,
    /// Entries this relay set aside since start.
    pub dead_total: u64,
    /// False after a retriable or refused publish failure (broker unreachable, or
    /// refusing the service), true again
    /// after the next success. True at start, before anything was tried.
    pub broker_up: bool,
    /// When a batch was last published.
    pub last_success: Option<DateTime<Utc>>,
    /// The last failure, for readiness details.
    pub last_error: Option<String>,
}

impl RelayStatsSnapshot {
    /// Publish and store errors together.
    pub fn errors_total(&self) -> u64 {
        self.publish_errors_total + self.store_errors_total
    }
}

impl Default for RelayStats {
    fn default() -> Self {
        Self {
            published: AtomicU64::new(0),
            publish_errors: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
            backlog: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            dead_total: AtomicU64::new(0),
            broker_up: AtomicBool::new(true),
            last_success_ms: AtomicI64::new(i64::MIN),
            last_error: Mutex::new(None),
        }
    }
}

impl RelayStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> RelayStatsSnapshot {
        let last_ms = self.last_success_ms.load(Ordering::Relaxed);
        RelayStatsSnapshot {
            published_total: self.published.load(Ordering::Relaxed),
            publish_errors_total: self.publish_errors.load(Ordering::Relaxed),
            store_errors_total: self.store_errors.load(Ordering::Relaxed),
            backlog: self.backlog.load(Ordering::Relaxed),
            dead: self.dead.load(Ordering::Relaxed),
            dead_total: self.dead_total.load(Ordering::Relaxed),
            broker_up: self.broker_up.load(Ordering::Relaxed),
            last_success: (last_ms != i64::MIN)
                .then(|| DateTime::from_timestamp_millis(last_ms))
                .flatten(),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// Events published so far.
    pub fn published_total(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Whether the broker answered the last publish.
    pub fn broker_up(&self) -> bool {
        self.broker_up.load(Ordering::Relaxed)
    }

    /// The last backlog count.
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    pub(crate) fn record_published(&self, n: usize) {
        self.published.fetch_add(n as u64, Ordering::Relaxed);
        self.last_success_ms
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    /// Returns whether the broker was down before.
    pub(crate) fn set_broker_up(&self, up: bool) -> bool {
        self.broker_up.swap(up, Ordering::Relaxed)
    }

    pub(crate) fn record_publish_error(&self, err: &dyn std::fmt::Display) {
        self.publish_errors.fetch_add(1, Ordering::Relaxed);
        self.set_last_error(err);
    }

    pub(crate) fn record_store_error(&self, err: &dyn std::fmt::Display) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
        self.set_last_error(err);
    }

    pub(crate) fn set_backlog(&self, counts: domain::ports::OutboxCounts) {
        self.backlog.store(counts.pending, Ordering::Relaxed);
        self.dead.store(counts.dead, Ordering::Relaxed);
    }

    pub(crate) fn record_dead(&self) {
        self.dead_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Entries this relay set aside since start.
    pub fn dead_total(&self) -> u64 {
        self.dead_total.load(Ordering::Relaxed)
    }

    fn set_last_error(&self, err: &dyn std::fmt::Display) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(err.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_in_snapshot() {
        let s = RelayStats::default();
        assert!(s.snapshot().broker_up);
        assert_eq!(s.snapshot().last_success, None);
        s.record_published(3);
        s.record_publish_error(&"broker down");
        s.record_store_error(&"db down");
        assert!(s.set_broker_up(false));
        s.set_backlog(domain::ports::OutboxCounts {
            pending: 42,
            dead: 2,
        });
        s.record_dead();
        let snap = s.snapshot();
        assert_eq!(snap.published_total, 3);
        assert_eq!(snap.errors_total(), 2);
        assert_eq!(snap.backlog, 42);
        assert_eq!((snap.dead, snap.dead_total), (2, 1));
        assert!(!snap.broker_up);
        assert!(snap.last_success.is_some());
        assert_eq!(snap.last_error.as_deref(), Some("db down"));
    }
}
