//! The usage contract suite: the ledger (charges with the reply's final write, sums,
//! ranges, erasure) and the quota read over it, run against every storage adapter with
//! [`usage_contract_tests!`](crate::usage_contract_tests).

use super::fixtures::*;
use crate::model::*;
use crate::ports::*;
use crate::services::{Quota, QuotaConfig, QuotaError, QuotaPeriod};
use chrono::{Duration, NaiveDate};
use std::sync::Arc;

/// The ports under test over one empty store, and `replica`: a second handle on the same
/// store, as another replica of the service would hold (a new connection pool for
/// PostgreSQL; the same shared state in memory).
#[derive(Clone)]
pub struct UsageStorage {
    pub chats: Arc<dyn ChatRepository>,
    pub messages: Arc<dyn MessageRepository>,
    pub usage: Arc<dyn UsageRepository>,
    pub erasure: Arc<dyn ErasureRepository>,
    pub replica: Arc<dyn UsageRepository>,
}

impl std::fmt::Debug for UsageStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UsageStorage")
    }
}

/// What [`usage_contract_tests!`](crate::usage_contract_tests) accepts from its factory.
pub trait IntoUsageStorage {
    fn usage_storage(&self) -> UsageStorage;
}

impl IntoUsageStorage for UsageStorage {
    fn usage_storage(&self) -> UsageStorage {
        self.clone()
    }
}

impl<G> IntoUsageStorage for (UsageStorage, G) {
    fn usage_storage(&self) -> UsageStorage {
        self.0.clone()
    }
}

/// Expands to one `#[tokio::test]` per usage contract case; `$make` is an async
/// expression returning a [`UsageStorage`] (or `(UsageStorage, guard)`) over an empty store.
#[macro_export]
macro_rules! usage_contract_tests {
    ($make:expr) => {
        $crate::usage_contract_tests!(@cases $make;
            usage_entries_add_up_per_day_model_purpose_and_kind,
            daily_usage_is_the_users_own_within_the_range,
            finish_reply_charges_the_ledger_only_when_it_changes_the_reply,
            erasure_removes_the_users_usage,
            the_quota_reads_what_every_replica_records
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let made = $make.await;
                let storage = $crate::testing::IntoUsageStorage::usage_storage(&made);
                $crate::testing::$case(&storage).await;
            }
        )*
    };
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn entry(
    who: &str,
    d: &str,
    model: &str,
    purpose: UsagePurpose,
    estimated: bool,
    p: u32,
    c: u32,
) -> UsageEntry {
    UsageEntry {
        user: user(who),
        day: day(d),
        model: model.into(),
        purpose,
        usage: Usage {
            prompt_tokens: p,
            completion_tokens: c,
        },
        estimated,
    }
}

fn summary(rows: &[UsageRow]) -> Vec<(String, String, UsagePurpose, bool, u64, u64, u64)> {
    rows.iter()
        .map(|r| {
            (
                r.day.to_string(),
                r.model.clone(),
                r.purpose,
                r.estimated,
                r.prompt_tokens,
                r.completion_tokens,
                r.requests,
            )
        })
        .collect()
}

pub async fn usage_entries_add_up_per_day_model_purpose_and_kind(s: &UsageStorage) {
    use UsagePurpose::{Reply, Title};
    for e in [
        entry("alice", "2026-12-01", "m", Reply, false, 10, 5),
        entry("alice", "2026-12-01", "m", Reply, false, 1, 2),
        entry("alice", "2026-12-01", "m", Reply, true, 4, 4),
        entry("alice", "2026-12-01", "m", Title, false, 3, 1),
        entry("alice", "2026-12-01", "n", Reply, false, 1, 1),
        entry("alice", "2026-12-02", "m", Reply, false, 7, 7),
    ] {
        s.usage.record_usage(&e).await.unwrap();
    }
    let rows = s
        .usage
        .daily_usage(&user("alice"), day("2026-12-01"), day("2026-12-02"))
        .await
        .unwrap();
    let d1 = "2026-12-01".to_string();
    assert_eq!(
        summary(&rows),
        [
            (d1.clone(), "m".into(), Reply, false, 11, 7, 2),
            (d1.clone(), "m".into(), Reply, true, 4, 4, 1),
            (d1.clone(), "m".into(), Title, false, 3, 1, 1),
            (d1, "n".into(), Reply, false, 1, 1, 1),
            ("2026-12-02".into(), "m".into(), Reply, false, 7, 7, 1),
        ]
    );
}

pub async fn daily_usage_is_the_users_own_within_the_range(s: &UsageStorage) {
    use UsagePurpose::Reply;
    for e in [
        entry("alice", "2026-11-30", "m", Reply, false, 1, 1),
        entry("alice", "2026-12-01", "m", Reply, false, 2, 2),
        entry("alice", "2026-12-31", "m", Reply, false, 3, 3),
        entry("alice", "2027-01-01", "m", Reply, false, 4, 4),
        entry("bob", "2026-12-15", "m", Reply, false, 9, 9),
    ] {
        s.usage.record_usage(&e).await.unwrap();
    }
    let rows = s
        .usage
        .daily_usage(&user("alice"), day("2026-12-01"), day("2026-12-31"))
        .await
        .unwrap();
    let days: Vec<String> = rows.iter().map(|r| r.day.to_string()).collect();
    assert_eq!(days, ["2026-12-01", "2026-12-31"]);
    let none = s
        .usage
        .daily_usage(&user("carol"), day("2026-01-01"), day("2026-12-31"))
        .await
        .unwrap();
    assert!(none.is_empty());
}

