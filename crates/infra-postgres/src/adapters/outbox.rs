//! `Outbox` for `PgStore`: claim under a lease, mark published, release, record failed
//! attempts, dead entries, count, prune. The relay's transactions (claim, mark,
//! release, failures) commit without waiting for the WAL flush (`repo::outbox::relaxed_commit`,
//! or the relay pool's session settings: then mark, release and failures are one
//! statement each, without `BEGIN`/`COMMIT`).

use super::data_error;
use crate::errors::PgError;
use crate::repo;
use crate::repo::outbox::Failure;
use crate::store::PgStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection};
use domain::model::{ChatId, EventId};
use domain::ports::{
    AfterFailure, DeadEntry, DeadFilter, FailedAttempt, Outbox, OutboxCounts, OutboxEntry,
    StoreError,
};
use std::time::Duration;

/// Longest lease or retry delay accepted (longer ones are cut to this): one day.
const MAX_DELAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Longest error text kept with an entry.
const MAX_ERROR_CHARS: usize = 2000;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).map_or(MAX_DELAY_MS, |ms| ms.min(MAX_DELAY_MS))
}

fn count(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| data_error("negative count"))
}

impl PgStore {
    /// Runs one bookkeeping statement of the relay so that its commit does not wait for
    /// the WAL flush: alone (its own implicit transaction, one round trip) on the
    /// relay's connections, which are set up for that ([`PgStore::relay`]); in a
    /// transaction opened with `relaxed_commit` on any other store's.
    async fn relaxed<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, PgError> + Send + 'static,
        T: Send + 'static,
    {
        if self.relay_session() {
            return self.run(f).await;
        }
        self.run(move |c| {
            c.transaction(|c| {
                repo::outbox::relaxed_commit(c)?;
                f(c)
            })
        })
        .await
    }
}

#[async_trait]
impl Outbox for PgStore {
    #[tracing::instrument(skip_all, fields(relay = %relay))]
    async fn claim(
        &self,
        relay: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let relay = relay.to_owned();
        let lease_ms = millis(lease);
        let session_ready = self.relay_session();
        self.run(move |c| {
            c.transaction(|c| {
                if !session_ready {
                    repo::outbox::relaxed_commit(c)?;
                }
                let rows = repo::outbox::claim(c, &relay, i64::from(limit), lease_ms)?;
                // An entry whose payload is not an event (written by another version, or
                // by hand) can never be published: it is set aside as dead, with the
                // reason, in the same transaction, instead of failing the claim — which
                // would hand the same entry back after every lease, for ever, and hold
                // back everything claimed with it.
                let mut entries = Vec::with_capacity(rows.len());
                let mut undecodable = Vec::new();
                for r in rows {
                    match serde_json::from_value(r.payload) {
                        Ok(event) => entries.push(OutboxEntry {
                            position: r.position,
                            event,
                            attempts: u32::try_from(r.attempts).unwrap_or(0),
                        }),
                        Err(e) => undecodable.push(repo::outbox::Failure {
                            position: r.position,
                            error: format!("the stored payload is not an event: {e}"),
                            retry_ms: None,
                        }),
                    }
                }
                if !undecodable.is_empty() {
                    tracing::warn!(
                        count = undecodable.len(),
                        first = undecodable[0].position,
                        "outbox entries with undecodable payloads set aside as dead"
                    );
                    repo::outbox::record_failures(c, &relay, &undecodable)?;
                }
                Ok(entries)
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(relay = %_relay, count = positions.len()))]
    async fn mark_published(&self, _relay: &str, positions: &[i64]) -> Result<(), StoreError> {
        if positions.is_empty() {
            return Ok(());
        }
        let positions = positions.to_vec();
        self.relaxed(move |c| repo::outbox::mark_published(c, &positions))
            .await
    }

    #[tracing::instrument(skip_all, fields(relay = %relay, count = positions.len()))]
    async fn release(&self, relay: &str, positions: &[i64]) -> Result<(), StoreError> {
        if positions.is_empty() {
            return Ok(());
        }
        let (relay, positions) = (relay.to_owned(), positions.to_vec());
        self.relaxed(move |c| repo::outbox::release(c, &relay, &positions))
            .await
    }

    #[tracing::instrument(skip_all, fields(relay = %relay, count = failures.len()))]
    async fn record_failures(
        &self,
        relay: &str,
        failures: &[FailedAttempt],
    ) -> Result<(), StoreError> {
        if failures.is_empty() {
            return Ok(());
        }
        let relay = relay.to_owned();
        let failures: Vec<Failure> = failures
            .iter()
            .map(|f| Failure {
                position: f.position,
                // PostgreSQL text cannot hold NUL; the error is for operators only.
                error: f
                    .error
                    .chars()
                    .filter(|c| *c != '\0')
                    .take(MAX_ERROR_CHARS)
                    .collect(),
                retry_ms: match f.then {
                    AfterFailure::RetryAfter(d) => Some(millis(d)),
                    AfterFailure::SetAside => None,
                },
            })
            .collect();
        self.relaxed(move |c| repo::outbox::record_failures(c, &relay, &failures))
            .await
            .map(|_| ())
    }

    async fn backlog(&self) -> Result<OutboxCounts, StoreError> {
        let n = self.run(repo::outbox::counts).await?;
        Ok(OutboxCounts {
            pending: count(n.pending)?,
            dead: count(n.dead)?,
        })
    }

    async fn dead(&self, limit: u32) -> Result<Vec<DeadEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = self
            .run(move |c| repo::outbox::dead(c, i64::from(limit)))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| DeadEntry {
                position: r.position,
                event_id: EventId::from_uuid(r.event_id),
                chat_id: ChatId::from_uuid(r.chat_id),
                event_type: r.event_type,
                attempts: u32::try_from(r.attempts).unwrap_or(0),
                dead_at: r.dead_at,
                last_error: r.last_error,
            })
            .collect())
    }

    #[tracing::instrument(skip_all)]
    async fn retry_dead(&self, filter: DeadFilter) -> Result<u64, StoreError> {
        let event = match filter {
            DeadFilter::All => None,
            DeadFilter::Event(id) => Some(id.as_uuid()),
        };
        let n = self
            .run(move |c| repo::outbox::retry_dead(c, event))
            .await?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        // Expired idempotency keys are bookkeeping of the same kind: pruned here too.
        let expired =
            Utc::now() - chrono::Duration::hours(domain::model::IdempotentSend::TTL_HOURS);
        let n = self
            .run(move |c| {
                repo::idempotency::prune(c, expired)?;
                repo::outbox::prune(c, before)
            })
            .await?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }
}
