//! What handlers share: the domain services and the spawner for reply generations.

use domain::services::{ChatService, ErasureService, ExportService, MessageService, SearchService};
use std::future::Future;
use tokio::runtime::Handle;
use tokio_util::task::TaskTracker;

/// Runs reply generations on the main runtime, detached from the request that started
/// them (so a client going away never cuts a reply), and tracks them so shutdown can
/// wait for them.
#[derive(Debug, Clone)]
pub struct Spawner {
    handle: Handle,
    tracker: TaskTracker,
}

impl Spawner {
    /// A spawner on the current runtime.
    pub fn current() -> Self {
        Self {
            handle: Handle::current(),
            tracker: TaskTracker::new(),
        }
    }

    /// Spawns a tracked task.
    pub fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(self.tracker.track_future(fut))
    }

    /// Waits until every spawned task is done, at most `limit`; returns whether they all finished.
    pub async fn drain(&self, limit: std::time::Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(limit, self.tracker.wait())
            .await
            .is_ok()
    }

    /// Tasks still running.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }
}

/// The domain's `Sleeper` port on tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

#[async_trait::async_trait]
impl domain::ports::Sleeper for TokioSleeper {
    async fn sleep(&self, duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Shared state of the HTTP handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Chats.
    pub chats: ChatService,
    /// Messages and replies.
    pub messages: MessageService,
    /// Message search.
    pub search: SearchService,
    /// Export.
    pub export: ExportService,
    /// Erasure.
    pub erasure: ErasureService,
    /// Where generations run.
    pub spawner: Spawner,
    /// How long an idempotent retry waits for the first send's reply to finish.
    pub replay_wait: std::time::Duration,
}
