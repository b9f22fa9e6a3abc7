//! Prometheus metrics: one registry per service instance holding the HTTP, LLM and
//! runtime families, and the `GET /metrics` handler. Database pool and outbox figures
//! come from the adapters' [`Probe::gauges`](crate::routes::health::Probe::gauges).

pub mod data;
pub mod http;
pub mod llm;
pub mod redis;

use crate::routes::health::Probe;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::Arc;
use std::time::Duration;

/// How long a scrape waits for the probe's gauges before reporting without them.
const GAUGES_TIMEOUT: Duration = Duration::from_millis(500);

/// One connection pool's state, as reported by the wiring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSample {
    /// The pool's name (`requests`, `relay`).
    pub pool: String,
    /// Largest number of connections.
    pub max_size: u64,
    /// Connections checked out.
    pub in_use: u64,
    /// Callers waiting for a connection.
    pub waiting: u64,
    /// Scanning reads waiting for a read permit (`DB_READ_CONCURRENCY`).
    pub reads_waiting: u64,
}

/// Figures read from the adapters at each scrape (see `Probe::gauges`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GaugeSample {
    /// Database pools.
    pub pools: Vec<PoolSample>,
    /// Events stored in the outbox and not yet published, when there is an outbox.
    pub outbox_backlog: Option<u64>,
    /// Outbox entries set aside (dead), waiting for an operator.
    pub outbox_dead: Option<u64>,
    /// Entries the relay of this process set aside since start.
    pub outbox_dead_total: Option<u64>,
}

/// Every metric family of the service, registered in its own registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub(crate) http: http::HttpMetrics,
    pub(crate) llm: llm::LlmMetrics,
    pub(crate) redis: redis::RedisMetrics,
    generations_active: IntGauge,
    tasks_running: IntGauge,
    db_pool_max: IntGaugeVec,
    db_pool_in_use: IntGaugeVec,
    db_pool_waiting: IntGaugeVec,
    db_pool_reads_waiting: IntGaugeVec,
    outbox_backlog: IntGauge,
    outbox_dead: IntGauge,
    outbox_dead_total: IntCounter,
    probe: Option<Arc<dyn Probe>>,
}

