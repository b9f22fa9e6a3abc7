//! `Outbox` for `PgStore`: claim under a lease, mark published, release, count, prune.

use super::data_error;
use crate::errors::PgError;
use crate::repo;
use crate::store::PgStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::Connection;
use domain::ports::{Outbox, OutboxEntry, StoreError};
use std::time::Duration;

/// Longest lease accepted (longer ones are cut to this): one day.
const MAX_LEASE_MS: i64 = 24 * 60 * 60 * 1000;

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
        let lease_ms =
            i64::try_from(lease.as_millis()).map_or(MAX_LEASE_MS, |ms| ms.min(MAX_LEASE_MS));
        self.run(move |c| {
            let rows =
                c.transaction(|c| repo::outbox::claim(c, &relay, i64::from(limit), lease_ms))?;
            rows.into_iter()
                .map(|r| {
                    Ok(OutboxEntry {
                        position: r.position,
                        event: serde_json::from_value(r.payload).map_err(|e| {
                            PgError::Data(format!("outbox entry {}: {e}", r.position))
                        })?,
                        attempts: u32::try_from(r.attempts).unwrap_or(0),
                    })
                })
                .collect()
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(relay = %_relay, count = positions.len()))]
    async fn mark_published(&self, _relay: &str, positions: &[i64]) -> Result<(), StoreError> {
        if positions.is_empty() {
            return Ok(());
        }
        let positions = positions.to_vec();
        self.run(move |c| repo::outbox::mark_published(c, &positions))
            .await
    }

    #[tracing::instrument(skip_all, fields(relay = %relay, count = positions.len()))]
    async fn release(&self, relay: &str, positions: &[i64]) -> Result<(), StoreError> {
        if positions.is_empty() {
            return Ok(());
        }
        let (relay, positions) = (relay.to_owned(), positions.to_vec());
        self.run(move |c| repo::outbox::release(c, &relay, &positions))
            .await
    }

    async fn backlog(&self) -> Result<u64, StoreError> {
        let n = self.run(repo::outbox::backlog).await?;
        u64::try_from(n).map_err(|_| data_error("negative backlog"))
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
