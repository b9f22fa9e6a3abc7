//! Per-entry settlement against mocked ports: an event refused with a final error is
//! retried later with its own back-off, alone, holding back only its chat; after
//! `max_attempts` it is set aside (dead) and counted; a destination that refuses the
//! service blames no event.

use super::tests::{all_failed, config, entries, event, ok, relay};
use super::*;
use domain::model::ChatId;
use domain::ports::{
    AfterFailure, Delivery, FailedAttempt, MockEventPublisher, MockOutbox, OutboxEntry,
    PublishReport,
};
use mockall::Sequence;

fn final_error() -> PublishError {
    PublishError::Final(anyhow::anyhow!("message too large"))
}

fn entry(chat: ChatId, position: i64, attempts: u32) -> OutboxEntry {
    OutboxEntry {
        position,
        event: event(chat),
        attempts,
    }
}

fn claims(outbox: &mut MockOutbox, batch: Vec<OutboxEntry>) {
    outbox
        .expect_claim()
        .times(1)
        .returning(move |_, _, _| Ok(batch.clone()));
}

fn expect_failures(outbox: &mut MockOutbox, expected: Vec<(i64, AfterFailure)>) {
    outbox
        .expect_record_failures()
        .withf(move |relay, failures: &[FailedAttempt]| {
            relay == "r1"
                && failures
                    .iter()
                    .map(|f| (f.position, f.then))
                    .eq(expected.iter().copied())
                && failures
                    .iter()
                    .all(|f| f.error.contains("message too large"))
        })
        .times(1)
        .returning(|_, _| Ok(()));
}

#[tokio::test]
async fn a_final_error_retries_the_entry_later_and_holds_back_nothing_else() {
    let (bad, good) = (ChatId::new(), ChatId::new());
    let mut batch = entries(bad, &[1]);
    batch.extend(entries(good, &[2, 3]));
    let mut outbox = MockOutbox::new();
    let mut publisher = MockEventPublisher::new();
    claims(&mut outbox, batch);
    publisher
        .expect_publish()
        .times(1)
        .returning(move |events| {
            PublishReport::new(
                events
                    .iter()
                    .map(|e| match e.chat_id == bad {
                        true => Delivery::Failed(final_error()),
                        false => Delivery::Delivered,
                    })
                    .collect(),
            )
        });
    let delay = config().retry_delay(0);
    expect_failures(&mut outbox, vec![(1, AfterFailure::RetryAfter(delay))]);
    outbox
        .expect_mark_published()
        .withf(|_, positions| positions == [2, 3])
        .times(1)
        .returning(|_, _| Ok(()));
    outbox.expect_release().never();
    let r = relay(outbox, publisher);
    let cycle = r.run_once().await.unwrap();
    assert_eq!(
        cycle,
        Cycle {
            claimed: 3,
            published: 2,
            retrying: 1,
            set_aside: 0,
            next_retry: Some(delay),
        }
    );
    let stats = r.stats().snapshot();
    assert!(
        stats.broker_up,
        "a refused event says nothing about the broker"
    );
    assert_eq!(stats.dead_total, 0);
}

#[tokio::test]
async fn an_entry_that_failed_before_goes_out_alone_and_first() {
    let (a, b) = (ChatId::new(), ChatId::new());
    let batch = vec![entry(a, 1, 2), entry(a, 2, 0), entry(b, 3, 0)];
    let (e1, rest) = (batch[0].event.id, [batch[1].event.id, batch[2].event.id]);
    let mut outbox = MockOutbox::new();
    let mut publisher = MockEventPublisher::new();
    claims(&mut outbox, batch);
    let mut seq = Sequence::new();
    publisher
        .expect_publish()
        .withf(move |events| events.len() == 1 && events[0].id == e1)
        .times(1)
        .in_sequence(&mut seq)
        .returning(ok);
    publisher
        .expect_publish()
        .withf(move |events| events.iter().map(|e| e.id).eq(rest))
        .times(1)
        .in_sequence(&mut seq)
        .returning(ok);
    outbox
        .expect_mark_published()
        .withf(|_, positions| positions == [1, 2, 3])
        .times(1)
        .returning(|_, _| Ok(()));
    let cycle = relay(outbox, publisher).run_once().await.unwrap();
    assert_eq!(cycle.published, 3);
}

#[tokio::test]
async fn a_failing_suspect_withholds_its_chats_later_entries_uncounted() {
    let (a, b) = (ChatId::new(), ChatId::new());
    let batch = vec![entry(a, 1, 1), entry(a, 2, 0), entry(b, 3, 0)];
    let only_b = batch[2].event.id;
    let mut outbox = MockOutbox::new();
    let mut publisher = MockEventPublisher::new();
    claims(&mut outbox, batch);
    let mut seq = Sequence::new();
    publisher
        .expect_publish()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|events| all_failed(events, final_error));
    publisher
        .expect_publish()
        .withf(move |events| events.len() == 1 && events[0].id == only_b)
        .times(1)
        .in_sequence(&mut seq)
        .returning(ok);
    expect_failures(
        &mut outbox,
        vec![(1, AfterFailure::RetryAfter(config().retry_delay(1)))],
    );
    outbox
        .expect_release()
        .withf(|_, positions| positions == [2])
        .times(1)
        .returning(|_, _| Ok(()));
    outbox
        .expect_mark_published()
        .withf(|_, positions| positions == [3])
        .times(1)
        .returning(|_, _| Ok(()));
    relay(outbox, publisher).run_once().await.unwrap();
}

