//! The usage ledger port: tokens spent per user, UTC day, model and purpose. Replies
//! are charged by `MessageRepository::finish_reply`, in the same change as the reply's
//! final state; other charges (titles) are recorded here.

use crate::model::{UsageEntry, UsageRow, UserId};
use crate::ports::StoreError;
use async_trait::async_trait;
use chrono::NaiveDate;

/// The shared ledger of token usage (every replica reads and writes the same one, so
/// quotas hold across replicas).
///
/// Contract (checked by the usage contract suite against every adapter):
/// - entries with the same user, day, model, purpose and `estimated` add up into one
///   row (`requests` counts them); the others stay apart;
/// - `finish_reply` with an entry records it exactly when it changes the reply (a reply
///   no longer `streaming`, or gone, is not charged), atomically with the reply;
/// - `daily_usage` returns only the user's rows with `from ≤ day ≤ to`, ordered by day,
///   model, purpose, then reported before estimated;
/// - an erasure's final step deletes the user's rows.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UsageRepository: Send + Sync {
    /// Adds an entry to the ledger.
    async fn record_usage(&self, entry: &UsageEntry) -> Result<(), StoreError>;
    /// The user's ledger rows from `from` to `to`, both included.
    async fn daily_usage(
        &self,
        user: &UserId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<UsageRow>, StoreError>;
}
