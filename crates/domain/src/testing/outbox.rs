//! Contract cases of the `Outbox` port: claim order and leases, per-chat order, failed
//! attempts with their delay, dead entries, operator retries, pruning.
//!
//! An adapter's tests call [`outbox_contract_tests!`](crate::outbox_contract_tests) with
//! an async expression building an [`OutboxUnderTest`] over an empty outbox.
//! No case sleeps: delays and leases are either zero (over at the next call) or an hour.

use super::fixtures::{now, user};
use crate::model::{ChatId, Event, EventKind};
use crate::ports::{AfterFailure, DeadFilter, FailedAttempt, Outbox, OutboxCounts, OutboxEntry};
use async_trait::async_trait;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

/// An outbox adapter and the way to store events in it (as a committed change would).
#[async_trait]
pub trait OutboxUnderTest: Send + Sync {
    /// The port under test.
    fn outbox(&self) -> &dyn Outbox;
    /// Stores `events`, in order, as one committed change.
    async fn append(&self, events: &[Event]);
}

/// Expands to one `#[tokio::test]` per outbox contract case. `$make` is an async
/// expression (evaluated once per case) returning an [`OutboxUnderTest`].
#[macro_export]
macro_rules! outbox_contract_tests {
    ($make:expr) => {
        $crate::outbox_contract_tests!(@cases $make;
            outbox_claims_oldest_first_under_a_lease, outbox_claim_respects_the_limit,
            outbox_a_chat_waits_while_an_earlier_entry_is_leased,
            outbox_expired_leases_come_back, outbox_release_counts_nothing_and_needs_the_lease,
            outbox_published_entries_leave_the_backlog_and_are_pruned,
            outbox_a_failed_entry_waits_and_holds_back_only_its_chat,
            outbox_a_retry_delay_ends_and_attempts_add_up,
            outbox_dead_entries_are_kept_listed_and_hold_back_nothing,
            outbox_retry_dead_revives_one_or_all, outbox_failures_need_the_lease
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let made = $make.await;
                $crate::testing::$case(&made).await;
            }
        )*
    };
}

/// An event of `chat` (its type does not matter to the outbox).
fn ev(chat: ChatId) -> Event {
    Event::new(
        now(),
        user("alice"),
        chat,
        EventKind::ChatDeleted { chat_id: chat },
    )
}

fn ids(entries: &[OutboxEntry]) -> Vec<crate::model::EventId> {
    entries.iter().map(|e| e.event.id).collect()
}

fn positions(entries: &[OutboxEntry]) -> Vec<i64> {
    entries.iter().map(|e| e.position).collect()
}

fn failed(entry: &OutboxEntry, error: &str, then: AfterFailure) -> FailedAttempt {
    FailedAttempt {
        position: entry.position,
        error: error.to_owned(),
        then,
    }
}

pub async fn outbox_claims_oldest_first_under_a_lease(t: &dyn OutboxUnderTest) {
    let (a, b) = (ChatId::new(), ChatId::new());
    let events = [ev(a), ev(b), ev(a)];
    t.append(&events[..2]).await;
    t.append(&events[2..]).await;
    let o = t.outbox();
    let got = o.claim("r1", 10, HOUR).await.unwrap();
    assert_eq!(
        got.iter().map(|e| &e.event).collect::<Vec<_>>(),
        events.iter().collect::<Vec<_>>()
    );
    assert!(got.windows(2).all(|w| w[0].position < w[1].position));
    assert!(got.iter().all(|e| e.attempts == 0));
    assert!(o.claim("r2", 10, HOUR).await.unwrap().is_empty());
    assert!(o.claim("r1", 10, HOUR).await.unwrap().is_empty());
}

pub async fn outbox_claim_respects_the_limit(t: &dyn OutboxUnderTest) {
    let events: Vec<Event> = (0..3).map(|_| ev(ChatId::new())).collect();
    t.append(&events).await;
    let o = t.outbox();
    let first = o.claim("r1", 2, HOUR).await.unwrap();
    assert_eq!(ids(&first), vec![events[0].id, events[1].id]);
    let rest = o.claim("r1", 2, HOUR).await.unwrap();
    assert_eq!(ids(&rest), vec![events[2].id]);
    assert!(o.claim("r1", 0, HOUR).await.unwrap().is_empty());
}