#[tokio::test]
async fn after_max_attempts_the_entry_is_set_aside_and_counted() {
    let chat = ChatId::new();
    let max = config().max_attempts;
    let mut outbox = MockOutbox::new();
    let mut publisher = MockEventPublisher::new();
    claims(
        &mut outbox,
        vec![entry(chat, 9, max - 1), entry(chat, 10, 0)],
    );
    publisher
        .expect_publish()
        .times(1)
        .returning(|events| all_failed(events, final_error));
    expect_failures(&mut outbox, vec![(9, AfterFailure::SetAside)]);
    outbox
        .expect_release()
        .withf(|_, positions| positions == [10])
        .times(1)
        .returning(|_, _| Ok(()));
    outbox.expect_mark_published().never();
    let r = relay(outbox, publisher);
    let cycle = r.run_once().await.unwrap();
    assert_eq!(
        (cycle.set_aside, cycle.retrying, cycle.published),
        (1, 0, 0)
    );
    assert_eq!(r.stats().dead_total(), 1);
}

#[tokio::test]
async fn withheld_entries_are_given_back_uncounted() {
    let chat = ChatId::new();
    let mut outbox = MockOutbox::new();
    let mut publisher = MockEventPublisher::new();
    claims(&mut outbox, entries(chat, &[1, 2, 3]));
    publisher.expect_publish().times(1).returning(|_| {
        PublishReport::new(vec![
            Delivery::Delivered,
            Delivery::Failed(final_error()),
            Delivery::Withheld,
        ])
    });
    expect_failures(
        &mut outbox,
        vec![(2, AfterFailure::RetryAfter(config().retry_delay(0)))],
    );
    outbox
        .expect_release()
        .withf(|_, positions| positions == [3])
        .times(1)
        .returning(|_, _| Ok(()));
    outbox
        .expect_mark_published()
        .withf(|_, positions| positions == [1])
        .times(1)
        .returning(|_, _| Ok(()));
    relay(outbox, publisher).run_once().await.unwrap();
}

#[tokio::test]
async fn a_destination_refusing_the_service_blames_no_event() {
    let mut outbox = MockOutbox::new();
    let mut publisher = MockEventPublisher::new();
    claims(&mut outbox, entries(ChatId::new(), &[1, 2]));
    publisher.expect_publish().times(1).returning(|events| {
        all_failed(events, || {
            PublishError::Refused(anyhow::anyhow!("topic authorization failed"))
        })
    });
    outbox.expect_record_failures().never();
    outbox
        .expect_release()
        .withf(|_, positions| positions == [1, 2])
        .times(1)
        .returning(|_, _| Ok(()));
    let r = relay(outbox, publisher);
    assert!(matches!(
        r.run_once().await,
        Err(RelayError::Publish(PublishError::Refused(_)))
    ));
    assert!(!r.stats().broker_up());
}

#[tokio::test]
async fn a_suspect_finding_the_destination_down_stops_the_cycle() {
    let (a, b) = (ChatId::new(), ChatId::new());
    let mut outbox = MockOutbox::new();
    let mut publisher = MockEventPublisher::new();
    claims(&mut outbox, vec![entry(a, 1, 1), entry(b, 2, 0)]);
    publisher
        .expect_publish()
        .times(1)
        .returning(|events| all_failed(events, super::tests::retriable));
    outbox.expect_record_failures().never();
    outbox
        .expect_release()
        .withf(|_, positions| positions == [1, 2])
        .times(1)
        .returning(|_, _| Ok(()));
    let r = relay(outbox, publisher);
    assert!(matches!(
        r.run_once().await,
        Err(RelayError::Publish(PublishError::Retriable(_)))
    ));
}

#[test]
fn retry_delays_double_up_to_the_cap() {
    let c = RelayConfig {
        retry_initial: Duration::from_secs(1),
        retry_max: Duration::from_secs(10),
        ..RelayConfig::default()
    };
    let delays: Vec<u64> = (0..6).map(|a| c.retry_delay(a).as_secs()).collect();
    assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
    assert_eq!(c.retry_delay(u32::MAX), Duration::from_secs(10));
}

#[test]
fn the_lease_covers_a_publish_with_a_replaced_producer() {
    assert_eq!(
        RelayConfig::lease_covering(Duration::from_secs(10)),
        Duration::from_secs(120)
    );
    assert_eq!(
        RelayConfig::lease_covering(Duration::from_secs(600)),
        Duration::from_secs(1240)
    );
}
