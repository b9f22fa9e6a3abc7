//! Token quotas per user and UTC day or month, checked before a send or a regenerate
//! stores anything or calls the provider. They read the shared usage ledger, so any
//! number of replicas enforce one quota. A reply already in flight is never cut
//! short: it may finish past the quota, and the next turn is refused.

use crate::model::{month_start, next_month_start, UsageRow, UserId};
use crate::ports::{Clock, StoreError, UsageRepository};
use chrono::{DateTime, NaiveDate, Utc};
use std::sync::Arc;
use std::time::Duration;

/// The limits (`quota.tokens_per_day`, `quota.tokens_per_month`); `None` = no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaConfig {
    /// Most tokens (prompt plus completion, every purpose, estimates included) a user
    /// may spend per UTC day.
    pub tokens_per_day: Option<u64>,
    /// Most tokens per UTC calendar month.
    pub tokens_per_month: Option<u64>,
}

impl QuotaConfig {
    /// Whether any limit is set.
    pub fn is_on(&self) -> bool {
        self.tokens_per_day.is_some() || self.tokens_per_month.is_some()
    }
}

/// The period of a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaPeriod {
    /// The UTC day.
    Day,
    /// The UTC calendar month.
    Month,
}

impl QuotaPeriod {
    /// `day` or `month`.
    pub fn as_str(&self) -> &'static str {
        match self {
            QuotaPeriod::Day => "day",
            QuotaPeriod::Month => "month",
        }
    }
}

/// A user who has spent their quota.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token quota per {} ({limit}) is spent ({used} used)", period.as_str())]
pub struct QuotaExceeded {
    /// The period whose quota is spent (the month when both are).
    pub period: QuotaPeriod,
    /// Its limit.
    pub limit: u64,
    /// Tokens used in it so far.
    pub used: u64,
    /// When the period resets (the start of the next UTC day or month).
    pub resets_at: DateTime<Utc>,
    /// From now until `resets_at` (at least one second).
    pub retry_after: Duration,
}

/// Checks a user's usage against the quotas.
#[derive(Clone)]
pub struct Quota {
    ledger: Arc<dyn UsageRepository>,
    clock: Arc<dyn Clock>,
    config: QuotaConfig,
}

impl std::fmt::Debug for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quota")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why a quota check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// The quota is spent.
    #[error(transparent)]
    Exceeded(QuotaExceeded),
    /// The ledger could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Quota {
    /// Quotas over the shared ledger.
    pub fn new(
        ledger: Arc<dyn UsageRepository>,
        clock: Arc<dyn Clock>,
        config: QuotaConfig,
    ) -> Self {
        Self {
            ledger,
            clock,
            config,
        }
    }

    /// The limits.
    pub fn config(&self) -> QuotaConfig {
        self.config
    }

    /// Passes while the user has spent less than each limit (one read of the ledger:
    /// this month's rows); a user at or above a limit is refused until it resets.
    pub async fn check(&self, user: &UserId) -> Result<(), QuotaError> {
        if !self.config.is_on() {
            return Ok(());
        }
        let now = self.clock.now();
        let today = now.date_naive();
        let rows = self
            .ledger
            .daily_usage(user, month_start(today), today)
            .await?;
        match judge(&rows, self.config, now) {
            Some(e) => Err(QuotaError::Exceeded(e)),
            None => Ok(()),
        }
    }
}

impl Quota {
    /// The days of the ledger a check at `now` reads (this month's, up to today), when
    /// any limit is set.
    pub(crate) fn ledger_range(&self, now: DateTime<Utc>) -> Option<(NaiveDate, NaiveDate)> {
        let today = now.date_naive();
        self.config.is_on().then(|| (month_start(today), today))
    }

    /// The quota spent according to `rows` (read for [`Quota::ledger_range`]) at `now`.
    pub(crate) fn judge_rows(
        &self,
        rows: &[UsageRow],
        now: DateTime<Utc>,
    ) -> Option<QuotaExceeded> {
        if !self.config.is_on() {
            return None;
        }
        judge(rows, self.config, now)
    }
}

