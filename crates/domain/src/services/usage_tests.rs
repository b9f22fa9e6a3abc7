//! Unit tests of token accounting: charges, estimates and the report's grouping.

use super::*;
use crate::model::{ChatId, MessageId, Role};
use crate::ports::{MockClock, MockUsageRepository, PromptMessage};
use chrono::TimeZone;
use futures::executor::block_on;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn user() -> UserId {
    UserId::parse("alice").unwrap()
}

fn reply(status: MessageStatus, content: &str, usage: Option<Usage>) -> Message {
    let at = Utc.with_ymd_and_hms(2026, 12, 1, 23, 59, 59).unwrap();
    Message::restore(crate::model::MessageParts {
        id: MessageId::new(),
        chat_id: ChatId::new(),
        seq: 2,
        parent_id: None,
        branch: Default::default(),
        role: Role::Assistant,
        content: content.into(),
        status,
        model: Some("gpt-x".into()),
        usage,
        error: None,
        created_at: at,
        updated_at: at,
    })
}

#[test]
fn a_reply_is_charged_what_the_provider_reported() {
    let u = Usage {
        prompt_tokens: 7,
        completion_tokens: 3,
    };
    let e = reply_entry(&user(), &reply(MessageStatus::Complete, "hi", Some(u)), 99).unwrap();
    assert_eq!(e.usage, u);
    assert!(!e.estimated);
    assert_eq!(
        (e.day, e.model.as_str(), e.purpose),
        (day("2026-12-01"), "gpt-x", UsagePurpose::Reply)
    );
}

#[test]
fn without_reported_usage_a_reply_is_charged_an_estimate_marked_as_such() {
    let e = reply_entry(
        &user(),
        &reply(MessageStatus::Complete, "abcdefghi", None),
        12,
    )
    .unwrap();
    assert!(e.estimated);
    assert_eq!(
        e.usage,
        Usage {
            prompt_tokens: 12,
            completion_tokens: 3
        }
    );
    // A cancelled or failed reply with partial text cost tokens too.
    for status in [MessageStatus::Cancelled, MessageStatus::Failed] {
        let e = reply_entry(&user(), &reply(status, "part", None), 5).unwrap();
        assert_eq!((e.usage.completion_tokens, e.estimated), (1, true));
    }
    // An empty complete reply still used its prompt.
    let e = reply_entry(&user(), &reply(MessageStatus::Complete, "", None), 5).unwrap();
    assert_eq!(e.usage.prompt_tokens, 5);
}

#[test]
fn a_reply_that_produced_and_reported_nothing_is_not_charged() {
    for status in [MessageStatus::Cancelled, MessageStatus::Failed] {
        assert_eq!(reply_entry(&user(), &reply(status, "", None), 5), None);
    }
}

#[test]
fn the_prompt_estimate_counts_every_message() {
    let request = LlmRequest {
        model: "m".into(),
        messages: vec![
            PromptMessage {
                role: Role::System,
                content: "abcd".into(),
            },
            PromptMessage {
                role: Role::User,
                content: "abcde".into(),
            },
        ],
        temperature: None,
        max_tokens: None,
        request_id: None,
    };
    assert_eq!(estimate_prompt(&request), 3);
}

#[test]
fn a_title_is_charged_under_its_purpose() {
    let at = Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap();
    let e = title_entry(&user(), "m", at, None, 10, "Trip to Lisbon");
    assert_eq!(
        (e.purpose, e.estimated, e.day),
        (UsagePurpose::Title, true, day("2026-12-02"))
    );
    assert_eq!(e.usage.completion_tokens, 4);
    let u = Usage {
        prompt_tokens: 1,
        completion_tokens: 2,
    };
    assert!(!title_entry(&user(), "m", at, Some(u), 10, "x").estimated);
}

fn row(d: &str, model: &str, purpose: UsagePurpose, estimated: bool, p: u64, c: u64) -> UsageRow {
    UsageRow {
        day: day(d),
        model: model.into(),
        purpose,
        estimated,
        prompt_tokens: p,
        completion_tokens: c,
        requests: 1,
    }
}

fn rows() -> Vec<UsageRow> {
    vec![
        row("2026-12-01", "a", UsagePurpose::Reply, false, 10, 5),
        row("2026-12-01", "a", UsagePurpose::Reply, true, 4, 4),
        row("2026-12-01", "b", UsagePurpose::Title, false, 2, 1),
        row("2026-12-03", "b", UsagePurpose::Reply, false, 1, 1),
    ]
}

#[test]
fn a_report_groups_by_day_and_purpose() {
    let range = UsageRange::new(
        Some(day("2026-12-01")),
        Some(day("2026-12-31")),
        day("2026-12-31"),
    )
    .unwrap();
    let r = summarize(&rows(), range, UsageGroupBy::Day);
    let keys: Vec<(&str, UsagePurpose)> = r
        .groups
        .iter()
        .map(|g| (g.key.as_str(), g.purpose))
        .collect();
    assert_eq!(
        keys,
        [
            ("2026-12-01", UsagePurpose::Reply),
            ("2026-12-01", UsagePurpose::Title),
            ("2026-12-03", UsagePurpose::Reply)
        ]
    );
    let first = r.groups[0].totals;
    assert_eq!(
        (
            first.prompt_tokens,
            first.completion_tokens,
            first.estimated_tokens,
            first.requests
        ),
        (14, 9, 8, 2)
    );
    assert_eq!(first.total_tokens(), 23);
    assert_eq!(
        (
            r.total.total_tokens(),
            r.total.requests,
            r.total.estimated_tokens
        ),
        (28, 4, 8)
    );
}

#[test]
fn a_report_groups_by_model_and_keeps_to_its_range() {
    let range = UsageRange::new(
        Some(day("2026-12-02")),
        Some(day("2026-12-03")),
        day("2026-12-31"),
    )
    .unwrap();
    let r = summarize(&rows(), range, UsageGroupBy::Model);
    assert_eq!(r.groups.len(), 1);
    assert_eq!(
        (r.groups[0].key.as_str(), r.groups[0].totals.total_tokens()),
        ("b", 2)
    );
    assert_eq!(
        (r.from, r.to, r.group_by),
        (day("2026-12-02"), day("2026-12-03"), UsageGroupBy::Model)
    );
}

#[test]
fn the_service_reads_the_callers_rows_of_the_range_and_refuses_bad_ranges() {
    let mut clock = MockClock::new();
    clock
        .expect_now()
        .returning(|| Utc.with_ymd_and_hms(2026, 12, 31, 12, 0, 0).unwrap());
    let mut ledger = MockUsageRepository::new();
    ledger
        .expect_daily_usage()
        .withf(|u, f, t| {
            u.as_str() == "alice" && *f == day("2026-12-02") && *t == day("2026-12-31")
        })
        .times(1)
        .returning(|_, _, _| Ok(rows()));
    let svc = UsageService::new(Arc::new(ledger), Arc::new(clock));
    let actor = Actor::new(user());
    let r = block_on(svc.report(&actor, None, None, UsageGroupBy::Day)).unwrap();
    assert_eq!(r.groups.len(), 1, "only 2026-12-03 is in the default range");
    assert!(matches!(
        block_on(svc.report(
            &actor,
            Some(day("2026-12-02")),
            Some(day("2026-12-01")),
            UsageGroupBy::Day
        )),
        Err(UsageError::InvalidRange(UsageRangeError::Reversed))
    ));
}
