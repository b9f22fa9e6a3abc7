//! The outbox relay end to end: in-memory outbox → relay → Kafka-protocol broker
//! → consumer. Broker outages, relay crashes and concurrent relays lose nothing
//! and keep each chat's order (after dropping duplicates by event id).

use crate::support::{self, events, outbox::MemoryOutbox, Received};
use domain::model::{ChatId, Event};
use domain::ports::{EventPublisher, Outbox};
use infra_kafka::{OutboxRelay, RelayConfig};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) fn relay_config(id: &str) -> RelayConfig {
    RelayConfig {
        relay_id: id.to_owned(),
        batch_size: 16,
        lease: Duration::from_secs(10),
        poll_interval: Duration::from_millis(200),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        ..RelayConfig::default()
    }
}

pub(crate) fn start(
    outbox: &Arc<MemoryOutbox>,
    publisher: Arc<dyn EventPublisher>,
    config: RelayConfig,
    shutdown: &CancellationToken,
) -> (Arc<infra_kafka::RelayStats>, tokio::task::JoinHandle<()>) {
    let relay = OutboxRelay::new(Arc::clone(outbox) as Arc<dyn Outbox>, publisher, config);
    let stats = relay.stats();
    (stats, relay.spawn(outbox.wakeups(), shutdown.clone()))
}

/// `per_chat` events for each of `chats` chats, interleaved across chats.
fn interleaved(chats: &[ChatId], per_chat: u32, first_seq: u32) -> Vec<Event> {
    (first_seq..first_seq + per_chat)
        .flat_map(|seq| chats.iter().map(move |c| events::created(*c, seq)))
        .collect()
}

fn all_delivered(outbox: &MemoryOutbox) -> impl Fn(&[Received]) -> bool {
    let ids: Vec<String> = outbox.events().iter().map(|e| e.id.to_string()).collect();
    move |got: &[Received]| {
        let seen: std::collections::HashSet<&str> = got.iter().map(Received::id).collect();
        ids.iter().all(|id| seen.contains(id.as_str()))
    }
}

