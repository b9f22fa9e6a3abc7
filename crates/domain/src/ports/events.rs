//! Event ports: publishing events to the outside world, and the outbox they wait in.

use crate::model::Event;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Worth retrying later (broker unreachable, timed out, throttled).
    #[error("publishing failed, retriable")]
    Retriable(#[source] anyhow::Error),
    /// Will never succeed as is (message too large, authorization refused).
    #[error("publishing failed")]
    Final(#[source] anyhow::Error),
}

/// Sends events to their consumers (a Kafka topic, a log…).
///
/// `publish` returns only once every event is acknowledged by the destination;
/// events of one chat are delivered in the order given.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes events, in order per chat.
    async fn publish(&self, events: &[Event]) -> Result<(), PublishError>;
}

/// An event waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// Position in the outbox: increases in commit order per chat.
    pub position: i64,
    /// The event.
    pub event: Event,
    /// How many times publishing it was tried before.
    pub attempts: u32,
}

/// The transactional outbox: events stored with their changes, waiting to be published.
///
/// Contract: `claim` hands out unpublished entries oldest first, leased to one relay
/// for `lease`; while a chat has an entry leased to a relay, no other relay gets any
/// entry of that chat, so per-chat order holds with several relays.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Claims up to `limit` unpublished entries for `relay`.
    async fn claim(
        &self,
        relay: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, crate::ports::StoreError>;
    /// Marks entries published (after the destination acknowledged them).
    async fn mark_published(
        &self,
        relay: &str,
        positions: &[i64],
    ) -> Result<(), crate::ports::StoreError>;
    /// Gives entries back unpublished (publishing failed), counting the attempt.
    async fn release(&self, relay: &str, positions: &[i64])
        -> Result<(), crate::ports::StoreError>;
    /// How many entries wait to be published.
    async fn backlog(&self) -> Result<u64, crate::ports::StoreError>;
    /// Deletes published entries older than `before`; returns how many.
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, crate::ports::StoreError>;
}
