//! Relay logic against mocked ports: mark only after success, give back on
//! failure, back off while the destination is unreachable, wake on notifications
//! (coalesced), stop cleanly. Per-entry failures and dead entries: `tests_entries.rs`.

use super::*;
use async_trait::async_trait;
use chrono::Utc;
use domain::model::Event;
use domain::model::{ChatId, EventKind, UserId};
use domain::ports::{Delivery, OutboxEntry, PublishReport};
use domain::ports::{MockEventPublisher, MockOutbox};
use futures::StreamExt;
use mockall::Sequence;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tokio::sync::{mpsc, Notify};
use tokio_stream_shim::receiver_stream;

/// A tiny mpsc-to-stream adapter (tokio-stream is not a dependency here).
pub(super) mod tokio_stream_shim {
    use futures::stream::BoxStream;
    use tokio::sync::mpsc;

    pub fn receiver_stream(rx: mpsc::UnboundedReceiver<()>) -> BoxStream<'static, ()> {
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|()| ((), rx))
        }))
    }
}

pub(super) fn event(chat: ChatId) -> Event {
    Event::new(
        Utc::now(),
        UserId::parse("alice").unwrap(),
        chat,
        EventKind::ChatDeleted { chat_id: chat },
    )
}

pub(super) fn entries(chat: ChatId, positions: &[i64]) -> Vec<OutboxEntry> {
    positions
        .iter()
        .map(|&position| OutboxEntry {
            position,
            event: event(chat),
            attempts: 0,
        })
        .collect()
}

pub(super) fn config() -> RelayConfig {
    RelayConfig {
        relay_id: "r1".into(),
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
        poll_interval: Duration::from_secs(3600),
        ..RelayConfig::default()
    }
}

pub(super) fn relay(outbox: MockOutbox, publisher: impl EventPublisher + 'static) -> OutboxRelay {
    OutboxRelay::new(Arc::new(outbox), Arc::new(publisher), config())
}

pub(super) fn retriable() -> PublishError {
    PublishError::Retriable(anyhow::anyhow!("broker down"))
}

/// Every event of the batch failed with `err()`.
pub(super) fn all_failed(events: &[Event], err: fn() -> PublishError) -> PublishReport {
    PublishReport::new(events.iter().map(|_| Delivery::Failed(err())).collect())
}

pub(super) fn ok(events: &[Event]) -> PublishReport {
    PublishReport::delivered(events.len())
}

#[tokio::test]
async fn marks_only_after_the_publisher_acknowledged() {
    let batch = entries(ChatId::new(), &[1, 2]);
    let ids: Vec<_> = batch.iter().map(|e| e.event.id).collect();
    let mut seq = Sequence::new();
    let mut outbox = MockOutbox::new();
    let mut publisher = MockEventPublisher::new();
    outbox
        .expect_claim()
        .withf(|relay, limit, _| relay == "r1" && *limit == RelayConfig::default().batch_size)
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_, _, _| Ok(batch.clone()));
    publisher
        .expect_publish()
        .withf(move |events| events.iter().map(|e| e.id).eq(ids.iter().copied()))
        .times(1)
        .in_sequence(&mut seq)
        .returning(ok);
    outbox
        .expect_mark_published()
        .withf(|relay, positions| relay == "r1" && positions == [1, 2])
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    outbox.expect_release().never();
    let r = relay(outbox, publisher);
    assert_eq!(r.run_once().await.unwrap().published, 2);
    let stats = r.stats().snapshot();
    assert_eq!(stats.published_total, 2);
    assert!(stats.broker_up);
}

#[tokio::test]
async fn releases_and_never_marks_when_publishing_fails() {
    let mut outbox = MockOutbox::new();
    let mut publisher = MockEventPublisher::new();
    let batch = entries(ChatId::new(), &[7, 8]);
    outbox
        .expect_claim()
        .returning(move |_, _, _| Ok(batch.clone()));
    publisher
        .expect_publish()
        .returning(|events| all_failed(events, retriable));
    outbox.expect_mark_published().never();
    outbox
        .expect_release()
        .withf(|relay, positions| relay == "r1" && positions == [7, 8])
        .times(1)
        .returning(|_, _| Ok(()));
    let r = relay(outbox, publisher);
    assert!(matches!(
        r.run_once().await,
        Err(RelayError::Publish(PublishError::Retriable(_)))
    ));
    let stats = r.stats().snapshot();
    assert!(!stats.broker_up);
    assert_eq!(stats.publish_errors_total, 1);
    assert_eq!(stats.published_total, 0);
}

