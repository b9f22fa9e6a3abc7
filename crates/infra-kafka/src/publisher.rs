//! The Kafka event publisher: CloudEvents in structured JSON mode, keyed by
//! chat id, sent by an idempotent producer and awaited until acknowledged.

use crate::classify::{classify, worse};
use crate::config::KafkaConfig;
use async_trait::async_trait;
use domain::model::Event;
use domain::ports::{EventPublisher, PublishError};
use futures::future::join_all;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use std::fmt;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

/// The `content-type` header of every record (CloudEvents structured mode).
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// Extra time granted to delivery reports beyond `message.timeout.ms`.
const REPORT_MARGIN: Duration = Duration::from_secs(5);

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
/// `x-request-id`. [`EventPublisher::publish`] enqueues the whole batch, then
/// waits for every delivery report.
pub struct KafkaPublisher {
    client_config: ClientConfig,
    producer: RwLock<FutureProducer>,
    topic: String,
    source: String,
    report_timeout: Duration,
}

impl fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("topic", &self.topic)
            .field("source", &self.source)
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
        Ok(Self {
            client_config,
            producer: RwLock::new(producer),
            topic: config.topic.clone(),
            source: config.source.clone(),
            report_timeout: config.message_timeout + REPORT_MARGIN,
        })
    }

    /// The topic events go to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Asks the cluster for the topic's metadata: `Ok` when a broker answered
    /// within `timeout` and the topic exists. For readiness details only; the
    /// API never waits on Kafka.
    pub async fn probe(&self, timeout: Duration) -> Result<(), PublishError> {
        let producer = self.current();
        let topic = self.topic.clone();
        let fetched = tokio::task::spawn_blocking(move || {
            let metadata = producer.client().fetch_metadata(Some(&topic), timeout)?;
            match metadata.topics().first().and_then(|t| t.error()) {
                Some(err) => Err(KafkaError::MetadataFetch(err.into())),
                None => Ok(()),
            }
        })
        .await
        .map_err(|e| PublishError::Retriable(anyhow::Error::new(e).context("metadata probe")))?;
        fetched.map_err(classify)
    }

    fn current(&self) -> FutureProducer {
        self.producer
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// After a fatal error librdkafka's producer is unusable: build a new one.
    fn replace_after_fatal(&self) {
        let reason = self.current().client().fatal_error();
        tracing::error!(
            ?reason,
            "fatal Kafka producer error; recreating the producer"
        );
        match self.client_config.create::<FutureProducer>() {
            Ok(p) => {
                *self
                    .producer
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = p
            }
            Err(err) => tracing::error!(error = %err, "recreating the Kafka producer failed"),
        }
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

    /// Waits for delivery reports; the worst failure wins.
    async fn await_reports(&self, pending: Vec<DeliveryFuture>) -> Result<(), PublishError> {
        if pending.is_empty() {
            return Ok(());
        }
        let reports = tokio::time::timeout(self.report_timeout, join_all(pending))
            .await
            .map_err(|_| {
                PublishError::Retriable(anyhow::anyhow!(
                    "Kafka delivery reports did not arrive within {:?}",
                    self.report_timeout
                ))
            })?;
        let mut failure: Option<PublishError> = None;
        let mut fatal = false;
        for report in reports {
            let err = match report {
                Ok(Ok(_)) => continue,
                Ok(Err((err, _message))) => err,
                Err(_canceled) => KafkaError::Canceled,
            };
            fatal |= err.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal);
            let err = classify(err);
            failure = Some(match failure {
                Some(f) => worse(f, err),
                None => err,
            });
        }
        if fatal {
            self.replace_after_fatal();
        }
        failure.map_or(Ok(()), Err)
    }
}

#[async_trait]
impl EventPublisher for KafkaPublisher {
    #[tracing::instrument(skip_all, fields(events = events.len(), topic = %self.topic))]
    async fn publish(&self, events: &[Event]) -> Result<(), PublishError> {
        let prepared = events
            .iter()
            .map(|e| self.prepare(e))
            .collect::<Result<Vec<_>, _>>()?;
        let producer = self.current();
        let mut pending = Vec::with_capacity(prepared.len());
        let mut failure = None;
        'records: for p in &prepared {
            let mut record = self.record(p);
            loop {
                match producer.send_result(record) {
                    Ok(report) => {
                        pending.push(report);
                        break;
                    }
                    // The local queue is full: let what is in flight drain, then retry once more.
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                        if !pending.is_empty() =>
                    {
                        if let Err(e) = self.await_reports(std::mem::take(&mut pending)).await {
                            failure = Some(e);
                            break 'records;
                        }
                        record = r;
                    }
                    // Stop here so no later event of the batch overtakes this one.
                    Err((err, _)) => {
                        failure = Some(classify(err));
                        break 'records;
                    }
                }
            }
        }
        let reports = self.await_reports(pending).await;
        match (failure, reports) {
            (None, Ok(())) => Ok(()),
            (Some(f), Ok(())) => Err(f),
            (None, Err(r)) => Err(r),
            (Some(f), Err(r)) => Err(worse(f, r)),
        }
    }
}
