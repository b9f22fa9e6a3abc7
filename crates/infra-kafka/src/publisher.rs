//! The Kafka event publisher: CloudEvents in structured JSON mode, keyed by chat id,
//! sent by an idempotent producer and awaited until acknowledged, with one report per
//! event. A producer that stops making progress while the broker answers is replaced
//! ([`crate::stall`]).

use crate::classify::classify;
use crate::config::KafkaConfig;
use crate::stall::StallWatch;
use async_trait::async_trait;
use domain::model::{ChatId, Event};
use domain::ports::{Delivery, EventPublisher, PublishError, PublishReport};
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer, PurgeConfig};
use rdkafka::ClientConfig;
use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// The `content-type` header of every record (CloudEvents structured mode).
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// Extra time granted to delivery reports beyond `message.timeout.ms`.
const REPORT_MARGIN: Duration = Duration::from_secs(5);

/// Longest pause between two tries while the local queue is full.
const QUEUE_WAIT_MAX: Duration = Duration::from_millis(50);

/// Why the publisher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    /// The settings are wrong; each entry names its key.
    #[error("invalid Kafka settings: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// librdkafka refused the configuration.
    #[error("creating the Kafka producer")]
    Client(#[source] KafkaError),
}

/// Publishes events to a Kafka topic.
///
/// Each event becomes one record: value = the CloudEvent JSON, key = the chat id
/// (so one chat's events share a partition and keep their order), headers
/// `ce_specversion`, `ce_id`, `ce_type`, `content-type` and, when known,
/// `x-request-id`. [`EventPublisher::publish`] enqueues the batch (waiting while the
/// local queue is full), then waits for every delivery report.
///
/// While reports are outstanding it checks every `message_timeout / 8` (0.1–2 s)
/// whether the broker answers a metadata request; a producer that delivered nothing
/// for two message timeouts while the broker answered is replaced by a new one (a new
/// producer id), and the batch's undelivered events are sent again through it.
pub struct KafkaPublisher {
    client_config: ClientConfig,
    producer: RwLock<FutureProducer>,
    topic: String,
    source: String,
    report_timeout: Duration,
    check_every: Duration,
    watch: Mutex<StallWatch>,
    replacements: AtomicU64,
}

impl fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("topic", &self.topic)
            .field("source", &self.source)
            .field("replacements", &self.replacements())
            .finish_non_exhaustive()
    }
}

struct Prepared {
    key: String,
    payload: String,
    headers: OwnedHeaders,
    timestamp: i64,
}

impl KafkaPublisher {
    /// Checks the settings and creates the producer. No connection is made yet:
    /// the broker may be down at start; events then wait in the outbox.
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaSetupError> {
        config.validate().map_err(KafkaSetupError::Invalid)?;
        let client_config = config.producer_config();
        let producer = client_config
            .create::<FutureProducer>()
            .map_err(KafkaSetupError::Client)?;
        let check_every =
            (config.message_timeout / 8).clamp(Duration::from_millis(100), Duration::from_secs(2));
        Ok(Self {
            client_config,
            producer: RwLock::new(producer),
            topic: config.topic.clone(),
            source: config.source.clone(),
            report_timeout: config.message_timeout + REPORT_MARGIN,
            check_every,
            watch: Mutex::new(StallWatch::new(config.message_timeout * 2)),
            replacements: AtomicU64::new(0),
        })
    }

    /// The topic events go to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// How many times the producer was replaced (stalled or failed fatally).
    pub fn replacements(&self) -> u64 {
        self.replacements.load(Ordering::Relaxed)
    }

    /// Asks the cluster for the topic's metadata: `Ok` when a broker answered
    /// within `timeout` and the topic exists. For readiness details only; the
    /// API never waits on Kafka.
    pub async fn probe(&self, timeout: Duration) -> Result<(), PublishError> {
        match self.fetch_metadata(timeout).await {
            Ok(None) => Ok(()),
            Ok(Some(err)) | Err(err) => Err(classify(err)),
        }
    }

