//! PostgreSQL adapters: the storage ports (chats, messages, the transactional outbox)
//! implemented with diesel over a `deadpool-diesel` pool, and the embedded migrations.
//!
//! Start-up, in order:
//! 1. [`PgConfig::new`] (or [`PgConfig::from_parts`] for `DB_HOST`/`DB_PORT`/…);
//! 2. [`PgStore::run_migrations`] (under a Postgres advisory lock, so replicas starting
//!    together do not race);
//! 3. [`PgStore::new`] for requests and [`PgStore::relay`] for the outbox relay (its own
//!    small pool), both implementing the `domain::ports` storage traits;
//! 4. [`PgStore::readiness`] for `/readyz`, [`PgStore::outbox_wakeups`] for the relay.
//!
//! Failures are classified for the caller: a database that is down, a pool that is
//! exhausted or a statement that timed out is [`domain::ports::StoreError::Unavailable`]
//! (HTTP 503); nothing waits without a bound.

mod adapters;
mod config;
mod errors;
mod local_reads;
mod migrations;
mod notify;
mod repo;
mod rows;
mod schema;
mod search_config;
mod store;

#[cfg(feature = "testing")]
pub mod testing;

pub use config::{DatabaseUrl, PgConfig, SslMode};
pub use migrations::{
    migration_status, run_migrations, MigrationError, MigrationStatus, MIGRATIONS,
};
pub use notify::OUTBOX_CHANNEL;
pub use search_config::is_config_name;
pub use store::{PgStore, PoolStatus};
