//! Metrics of the Redis adapter: operations by name and outcome, and their latency.
//! The adapter reports to them through its `RedisObserver` hook, so `infra-redis`
//! needs no metrics library. (Rate-limit checks let through because Redis did not
//! answer are counted by the rate limiter: `chat_rate_limit_fail_open_total`.)

use super::{counter_vec, histogram_vec};
use infra_redis::{Outcome, RedisObserver};
use prometheus::{HistogramVec, IntCounterVec, Registry};
use std::time::Duration;

const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The Redis families.
#[derive(Debug, Clone)]
pub struct RedisMetrics {
    operations: IntCounterVec,
    latency: HistogramVec,
}

impl RedisMetrics {
    pub(crate) fn new(r: &Registry) -> prometheus::Result<Self> {
        Ok(Self {
            operations: counter_vec(
                r,
                "redis_operations_total",
                "Redis operations by name and outcome (ok, error, timeout, unavailable).",
                &["op", "outcome"],
            )?,
            latency: histogram_vec(
                r,
                "redis_operation_duration_seconds",
                "Time of each Redis operation (one round trip), in seconds.",
                &["op"],
                LATENCY_BUCKETS,
            )?,
        })
    }
}

impl RedisObserver for RedisMetrics {
    fn operation(&self, op: &'static str, outcome: Outcome, elapsed: Duration) {
        self.operations
            .with_label_values(&[op, outcome.label()])
            .inc();
        self.latency
            .with_label_values(&[op])
            .observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_render() {
        let r = Registry::new();
        let m = RedisMetrics::new(&r).unwrap();
        m.operation("append", Outcome::Ok, Duration::from_micros(300));
        m.operation("append", Outcome::Unavailable, Duration::from_millis(2));
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&r.gather())
            .unwrap();
        assert!(
            text.contains("redis_operations_total{op=\"append\",outcome=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains("redis_operations_total{op=\"append\",outcome=\"unavailable\"} 1"));
        assert!(text.contains("redis_operation_duration_seconds_count{op=\"append\"} 2"));
    }
}