/// Every event delivered, each chat's first occurrences in commit order, and
/// every duplicate an identical copy.
fn assert_complete_and_ordered(outbox: &MemoryOutbox, got: &[Received]) {
    let seen = support::first_seen_per_chat(got);
    let expected = support::expected_per_chat(&outbox.events());
    assert_eq!(seen.len(), expected.len(), "every chat has its events");
    for (chat, ids) in &expected {
        let got_ids = seen.get(chat).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(got_ids.len(), ids.len(), "chat {chat}: events lost");
        let first_wrong = ids.iter().zip(got_ids).position(|(a, b)| a != b);
        assert_eq!(
            first_wrong, None,
            "chat {chat}: out of order from this index on"
        );
    }
    let mut copies: HashMap<&str, &serde_json::Value> = HashMap::new();
    for r in got {
        let first = copies.entry(r.id()).or_insert(&r.value);
        assert_eq!(*first, &r.value, "a duplicate differs from the original");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_written_while_the_broker_is_down_go_out_when_it_is_back() {
    let cluster = support::cluster();
    let outbox = Arc::new(MemoryOutbox::default());
    let publisher = Arc::new(support::publisher(&cluster, Duration::from_millis(1500)));
    let shutdown = CancellationToken::new();
    let (stats, task) = start(&outbox, publisher, relay_config("r1"), &shutdown);
    let chats: Vec<ChatId> = (0..5).map(|_| ChatId::new()).collect();

    for e in interleaved(&chats, 5, 1) {
        outbox.append(vec![e]);
    }
    support::wait_until("the first events are out", Duration::from_secs(20), || {
        outbox.unpublished() == 0
    })
    .await;

    cluster.broker_down(-1).unwrap();
    for e in interleaved(&chats, 5, 6) {
        outbox.append(vec![e]); // the API side never waits for the broker
    }
    support::wait_until("the relay notices", Duration::from_secs(20), || {
        !stats.broker_up()
    })
    .await;
    let down = stats.snapshot();
    assert!(down.publish_errors_total >= 1);
    assert_eq!(
        outbox.unpublished(),
        25,
        "nothing is marked while the broker is down"
    );
    assert!(down.last_error.is_some());

    cluster.broker_up(-1).unwrap();
    support::wait_until("the backlog drains", Duration::from_secs(60), || {
        outbox.unpublished() == 0
    })
    .await;
    assert!(stats.broker_up());
    let got =
        support::consume_until(&cluster, all_delivered(&outbox), Duration::from_millis(500)).await;
    assert_complete_and_ordered(&outbox, &got);
    support::wait_until("the backlog gauge reads 0", Duration::from_secs(5), || {
        stats.backlog() == 0
    })
    .await;

    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_crash_between_publish_and_mark_only_duplicates() {
    let cluster = support::cluster();
    let outbox = Arc::new(MemoryOutbox::default());
    let chats: Vec<ChatId> = (0..3).map(|_| ChatId::new()).collect();
    outbox.append(interleaved(&chats, 3, 1));
    outbox.hanging_marks.store(true, Ordering::SeqCst);

    let publisher = Arc::new(support::publisher(&cluster, Duration::from_secs(10)));
    let mut config = relay_config("doomed");
    config.lease = Duration::from_secs(2);
    let shutdown = CancellationToken::new();
    let (_, doomed) = start(&outbox, publisher.clone(), config, &shutdown);
    support::wait_until("the batch is published", Duration::from_secs(20), || {
        outbox.mark_calls.load(Ordering::SeqCst) == 1
    })
    .await;
    doomed.abort(); // crash: published, never marked
    assert!(doomed.await.unwrap_err().is_cancelled());
    outbox.hanging_marks.store(false, Ordering::SeqCst);
    assert_eq!(outbox.unpublished(), 9);

    // A new relay gets the entries once the dead relay's lease runs out.
    let (stats, task) = start(&outbox, publisher, relay_config("survivor"), &shutdown);
    support::wait_until(
        "the lease expires and all is marked",
        Duration::from_secs(20),
        || outbox.unpublished() == 0,
    )
    .await;
    assert_eq!(stats.published_total(), 9);
    let got = support::consume_until(&cluster, |r| r.len() >= 18, Duration::from_millis(500)).await;
    assert_eq!(got.len(), 18, "each event exactly twice");
    assert_complete_and_ordered(&outbox, &got);
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_mark_republishes_with_the_same_ids() {
    let cluster = support::cluster();
    let outbox = Arc::new(MemoryOutbox::default());
    let chat = ChatId::new();
    outbox.append(interleaved(&[chat], 4, 1));
    outbox.failing_marks.store(1, Ordering::SeqCst);
    let publisher = Arc::new(support::publisher(&cluster, Duration::from_secs(10)));
    let shutdown = CancellationToken::new();
    let (stats, task) = start(&outbox, publisher, relay_config("r1"), &shutdown);
    support::wait_until("all is marked", Duration::from_secs(20), || {
        outbox.unpublished() == 0
    })
    .await;
    assert_eq!(stats.snapshot().store_errors_total, 1);
    let got = support::consume_until(&cluster, |r| r.len() >= 8, Duration::from_millis(500)).await;
    assert_eq!(got.len(), 8);
    assert_complete_and_ordered(&outbox, &got);
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_at_once_keep_each_chats_order() {
    let cluster = support::cluster();
    // Slow the broker a little so both relays hold batches at the same time.
    cluster
        .broker_round_trip_time(-1, Duration::from_millis(15))
        .unwrap();
    let outbox = Arc::new(MemoryOutbox::default());
    let shutdown = CancellationToken::new();
    let mut config = relay_config("a");
    config.batch_size = 5;
    let (stats_a, task_a) = start(
        &outbox,
        Arc::new(support::publisher(&cluster, Duration::from_secs(10))),
        config.clone(),
        &shutdown,
    );
    config.relay_id = "b".into();
    let (stats_b, task_b) = start(
        &outbox,
        Arc::new(support::publisher(&cluster, Duration::from_secs(10))),
        config,
        &shutdown,
    );

    let chats: Vec<ChatId> = (0..8).map(|_| ChatId::new()).collect();
    for seq in 1..=25 {
        // Commits of different chats interleave while the relays run.
        for (i, chat) in chats.iter().enumerate() {
            outbox.append(vec![events::created(*chat, seq)]);
            if (seq + i as u32) % 3 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    support::wait_until(
        "both relays drain the outbox",
        Duration::from_secs(60),
        || outbox.unpublished() == 0,
    )
    .await;
    let (a, b) = (stats_a.published_total(), stats_b.published_total());
    assert_eq!(a + b, 200);
    assert!(a > 0 && b > 0, "both relays worked: a={a}, b={b}");
    let got =
        support::consume_until(&cluster, all_delivered(&outbox), Duration::from_millis(500)).await;
    assert_eq!(got.len(), 200, "no duplicates without failures");
    assert_complete_and_ordered(&outbox, &got);
    shutdown.cancel();
    task_a.await.unwrap();
    task_b.await.unwrap();
}
