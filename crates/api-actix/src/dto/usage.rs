//! `GET /api/v1/usage`: its query (documented by a hand-written `IntoParams`, as in
//! [`super::query`]) and the report's JSON shape.

use super::query::param;
use crate::error::{ApiError, FieldError};
use crate::extract::Fields;
use chrono::NaiveDate;
use domain::services::{UsageGroup, UsageReport, UsageTotals};
use domain::{UsageGroupBy, UsagePurpose, UsageRange};
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::{IntoParams, ToSchema};

/// Query of `GET /api/v1/usage`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageQuery {
    /// First day.
    pub from: Option<String>,
    /// Last day.
    pub to: Option<String>,
    /// Grouping.
    pub group_by: Option<String>,
}

const DATE_PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$";

fn date(example: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .pattern(Some(DATE_PATTERN))
        .examples([example])
}

impl IntoParams for UsageQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let range = format!(
            "`from` must not be after `to`, and the range holds at most {} days; otherwise \
             422 (`/problems/unprocessable`).",
            UsageRange::MAX_DAYS
        );
        vec![
            param(
                "from",
                false,
                &format!(
                    "First UTC day counted (`YYYY-MM-DD`, included). Default: {} days \
                     ending at `to`. {range}",
                    UsageRange::DEFAULT_DAYS
                ),
                date("2026-11-01"),
                None,
            ),
            param(
                "to",
                false,
                &format!(
                    "Last UTC day counted (`YYYY-MM-DD`, included). Default: today (UTC). {range}"
                ),
                date("2026-11-30"),
                None,
            ),
            param(
                "groupBy",
                false,
                "`day`: one group per UTC day and purpose; `model`: one group per model \
                 and purpose. Default `day`.",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["day", "model"]))
                    .default(Some("day".into())),
                None,
            ),
        ]
    }
}

fn parse_date(field: &str, raw: Option<&str>, f: &mut Fields) -> Option<NaiveDate> {
    let raw = raw?;
    let ok = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let d = ok
        .then(|| NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok())
        .flatten();
    if d.is_none() {
        f.push(field, "must be a calendar date, YYYY-MM-DD");
    }
    d
}

/// The checked query: each day, if given, and the grouping.
pub type UsageRequest = (Option<NaiveDate>, Option<NaiveDate>, UsageGroupBy);

impl UsageQuery {
    /// The days and the grouping; every malformed parameter in one 422 (`validation`).
    pub fn request(&self) -> Result<UsageRequest, ApiError> {
        let mut f = Fields::default();
        let from = parse_date("from", self.from.as_deref(), &mut f);
        let to = parse_date("to", self.to.as_deref(), &mut f);
        let group_by = match self.group_by.as_deref() {
            None | Some("day") => UsageGroupBy::Day,
            Some("model") => UsageGroupBy::Model,
            Some(_) => {
                f.push("groupBy", "must be day or model");
                UsageGroupBy::Day
            }
        };
        f.finish(|| Some((from, to, group_by)))
    }
}

/// Refusal of a well-formed range the service does not serve (reversed or too long).
pub fn range_problem(e: domain::UsageRangeError) -> ApiError {
    let field = match e {
        domain::UsageRangeError::Reversed => "from",
        domain::UsageRangeError::TooLong => "to",
    };
    ApiError::Unprocessable(vec![FieldError::new(field, e)])
}

/// Tokens summed over a group of charges.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageTotalsDto {
    /// Prompt tokens.
    #[schema(minimum = 0)]
    pub prompt_tokens: u64,
    /// Completion tokens.
    #[schema(minimum = 0)]
    pub completion_tokens: u64,
    /// Prompt plus completion tokens.
    #[schema(minimum = 0)]
    pub total_tokens: u64,
    /// How many of `totalTokens` are the service's estimate (characters / 4, rounded
    /// up) because the provider reported no usage for those replies or titles.
    #[schema(minimum = 0)]
    pub estimated_tokens: u64,
    /// Replies and titles charged.
    #[schema(minimum = 0)]
    pub requests: u64,
}

impl From<&UsageTotals> for UsageTotalsDto {
    fn from(t: &UsageTotals) -> Self {
        Self {
            prompt_tokens: t.prompt_tokens,
            completion_tokens: t.completion_tokens,
            total_tokens: t.total_tokens(),
            estimated_tokens: t.estimated_tokens,
            requests: t.requests,
        }
    }
}

/// What tokens were spent on.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UsagePurposeDto {
    /// Replies (sends and regenerates).
    Reply,
    /// Automatic chat titles.
    Title,
}

/// How a usage report is grouped.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UsageGroupByDto {
    /// By UTC day (and purpose).
    Day,
    /// By model (and purpose).
    Model,
}

/// One group of a usage report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageGroupDto {
    /// The UTC day (`YYYY-MM-DD`) with `groupBy=day`, the model's name with `groupBy=model`.
    #[schema(example = "2026-11-02")]
    pub key: String,
    /// What the tokens were spent on.
    pub purpose: UsagePurposeDto,
    /// The sums.
    #[serde(flatten)]
    pub totals: UsageTotalsDto,
}

impl From<&UsageGroup> for UsageGroupDto {
    fn from(g: &UsageGroup) -> Self {
        Self {
            key: g.key.clone(),
            purpose: match g.purpose {
                UsagePurpose::Reply => UsagePurposeDto::Reply,
                UsagePurpose::Title => UsagePurposeDto::Title,
            },
            totals: UsageTotalsDto::from(&g.totals),
        }
    }
}

/// The caller's token usage over a range of UTC days.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageReportDto {
    /// First day counted (included).
    #[schema(value_type = String, format = Date, example = "2026-11-01")]
    pub from: NaiveDate,
    /// Last day counted (included).
    #[schema(value_type = String, format = Date, example = "2026-11-30")]
    pub to: NaiveDate,
    /// How `items` are grouped.
    pub group_by: UsageGroupByDto,
    /// Everything in the range.
    pub total: UsageTotalsDto,
    /// One group per key and purpose with any usage (days without usage are left
    /// out), by key, then `reply` before `title`.
    pub items: Vec<UsageGroupDto>,
}

impl From<&UsageReport> for UsageReportDto {
    fn from(r: &UsageReport) -> Self {
        Self {
            from: r.from,
            to: r.to,
            group_by: match r.group_by {
                UsageGroupBy::Day => UsageGroupByDto::Day,
                UsageGroupBy::Model => UsageGroupByDto::Model,
            },
            total: UsageTotalsDto::from(&r.total),
            items: r.groups.iter().map(UsageGroupDto::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(from: Option<&str>, to: Option<&str>, g: Option<&str>) -> UsageQuery {
        UsageQuery {
            from: from.map(Into::into),
            to: to.map(Into::into),
            group_by: g.map(Into::into),
        }
    }

    #[test]
    fn dates_and_grouping_are_parsed_strictly() {
        let (from, to, g) = q(Some("2026-11-01"), None, Some("model"))
            .request()
            .unwrap();
        assert_eq!(from.map(|d| d.to_string()).as_deref(), Some("2026-11-01"));
        assert_eq!((to, g), (None, UsageGroupBy::Model));
        assert_eq!(q(None, None, None).request().unwrap().2, UsageGroupBy::Day);
        for bad in [
            "2026-1-01",
            "2026-02-30",
            "+2026-01-01",
            "20261101",
            "2026-11-01T00:00:00Z",
            "",
        ] {
            match q(Some(bad), Some(bad), Some("week")).request() {
                Err(ApiError::Validation(e)) => assert_eq!(e.len(), 3, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
