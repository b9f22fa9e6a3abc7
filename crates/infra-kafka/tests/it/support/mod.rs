//! Test helpers: an in-process Kafka-protocol cluster (librdkafka's mock
//! cluster), a consumer that reads the topic back, and an in-memory outbox.

pub mod events;
pub mod outbox;

use infra_kafka::{KafkaConfig, KafkaPublisher, SecretString};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;

pub const TOPIC: &str = "chat-events";
pub const PARTITIONS: i32 = 3;

pub type Cluster = MockCluster<'static, DefaultProducerContext>;

/// A one-broker cluster with the events topic created.
pub fn cluster() -> Cluster {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, PARTITIONS, 1).unwrap();
    cluster
}

/// Publisher settings for tests: short timeouts, quick reconnects.
pub fn config(cluster: &Cluster, message_timeout: Duration) -> KafkaConfig {
    let mut c = KafkaConfig::new(cluster.bootstrap_servers());
    c.topic = TOPIC.to_owned();
    c.message_timeout = message_timeout;
    for (k, v) in [
        ("reconnect.backoff.ms", "20"),
        ("reconnect.backoff.max.ms", "200"),
        ("retry.backoff.ms", "20"),
        ("retry.backoff.max.ms", "200"),
    ] {
        c.extra.insert(k.to_owned(), SecretString::new(v));
    }
    c
}

pub fn publisher(cluster: &Cluster, message_timeout: Duration) -> KafkaPublisher {
    KafkaPublisher::new(&config(cluster, message_timeout)).unwrap()
}

/// One record read back from the topic.
#[derive(Debug, Clone)]
pub struct Received {
    pub key: String,
    pub partition: i32,
    pub headers: BTreeMap<String, String>,
    pub value: serde_json::Value,
}

impl Received {
    pub fn id(&self) -> &str {
        self.value["id"].as_str().unwrap()
    }
}

/// Reads the whole topic from the beginning until `done` says enough, then keeps
/// reading until the topic stays quiet for `settle`.
pub async fn consume_until(
    cluster: &Cluster,
    done: impl Fn(&[Received]) -> bool,
    settle: Duration,
) -> Vec<Received> {
    consume_from(&cluster.bootstrap_servers(), done, settle).await
}

/// [`consume_until`] from any cluster.
pub async fn consume_from(
    bootstrap: &str,
    done: impl Fn(&[Received]) -> bool,
    settle: Duration,
) -> Vec<Received> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "infra-kafka-tests")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let wait = if done(&got) {
            settle
        } else {
            Duration::from_secs(1)
        };
        match tokio::time::timeout(wait, consumer.recv()).await {
            Ok(msg) => got.push(received(&msg.unwrap())),
            Err(_) if done(&got) => return got,
            Err(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "only {} records arrived",
                got.len()
            ),
        }
    }
}

fn received(m: &impl Message) -> Received {
    let mut headers = BTreeMap::new();
    if let Some(hs) = m.headers() {
        for h in hs.iter() {
            let value = String::from_utf8(h.value.unwrap_or_default().to_vec()).unwrap();
            assert!(
                headers.insert(h.key.to_owned(), value).is_none(),
                "header twice"
            );
        }
    }
    Received {
        key: String::from_utf8(m.key().unwrap().to_vec()).unwrap(),
        partition: m.partition(),
        headers,
        value: serde_json::from_slice(m.payload().unwrap()).unwrap(),
    }
}

/// The ids per chat in the order first seen (what a deduplicating consumer keeps).
pub fn first_seen_per_chat(records: &[Received]) -> BTreeMap<String, Vec<String>> {
    let mut seen = std::collections::HashSet::new();
    let mut per_chat: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in records {
        if seen.insert(r.id().to_owned()) {
            per_chat
                .entry(r.key.clone())
                .or_default()
                .push(r.id().to_owned());
        }
    }
    per_chat
}

/// The ids per chat in commit order, from the outbox.
pub fn expected_per_chat(events: &[domain::model::Event]) -> BTreeMap<String, Vec<String>> {
    let mut per_chat: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in events {
        per_chat
            .entry(e.chat_id.to_string())
            .or_default()
            .push(e.id.to_string());
    }
    per_chat
}

/// Waits until `cond` holds, failing the test after `limit`.
pub async fn wait_until(what: &str, limit: Duration, cond: impl Fn() -> bool) {
    let waited = tokio::time::timeout(limit, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting until {what}");
}