    /// `Ok(None)`: the broker answered and the topic exists; `Ok(Some(_))`: the broker
    /// answered with a topic error; `Err`: no answer.
    async fn fetch_metadata(&self, timeout: Duration) -> Result<Option<KafkaError>, KafkaError> {
        let producer = self.current();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let metadata = producer.client().fetch_metadata(Some(&topic), timeout)?;
            Ok(metadata
                .topics()
                .first()
                .and_then(|t| t.error())
                .map(|e| KafkaError::MetadataFetch(e.into())))
        })
        .await
        .unwrap_or(Err(KafkaError::Canceled))
    }

    fn current(&self) -> FutureProducer {
        self.producer
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn watch(&self) -> std::sync::MutexGuard<'_, StallWatch> {
        self.watch.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a new producer in place and purges the old one (its outstanding messages
    /// fail at once, as retriable, instead of being delivered later out of order).
    fn replace(&self, reason: &str) {
        let fresh = match self.client_config.create::<FutureProducer>() {
            Ok(p) => p,
            Err(err) => {
                tracing::error!(error = %err, reason, "recreating the Kafka producer failed");
                return;
            }
        };
        let old = std::mem::replace(
            &mut *self
                .producer
                .write()
                .unwrap_or_else(PoisonError::into_inner),
            fresh,
        );
        old.purge(PurgeConfig::default().queue().inflight());
        self.watch().replaced();
        let n = self.replacements.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(reason, replacements = n, "Kafka producer replaced");
    }

    /// While messages wait: asks the broker whether it answers, and replaces the
    /// producer when it has answered for two message timeouts without any delivery.
    /// Returns whether it did.
    async fn check_stall(&self) -> bool {
        let timeout = self.check_every.max(Duration::from_millis(500));
        let answered = self.fetch_metadata(timeout).await.is_ok();
        let now = Instant::now();
        let stalled = {
            let mut w = self.watch();
            w.observe(now, answered);
            w.should_replace(now)
        };
        if stalled {
            self.replace("no delivery for two message timeouts while the broker answers");
        }
        stalled
    }

    fn prepare(&self, event: &Event) -> Result<Prepared, PublishError> {
        let payload = serde_json::to_string(&event.to_cloudevent(&self.source)).map_err(|e| {
            PublishError::Final(anyhow::Error::new(e).context("serializing a CloudEvent"))
        })?;
        let id = event.id.to_string();
        let mut headers = OwnedHeaders::new_with_capacity(5)
            .insert(Header {
                key: "ce_specversion",
                value: Some("1.0"),
            })
            .insert(Header {
                key: "ce_id",
                value: Some(id.as_str()),
            })
            .insert(Header {
                key: "ce_type",
                value: Some(event.kind.type_name()),
            })
            .insert(Header {
                key: "content-type",
                value: Some(CONTENT_TYPE),
            });
        if let Some(request_id) = &event.request_id {
            headers = headers.insert(Header {
                key: "x-request-id",
                value: Some(request_id.as_str()),
            });
        }
        Ok(Prepared {
            key: event.chat_id.to_string(),
            payload,
            headers,
            timestamp: event.time.timestamp_millis(),
        })
    }

    fn record<'a>(&'a self, p: &'a Prepared) -> FutureRecord<'a, String, String> {
        FutureRecord::to(&self.topic)
            .key(&p.key)
            .payload(&p.payload)
            .headers(p.headers.clone())
            .timestamp(p.timestamp)
    }

    /// Hands one record to the producer. A full local queue is waited out (it drains
    /// as in-flight messages are delivered or time out), up to `deadline`.
    async fn enqueue(
        &self,
        producer: &FutureProducer,
        p: &Prepared,
        deadline: Instant,
        next_check: &mut Instant,
    ) -> Result<DeliveryFuture, KafkaError> {
        let mut record = self.record(p);
        let mut pause = Duration::from_millis(1);
        loop {
            match producer.send_result(record) {
                Ok(report) => return Ok(report),
                Err((err @ KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(err);
                    }
                    if now >= *next_check {
                        *next_check = now + self.check_every;
                        if self.check_stall().await {
                            // The old producer is gone: its queue will never drain.
                            return Err(KafkaError::MessageProduction(
                                RDKafkaErrorCode::PurgeQueue,
                            ));
                        }
                    }
                    tokio::time::sleep(pause.min(deadline - now)).await;
                    pause = (pause * 2).min(QUEUE_WAIT_MAX);
                    record = r;
                }
                Err((err, _)) => return Err(err),
            }
        }
    }

    /// One pass over `events` with the current producer; fills `out` (indexed like
    /// `events`). Returns whether the producer was replaced meanwhile.
    async fn publish_once(&self, events: &[(usize, &Event)], out: &mut [Option<Delivery>]) -> bool {
        let deadline = Instant::now() + self.report_timeout;
        let mut next_check = Instant::now() + self.check_every;
        let producer = self.current();
        let replacements = self.replacements();
        let mut stopped: HashSet<ChatId> = HashSet::new();
        let mut pending = FuturesUnordered::new();
        for &(i, event) in events {
            if stopped.contains(&event.chat_id) {
                out[i] = Some(Delivery::Withheld);
                continue;
            }
            let sent = match self.prepare(event) {
                Ok(p) => self
                    .enqueue(&producer, &p, deadline, &mut next_check)
                    .await
                    .map_err(classify),
                Err(e) => Err(e),
            };
            match sent {
                Ok(report) => pending.push(async move { (i, report.await) }),
                // Stop this chat here so none of its later events overtakes this one.
                Err(e) => {
                    stopped.insert(event.chat_id);
                    out[i] = Some(Delivery::Failed(e));
                }
            }
        }
        let mut fatal = false;
        while !pending.is_empty() {
            tokio::select! {
                next = pending.next() => {
                    let Some((i, report)) = next else { break };
                    out[i] = Some(match report {
                        Ok(Ok(_)) => {
                            self.watch().progress();
                            Delivery::Delivered
                        }
                        Ok(Err((err, _message))) => {
                            fatal |= err.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal);
                            Delivery::Failed(classify(err))
                        }
                        Err(_canceled) => Delivery::Failed(classify(KafkaError::Canceled)),
                    });
                }
                _ = tokio::time::sleep_until(next_check) => {
                    next_check = Instant::now() + self.check_every;
                    self.check_stall().await;
                }
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        for &(i, _) in events {
            if out[i].is_none() {
                out[i] = Some(Delivery::Failed(PublishError::Retriable(anyhow::anyhow!(
                    "Kafka delivery reports did not arrive within {:?}",
                    self.report_timeout
                ))));
            }
        }
        if fatal {
            let reason = producer.client().fatal_error().map(|(_, r)| r);
            tracing::error!(?reason, "fatal Kafka producer error");
            self.replace("fatal producer error");
        }
        self.replacements() != replacements
    }
}

/// After a replacement: the events to send again, per chat from its first
/// undelivered event on, when that one failed only because of the old producer.
fn to_resend<'a>(
    events: &[(usize, &'a Event)],
    out: &[Option<Delivery>],
) -> Vec<(usize, &'a Event)> {
    let mut settled: HashSet<ChatId> = HashSet::new();
    let mut resend_chats: HashSet<ChatId> = HashSet::new();
    for &(i, e) in events {
        if settled.contains(&e.chat_id) || resend_chats.contains(&e.chat_id) {
            continue;
        }
        match &out[i] {
            Some(Delivery::Delivered) => {}
            Some(Delivery::Failed(PublishError::Retriable(_))) => {
                resend_chats.insert(e.chat_id);
            }
            _ => {
                settled.insert(e.chat_id);
            }
        }
    }
    events
        .iter()
        .filter(|(i, e)| {
            resend_chats.contains(&e.chat_id) && !matches!(out[*i], Some(Delivery::Delivered))
        })
        .copied()
        .collect()
}

#[async_trait]
impl EventPublisher for KafkaPublisher {
    #[tracing::instrument(skip_all, fields(events = events.len(), topic = %self.topic))]
    async fn publish(&self, events: &[Event]) -> PublishReport {
        let all: Vec<(usize, &Event)> = events.iter().enumerate().collect();
        let mut out: Vec<Option<Delivery>> = (0..events.len()).map(|_| None).collect();
        let mut replaced = self.publish_once(&all, &mut out).await;
        let nothing_delivered = out.iter().all(|d| !matches!(d, Some(Delivery::Delivered)));
        let retriable = out
            .iter()
            .any(|d| matches!(d, Some(Delivery::Failed(PublishError::Retriable(_)))));
        if !replaced && nothing_delivered && retriable {
            // A batch that failed fast (no wait long enough for the periodic check).
            replaced = self.check_stall().await;
        }
        if replaced {
            let again = to_resend(&all, &out);
            if !again.is_empty() {
                tracing::info!(
                    events = again.len(),
                    "sending again through the new producer"
                );
                for &(i, _) in &again {
                    out[i] = None;
                }
                self.publish_once(&again, &mut out).await;
            }
        }
        PublishReport::new(
            out.into_iter()
                .map(|d| d.unwrap_or(Delivery::Withheld))
                .collect(),
        )
    }
}
