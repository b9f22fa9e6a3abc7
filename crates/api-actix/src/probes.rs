//! Readiness probes of the PostgreSQL wiring: storage reachable with migrations
//! applied (required), and the outbox relay's view of the broker (reported only: a
//! broker outage never takes the service out of rotation, events wait in the outbox).

use crate::metrics::{GaugeSample, PoolSample};
use crate::routes::health::{Check, Probe};
use infra_kafka::RelayStats;
use infra_postgres::PgStore;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Checks PostgreSQL and, when events go to Kafka, the relay.
#[derive(Clone)]
pub struct PgProbe {
    /// The request pool's store.
    pub store: PgStore,
    /// The relay pool's store.
    pub relay_store: PgStore,
    /// The relay's counters.
    pub relay: Arc<RelayStats>,
    /// Whether events go to Kafka (else to the log).
    pub kafka: bool,
}

impl std::fmt::Debug for PgProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgProbe")
            .field("kafka", &self.kafka)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Probe for PgProbe {
    async fn checks(&self) -> BTreeMap<String, Check> {
        let mut out = BTreeMap::new();
        let storage = match self.store.readiness().await {
            Ok(s) if s.is_current() => Check {
                ok: true,
                detail: format!("postgres reachable, {} migrations applied", s.applied.len()),
                required: true,
            },
            Ok(s) => Check {
                ok: false,
                detail: format!(
                    "postgres reachable, migrations pending: {}",
                    s.pending.join(", ")
                ),
                required: true,
            },
            Err(e) => Check {
                ok: false,
                detail: format!("postgres unreachable: {e}"),
                required: true,
            },
        };
        out.insert("storage".to_owned(), storage);
        let snap = self.relay.snapshot();
        let target = if self.kafka { "kafka" } else { "log" };
        out.insert(
            "events".to_owned(),
            Check {
                ok: snap.broker_up,
                detail: format!(
                    "to {target}; outbox backlog {}, dead {}, published {}, publish errors {}{}",
                    snap.backlog,
                    snap.dead,
                    snap.published_total,
                    snap.publish_errors_total,
                    snap.last_error
                        .map(|e| format!(", last error: {e}"))
                        .unwrap_or_default()
                ),
                required: false,
            },
        );
        out
    }

    async fn gauges(&self) -> GaugeSample {
        let sample = |pool: &str, s: infra_postgres::PoolStatus| PoolSample {
            pool: pool.to_owned(),
            max_size: s.max_size as u64,
            in_use: s.in_use as u64,
            waiting: s.waiting as u64,
            reads_waiting: s.reads_waiting as u64,
        };
        let snap = self.relay.snapshot();
        GaugeSample {
            pools: vec![
                sample("requests", self.store.pool_status()),
                sample("relay", self.relay_store.pool_status()),
            ],
            outbox_backlog: Some(snap.backlog),
            outbox_dead: Some(snap.dead),
            outbox_dead_total: Some(snap.dead_total),
        }
    }
}