pub async fn outbox_a_chat_waits_while_an_earlier_entry_is_leased(t: &dyn OutboxUnderTest) {
    let (a, b) = (ChatId::new(), ChatId::new());
    let a1 = ev(a);
    t.append(std::slice::from_ref(&a1)).await;
    let o = t.outbox();
    let first = o.claim("r1", 10, HOUR).await.unwrap();
    assert_eq!(ids(&first), vec![a1.id]);
    let (a2, b1) = (ev(a), ev(b));
    t.append(&[a2.clone(), b1.clone()]).await;
    // Another relay gets the other chat only.
    assert_eq!(ids(&o.claim("r2", 10, HOUR).await.unwrap()), vec![b1.id]);
    o.mark_published("r1", &positions(&first)).await.unwrap();
    assert_eq!(ids(&o.claim("r2", 10, HOUR).await.unwrap()), vec![a2.id]);
}

pub async fn outbox_expired_leases_come_back(t: &dyn OutboxUnderTest) {
    let (a, b) = (ChatId::new(), ChatId::new());
    t.append(&[ev(a), ev(a), ev(b)]).await;
    let o = t.outbox();
    let first = o.claim("r1", 1, Duration::ZERO).await.unwrap();
    assert_eq!(first.len(), 1);
    // The lease is over: the same entry goes to the next relay, first, with the rest.
    let again = o.claim("r2", 10, HOUR).await.unwrap();
    assert_eq!(again.len(), 3);
    assert_eq!(again[0].position, first[0].position);
    assert_eq!(again[0].attempts, 0);
}

pub async fn outbox_release_counts_nothing_and_needs_the_lease(t: &dyn OutboxUnderTest) {
    t.append(&[ev(ChatId::new())]).await;
    let o = t.outbox();
    let got = o.claim("r1", 10, HOUR).await.unwrap();
    o.release("r2", &positions(&got)).await.unwrap();
    assert!(
        o.claim("r3", 10, HOUR).await.unwrap().is_empty(),
        "only the lease holder releases"
    );
    o.release("r1", &positions(&got)).await.unwrap();
    let again = o.claim("r3", 10, HOUR).await.unwrap();
    assert_eq!(positions(&again), positions(&got));
    assert_eq!(again[0].attempts, 0, "a release is not an attempt");
    o.release("r3", &[]).await.unwrap();
}

pub async fn outbox_published_entries_leave_the_backlog_and_are_pruned(t: &dyn OutboxUnderTest) {
    t.append(&[ev(ChatId::new()), ev(ChatId::new())]).await;
    let o = t.outbox();
    assert_eq!(
        o.backlog().await.unwrap(),
        OutboxCounts {
            pending: 2,
            dead: 0
        }
    );
    let got = o.claim("r1", 10, HOUR).await.unwrap();
    o.mark_published("r1", &positions(&got)[..1]).await.unwrap();
    assert_eq!(o.backlog().await.unwrap().pending, 1);
    o.release("r1", &positions(&got)[1..]).await.unwrap();
    assert_eq!(
        positions(&o.claim("r1", 10, HOUR).await.unwrap()),
        positions(&got)[1..],
        "a published entry is never handed out again"
    );
    o.mark_published("r1", &[]).await.unwrap();
    let hour = chrono::Duration::hours(1);
    assert_eq!(o.prune(now() - hour).await.unwrap(), 0);
    assert_eq!(
        o.prune(now() + hour).await.unwrap(),
        1,
        "only the published one"
    );
    assert_eq!(o.backlog().await.unwrap().pending, 1);
}

pub async fn outbox_a_failed_entry_waits_and_holds_back_only_its_chat(t: &dyn OutboxUnderTest) {
    let (a, b) = (ChatId::new(), ChatId::new());
    t.append(&[ev(a), ev(a), ev(b)]).await;
    let o = t.outbox();
    let got = o.claim("r1", 10, HOUR).await.unwrap();
    let failure = failed(&got[0], "too large", AfterFailure::RetryAfter(HOUR));
    o.record_failures("r1", &[failure]).await.unwrap();
    o.release("r1", &[got[1].position]).await.unwrap();
    o.mark_published("r1", &[got[2].position]).await.unwrap();
    // The failed entry waits out its delay, and its chat's later entry waits behind it.
    assert!(o.claim("r2", 10, HOUR).await.unwrap().is_empty());
    assert_eq!(
        o.backlog().await.unwrap(),
        OutboxCounts {
            pending: 2,
            dead: 0
        }
    );
    // Other chats go on.
    let b2 = ev(b);
    t.append(std::slice::from_ref(&b2)).await;
    assert_eq!(ids(&o.claim("r2", 10, HOUR).await.unwrap()), vec![b2.id]);
}