/// A chat of alice's with a turn started; returns the chat and its streaming reply.
async fn started(s: &UsageStorage) -> (Chat, Message) {
    let c = chat("alice", "Talk");
    s.chats.insert_chat(&c, &created(&c)).await.unwrap();
    let t = turn(&c, 0, "q");
    s.messages.start_turn(&t).await.unwrap();
    (c, t.reply)
}

fn completed(c: &Chat, reply: &Message) -> (Message, Event) {
    let mut r = reply.clone();
    r.tweak(|p| {
        p.status = MessageStatus::Complete;
        p.content = "answer".into();
        p.updated_at = now() + Duration::seconds(1);
    });
    let e = event(
        c,
        EventKind::MessageCompleted {
            message: r.clone(),
            latency_ms: 1,
        },
    );
    (r, e)
}

pub async fn finish_reply_charges_the_ledger_only_when_it_changes_the_reply(s: &UsageStorage) {
    let (c, reply) = started(s).await;
    let (r, e) = completed(&c, &reply);
    let today = now().date_naive();
    let mut charge = entry(
        "alice",
        "2026-12-01",
        "echo",
        UsagePurpose::Reply,
        false,
        5,
        3,
    );
    charge.day = today;
    assert!(s
        .messages
        .finish_reply(&r, &e, Some(&charge))
        .await
        .unwrap());
    // Not streaming any more: neither the reply nor the ledger changes.
    assert!(!s
        .messages
        .finish_reply(&r, &e, Some(&charge))
        .await
        .unwrap());
    // A reply that is gone is not charged.
    let mut ghost = r.clone();
    ghost.tweak(|p| p.id = MessageId::new());
    assert!(!s
        .messages
        .finish_reply(&ghost, &e, Some(&charge))
        .await
        .unwrap());
    let rows = s
        .usage
        .daily_usage(&user("alice"), today, today)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].prompt_tokens,
            rows[0].completion_tokens,
            rows[0].requests
        ),
        (5, 3, 1)
    );
    // A reply of a deleted chat is not charged either.
    let (c2, reply2) = started(s).await;
    let (r2, e2) = completed(&c2, &reply2);
    s.chats
        .delete_chat(
            c2.id(),
            &event(&c2, EventKind::ChatDeleted { chat_id: c2.id() }),
        )
        .await
        .unwrap();
    assert!(!s
        .messages
        .finish_reply(&r2, &e2, Some(&charge))
        .await
        .unwrap());
    // Finishing without a charge records nothing.
    let (c3, reply3) = started(s).await;
    let (r3, e3) = completed(&c3, &reply3);
    assert!(s.messages.finish_reply(&r3, &e3, None).await.unwrap());
    let rows = s
        .usage
        .daily_usage(&user("alice"), today, today)
        .await
        .unwrap();
    assert_eq!((rows.len(), rows[0].requests), (1, 1));
}

pub async fn erasure_removes_the_users_usage(s: &UsageStorage) {
    use UsagePurpose::{Reply, Title};
    s.usage
        .record_usage(&entry("alice", "2026-12-01", "m", Reply, false, 1, 1))
        .await
        .unwrap();
    s.usage
        .record_usage(&entry("alice", "2026-12-01", "m", Title, true, 1, 1))
        .await
        .unwrap();
    s.usage
        .record_usage(&entry("bob", "2026-12-01", "m", Reply, false, 2, 2))
        .await
        .unwrap();
    let (alice, bob) = (user("alice"), user("bob"));
    s.erasure.request_erasure(&alice, now()).await.unwrap();
    s.erasure.erase_chats(&alice, 10, now()).await.unwrap();
    assert!(s
        .erasure
        .finish_erasure(&alice, &Event::user_erased(now(), alice.clone()))
        .await
        .unwrap());
    let (from, to) = (day("2026-01-01"), day("2026-12-31"));
    assert!(s
        .usage
        .daily_usage(&alice, from, to)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.usage.daily_usage(&bob, from, to).await.unwrap().len(), 1);
}

struct Fixed(chrono::DateTime<chrono::Utc>);

impl Clock for Fixed {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0
    }
}

pub async fn the_quota_reads_what_every_replica_records(s: &UsageStorage) {
    let at = now();
    let today = at.date_naive().to_string();
    let config = QuotaConfig {
        tokens_per_day: Some(100),
        tokens_per_month: None,
    };
    let here = Quota::new(s.usage.clone(), Arc::new(Fixed(at)), config);
    let there = Quota::new(s.replica.clone(), Arc::new(Fixed(at)), config);
    // 60 tokens charged here with a reply, 39 there: under the quota on both.
    let (c, reply) = started(s).await;
    let (r, e) = completed(&c, &reply);
    let charge = entry("alice", &today, "echo", UsagePurpose::Reply, false, 50, 10);
    assert!(s
        .messages
        .finish_reply(&r, &e, Some(&charge))
        .await
        .unwrap());
    s.replica
        .record_usage(&entry(
            "alice",
            &today,
            "echo",
            UsagePurpose::Title,
            true,
            30,
            9,
        ))
        .await
        .unwrap();
    here.check(&user("alice")).await.unwrap();
    there.check(&user("alice")).await.unwrap();
    // One more token on either replica spends the quota on both.
    s.replica
        .record_usage(&entry(
            "alice",
            &today,
            "other",
            UsagePurpose::Reply,
            false,
            1,
            0,
        ))
        .await
        .unwrap();
    for q in [&here, &there] {
        match q.check(&user("alice")).await {
            Err(QuotaError::Exceeded(e)) => {
                assert_eq!((e.period, e.used, e.limit), (QuotaPeriod::Day, 100, 100));
            }
            other => panic!("expected the quota to be spent, got {other:?}"),
        }
    }
    // Another user's quota is their own.
    here.check(&user("bob")).await.unwrap();
}
