//! The publisher when things go wrong: a full local queue is waited out (also when
//! another batch filled it), an event too large for the broker fails alone and
//! withholds only its chat's later events, and a producer that makes no progress
//! while the broker answers is replaced — but not while the broker is down.

use crate::support::{self, events, Received};
use domain::model::ChatId;
use domain::ports::{Delivery, EventPublisher, PublishError};
use infra_kafka::{KafkaPublisher, SecretString};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::sync::Arc;
use std::time::Duration;

fn kinds(report: &[Delivery]) -> Vec<&'static str> {
    report
        .iter()
        .map(|d| match d {
            Delivery::Delivered => "delivered",
            Delivery::Withheld => "withheld",
            Delivery::Failed(PublishError::Retriable(_)) => "retriable",
            Delivery::Failed(PublishError::Refused(_)) => "refused",
            Delivery::Failed(PublishError::Final(_)) => "final",
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_sharing_a_full_local_queue_wait_for_it_and_keep_their_order() {
    let cluster = support::cluster();
    // A slow broker keeps the 3-message queue full while both batches are enqueued.
    cluster
        .broker_round_trip_time(-1, Duration::from_millis(30))
        .unwrap();
    let mut config = support::config(&cluster, Duration::from_secs(20));
    config.extra.insert(
        "queue.buffering.max.messages".to_owned(),
        SecretString::new("3"),
    );
    let publisher = Arc::new(KafkaPublisher::new(&config).unwrap());
    let (a, b) = (ChatId::new(), ChatId::new());
    let batch_a: Vec<_> = (1..=12).map(|seq| events::created(a, seq)).collect();
    let batch_b: Vec<_> = (1..=12).map(|seq| events::created(b, seq)).collect();
    let (pa, pb) = (publisher.clone(), publisher.clone());
    let (ba, bb) = (batch_a.clone(), batch_b.clone());
    let ta = tokio::spawn(async move { pa.publish(&ba).await.into_result() });
    let tb = tokio::spawn(async move { pb.publish(&bb).await.into_result() });
    ta.await.unwrap().unwrap();
    tb.await.unwrap().unwrap();
    let got = support::consume_until(&cluster, |r| r.len() >= 24, Duration::from_millis(300)).await;
    for (chat, batch) in [(a, &batch_a), (b, &batch_b)] {
        let ids: Vec<&str> = got
            .iter()
            .filter(|r| r.key == chat.to_string())
            .map(Received::id)
            .collect();
        let expected: Vec<String> = batch.iter().map(|e| e.id.to_string()).collect();
        assert_eq!(ids, expected);
    }
}

#[tokio::test]
async fn an_event_too_large_fails_alone_and_withholds_only_its_chat() {
    let cluster = support::cluster();
    let publisher = support::publisher(&cluster, Duration::from_secs(10));
    let (a, b) = (ChatId::new(), ChatId::new());
    let batch = vec![
        events::created(a, 1),
        events::large_reply(a, 2, 1_500_000),
        events::created(a, 3),
        events::created(b, 1),
    ];
    let report = publisher.publish(&batch).await;
    assert_eq!(
        kinds(report.deliveries()),
        ["delivered", "final", "withheld", "delivered"]
    );
    let got = support::consume_until(&cluster, |r| r.len() >= 2, Duration::from_millis(300)).await;
    let ids: Vec<&str> = got.iter().map(Received::id).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&batch[0].id.to_string().as_str()));
    assert!(ids.contains(&batch[3].id.to_string().as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_stuck_while_the_broker_answers_is_replaced_and_the_batch_goes_out() {
    let cluster = support::cluster();
    let publisher = support::publisher(&cluster, Duration::from_secs(1));
    publisher
        .publish(&[events::created(ChatId::new(), 1)])
        .await
        .into_result()
        .unwrap();
    // Like a broker restarted empty: every produce is answered UNKNOWN_PRODUCER_ID,
    // metadata requests are answered normally.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID; 100_000],
    );
    let chat = ChatId::new();
    let batch: Vec<_> = (1..=3).map(|seq| events::created(chat, seq)).collect();
    // Published again and again, as the relay does, until the producer is replaced:
    // two message timeouts (2 s) after the first check that found the broker answering.
    let started = tokio::time::Instant::now();
    while publisher.replacements() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the stuck producer was never replaced"
        );
        let report = publisher.publish(&batch).await;
        assert_eq!(report.delivered_count(), 0);
    }
    cluster.clear_request_errors(RDKafkaApiKey::Produce);
    let report = publisher.publish(&batch).await;
    assert_eq!(kinds(report.deliveries()), ["delivered"; 3]);
    let got = support::consume_until(&cluster, |r| r.len() >= 4, Duration::from_millis(300)).await;
    let ids: Vec<&str> = got
        .iter()
        .filter(|r| r.key == chat.to_string())
        .map(Received::id)
        .collect();
    let expected: Vec<String> = batch.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(ids, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_is_not_replaced_while_the_broker_is_down() {
    let cluster = support::cluster();
    let publisher = support::publisher(&cluster, Duration::from_millis(500));
    publisher
        .publish(&[events::created(ChatId::new(), 1)])
        .await
        .into_result()
        .unwrap();
    cluster.broker_down(-1).unwrap();
    let started = tokio::time::Instant::now();
    // Well past two message timeouts without a delivery.
    while started.elapsed() < Duration::from_secs(4) {
        let report = publisher
            .publish(&[events::created(ChatId::new(), 1)])
            .await;
        assert_eq!(kinds(report.deliveries()), ["retriable"]);
    }
    assert_eq!(publisher.replacements(), 0);
    cluster.broker_up(-1).unwrap();
    publisher
        .publish(&[events::created(ChatId::new(), 1)])
        .await
        .into_result()
        .unwrap();
    assert_eq!(publisher.replacements(), 0);
}
