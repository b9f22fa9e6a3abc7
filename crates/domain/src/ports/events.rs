//! Event ports: publishing events to the outside world, and the outbox they wait in.

use crate::model::{ChatId, Event, EventId};
use crate::ports::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Why publishing an event failed, classified by what the caller does next.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Transient: the destination is unreachable, timed out or throttled. Nothing is
    /// wrong with the event: try again later.
    #[error("publishing failed, retriable")]
    Retriable(#[source] anyhow::Error),
    /// The destination refuses this service (authentication, authorization, a topic
    /// or feature it does not have): nothing gets through until an operator fixes the
    /// settings. Not the event's fault: try again later, and say so loudly.
    #[error("publishing refused by the destination")]
    Refused(#[source] anyhow::Error),
    /// This event can never be accepted as it is (too large, malformed): trying it
    /// again cannot help.
    #[error("publishing failed")]
    Final(#[source] anyhow::Error),
}

impl PublishError {
    /// The more severe of two failures: final, then refused, then retriable.
    pub fn worse(self, other: PublishError) -> PublishError {
        fn rank(e: &PublishError) -> u8 {
            match e {
                PublishError::Retriable(_) => 0,
                PublishError::Refused(_) => 1,
                PublishError::Final(_) => 2,
            }
        }
        if rank(&other) > rank(&self) {
            other
        } else {
            self
        }
    }
}

/// What became of one event of a batch.
#[derive(Debug)]
pub enum Delivery {
    /// The destination acknowledged it.
    Delivered,
    /// Publishing it failed.
    Failed(PublishError),
    /// Not sent: an earlier event of its chat in the same batch failed before it was
    /// sent, and sending this one would have overtaken it.
    Withheld,
}

impl Delivery {
    /// Whether the destination acknowledged the event.
    pub fn is_delivered(&self) -> bool {
        matches!(self, Delivery::Delivered)
    }
}

/// One [`Delivery`] per event of a batch, in the batch's order.
#[derive(Debug, Default)]
pub struct PublishReport {
    deliveries: Vec<Delivery>,
}

impl PublishReport {
    /// A report from one delivery per event, in the batch's order.
    pub fn new(deliveries: Vec<Delivery>) -> Self {
        Self { deliveries }
    }

    /// Every one of `count` events delivered.
    pub fn delivered(count: usize) -> Self {
        Self::new((0..count).map(|_| Delivery::Delivered).collect())
    }

    /// The deliveries, in the batch's order.
    pub fn deliveries(&self) -> &[Delivery] {
        &self.deliveries
    }

    /// The deliveries, owned.
    pub fn into_deliveries(self) -> Vec<Delivery> {
        self.deliveries
    }

    /// How many events were delivered.
    pub fn delivered_count(&self) -> usize {
        self.deliveries.iter().filter(|d| d.is_delivered()).count()
    }

    /// All or nothing: `Ok` when every event was delivered, else the worst failure
    /// (an event withheld without any failure reported counts as retriable).
    pub fn into_result(self) -> Result<(), PublishError> {
        let mut worst: Option<PublishError> = None;
        let mut withheld = false;
        for d in self.deliveries {
            match d {
                Delivery::Delivered => {}
                Delivery::Withheld => withheld = true,
                Delivery::Failed(e) => {
                    worst = Some(match worst {
                        Some(w) => w.worse(e),
                        None => e,
                    })
                }
            }
        }
        match worst {
            Some(e) => Err(e),
            None if withheld => Err(PublishError::Retriable(anyhow::anyhow!(
                "events were withheld"
            ))),
            None => Ok(()),
        }
    }
}

/// Sends events to their consumers (a Kafka topic, a log…).
///
/// `publish` returns once every event is acknowledged or has failed, with one
/// [`Delivery`] per event in the batch's order. Events of one chat are sent in the
/// order given, and an event that fails before being sent stops its chat: the chat's
/// later events of the batch are [`Delivery::Withheld`], never sent ahead of it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes events, in order per chat; reports what became of each.
    async fn publish(&self, events: &[Event]) -> PublishReport;
}

/// An event waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// Position in the outbox: increases in commit order per chat.
    pub position: i64,
    /// The event.
    pub event: Event,
    /// How many attempts at it failed with a final error (see [`Outbox::record_failures`]).
    pub attempts: u32,
}

