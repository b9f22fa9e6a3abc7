//! What handlers share: the domain services, the spawner for reply generations, and
//! the trigger that starts automatic titles after a reply.

use domain::services::{
    Actor, ChatService, ErasureService, ExportService, MessageService, ModelService, ReplyObserver,
    SearchService, TitleService,
};
use domain::Message;
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
    /// Token usage.
    pub usage: domain::services::UsageService,
    /// Erasure.
    pub erasure: ErasureService,
    /// The models on offer.
    pub models: ModelService,
    /// Where generations run.
    pub spawner: Spawner,
    /// How long an idempotent retry waits for the first send's reply to finish.
    pub replay_wait: std::time::Duration,
}

/// Starts the automatic title of a chat, detached, after a reply is stored (the
/// domain's `TitleService` decides whether and how; this only spawns it, tracked so
/// shutdown waits for it).
#[derive(Debug, Clone)]
pub struct TitleTrigger {
    titles: TitleService,
    spawner: Spawner,
}

impl TitleTrigger {
    /// A trigger running `titles` on `spawner`.
    pub fn new(titles: TitleService, spawner: Spawner) -> Self {
        Self { titles, spawner }
    }
}

impl ReplyObserver for TitleTrigger {
    fn reply_stored(&self, actor: &Actor, reply: &Message) {
        if !self.titles.wants(reply) {
            return;
        }
        let (titles, actor, reply) = (self.titles.clone(), actor.clone(), reply.clone());
        self.spawner.spawn(async move {
            titles.after_reply(&actor, &reply).await;
        });
    }
}
