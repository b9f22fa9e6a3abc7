//! The retention service: deletes chats idle longer than the configured period, in
//! small batches, each chat with its `chat.deleted` event.

use super::DataError;
use crate::model::{Chat, Event, EventKind};
use crate::ports::{Clock, RetentionRepository};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// Chats deleted per batch (each batch is one transaction).
pub const RETENTION_BATCH: u32 = 100;
/// Most batches of one sweep; what is left waits for the next sweep.
pub const RETENTION_MAX_BATCHES: u32 = 1000;

/// What one sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepReport {
    /// Chats deleted.
    pub deleted: u64,
    /// Whether another replica was sweeping (this one then stopped).
    pub busy_elsewhere: bool,
}

/// Deletes idle chats.
#[derive(Clone)]
pub struct RetentionService {
    repo: Arc<dyn RetentionRepository>,
    clock: Arc<dyn Clock>,
    idle: Duration,
}

impl std::fmt::Debug for RetentionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetentionService")
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

/// The event of a chat deleted by retention: `chat.deleted`, on behalf of its owner.
pub fn retention_deleted_event(chat: &Chat, at: DateTime<Utc>) -> Event {
    Event::new(
        at,
        chat.owner().clone(),
        chat.id(),
        EventKind::ChatDeleted { chat_id: chat.id() },
    )
}

impl RetentionService {
    /// A service deleting chats with no activity for `idle`.
    pub fn new(repo: Arc<dyn RetentionRepository>, clock: Arc<dyn Clock>, idle: Duration) -> Self {
        Self { repo, clock, idle }
    }

    /// One sweep: batches of [`RETENTION_BATCH`] chats idle since before now minus the
    /// period, oldest first, until none is left (or [`RETENTION_MAX_BATCHES`]).
    #[tracing::instrument(skip_all)]
    pub async fn sweep(&self) -> Result<SweepReport, DataError> {
        let idle = chrono::Duration::from_std(self.idle).unwrap_or(chrono::Duration::MAX);
        let mut report = SweepReport::default();
        for _ in 0..RETENTION_MAX_BATCHES {
            let now = self.clock.now();
            let before = now
                .checked_sub_signed(idle)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            match self
                .repo
                .delete_idle_chats(before, RETENTION_BATCH, now, retention_deleted_event)
                .await?
            {
                None => {
                    report.busy_elsewhere = true;
                    break;
                }
                Some(chats) => {
                    report.deleted += chats.len() as u64;
                    if chats.len() < RETENTION_BATCH as usize {
                        break;
                    }
                }
            }
        }
        Ok(report)
    }
}
