//! Wiring of Redis (`REDIS_URL`): the adapter of live reply state that replaces the
//! in-process one, its readiness check (reported, never required: without Redis a
//! replica still serves its own streams), and the hook through which the adapter's
//! operations reach `/metrics` once the metrics exist.

use crate::config::RedisSettings;
use crate::metrics::redis::RedisMetrics;
use crate::metrics::GaugeSample;
use crate::routes::health::{Check, Probe};
use infra_redis::{Outcome, Redis, RedisConfig, RedisLive, RedisObserver};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Forwards the adapter's reports to the service's metrics, which are made after the
/// adapters (reports before that are dropped).
#[derive(Debug, Default)]
pub struct MetricsSlot(OnceLock<RedisMetrics>);

impl MetricsSlot {
    /// Starts forwarding to `metrics` (the first call wins).
    pub fn connect(&self, metrics: RedisMetrics) {
        let _ = self.0.set(metrics);
    }
}

impl RedisObserver for MetricsSlot {
    fn operation(&self, op: &'static str, outcome: Outcome, elapsed: Duration) {
        if let Some(m) = self.0.get() {
            m.operation(op, outcome, elapsed);
        }
    }
}

/// The adapter's settings from the service's.
pub fn redis_config(s: &RedisSettings) -> RedisConfig {
    let mut c = RedisConfig::new(s.url.expose());
    c.key_prefix = s.key_prefix.clone();
    c.finished_ttl = Duration::from_secs(s.finished_ttl_secs);
    c.lease = Duration::from_secs(s.lease_secs);
    c.op_timeout = Duration::from_millis(s.timeout_ms);
    c.connect_timeout = Duration::from_millis(s.connect_timeout_ms);
    c
}

/// The Redis side of the wiring.
#[derive(Debug, Clone)]
pub struct RedisWired {
    /// The live-reply adapter.
    pub live: Arc<RedisLive>,
    /// Where its operations are reported.
    pub metrics: Arc<MetricsSlot>,
}

/// Makes the adapter (nothing is connected yet) and says in `notes` whether Redis
/// answers now; it is used either way and reconnects by itself.
pub async fn wire(s: &RedisSettings, notes: &mut Vec<String>) -> anyhow::Result<RedisWired> {
    let metrics = Arc::new(MetricsSlot::default());
    let redis = Redis::new(redis_config(s), metrics.clone())
        .map_err(|why| anyhow::anyhow!("redis.url (REDIS_URL): {why}"))?;
    let url = infra_redis::redacted_url(s.url.expose());
    match tokio::time::timeout(Duration::from_millis(500), redis.ping()).await {
        Ok(Ok(_)) => notes.push(format!(
            "live replies: shared through Redis at {url} (prefix {})",
            s.key_prefix
        )),
        _ => notes.push(format!(
            "live replies: shared through Redis at {url} (prefix {}), NOT REACHABLE yet: each replica serves its own streams until it is",
            s.key_prefix
        )),
    }
    Ok(RedisWired {
        live: Arc::new(RedisLive::new(redis)),
        metrics,
    })
}

impl RedisWired {
    /// Replaces the in-process live state of `adapters` with this, with leases of the
    /// configured length renewed (and swept) every third of it, and adds the `redis`
    /// readiness check.
    pub fn apply(self, adapters: &mut crate::startup::Adapters, s: &RedisSettings) {
        let lease = Duration::from_secs(s.lease_secs);
        adapters.live_config.lease_ttl = lease;
        adapters.live_config.renew_every = lease / 3;
        adapters.probe = Arc::new(RedisProbe {
            inner: adapters.probe.clone(),
            redis: self.live.redis().clone(),
        });
        adapters.live = self.live;
        adapters.redis_metrics = Some(self.metrics);
    }
}

/// Adds the `redis` check (reported only) to another probe's.
#[derive(Debug)]
pub struct RedisProbe {
    /// The storage (and events) probe.
    pub inner: Arc<dyn Probe>,
    /// The connection.
    pub redis: Redis,
}

#[async_trait::async_trait]
impl Probe for RedisProbe {
    async fn checks(&self) -> BTreeMap<String, Check> {
        let mut out = self.inner.checks().await;
        let check = match self.redis.ping().await {
            Ok(took) => Check {
                ok: true,
                detail: format!("redis answers in {} µs", took.as_micros()),
                required: false,
            },
            Err(e) => Check {
                ok: false,
                detail: format!(
                    "redis unavailable ({e}): resume and cross-replica cancel answer 503, rate limits are per process"
                ),
                required: false,
            },
        };
        out.insert("redis".to_owned(), check);
        out
    }

    async fn gauges(&self) -> GaugeSample {
        self.inner.gauges().await
    }
}
