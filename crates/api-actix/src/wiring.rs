//! Chooses the adapters from the settings: in-memory or PostgreSQL storage, the echo
//! model or an OpenAI-compatible provider, events to the log or to Kafka.

use crate::config::Settings;
use crate::startup::Adapters;
use domain::ports::{EventPublisher, LlmClient};
use std::sync::Arc;

/// The adapters for these settings, and a description of each choice for the start-up log.
pub async fn adapters(settings: &Settings) -> anyhow::Result<(Adapters, Vec<String>)> {
    let mut notes = Vec::new();
    let llm: Arc<dyn LlmClient> = match &settings.llm.base_url {
        None => {
            notes.push(
                "LLM: the embedded echo model (set LLM_BASE_URL for a real provider)".to_owned(),
            );
            Arc::new(infra_llm::EchoModel::default())
        }
        Some(url) => {
            anyhow::bail!(
                "LLM_BASE_URL={url} is set, but this build has no OpenAI-compatible client yet"
            )
        }
    };
    let events: Arc<dyn EventPublisher> = Arc::new(infra_memory::LogPublisher::default());
    notes.push("events: to the log (set KAFKA_BROKERS to publish to Kafka)".to_owned());
    if settings.database.is_some() {
        anyhow::bail!("database settings are given, but this build has no PostgreSQL adapter yet");
    }
    notes.push("storage: IN MEMORY — throw-away, everything is lost on exit (set DATABASE_URL or DB_HOST for PostgreSQL)".to_owned());
    Ok((Adapters::memory(events, llm), notes))
}
