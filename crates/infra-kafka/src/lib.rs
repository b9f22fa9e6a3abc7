//! Kafka adapter: the event publisher (an idempotent rdkafka producer sending
//! CloudEvents keyed by chat id) and the outbox relay that feeds it.
//!
//! The relay ([`OutboxRelay`]) only knows the domain's `Outbox` and
//! `EventPublisher` ports; wire it with the Postgres outbox and a
//! [`KafkaPublisher`]:
//!
//! ```no_run
//! # async fn wire(outbox: std::sync::Arc<dyn domain::ports::Outbox>,
//! #               wakeups: futures::stream::BoxStream<'static, ()>) -> anyhow::Result<()> {
//! use infra_kafka::{KafkaConfig, KafkaPublisher, OutboxRelay, RelayConfig};
//! use std::sync::Arc;
//! use tokio_util::sync::CancellationToken;
//!
//! let publisher = Arc::new(KafkaPublisher::new(&KafkaConfig::new("localhost:9092"))?);
//! let relay = OutboxRelay::new(outbox, publisher, RelayConfig::default());
//! let stats = relay.stats(); // for /metrics and /readyz
//! let shutdown = CancellationToken::new();
//! let task = relay.spawn(wakeups, shutdown.clone());
//! // … on shutdown:
//! shutdown.cancel();
//! task.await?;
//! # let _ = stats; Ok(()) }
//! ```

pub mod classify;
mod config;
mod publisher;
pub mod relay;
pub mod stall;

pub use config::{Compression, KafkaConfig, SecretString, DEFAULT_TOPIC};
pub use publisher::{KafkaPublisher, KafkaSetupError, CONTENT_TYPE};
pub use relay::{OutboxRelay, RelayConfig, RelayError, RelayStats, RelayStatsSnapshot};
