//! Token accounting: what a finished reply or a title is charged (reported usage, or
//! an estimate marked as such), and the usage report of `GET /usage`.

use super::Actor;
use crate::model::{
    estimate_tokens, Message, MessageStatus, Usage, UsageEntry, UsageGroupBy, UsagePurpose,
    UsageRange, UsageRangeError, UsageRow, UserId,
};
use crate::ports::{Clock, LlmRequest, StoreError, UsageRepository};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The estimated prompt tokens of a request: [`estimate_tokens`] of each message's text.
pub fn estimate_prompt(request: &LlmRequest) -> u32 {
    request
        .messages
        .iter()
        .map(|m| estimate_tokens(&m.content))
        .fold(0u32, u32::saturating_add)
}

/// What a finished reply is charged. The provider's usage when it reported one;
/// otherwise an estimate (`prompt_estimate` and the reply's text), marked as such,
/// under the model that answered.
/// A reply that produced nothing and reported nothing (the provider failed, or it was
/// cancelled, before its first token) is not charged.
pub fn reply_entry(user: &UserId, reply: &Message, prompt_estimate: u32) -> Option<UsageEntry> {
    let (usage, estimated) = match reply.usage() {
        Some(u) => (u, false),
        None if reply.status() == MessageStatus::Complete || !reply.content().is_empty() => (
            Usage {
                prompt_tokens: prompt_estimate,
                completion_tokens: estimate_tokens(reply.content()),
            },
            true,
        ),
        None => return None,
    };
    Some(UsageEntry {
        user: user.clone(),
        day: reply.updated_at().date_naive(),
        model: reply
            .model()
            .map(str::to_owned)
            .unwrap_or_else(|| "unknown".to_owned()),
        purpose: UsagePurpose::Reply,
        usage,
        estimated,
    })
}

/// What a title request is charged: reported usage, or an estimate of its prompt and answer.
pub fn title_entry(
    user: &UserId,
    model: &str,
    at: DateTime<Utc>,
    reported: Option<Usage>,
    prompt_estimate: u32,
    answer: &str,
) -> UsageEntry {
    let (usage, estimated) = match reported {
        Some(u) => (u, false),
        None => (
            Usage {
                prompt_tokens: prompt_estimate,
                completion_tokens: estimate_tokens(answer),
            },
            true,
        ),
    };
    UsageEntry {
        user: user.clone(),
        day: at.date_naive(),
        model: model.to_owned(),
        purpose: UsagePurpose::Title,
        usage,
        estimated,
    }
}

/// Token counts summed over ledger rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageTotals {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Of prompt plus completion tokens, how many are estimates.
    pub estimated_tokens: u64,
    /// Replies or titles charged.
    pub requests: u64,
}

impl UsageTotals {
    /// Prompt plus completion tokens.
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }

    fn add(&mut self, row: &UsageRow) {
        self.prompt_tokens = self.prompt_tokens.saturating_add(row.prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(row.completion_tokens);
        if row.estimated {
            self.estimated_tokens = self.estimated_tokens.saturating_add(row.total_tokens());
        }
        self.requests = self.requests.saturating_add(row.requests);
    }
}

/// The totals of one group of a usage report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageGroup {
    /// The day (`YYYY-MM-DD`) or the model, after the report's grouping.
    pub key: String,
    /// What the tokens were spent on.
    pub purpose: UsagePurpose,
    /// The sums.
    pub totals: UsageTotals,
}

/// A user's usage over a range of days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageReport {
    /// First day (included).
    pub from: NaiveDate,
    /// Last day (included).
    pub to: NaiveDate,
    /// How `groups` are formed.
    pub group_by: UsageGroupBy,
    /// Everything in the range.
    pub total: UsageTotals,
    /// One per key and purpose with any usage, by key then purpose (`reply` first).
    pub groups: Vec<UsageGroup>,
}

/// Sums ledger rows into a report's groups and total.
pub fn summarize(rows: &[UsageRow], range: UsageRange, group_by: UsageGroupBy) -> UsageReport {
    let mut total = UsageTotals::default();
    let mut groups: BTreeMap<(String, UsagePurpose), UsageTotals> = BTreeMap::new();
    for row in rows
        .iter()
        .filter(|r| r.day >= range.from() && r.day <= range.to())
    {
        total.add(row);
        let key = match group_by {
            UsageGroupBy::Day => row.day.format("%Y-%m-%d").to_string(),
            UsageGroupBy::Model => row.model.clone(),
        };
        groups.entry((key, row.purpose)).or_default().add(row);
    }
    UsageReport {
        from: range.from(),
        to: range.to(),
        group_by,
        total,
        groups: groups
            .into_iter()
            .map(|((key, purpose), totals)| UsageGroup {
                key,
                purpose,
                totals,
            })
            .collect(),
    }
}

/// Failure of a usage report.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// The range is reversed or too long.
    #[error(transparent)]
    InvalidRange(UsageRangeError),
    /// Storage cannot be reached.
    #[error("storage unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unknown(anyhow::Error),
}

impl From<StoreError> for UsageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(e) => UsageError::Unavailable(e),
            StoreError::Unknown(e) => UsageError::Unknown(e),
            other => UsageError::Unknown(anyhow::anyhow!(other.to_string())),
        }
    }
}

/// Reads a user's usage.
#[derive(Clone)]
pub struct UsageService {
    ledger: Arc<dyn UsageRepository>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for UsageService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageService").finish_non_exhaustive()
    }
}

impl UsageService {
    /// A service over the ledger.
    pub fn new(ledger: Arc<dyn UsageRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { ledger, clock }
    }

    /// The actor's usage from `from` to `to` (UTC days, both included; defaults as in
    /// [`UsageRange::new`]), grouped by day or model, and by purpose.
    #[tracing::instrument(skip_all)]
    pub async fn report(
        &self,
        actor: &Actor,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        group_by: UsageGroupBy,
    ) -> Result<UsageReport, UsageError> {
        let today = self.clock.now().date_naive();
        let range = UsageRange::new(from, to, today).map_err(UsageError::InvalidRange)?;
        let rows = self
            .ledger
            .daily_usage(&actor.user, range.from(), range.to())
            .await?;
        Ok(summarize(&rows, range, group_by))
    }
}

#[cfg(test)]
#[path = "usage_tests.rs"]
mod tests;
