//! The erasure service: erases everything a user stored, in batches, then emits one
//! `user.erased` event. Small erasures finish at once; large ones continue in the
//! background, and a durable request lets any replica resume one whose runner died.

use super::DataError;
use crate::model::{Event, UserId};
use crate::ports::{Clock, ErasureRepository};
use std::sync::Arc;
use std::time::Duration;

/// Chats deleted per batch (each batch is one transaction).
pub const ERASE_BATCH_CHATS: u32 = 50;
/// An erasure whose request was not renewed for this long is taken for stalled (its
/// runner died) and resumed by the maintenance job.
pub const ERASE_STALL_AFTER: Duration = Duration::from_secs(60);

/// What an erasure removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErasureReport {
    /// Chats deleted.
    pub chats: u64,
    /// Messages deleted with them.
    pub messages: u64,
}

/// The outcome of asking for an erasure.
#[derive(Debug)]
pub enum Erasure {
    /// Everything is erased and `user.erased` is stored.
    Done(ErasureReport),
    /// More than one batch: the rest is to be done by running the job (in the
    /// background); the request is stored, so it is resumed if the job dies.
    Started(ErasureJob),
}

/// The rest of an erasure.
#[derive(Debug)]
pub struct ErasureJob {
    service: ErasureService,
    user: UserId,
    report: ErasureReport,
}

impl ErasureJob {
    /// The user being erased.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// Erases the remaining batches, then finishes.
    pub async fn run(self) -> Result<ErasureReport, DataError> {
        self.service.complete(&self.user, self.report).await
    }
}

/// Erases users.
#[derive(Clone)]
pub struct ErasureService {
    repo: Arc<dyn ErasureRepository>,
    clock: Arc<dyn Clock>,
    batch: u32,
}

impl std::fmt::Debug for ErasureService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErasureService")
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl ErasureService {
    /// A service deleting [`ERASE_BATCH_CHATS`] chats per batch.
    pub fn new(repo: Arc<dyn ErasureRepository>, clock: Arc<dyn Clock>) -> Self {
        Self {
            repo,
            clock,
            batch: ERASE_BATCH_CHATS,
        }
    }

    /// The same service with another batch size (at least 1).
    pub fn with_batch(self, batch: u32) -> Self {
        Self {
            batch: batch.max(1),
            ..self
        }
    }

    /// Starts erasing `user`: records the request and deletes a first batch. If that was
    /// everything, finishes (one `user.erased` event) and returns `Done`; otherwise
    /// returns the job that does the rest. Asking again is harmless: it erases whatever
    /// is there (nothing, the second time) and emits `user.erased` again.
    #[tracing::instrument(skip_all, fields(user = %user))]
    pub async fn erase(&self, user: &UserId) -> Result<Erasure, DataError> {
        self.repo.request_erasure(user, self.clock.now()).await?;
        let first = self
            .repo
            .erase_chats(user, self.batch, self.clock.now())
            .await?;
        let report = ErasureReport {
            chats: first.chats,
            messages: first.messages,
        };
        if first.more {
            return Ok(Erasure::Started(ErasureJob {
                service: self.clone(),
                user: user.clone(),
                report,
            }));
        }
        self.finish(user).await?;
        Ok(Erasure::Done(report))
    }

    /// Erases `user` completely before returning (the operator's `erase-user`).
    pub async fn erase_now(&self, user: &UserId) -> Result<ErasureReport, DataError> {
        match self.erase(user).await? {
            Erasure::Done(r) => Ok(r),
            Erasure::Started(job) => job.run().await,
        }
    }

    /// Resumes erasures whose runner died; returns how many were completed.
    pub async fn resume_stalled(&self) -> Result<usize, DataError> {
        let stall = chrono::Duration::from_std(ERASE_STALL_AFTER).unwrap_or_default();
        let users = self
            .repo
            .stalled_erasures(self.clock.now() - stall, 10)
            .await?;
        for user in &users {
            tracing::info!(user = %user, "resuming a stalled erasure");
            self.complete(user, ErasureReport::default()).await?;
        }
        Ok(users.len())
    }

    async fn complete(
        &self,
        user: &UserId,
        mut report: ErasureReport,
    ) -> Result<ErasureReport, DataError> {
        loop {
            let batch = self
                .repo
                .erase_chats(user, self.batch, self.clock.now())
                .await?;
            report.chats += batch.chats;
            report.messages += batch.messages;
            if !batch.more {
                break;
            }
        }
        self.finish(user).await?;
        Ok(report)
    }

    async fn finish(&self, user: &UserId) -> Result<(), DataError> {
        let event = Event::user_erased(self.clock.now(), user.clone());
        if self.repo.finish_erasure(user, &event).await? {
            tracing::info!(user = %user, "user erased");
        }
        Ok(())
    }
}
