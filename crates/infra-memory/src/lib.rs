//! In-memory adapters of the domain's ports: the embedded default (throw-away
//! storage, events to the log) and the test double. Correct under concurrency:
//! every change happens under one lock, so per-chat `seq` order holds with any
//! number of tasks writing at once. The usage ledger lives here too.

mod data;
mod live;
mod log_publisher;
mod store;
mod tree;
mod turn;
mod usage;

pub use live::{MemoryLive, DEFAULT_RETENTION as LIVE_RETENTION};
pub use log_publisher::LogPublisher;
pub use store::MemoryStore;
