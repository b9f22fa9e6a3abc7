//! Redis adapter: the live state of replies shared by every replica (reply text
//! buffers, following them live, cancel requests, liveness leases) and token buckets
//! for rate limits that hold across replicas.
//!
//! - One multiplexed connection per process for commands ([`Redis`]), made lazily and
//!   remade by itself: the service starts and serves while Redis is down.
//! - One RESP3 subscriber connection per process: followers of a reply share its
//!   channel; cancel requests go over one channel every process hears.
//! - Every change is one Lua script (atomic, one round trip).
//!
//! Keys (under the configured prefix, `chat:` by default):
//! `reply:{id}:text` (string, appended), `reply:{id}:end`, `reply:{id}:cancel`,
//! `reply:{id}:lease` (hash: holder, until), `leases` (sorted set by lapse time),
//! `bucket:{key}` (GCRA theoretical arrival time); channels `reply:{id}` and `cancel`.

mod config;
mod conn;
mod hub;
mod live;
mod scripts;

pub use live::{RedisLive, ACTIVE_TTL, POLL_INTERVAL, POLL_UNSUBSCRIBED};

pub use config::{redacted_url, RedisConfig, DEFAULT_KEY_PREFIX};
pub use conn::{NoObserver, Outcome, Redis, RedisFailure, RedisObserver};
