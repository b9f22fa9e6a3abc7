//! One event that can never be published (a 1.5 MB reply, over the producer's
//! `message.max.bytes`), end to end: it waits for its own retries holding back only
//! its chat, is set aside (dead) after `max_attempts`, counted, listed, and the chat's
//! later events go on; `retry_dead` tries it again.

use crate::relay::{relay_config, start};
use crate::support::{self, events, outbox::MemoryOutbox, Received};
use domain::model::{ChatId, Event};
use domain::ports::{DeadFilter, Outbox};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Chat `a`: a1, the poisonous reply, a3; chats `b` and `c`: three events each.
fn poisoned(a: ChatId, others: &[ChatId]) -> (Vec<Event>, Event) {
    let poison = events::large_reply(a, 2, 1_500_000);
    let mut all = vec![events::created(a, 1), poison.clone(), events::created(a, 3)];
    for seq in 1..=3 {
        all.extend(others.iter().map(|c| events::created(*c, seq)));
    }
    (all, poison)
}

/// A relay running over the poisoned outbox.
struct Running {
    cluster: support::Cluster,
    outbox: Arc<MemoryOutbox>,
    a: ChatId,
    all: Vec<Event>,
    poison: Event,
    stats: Arc<infra_kafka::RelayStats>,
    task: tokio::task::JoinHandle<()>,
    shutdown: CancellationToken,
}

fn run(config: infra_kafka::RelayConfig) -> Running {
    let cluster = support::cluster();
    let outbox = Arc::new(MemoryOutbox::default());
    let (a, others) = (ChatId::new(), [ChatId::new(), ChatId::new()]);
    let (all, poison) = poisoned(a, &others);
    for e in &all {
        outbox.append(vec![e.clone()]);
    }
    let publisher = Arc::new(support::publisher(&cluster, Duration::from_secs(10)));
    let shutdown = CancellationToken::new();
    let (stats, task) = start(&outbox, publisher, config, &shutdown);
    Running {
        cluster,
        outbox,
        a,
        all,
        poison,
        stats,
        task,
        shutdown,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_event_waits_for_its_retry_holding_back_only_its_chat() {
    let mut config = relay_config("r1");
    config.retry_initial = Duration::from_secs(3600);
    let Running {
        cluster: _cluster,
        outbox,
        a,
        all,
        poison,
        stats,
        task,
        shutdown,
    } = run(config);
    let not_a: Vec<&Event> = all.iter().filter(|e| e.chat_id != a).collect();
    support::wait_until("the other chats are out", Duration::from_secs(30), || {
        not_a.iter().all(|e| outbox.is_published(e.id))
    })
    .await;
    assert!(
        outbox.is_published(all[0].id),
        "the chat's earlier event went out"
    );
    assert_eq!(outbox.attempts_of(poison.id), Some(1));
    assert!(
        !outbox.is_published(all[2].id),
        "its chat waits for the retry"
    );
    assert_eq!(outbox.unpublished(), 2);
    assert!(stats.broker_up());
    assert_eq!(stats.dead_total(), 0);
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_can_never_be_published_is_set_aside_and_its_chat_goes_on() {
    let mut config = relay_config("r1");
    config.retry_initial = Duration::from_millis(20);
    config.max_attempts = 3;
    let Running {
        cluster,
        outbox,
        a,
        all,
        poison,
        stats,
        task,
        shutdown,
    } = run(config);
    support::wait_until(
        "all but the dead entry are out",
        Duration::from_secs(30),
        || outbox.unpublished() == 0,
    )
    .await;
    assert_eq!(stats.dead_total(), 1);
    let dead = outbox.dead(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].event_id, dead[0].chat_id, dead[0].attempts),
        (poison.id, a, 3)
    );
    assert!(dead[0]
        .last_error
        .as_deref()
        .unwrap_or_default()
        .contains("too large"));
    support::wait_until("the gauge counts it", Duration::from_secs(10), || {
        stats.snapshot().dead == 1
    })
    .await;

    let wanted: Vec<String> = all
        .iter()
        .filter(|e| e.id != poison.id)
        .map(|e| e.id.to_string())
        .collect();
    let got = support::consume_until(
        &cluster,
        |r| wanted.iter().all(|id| r.iter().any(|x| x.id() == id)),
        Duration::from_millis(300),
    )
    .await;
    let chat_a: Vec<&str> = got
        .iter()
        .filter(|r| r.key == a.to_string())
        .map(Received::id)
        .collect();
    assert_eq!(chat_a, [all[0].id.to_string(), all[2].id.to_string()]);

    // An operator retries it: still too large, so it is tried again and set aside again.
    assert_eq!(outbox.retry_dead(DeadFilter::All).await.unwrap(), 1);
    support::wait_until("it is set aside again", Duration::from_secs(30), || {
        stats.dead_total() == 2
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
}
