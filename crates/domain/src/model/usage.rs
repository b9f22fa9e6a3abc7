//! Token accounting: what a reply or a title cost, the ledger's daily rows, the range
//! and grouping of a usage report, and the estimate used when a provider reports none.

use super::ids::UserId;
use super::message::Usage;
use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What the tokens were spent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsagePurpose {
    /// A reply to a user's message (a send or a regenerate).
    Reply,
    /// An automatic chat title.
    Title,
}

impl UsagePurpose {
    /// The wire and column name: `reply` or `title`.
    pub fn as_str(&self) -> &'static str {
        match self {
            UsagePurpose::Reply => "reply",
            UsagePurpose::Title => "title",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reply" => Some(UsagePurpose::Reply),
            "title" => Some(UsagePurpose::Title),
            _ => None,
        }
    }
}

impl fmt::Display for UsagePurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Characters counted as one token when a provider reports no usage.
pub const CHARS_PER_TOKEN: usize = 4;

/// The estimate of a text's tokens used when the provider reports none: its characters
/// divided by [`CHARS_PER_TOKEN`], rounded up (so any text costs at least one token).
///
/// ```
/// use domain::model::estimate_tokens;
/// assert_eq!(estimate_tokens(""), 0);
/// assert_eq!(estimate_tokens("hello"), 2);
/// ```
pub fn estimate_tokens(text: &str) -> u32 {
    let chars = text.chars().count();
    u32::try_from(chars.div_ceil(CHARS_PER_TOKEN)).unwrap_or(u32::MAX)
}

/// One charge to the ledger: tokens a user spent on one model, one UTC day, for one purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEntry {
    /// Who spent them.
    pub user: UserId,
    /// The UTC day they were spent.
    pub day: NaiveDate,
    /// The model that answered.
    pub model: String,
    /// What for.
    pub purpose: UsagePurpose,
    /// How many.
    pub usage: Usage,
    /// Whether the counts are the service's estimate (the provider reported none).
    pub estimated: bool,
}

/// A row of the ledger: one user's tokens for one day, model, purpose and kind
/// (reported or estimated), summed over every entry recorded for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// The UTC day.
    pub day: NaiveDate,
    /// The model.
    pub model: String,
    /// What for.
    pub purpose: UsagePurpose,
    /// Whether these are estimated counts.
    pub estimated: bool,
    /// Prompt tokens in all.
    pub prompt_tokens: u64,
    /// Completion tokens in all.
    pub completion_tokens: u64,
    /// How many entries (replies or titles) were summed.
    pub requests: u64,
}

impl UsageRow {
    /// Prompt plus completion tokens.
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// How a usage report groups its totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageGroupBy {
    /// One group per UTC day (and purpose).
    #[default]
    Day,
    /// One group per model (and purpose).
    Model,
}

/// An inclusive range of UTC days, `from ≤ to`, at most [`UsageRange::MAX_DAYS`] days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageRange {
    from: NaiveDate,
    to: NaiveDate,
}

/// Why a usage range was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsageRangeError {
    /// `from` is after `to`.
    #[error("from must not be after to")]
    Reversed,
    /// More than [`UsageRange::MAX_DAYS`] days.
    #[error("the range is longer than {} days", UsageRange::MAX_DAYS)]
    TooLong,
}

impl UsageRange {
    /// Longest range, in days (a leap year).
    pub const MAX_DAYS: i64 = 366;
    /// Days covered when `from` is not given: `to` and the 29 days before it.
    pub const DEFAULT_DAYS: i64 = 30;

    /// The range from `from` to `to`, both included. A missing `to` is `today`; a
    /// missing `from` is [`UsageRange::DEFAULT_DAYS`] days ending at `to`.
    pub fn new(
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        today: NaiveDate,
    ) -> Result<Self, UsageRangeError> {
        let to = to.unwrap_or(today);
        let from = match from {
            Some(f) => f,
            None => to
                .checked_sub_signed(Duration::days(Self::DEFAULT_DAYS - 1))
                .unwrap_or(NaiveDate::MIN),
        };
        if from > to {
            return Err(UsageRangeError::Reversed);
        }
        if (to - from).num_days() + 1 > Self::MAX_DAYS {
            return Err(UsageRangeError::TooLong);
        }
        Ok(Self { from, to })
    }

    /// The first day.
    pub fn from(&self) -> NaiveDate {
        self.from
    }

    /// The last day (included).
    pub fn to(&self) -> NaiveDate {
        self.to
    }
}

/// The first day of `day`'s month.
pub fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// The first day of the month after `day`'s.
pub fn next_month_start(day: NaiveDate) -> NaiveDate {
    let (y, m) = if day.month() == 12 {
        (day.year() + 1, 1)
    } else {
        (day.year(), day.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(NaiveDate::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn estimates_round_characters_up_to_tokens() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abc"), 1);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        // Characters, not bytes.
        assert_eq!(estimate_tokens("üüüü"), 1);
    }

    #[test]
    fn a_range_defaults_to_thirty_days_ending_today() {
        let r = UsageRange::new(None, None, d("2026-12-31")).unwrap();
        assert_eq!((r.from(), r.to()), (d("2026-12-02"), d("2026-12-31")));
        let r = UsageRange::new(None, Some(d("2026-01-10")), d("2026-12-31")).unwrap();
        assert_eq!(r.from(), d("2025-12-12"));
        let r = UsageRange::new(Some(d("2026-12-30")), None, d("2026-12-31")).unwrap();
        assert_eq!((r.from(), r.to()), (d("2026-12-30"), d("2026-12-31")));
    }

    #[test]
    fn a_range_is_ordered_and_bounded() {
        let today = d("2026-12-01");
        assert_eq!(
            UsageRange::new(Some(d("2026-12-02")), Some(d("2026-12-01")), today),
            Err(UsageRangeError::Reversed)
        );
        assert!(UsageRange::new(Some(d("2026-12-01")), Some(d("2026-12-01")), today).is_ok());
        assert!(UsageRange::new(Some(d("2024-01-01")), Some(d("2024-12-31")), today).is_ok());
        assert_eq!(
            UsageRange::new(Some(d("2025-01-01")), Some(d("2026-01-02")), today),
            Err(UsageRangeError::TooLong)
        );
        // The extremes do not overflow.
        assert!(UsageRange::new(None, Some(NaiveDate::MIN), today).is_ok());
        assert_eq!(
            UsageRange::new(Some(NaiveDate::MIN), Some(NaiveDate::MAX), today),
            Err(UsageRangeError::TooLong)
        );
    }

    #[test]
    fn months_start_and_roll_over() {
        assert_eq!(month_start(d("2026-12-31")), d("2026-12-01"));
        assert_eq!(next_month_start(d("2026-12-31")), d("2027-01-01"));
        assert_eq!(next_month_start(d("2026-02-10")), d("2026-03-01"));
    }

    #[test]
    fn purposes_round_trip() {
        for p in [UsagePurpose::Reply, UsagePurpose::Title] {
            assert_eq!(UsagePurpose::parse(p.as_str()), Some(p));
        }
        assert_eq!(UsagePurpose::parse("other"), None);
    }
}
