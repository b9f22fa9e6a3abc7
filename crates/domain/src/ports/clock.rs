//! The clock port: the current time, so services and tests agree on it.

use chrono::{DateTime, SubsecRound, Utc};

/// Tells the time.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// The current time, truncated to microseconds (what every storage keeps).
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// Waits: lets services back off and retry without depending on an async runtime.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait Sleeper: Send + Sync {
    /// Resolves after `duration`.
    async fn sleep(&self, duration: std::time::Duration);
}
