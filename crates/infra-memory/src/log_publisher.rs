//! An event publisher that writes each event, as a CloudEvent, to the log.

use async_trait::async_trait;
use domain::ports::{EventPublisher, PublishReport};
use domain::Event;

/// Publishes events to the `events` log target at INFO level.
#[derive(Debug, Clone)]
pub struct LogPublisher {
    source: String,
}

impl LogPublisher {
    /// A publisher whose CloudEvents name `source` as their origin.
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

impl Default for LogPublisher {
    fn default() -> Self {
        Self::new("/chat-service")
    }
}

#[async_trait]
impl EventPublisher for LogPublisher {
    async fn publish(&self, events: &[Event]) -> PublishReport {
        for e in events {
            let ce = e.to_cloudevent(&self.source);
            tracing::info!(target: "events", event_type = e.kind.type_name(), chat_id = %e.chat_id, cloudevent = %ce, "event");
        }
        PublishReport::delivered(events.len())
    }
}