#[tokio::test]
async fn a_failed_mark_republishes_the_same_event_ids() {
    let batch = entries(ChatId::new(), &[1, 2, 3]);
    let mut outbox = MockOutbox::new();
    let mut publisher = MockEventPublisher::new();
    outbox
        .expect_claim()
        .times(2)
        .returning(move |_, _, _| Ok(batch.clone()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_in = Arc::clone(&seen);
    publisher
        .expect_publish()
        .times(2)
        .returning(move |events| {
            seen_in
                .lock()
                .unwrap()
                .push(events.iter().map(|e| e.id).collect::<Vec<_>>());
            ok(events)
        });
    let mut seq = Sequence::new();
    outbox
        .expect_mark_published()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Err(StoreError::Unavailable(anyhow::anyhow!("db down"))));
    outbox
        .expect_release()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    outbox
        .expect_mark_published()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    let r = relay(outbox, publisher);
    assert!(matches!(r.run_once().await, Err(RelayError::Store(_))));
    assert_eq!(r.run_once().await.unwrap().published, 3);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], seen[1], "duplicates carry the same ids");
    assert_eq!(r.stats().snapshot().store_errors_total, 1);
}

#[tokio::test]
async fn an_empty_outbox_publishes_nothing() {
    let mut outbox = MockOutbox::new();
    let mut publisher = MockEventPublisher::new();
    outbox.expect_claim().returning(|_, _, _| Ok(Vec::new()));
    publisher.expect_publish().never();
    assert_eq!(
        relay(outbox, publisher).run_once().await.unwrap().claimed,
        0
    );
}

/// Outbox calls every run loop makes that these tests do not look at.
pub(super) fn quiet_housekeeping(outbox: &mut MockOutbox) {
    outbox.expect_prune().returning(|_| Ok(0));
    outbox.expect_backlog().returning(|| {
        Ok(domain::ports::OutboxCounts {
            pending: 1,
            dead: 0,
        })
    });
    outbox.expect_release().returning(|_, _| Ok(()));
}

#[tokio::test(start_paused = true)]
async fn backs_off_exponentially_while_the_broker_is_down() {
    let mut outbox = MockOutbox::new();
    let mut publisher = MockEventPublisher::new();
    quiet_housekeeping(&mut outbox);
    let chat = ChatId::new();
    outbox
        .expect_claim()
        .returning(move |_, _, _| Ok(entries(chat, &[1])));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let calls_in = Arc::clone(&calls);
    publisher.expect_publish().returning(move |events| {
        calls_in.lock().unwrap().push(tokio::time::Instant::now());
        all_failed(events, retriable)
    });
    outbox.expect_mark_published().never();
    let r = relay(outbox, publisher);
    let stats = r.stats();
    let shutdown = CancellationToken::new();
    let task = r.spawn(futures::stream::pending().boxed(), shutdown.clone());
    tokio::time::sleep(Duration::from_secs(20)).await;
    shutdown.cancel();
    task.await.unwrap();

    let calls = calls.lock().unwrap();
    let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1] - w[0]).collect();
    // Delays drawn from [c/2, c] with c = 100, 200, 400, 800 ms, then capped at 1 s.
    for (i, gap) in gaps.iter().enumerate() {
        let ceiling = Duration::from_millis(100 << i.min(4)).min(Duration::from_secs(1));
        assert!(
            *gap >= ceiling / 2 && *gap <= ceiling,
            "gap {i} = {gap:?}, ceiling {ceiling:?}"
        );
    }
    assert!((20..=45).contains(&calls.len()), "{} tries", calls.len());
    let snap = stats.snapshot();
    assert!(!snap.broker_up);
    assert_eq!(snap.publish_errors_total, calls.len() as u64);
    assert_eq!(snap.backlog, 1);
}