/// What to do with an entry whose publication failed with a final error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try it again after this delay; its chat's later entries wait for it.
    RetryAfter(Duration),
    /// Give up: keep it in the outbox marked dead, out of the way of its chat's later
    /// entries, until an operator retries it ([`Outbox::retry_dead`]).
    SetAside,
}

/// A failed attempt at one leased entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAttempt {
    /// The entry.
    pub position: i64,
    /// Why it failed, for operators (kept with the entry).
    pub error: String,
    /// What happens next.
    pub then: AfterFailure,
}

/// How many entries the outbox holds that are not published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting to be published (leased, backing off or ready).
    pub pending: u64,
    /// Set aside (dead): waiting for an operator.
    pub dead: u64,
}

/// An entry set aside, as an operator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadEntry {
    /// Position in the outbox.
    pub position: i64,
    /// The event's id.
    pub event_id: EventId,
    /// Its chat.
    pub chat_id: ChatId,
    /// Its CloudEvents type (`message.completed`…).
    pub event_type: String,
    /// Failed attempts.
    pub attempts: u32,
    /// When it was set aside.
    pub dead_at: DateTime<Utc>,
    /// The last failure.
    pub last_error: Option<String>,
}

/// Which dead entries [`Outbox::retry_dead`] revives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadFilter {
    /// Every dead entry.
    All,
    /// The entry of this event only.
    Event(EventId),
}

/// The transactional outbox: events stored with their changes, waiting to be published.
///
/// Contract (`domain::testing::outbox_contract_tests!` checks every adapter):
/// - `claim` hands out pending entries oldest first, leased to one relay for `lease`.
///   An entry is pending while it is neither published nor dead. An entry of a chat is
///   handed out only while no earlier pending entry of that chat is leased (to anyone)
///   or waiting out a retry delay, so per-chat order holds with several relays and
///   while an entry is being retried; dead entries hold back nothing.
/// - `mark_published`, `release` and `record_failures` act on entries still pending;
///   `release` and `record_failures` only on entries leased to `relay` (a relay whose
///   lease ran out cannot undo another's work). `release` counts nothing.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Claims up to `limit` pending entries for `relay`.
    async fn claim(
        &self,
        relay: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Marks entries published (after the destination acknowledged them).
    async fn mark_published(&self, relay: &str, positions: &[i64]) -> Result<(), StoreError>;
    /// Gives entries back untouched (the destination was unreachable, or they were not
    /// sent): claimable again at once, no attempt counted.
    async fn release(&self, relay: &str, positions: &[i64]) -> Result<(), StoreError>;
    /// Records failed attempts: each entry counts one more attempt, keeps the error,
    /// and either waits out its delay or is set aside (dead).
    async fn record_failures(
        &self,
        relay: &str,
        failures: &[FailedAttempt],
    ) -> Result<(), StoreError>;
    /// How many entries are pending and dead.
    async fn backlog(&self) -> Result<OutboxCounts, StoreError>;
    /// Up to `limit` dead entries, oldest first.
    async fn dead(&self, limit: u32) -> Result<Vec<DeadEntry>, StoreError>;
    /// Makes dead entries pending again with no attempts counted; returns how many.
    async fn retry_dead(&self, filter: DeadFilter) -> Result<u64, StoreError>;
    /// Deletes published entries older than `before`; returns how many.
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(r: Result<(), PublishError>) -> &'static str {
        match r {
            Ok(()) => "ok",
            Err(PublishError::Retriable(_)) => "retriable",
            Err(PublishError::Refused(_)) => "refused",
            Err(PublishError::Final(_)) => "final",
        }
    }

    #[test]
    fn a_report_is_all_or_nothing_with_the_worst_failure() {
        let f = |e: fn(anyhow::Error) -> PublishError| Delivery::Failed(e(anyhow::anyhow!("x")));
        assert_eq!(kinds(PublishReport::delivered(3).into_result()), "ok");
        assert_eq!(kinds(PublishReport::default().into_result()), "ok");
        let r = PublishReport::new(vec![
            Delivery::Delivered,
            f(PublishError::Retriable),
            f(PublishError::Final),
            f(PublishError::Refused),
        ]);
        assert_eq!(r.delivered_count(), 1);
        assert_eq!(kinds(r.into_result()), "final");
        let r = PublishReport::new(vec![f(PublishError::Retriable), f(PublishError::Refused)]);
        assert_eq!(kinds(r.into_result()), "refused");
        let r = PublishReport::new(vec![Delivery::Delivered, Delivery::Withheld]);
        assert_eq!(kinds(r.into_result()), "retriable");
    }
}