pub async fn outbox_a_retry_delay_ends_and_attempts_add_up(t: &dyn OutboxUnderTest) {
    let a = ChatId::new();
    t.append(&[ev(a), ev(a)]).await;
    let o = t.outbox();
    let got = o.claim("r1", 10, HOUR).await.unwrap();
    let retry_now = AfterFailure::RetryAfter(Duration::ZERO);
    o.record_failures("r1", &[failed(&got[0], "e1", retry_now)])
        .await
        .unwrap();
    o.release("r1", &[got[1].position]).await.unwrap();
    let again = o.claim("r2", 10, HOUR).await.unwrap();
    assert_eq!(positions(&again), positions(&got), "in order, delay over");
    assert_eq!((again[0].attempts, again[1].attempts), (1, 0));
    o.record_failures("r2", &[failed(&again[0], "e2", retry_now)])
        .await
        .unwrap();
    o.release("r2", &[again[1].position]).await.unwrap();
    let third = o.claim("r1", 10, HOUR).await.unwrap();
    assert_eq!(third[0].attempts, 2);
}

pub async fn outbox_dead_entries_are_kept_listed_and_hold_back_nothing(t: &dyn OutboxUnderTest) {
    let a = ChatId::new();
    let (a1, a2) = (ev(a), ev(a));
    t.append(&[a1.clone(), a2.clone()]).await;
    let o = t.outbox();
    let got = o.claim("r1", 10, HOUR).await.unwrap();
    o.record_failures(
        "r1",
        &[failed(&got[0], "too large", AfterFailure::SetAside)],
    )
    .await
    .unwrap();
    o.release("r1", &[got[1].position]).await.unwrap();
    // The chat's later entry goes on without it.
    assert_eq!(ids(&o.claim("r2", 10, HOUR).await.unwrap()), vec![a2.id]);
    assert_eq!(
        o.backlog().await.unwrap(),
        OutboxCounts {
            pending: 1,
            dead: 1
        }
    );
    let dead = o.dead(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    let d = &dead[0];
    assert_eq!(
        (
            d.position,
            d.event_id,
            d.chat_id,
            d.event_type.as_str(),
            d.attempts
        ),
        (got[0].position, a1.id, a, "chat.deleted", 1)
    );
    assert_eq!(d.last_error.as_deref(), Some("too large"));
    assert!((now() - d.dead_at).num_minutes().abs() < 5);
    // Kept: never pruned, never claimed.
    assert_eq!(
        o.prune(now() + chrono::Duration::hours(1)).await.unwrap(),
        0
    );
    assert!(o.claim("r3", 10, HOUR).await.unwrap().is_empty());
    assert!(o.dead(0).await.unwrap().is_empty());
}

pub async fn outbox_retry_dead_revives_one_or_all(t: &dyn OutboxUnderTest) {
    let (a1, b1) = (ev(ChatId::new()), ev(ChatId::new()));
    t.append(&[a1.clone(), b1.clone()]).await;
    let o = t.outbox();
    let got = o.claim("r1", 10, HOUR).await.unwrap();
    let aside: Vec<_> = got
        .iter()
        .map(|e| failed(e, "refused", AfterFailure::SetAside))
        .collect();
    o.record_failures("r1", &aside).await.unwrap();
    assert_eq!(
        o.backlog().await.unwrap(),
        OutboxCounts {
            pending: 0,
            dead: 2
        }
    );
    let missing = crate::model::EventId::new();
    assert_eq!(o.retry_dead(DeadFilter::Event(missing)).await.unwrap(), 0);
    assert_eq!(o.retry_dead(DeadFilter::Event(a1.id)).await.unwrap(), 1);
    let revived = o.claim("r2", 10, HOUR).await.unwrap();
    assert_eq!(ids(&revived), vec![a1.id]);
    assert_eq!(revived[0].attempts, 0, "a revived entry starts over");
    assert_eq!(o.retry_dead(DeadFilter::All).await.unwrap(), 1);
    assert_eq!(ids(&o.claim("r2", 10, HOUR).await.unwrap()), vec![b1.id]);
    assert_eq!(o.retry_dead(DeadFilter::All).await.unwrap(), 0);
    assert_eq!(
        o.backlog().await.unwrap(),
        OutboxCounts {
            pending: 2,
            dead: 0
        }
    );
}

pub async fn outbox_failures_need_the_lease(t: &dyn OutboxUnderTest) {
    t.append(&[ev(ChatId::new())]).await;
    let o = t.outbox();
    let got = o.claim("r1", 10, HOUR).await.unwrap();
    o.record_failures("r2", &[failed(&got[0], "x", AfterFailure::SetAside)])
        .await
        .unwrap();
    assert_eq!(
        o.backlog().await.unwrap(),
        OutboxCounts {
            pending: 1,
            dead: 0
        }
    );
    // A published entry cannot be failed afterwards either.
    o.mark_published("r1", &positions(&got)).await.unwrap();
    o.record_failures("r1", &[failed(&got[0], "x", AfterFailure::SetAside)])
        .await
        .unwrap();
    assert_eq!(o.backlog().await.unwrap(), OutboxCounts::default());
    o.record_failures("r1", &[]).await.unwrap();
}