#[tokio::test(start_paused = true)]
async fn prunes_at_start_with_the_retention_period() {
    let mut outbox = MockOutbox::new();
    let start = Utc::now();
    outbox
        .expect_prune()
        .withf(move |before| {
            let expected = start - chrono::Duration::days(7);
            (*before - expected).abs() < chrono::Duration::minutes(1)
        })
        .times(1)
        .returning(|_| Ok(3));
    outbox
        .expect_backlog()
        .returning(|| Ok(domain::ports::OutboxCounts::default()));
    outbox.expect_claim().returning(|_, _, _| Ok(Vec::new()));
    let r = relay(outbox, MockEventPublisher::new());
    let shutdown = CancellationToken::new();
    let task = r.spawn(futures::stream::pending().boxed(), shutdown.clone());
    tokio::time::sleep(Duration::from_secs(60)).await;
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn wakes_up_on_a_notification_without_waiting_for_the_poll() {
    let mut outbox = MockOutbox::new();
    quiet_housekeeping(&mut outbox);
    let claims = Arc::new(AtomicUsize::new(0));
    let claims_in = Arc::clone(&claims);
    outbox.expect_claim().returning(move |_, _, _| {
        claims_in.fetch_add(1, Ordering::SeqCst);
        Ok(Vec::new())
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let r = relay(outbox, MockEventPublisher::new()); // poll interval: 1 hour
    let shutdown = CancellationToken::new();
    let task = r.spawn(receiver_stream(rx), shutdown.clone());
    wait_until(|| claims.load(Ordering::SeqCst) == 1).await;
    // Three notifications in a burst are served by one claim (or two at most).
    for _ in 0..3 {
        tx.send(()).unwrap();
    }
    wait_until(|| claims.load(Ordering::SeqCst) >= 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(claims.load(Ordering::SeqCst) <= 3);
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn keeps_polling_when_the_wakeup_stream_ends() {
    let mut outbox = MockOutbox::new();
    quiet_housekeeping(&mut outbox);
    let claims = Arc::new(AtomicUsize::new(0));
    let claims_in = Arc::clone(&claims);
    outbox.expect_claim().returning(move |_, _, _| {
        claims_in.fetch_add(1, Ordering::SeqCst);
        Ok(Vec::new())
    });
    let mut cfg = config();
    cfg.poll_interval = Duration::from_secs(1);
    let r = OutboxRelay::new(Arc::new(outbox), Arc::new(MockEventPublisher::new()), cfg);
    let shutdown = CancellationToken::new();
    let task = r.spawn(futures::stream::empty().boxed(), shutdown.clone());
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    shutdown.cancel();
    task.await.unwrap();
    let n = claims.load(Ordering::SeqCst);
    assert!((10..=13).contains(&n), "{n} claims in 10.5 s");
}

/// A publisher that holds every publish until told to go on.
struct GatedPublisher {
    entered: Notify,
    go: Notify,
}

#[async_trait]
impl EventPublisher for GatedPublisher {
    async fn publish(&self, events: &[Event]) -> PublishReport {
        self.entered.notify_one();
        self.go.notified().await;
        ok(events)
    }
}

#[tokio::test]
async fn shutdown_finishes_the_batch_in_hand() {
    let mut outbox = MockOutbox::new();
    quiet_housekeeping(&mut outbox);
    let chat = ChatId::new();
    outbox
        .expect_claim()
        .times(1)
        .returning(move |_, _, _| Ok(entries(chat, &[5])));
    outbox
        .expect_mark_published()
        .withf(|_, positions| positions == [5])
        .times(1)
        .returning(|_, _| Ok(()));
    let publisher = Arc::new(GatedPublisher {
        entered: Notify::new(),
        go: Notify::new(),
    });
    let r = OutboxRelay::new(Arc::new(outbox), publisher.clone(), config());
    let stats = r.stats();
    let shutdown = CancellationToken::new();
    let task = r.spawn(futures::stream::pending().boxed(), shutdown.clone());
    publisher.entered.notified().await;
    shutdown.cancel();
    publisher.go.notify_one();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("relay stops after its batch")
        .unwrap();
    assert_eq!(stats.published_total(), 1);
}

pub(super) async fn wait_until(cond: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("condition reached in time");
}

#[test]
fn errors_print_their_causes() {
    let err = RelayError::Publish(PublishError::Retriable(
        anyhow::anyhow!("connection refused").context("producing to Kafka"),
    ));
    assert_eq!(
        chain(&err),
        "publishing failed: publishing failed, retriable: producing to Kafka: connection refused"
    );
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_wakeups_is_coalesced_into_one_claim() {
    let mut outbox = MockOutbox::new();
    quiet_housekeeping(&mut outbox);
    let claims = Arc::new(AtomicUsize::new(0));
    let claims_in = Arc::clone(&claims);
    outbox.expect_claim().returning(move |_, _, _| {
        claims_in.fetch_add(1, Ordering::SeqCst);
        Ok(Vec::new())
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let mut cfg = config(); // poll interval: 1 hour
    cfg.coalesce = Duration::from_millis(50);
    let r = OutboxRelay::new(Arc::new(outbox), Arc::new(MockEventPublisher::new()), cfg);
    let shutdown = CancellationToken::new();
    let task = r.spawn(receiver_stream(rx), shutdown.clone());
    wait_until(|| claims.load(Ordering::SeqCst) == 1).await;
    // 20 commits 1 ms apart: the relay is free to claim between any two of them.
    for _ in 0..20 {
        tx.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        claims.load(Ordering::SeqCst),
        2,
        "the start-up claim, then one claim for the whole burst"
    );
    shutdown.cancel();
    task.await.unwrap();
}
