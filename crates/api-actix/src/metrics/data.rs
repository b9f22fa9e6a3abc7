//! Metrics of the background maintenance: chats deleted by retention, erasures resumed.

use super::Metrics;
use prometheus::IntCounter;

/// The maintenance job's counters.
#[derive(Debug, Clone)]
pub struct DataMetrics {
    /// `retention_chats_deleted_total`.
    pub retention_deleted: IntCounter,
    /// `retention_sweeps_total`.
    pub retention_sweeps: IntCounter,
    /// `erasures_resumed_total`.
    pub erasures_resumed: IntCounter,
}

fn counter(m: &Metrics, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    let c = IntCounter::new(name, help)?;
    m.registry().register(Box::new(c.clone()))?;
    Ok(c)
}

impl DataMetrics {
    /// Registers the counters in the service's registry.
    pub fn new(m: &Metrics) -> prometheus::Result<Self> {
        Ok(Self {
            retention_deleted: counter(
                m,
                "retention_chats_deleted_total",
                "Chats deleted by retention (idle longer than retention.chat_idle_days)",
            )?,
            retention_sweeps: counter(m, "retention_sweeps_total", "Retention sweeps run")?,
            erasures_resumed: counter(
                m,
                "erasures_resumed_total",
                "Stalled user erasures resumed and completed by the maintenance job",
            )?,
        })
    }
}