/// The quota spent according to this month's ledger rows at `now`, if any (the month's
/// when both are, since it resets last).
pub fn judge(rows: &[UsageRow], config: QuotaConfig, now: DateTime<Utc>) -> Option<QuotaExceeded> {
    let today = now.date_naive();
    let sum = |since: NaiveDate| -> u64 {
        rows.iter()
            .filter(|r| r.day >= since && r.day <= today)
            .map(UsageRow::total_tokens)
            .fold(0, u64::saturating_add)
    };
    let exceeded = |period, limit: u64, used: u64, reset: NaiveDate| {
        (used >= limit).then(|| {
            let resets_at = reset.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
            // Rounded up, so a client waiting this long finds the period reset.
            let ms = (resets_at - now).num_milliseconds();
            let secs = ((ms + 999) / 1000).max(1);
            QuotaExceeded {
                period,
                limit,
                used,
                resets_at,
                retry_after: Duration::from_secs(u64::try_from(secs).unwrap_or(1)),
            }
        })
    };
    let month = config.tokens_per_month.and_then(|limit| {
        exceeded(
            QuotaPeriod::Month,
            limit,
            sum(month_start(today)),
            next_month_start(today),
        )
    });
    month.or_else(|| {
        config.tokens_per_day.and_then(|limit| {
            let tomorrow = today.succ_opt().unwrap_or(NaiveDate::MAX);
            exceeded(QuotaPeriod::Day, limit, sum(today), tomorrow)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UsagePurpose;

    fn row(day: &str, tokens: u64, estimated: bool) -> UsageRow {
        UsageRow {
            day: NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap(),
            model: "m".into(),
            purpose: UsagePurpose::Reply,
            estimated,
            prompt_tokens: tokens / 2,
            completion_tokens: tokens - tokens / 2,
            requests: 1,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn no_limits_never_refuse() {
        let rows = [row("2026-12-01", 1_000_000, false)];
        assert_eq!(
            judge(&rows, QuotaConfig::default(), at("2026-12-01T10:00:00Z")),
            None
        );
    }

    #[test]
    fn the_day_quota_counts_today_only_and_resets_at_utc_midnight() {
        let config = QuotaConfig {
            tokens_per_day: Some(100),
            tokens_per_month: None,
        };
        let rows = [row("2026-12-01", 500, false), row("2026-12-02", 60, false)];
        let now = at("2026-12-02T23:00:00Z");
        assert_eq!(judge(&rows, config, now), None);
        // Estimated tokens and titles count like any other.
        let mut rows = rows.to_vec();
        let mut title = row("2026-12-02", 40, true);
        title.purpose = UsagePurpose::Title;
        rows.push(title);
        let e = judge(&rows, config, now).unwrap();
        assert_eq!((e.period, e.limit, e.used), (QuotaPeriod::Day, 100, 100));
        assert_eq!(e.resets_at, at("2026-12-03T00:00:00Z"));
        assert_eq!(e.retry_after, Duration::from_secs(3600));
    }

    #[test]
    fn the_month_quota_wins_when_both_are_spent_and_resets_next_month() {
        let config = QuotaConfig {
            tokens_per_day: Some(10),
            tokens_per_month: Some(100),
        };
        let rows = [row("2026-12-01", 95, false), row("2026-12-31", 10, false)];
        let now = at("2026-12-31T12:00:00Z");
        let e = judge(&rows, config, now).unwrap();
        assert_eq!((e.period, e.used), (QuotaPeriod::Month, 105));
        assert_eq!(e.resets_at, at("2027-01-01T00:00:00Z"));
        assert_eq!(e.retry_after, Duration::from_secs(12 * 3600));
        // Rows of another month do not count.
        let rows = [row("2026-11-30", 1_000, false), row("2026-12-31", 5, false)];
        assert_eq!(judge(&rows, config, now), None);
    }

    #[test]
    fn retry_after_is_at_least_a_second() {
        let config = QuotaConfig {
            tokens_per_day: Some(1),
            tokens_per_month: None,
        };
        let rows = [row("2026-12-01", 5, false)];
        let e = judge(&rows, config, at("2026-12-01T23:59:59.999Z")).unwrap();
        assert_eq!(e.retry_after, Duration::from_secs(1));
    }
}
