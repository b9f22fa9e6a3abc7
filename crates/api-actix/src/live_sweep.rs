//! The periodic sweep of replies whose generating process died (their lease lapsed):
//! each replica runs it; marking a reply failed is conditional in storage, so two
//! replicas sweeping the same reply store it once.

use domain::services::MessageService;
use std::time::Duration;

/// The running sweep; stops when dropped.
#[derive(Debug)]
pub struct LiveSweep {
    task: tokio::task::JoinHandle<()>,
}

impl LiveSweep {
    /// Sweeps every `every` on the current runtime.
    pub fn spawn(messages: MessageService, every: Duration) -> Self {
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match messages.reap_lapsed().await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(
                        replies = n,
                        "marked failed the replies of a process that stopped renewing its leases"
                    ),
                    Err(e) => {
                        tracing::warn!(error = ?e, "the sweep of lapsed leases failed; trying again")
                    }
                }
            }
        });
        Self { task }
    }

    /// Stops the sweep.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for LiveSweep {
    fn drop(&mut self) {
        self.task.abort();
    }
}
