//! The background maintenance task: resumes stalled user erasures and, when
//! `retention.chat_idle_days` is set, sweeps idle chats every
//! `retention.sweep_interval_secs` (one replica at a time: the storage adapter's lock).

use crate::config::DataSettings;
use crate::metrics::{data::DataMetrics, Metrics};
use crate::startup::Adapters;
use domain::services::{ErasureService, RetentionService};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often stalled erasures are looked for.
const ERASURE_TICK: Duration = Duration::from_secs(30);

/// The task, built and not started.
#[derive(Debug)]
pub struct Maintenance {
    erasure: ErasureService,
    retention: Option<RetentionService>,
    sweep_every: Duration,
    metrics: DataMetrics,
}

/// The started task.
#[derive(Debug)]
pub struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops the task (after the step in hand) and waits for it.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

impl Maintenance {
    /// The task over the background adapters.
    pub fn new(
        settings: &DataSettings,
        adapters: &Adapters,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let retention = settings.chat_idle_days.map(|days| {
            RetentionService::new(
                adapters.data.retention.clone(),
                adapters.clock.clone(),
                Duration::from_secs(u64::from(days) * 86_400),
            )
        });
        Ok(Self {
            erasure: ErasureService::new(
                adapters.data.background_erasure.clone(),
                adapters.clock.clone(),
            ),
            retention,
            sweep_every: Duration::from_secs(settings.sweep_interval_secs),
            metrics: DataMetrics::new(metrics)?,
        })
    }

    /// Sweeps once (if retention is on) and records it.
    async fn sweep(&self) {
        let Some(r) = &self.retention else { return };
        match r.sweep().await {
            Ok(report) => {
                self.metrics.retention_sweeps.inc();
                self.metrics.retention_deleted.inc_by(report.deleted);
                if report.deleted > 0 {
                    tracing::info!(deleted = report.deleted, "retention: idle chats deleted");
                }
                if report.busy_elsewhere {
                    tracing::debug!("retention: another replica is sweeping");
                }
            }
            Err(e) => tracing::warn!(error = ?e, "retention sweep failed; trying again next time"),
        }
    }

    async fn resume(&self) {
        match self.erasure.resume_stalled().await {
            Ok(n) => self.metrics.erasures_resumed.inc_by(n as u64),
            Err(e) => tracing::warn!(error = ?e, "resuming stalled erasures failed"),
        }
    }

    /// Starts the task on the current runtime.
    pub fn spawn(self) -> Running {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut erasures = tokio::time::interval(ERASURE_TICK);
            let mut sweeps = tokio::time::interval(self.sweep_every);
            loop {
                let sweep = tokio::select! {
                    () = token.cancelled() => return,
                    _ = erasures.tick() => false,
                    _ = sweeps.tick() => true,
                };
                // A step stopped midway loses nothing: each batch is one transaction.
                let step = async {
                    if sweep {
                        self.sweep().await;
                    } else {
                        self.resume().await;
                    }
                };
                tokio::select! {
                    () = token.cancelled() => return,
                    () = step => {}
                }
            }
        });
        Running { stop, task }
    }
}
