//! Events end to end: API changes on PostgreSQL go through the outbox and the relay to
//! a Kafka-protocol broker (librdkafka's in-process mock cluster), one CloudEvent per
//! change, keyed by chat id, in per-chat order — including while the broker is down.

use crate::helpers::TestApp;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::time::Duration;

type Cluster = MockCluster<'static, DefaultProducerContext>;

fn cluster() -> Cluster {
    let c = MockCluster::new(1).unwrap();
    c.create_topic("chat-events", 3, 1).unwrap();
    c
}

/// (key, ce_type header, CloudEvent) of every record, once `n` have arrived.
async fn consume(cluster: &Cluster, n: usize) -> Vec<(String, String, Value)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", "api-tests")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset("chat-events", p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} events arrived", out.len()))
            .unwrap();
        let ce_type = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "ce_type").and_then(|h| h.value))
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        out.push((
            String::from_utf8_lossy(m.key().unwrap()).into_owned(),
            ce_type,
            serde_json::from_slice(m.payload().unwrap()).unwrap(),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_change_reaches_kafka_once_in_chat_order() {
    let cluster = cluster();
    let app = TestApp::builder()
        .postgres()
        .env("KAFKA_BROKERS", &cluster.bootstrap_servers())
        .env("KAFKA_MESSAGE_TIMEOUT_MS", "5000")
        .spawn()
        .await;
    let chat = app.create_chat("alice", "Events").await;
    let id = chat["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/chats/{id}");
    app.put("alice", &path, json!({"title": "Renamed"}))
        .send()
        .await
        .unwrap();
    let t: Value = app.send("alice", &id, "hi").await.json().await.unwrap();
    let mid = t["message"]["id"].as_str().unwrap();
    app.put(
        "alice",
        &format!("/api/v1/messages/{mid}"),
        json!({"content": "hi!"}),
    )
    .send()
    .await
    .unwrap();
    app.delete("alice", &format!("/api/v1/messages/{mid}"))
        .send()
        .await
        .unwrap();
    app.delete("alice", &path).send().await.unwrap();

    let expected = [
        "chat.created",
        "chat.updated",
        "message.created",
        "message.created",
        "message.completed",
        "message.updated",
        "message.deleted",
        "chat.deleted",
    ];
    let records = consume(&cluster, expected.len()).await;
    let types: Vec<&str> = records.iter().map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(types, expected);
    for (key, ce_type, ce) in &records {
        assert_eq!(key, &id);
        assert_eq!(ce["type"], ce_type.as_str());
        assert_eq!(ce["subject"], id.as_str());
        assert_eq!(ce["userid"], "alice");
        assert_eq!(ce["specversion"], "1.0");
    }
    assert_eq!(records[2].2["seq"], 1);
    assert_eq!(records[4].2["data"]["content"], "Echo: hi");
    let ids: std::collections::HashSet<&str> = records
        .iter()
        .map(|(_, _, ce)| ce["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), expected.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_while_the_broker_is_down_are_delivered_when_it_returns() {
    let cluster = cluster();
    let app = TestApp::builder()
        .postgres()
        .env("KAFKA_BROKERS", &cluster.bootstrap_servers())
        .env("KAFKA_MESSAGE_TIMEOUT_MS", "2000")
        .spawn()
        .await;
    cluster.broker_down(1).unwrap();
    let mut chats = Vec::new();
    for i in 0..3 {
        let started = std::time::Instant::now();
        let chat = app.create_chat("alice", &format!("offline {i}")).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the API must not wait for the broker"
        );
        let id = chat["id"].as_str().unwrap().to_owned();
        app.send("alice", &id, "while down").await;
        chats.push(id);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.broker_up(1).unwrap();
    let records = consume(&cluster, 12).await;
    for id in &chats {
        let types: Vec<&str> = records
            .iter()
            .filter(|(k, _, _)| k == id)
            .map(|(_, t, _)| t.as_str())
            .collect();
        // Duplicates (same id) are allowed by the contract; the first copies must be in order.
        let mut seen = std::collections::HashSet::new();
        let firsts: Vec<&str> = records
            .iter()
            .filter(|(k, _, ce)| k == id && seen.insert(ce["id"].as_str().unwrap().to_owned()))
            .map(|(_, t, _)| t.as_str())
            .collect();
        assert_eq!(
            firsts,
            [
                "chat.created",
                "message.created",
                "message.created",
                "message.completed"
            ],
            "{types:?}"
        );
    }
}