fn gauge(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn counter(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    let c = IntCounter::new(name, help)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

pub(crate) fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

pub(crate) fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> prometheus::Result<HistogramVec> {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}

impl Metrics {
    /// The registry every family is registered in.
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A fresh registry with every family; `probe` reports pool and outbox figures.
    pub fn new(probe: Option<Arc<dyn Probe>>) -> anyhow::Result<Self> {
        let r = Registry::new();
        Ok(Self {
            http: http::HttpMetrics::new(&r)?,
            llm: llm::LlmMetrics::new(&r)?,
            redis: redis::RedisMetrics::new(&r)?,
            generations_active: gauge(
                &r,
                "chat_generations_active",
                "Replies being generated right now.",
            )?,
            tasks_running: gauge(
                &r,
                "chat_background_tasks",
                "Detached reply tasks still running (shutdown waits for them).",
            )?,
            db_pool_max: gauge_vec(
                &r,
                "db_pool_max_connections",
                "Largest size of each database pool.",
                &["pool"],
            )?,
            db_pool_in_use: gauge_vec(
                &r,
                "db_pool_connections_in_use",
                "Database connections checked out, per pool.",
                &["pool"],
            )?,
            db_pool_waiting: gauge_vec(
                &r,
                "db_pool_waiting",
                "Callers waiting for a database connection, per pool.",
                &["pool"],
            )?,
            db_pool_reads_waiting: gauge_vec(
                &r,
                "db_pool_reads_waiting",
                "Scanning reads (lists, searches, branch pages, export pages) waiting for a read permit, per pool.",
                &["pool"],
            )?,
            outbox_backlog: gauge(
                &r,
                "outbox_backlog",
                "Events stored in the outbox and not yet published (dead entries excluded).",
            )?,
            outbox_dead: gauge(
                &r,
                "outbox_dead",
                "Outbox entries set aside (dead) after failing with a final error; `chat-service outbox retry-dead` retries them.",
            )?,
            outbox_dead_total: counter(
                &r,
                "outbox_dead_total",
                "Outbox entries this process set aside (dead) since start.",
            )?,
            probe,
            registry: r,
        })
    }

    /// Wraps an LLM client so its calls are measured in these metrics, labelled by
    /// model when `catalog` lists it (`other` otherwise).
    pub fn metered(
        &self,
        inner: Arc<dyn domain::ports::LlmClient>,
        catalog: Arc<dyn domain::ports::ModelCatalog>,
    ) -> Arc<dyn domain::ports::LlmClient> {
        Arc::new(llm::MeteredLlm::new(inner, self.llm.clone(), catalog))
    }

    /// Reads the scrape-time gauges, then renders the text exposition format.
    pub async fn render(&self, state: &AppState) -> String {
        self.generations_active
            .set(i64::try_from(state.messages.active_generations()).unwrap_or(i64::MAX));
        self.tasks_running
            .set(i64::try_from(state.spawner.running()).unwrap_or(i64::MAX));
        if let Some(probe) = &self.probe {
            match tokio::time::timeout(GAUGES_TIMEOUT, probe.gauges()).await {
                Ok(sample) => self.apply(&sample),
                Err(_) => tracing::warn!("metrics: the adapters' gauges did not answer in time"),
            }
        }
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "metrics: cannot encode");
                String::new()
            })
    }

    fn apply(&self, s: &GaugeSample) {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for p in &s.pools {
            self.db_pool_max
                .with_label_values(&[&p.pool])
                .set(n(p.max_size));
            self.db_pool_in_use
                .with_label_values(&[&p.pool])
                .set(n(p.in_use));
            self.db_pool_waiting
                .with_label_values(&[&p.pool])
                .set(n(p.waiting));
            self.db_pool_reads_waiting
                .with_label_values(&[&p.pool])
                .set(n(p.reads_waiting));
        }
        if let Some(b) = s.outbox_backlog {
            self.outbox_backlog.set(n(b));
        }
        if let Some(d) = s.outbox_dead {
            self.outbox_dead.set(n(d));
        }
        if let Some(total) = s.outbox_dead_total {
            // The relay counts; the counter follows (it never goes down).
            let seen = self.outbox_dead_total.get();
            self.outbox_dead_total.inc_by(total.saturating_sub(seen));
        }
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain; version=0.0.4", body = String,
        description = "Prometheus text exposition format")))]
pub async fn handler(metrics: web::Data<Metrics>, state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render(&state).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_and_outbox_gauges_render() {
        let m = Metrics::new(None).unwrap();
        m.apply(&GaugeSample {
            pools: vec![PoolSample {
                pool: "requests".into(),
                max_size: 8,
                in_use: 3,
                waiting: 1,
                reads_waiting: 4,
            }],
            outbox_backlog: Some(42),
            outbox_dead: Some(2),
            outbox_dead_total: Some(3),
        });
        m.apply(&GaugeSample {
            outbox_dead_total: Some(5),
            ..GaugeSample::default()
        });
        let text = TextEncoder::new()
            .encode_to_string(&m.registry.gather())
            .unwrap();
        assert!(
            text.contains("db_pool_connections_in_use{pool=\"requests\"} 3"),
            "{text}"
        );
        assert!(text.contains("db_pool_waiting{pool=\"requests\"} 1"));
        assert!(text.contains("db_pool_reads_waiting{pool=\"requests\"} 4"));
        assert!(text.contains("db_pool_max_connections{pool=\"requests\"} 8"));
        assert!(text.contains("outbox_backlog 42"));
        assert!(text.contains("outbox_dead 2"));
        assert!(text.contains("outbox_dead_total 5"), "{text}");
    }
}
