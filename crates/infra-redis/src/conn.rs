//! The connection: one multiplexed [`ConnectionManager`] per process, made lazily (the
//! service starts and serves while Redis is down, and connects when it is back), every
//! operation bounded by `op_timeout`, measured, and reported to a [`RedisObserver`].

use crate::config::{redacted_url, RedisConfig};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How an operation ended, as metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered.
    Ok,
    /// Redis answered with an error, or with data this adapter cannot read.
    Error,
    /// No answer within `op_timeout`.
    Timeout,
    /// No connection (Redis down or unreachable).
    Unavailable,
}

impl Outcome {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
        }
    }
}

/// Receives every operation's outcome and latency (the service's metrics implement it,
/// so this crate stays free of a metrics library).
pub trait RedisObserver: Send + Sync + std::fmt::Debug {
    /// One operation (`op` is a fixed name such as `append` or `rate_limit`) ended.
    fn operation(&self, op: &'static str, outcome: Outcome, elapsed: Duration);
}

/// Observes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl RedisObserver for NoObserver {
    fn operation(&self, _: &'static str, _: Outcome, _: Duration) {}
}

/// Why an operation did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedisFailure {
    /// Redis cannot be reached or did not answer in time: the caller degrades.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// Redis did not answer within `op_timeout`.
    #[error("redis timed out: {0}")]
    Timeout(String),
    /// Redis answered, but not as expected (a bug or a foreign key under our prefix).
    #[error("redis answered unexpectedly: {0}")]
    Unexpected(String),
}

impl RedisFailure {
    pub(crate) fn of(e: &redis::RedisError) -> Self {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.is_unrecoverable_error()
        {
            Self::Unavailable(e.to_string())
        } else {
            match e.kind() {
                redis::ErrorKind::BusyLoadingError
                | redis::ErrorKind::TryAgain
                | redis::ErrorKind::ClusterDown
                | redis::ErrorKind::MasterDown
                | redis::ErrorKind::ReadOnly => Self::Unavailable(e.to_string()),
                _ => Self::Unexpected(e.to_string()),
            }
        }
    }

    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Self::Unavailable(_) => Outcome::Unavailable,
            Self::Timeout(_) => Outcome::Timeout,
            Self::Unexpected(_) => Outcome::Error,
        }
    }
}

/// After a failed connection attempt, callers fail at once for this long rather than
/// each waiting for a connect timeout.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(500);

struct Inner {
    client: redis::Client,
    config: RedisConfig,
    observer: Arc<dyn RedisObserver>,
    manager: tokio::sync::Mutex<Option<ConnectionManager>>,
    last_failed_connect: Mutex<Option<Instant>>,
    up: AtomicBool,
}

/// A handle on Redis, cheap to clone.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("url", &redacted_url(&self.inner.config.url))
            .field("prefix", &self.inner.config.key_prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// A handle on the Redis of `config`; nothing is connected yet (see [`Redis::ping`]).
    pub fn new(config: RedisConfig, observer: Arc<dyn RedisObserver>) -> Result<Self, String> {
        RedisConfig::check_url(&config.url)?;
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| format!("REDIS_URL: {}", e.category()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                config,
                observer,
                manager: tokio::sync::Mutex::new(None),
                last_failed_connect: Mutex::new(None),
                up: AtomicBool::new(false),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// `name` under the key prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.inner.config.key_prefix)
    }

    /// Whether the last operation reached Redis.
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Relaxed)
    }

    /// The client (for the subscriber's own connection).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.inner.client
    }

    fn manager_config(&self) -> ConnectionManagerConfig {
        let c = &self.inner.config;
        ConnectionManagerConfig::new()
            .set_connection_timeout(c.connect_timeout)
            .set_response_timeout(c.op_timeout)
            .set_number_of_retries(1)
            .set_max_delay(200)
    }

    async fn manager(&self) -> Result<ConnectionManager, RedisFailure> {
        let mut slot = self.inner.manager.lock().await;
        if let Some(m) = slot.as_ref() {
            return Ok(m.clone());
        }
        if let Ok(last) = self.inner.last_failed_connect.lock() {
            if last.is_some_and(|t| t.elapsed() < RECONNECT_BACKOFF) {
                return Err(RedisFailure::Unavailable(
                    "not connected (retrying shortly)".into(),
                ));
            }
        }
        let connect =
            ConnectionManager::new_with_config(self.inner.client.clone(), self.manager_config());
        let limit = self.inner.config.connect_timeout * 2;
        match tokio::time::timeout(limit, connect).await {
            Ok(Ok(m)) => {
                *slot = Some(m.clone());
                tracing::info!(url = %redacted_url(&self.inner.config.url), "redis: connected");
                Ok(m)
            }
            Ok(Err(e)) => Err(self.connect_failed(RedisFailure::of(&e))),
            Err(_) => {
                Err(self.connect_failed(RedisFailure::Unavailable("connect timed out".into())))
            }
        }
    }

    fn connect_failed(&self, f: RedisFailure) -> RedisFailure {
        if let Ok(mut last) = self.inner.last_failed_connect.lock() {
            *last = Some(Instant::now());
        }
        self.set_up(false);
        f
    }

    fn set_up(&self, up: bool) {
        let was = self.inner.up.swap(up, Ordering::Relaxed);
        if was && !up {
            tracing::warn!("redis: unavailable; shared live state degrades until it is back");
        } else if !was && up {
            tracing::info!("redis: available");
        }
    }

    /// Runs `op` on the connection, bounded by `op_timeout`, measured as `name`.
    pub async fn run<T, F, Fut>(&self, name: &'static str, op: F) -> Result<T, RedisFailure>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let started = Instant::now();
        let conn = match self.manager().await {
            Ok(c) => c,
            Err(f) => {
                self.inner
                    .observer
                    .operation(name, f.outcome(), started.elapsed());
                return Err(f);
            }
        };
        self.observe_from(name, started, op(conn)).await
    }

    /// Awaits `fut` (an operation on some connection), bounded by `op_timeout`,
    /// measured as `name`.
    pub(crate) async fn observe<T>(
        &self,
        name: &'static str,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RedisFailure> {
        self.observe_from(name, Instant::now(), fut).await
    }

    async fn observe_from<T>(
        &self,
        name: &'static str,
        started: Instant,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RedisFailure> {
        let result = match tokio::time::timeout(self.inner.config.op_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(RedisFailure::of(&e)),
            Err(_) => Err(RedisFailure::Timeout(format!(
                "no answer within {} ms",
                self.inner.config.op_timeout.as_millis()
            ))),
        };
        let elapsed = started.elapsed();
        match &result {
            Ok(_) => {
                self.set_up(true);
                self.inner.observer.operation(name, Outcome::Ok, elapsed);
            }
            Err(f) => {
                if !matches!(f, RedisFailure::Unexpected(_)) {
                    self.set_up(false);
                }
                self.inner.observer.operation(name, f.outcome(), elapsed);
            }
        }
        result
    }

    /// `PING`: how long Redis took to answer.
    pub async fn ping(&self) -> Result<Duration, RedisFailure> {
        let started = Instant::now();
        self.run("ping", |mut c| async move {
            redis::cmd("PING").query_async::<String>(&mut c).await
        })
        .await
        .map(|_| started.elapsed())
    }
}
