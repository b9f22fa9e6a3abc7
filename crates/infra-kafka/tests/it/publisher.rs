//! The publisher against a Kafka-protocol broker: records, keys, headers and
//! CloudEvent fields, and how failures are classified.

use crate::support::{self, events, Received};
use domain::model::{ChatId, EVENT_TYPES};
use domain::ports::{EventPublisher, PublishError};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[tokio::test]
async fn every_event_type_arrives_keyed_by_chat_with_its_headers() {
    let cluster = support::cluster();
    let publisher = support::publisher(&cluster, Duration::from_secs(10));
    let (chat, other) = (ChatId::new(), ChatId::new());
    let mut sent = events::one_of_each(chat);
    sent.insert(3, events::created(other, 1));
    publisher.publish(&sent).await.into_result().unwrap();

    let got = support::consume_until(
        &cluster,
        |r| r.len() >= sent.len(),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(got.len(), sent.len(), "exactly one record per event");
    for e in &sent {
        let r: &Received = got.iter().find(|r| r.id() == e.id.to_string()).unwrap();
        assert_eq!(r.key, e.chat_id.to_string());
        assert_eq!(
            r.value,
            e.to_cloudevent("/chat-service"),
            "{}",
            e.kind.type_name()
        );
        assert_eq!(r.value["type"], e.kind.type_name());
        assert_eq!(r.value["subject"], e.chat_id.to_string());
        assert_eq!(r.value["chatid"], e.chat_id.to_string());
        assert_eq!(r.value["userid"], "alice");
        assert_eq!(r.value["specversion"], "1.0");
        assert_eq!(r.headers["ce_type"], e.kind.type_name());
        assert_eq!(r.headers["ce_id"], e.id.to_string());
        assert_eq!(r.headers["ce_specversion"], "1.0");
        assert_eq!(r.headers["content-type"], "application/cloudevents+json");
        assert_eq!(r.headers.get("x-request-id"), e.request_id.as_ref());
        assert_eq!(
            r.value.get("requestid").and_then(|v| v.as_str()),
            e.request_id.as_deref()
        );
        assert_eq!(
            r.value.get("seq").and_then(|v| v.as_u64()),
            e.kind.seq().map(u64::from)
        );
    }
    // Type-specific data, as documented in docs/asyncapi.yaml.
    let by_type = |t: &str| got.iter().find(|r| r.value["type"] == t).unwrap();
    assert_eq!(
        by_type("chat.created").value["data"]["settings"]["systemPrompt"],
        "Be brief."
    );
    assert_eq!(by_type("message.completed").value["data"]["latencyMs"], 420);
    assert_eq!(
        by_type("message.completed").value["data"]["usage"]["completionTokens"],
        34
    );
    assert_eq!(
        by_type("message.failed").value["data"]["error"],
        "provider timed out"
    );
    assert_eq!(by_type("message.deleted").value["data"]["seq"], 4);
    assert_eq!(
        by_type("chat.deleted").value["data"]["id"],
        chat.to_string()
    );
    let types: BTreeSet<_> = got.iter().map(|r| r.headers["ce_type"].as_str()).collect();
    assert_eq!(types, EVENT_TYPES.into_iter().collect());

    // One chat, one partition, in the order published.
    let mine: Vec<&Received> = got.iter().filter(|r| r.key == chat.to_string()).collect();
    assert!(mine.iter().all(|r| r.partition == mine[0].partition));
    let order: Vec<String> = mine.iter().map(|r| r.id().to_owned()).collect();
    let expected: Vec<String> = sent
        .iter()
        .filter(|e| e.chat_id == chat)
        .map(|e| e.id.to_string())
        .collect();
    assert_eq!(order, expected);
}

#[tokio::test]
async fn an_empty_batch_is_a_no_op() {
    let cluster = support::cluster();
    let publisher = support::publisher(&cluster, Duration::from_secs(5));
    assert!(publisher.publish(&[]).await.deliveries().is_empty());
}

#[tokio::test]
async fn transient_broker_errors_are_retried_inside_the_producer() {
    let cluster = support::cluster();
    let publisher = support::publisher(&cluster, Duration::from_secs(10));
    publisher
        .publish(&[events::created(ChatId::new(), 1)])
        .await
        .into_result()
        .unwrap();
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    let chat = ChatId::new();
    let batch = vec![events::created(chat, 1), events::created(chat, 2)];
    publisher.publish(&batch).await.into_result().unwrap();
    let got = support::consume_until(&cluster, |r| r.len() >= 3, Duration::from_millis(300)).await;
    let ids: Vec<&str> = got
        .iter()
        .filter(|r| r.key == chat.to_string())
        .map(Received::id)
        .collect();
    assert_eq!(ids, [batch[0].id.to_string(), batch[1].id.to_string()]);
}

#[tokio::test]
async fn authorization_refused_is_refused_not_final() {
    let cluster = support::cluster();
    let publisher = support::publisher(&cluster, Duration::from_secs(10));
    publisher
        .publish(&[events::created(ChatId::new(), 1)])
        .await
        .into_result()
        .unwrap();
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let err = publisher
        .publish(&[events::created(ChatId::new(), 1)])
        .await
        .into_result()
        .unwrap_err();
    assert!(matches!(err, PublishError::Refused(_)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_broker_is_retriable_and_publishing_resumes() {
    let cluster = support::cluster();
    let publisher = support::publisher(&cluster, Duration::from_millis(1500));
    publisher
        .publish(&[events::created(ChatId::new(), 1)])
        .await
        .into_result()
        .unwrap();
    cluster.broker_down(-1).unwrap();
    let started = Instant::now();
    let err = publisher
        .publish(&[events::created(ChatId::new(), 1)])
        .await
        .into_result()
        .unwrap_err();
    assert!(matches!(err, PublishError::Retriable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "returned within the message timeout"
    );
    cluster.broker_up(-1).unwrap();
    publisher
        .publish(&[events::created(ChatId::new(), 1)])
        .await
        .into_result()
        .unwrap();
    assert!(publisher.probe(Duration::from_secs(5)).await.is_ok());
}

#[tokio::test]
async fn a_batch_larger_than_the_local_queue_still_goes_out_in_order() {
    let cluster = support::cluster();
    let mut config = support::config(&cluster, Duration::from_secs(10));
    config.extra.insert(
        "queue.buffering.max.messages".to_owned(),
        infra_kafka::SecretString::new("3"),
    );
    let publisher = infra_kafka::KafkaPublisher::new(&config).unwrap();
    let chat = ChatId::new();
    let batch: Vec<_> = (1..=10).map(|seq| events::created(chat, seq)).collect();
    publisher.publish(&batch).await.into_result().unwrap();
    let got = support::consume_until(&cluster, |r| r.len() >= 10, Duration::from_millis(300)).await;
    let ids: Vec<&str> = got.iter().map(Received::id).collect();
    let expected: Vec<String> = batch.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(ids, expected);
}
