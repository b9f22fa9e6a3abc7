//! `chat-service outbox …`: the operator's view of the outbox — list the entries set
//! aside (dead) and make them pending again so the relay retries them.

use crate::config::Settings;
use domain::model::EventId;
use domain::ports::{DeadFilter, Outbox};
use std::io::Write;

fn store(settings: &Settings) -> anyhow::Result<infra_postgres::PgStore> {
    let db = settings.database.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "no database configured: set DATABASE_URL or DB_HOST (the outbox lives in PostgreSQL)"
        )
    })?;
    Ok(infra_postgres::PgStore::new(&crate::wiring::pg_config(db))?)
}

/// Writes up to `limit` dead entries to `out`, one JSON object per line, oldest first:
/// `{position, eventId, chatId, type, attempts, deadAt, lastError}`. Returns how many.
pub async fn list_dead(
    settings: &Settings,
    limit: u32,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let dead = store(settings)?.dead(limit).await?;
    for d in &dead {
        let line = serde_json::json!({
            "position": d.position,
            "eventId": d.event_id.to_string(),
            "chatId": d.chat_id.to_string(),
            "type": d.event_type,
            "attempts": d.attempts,
            "deadAt": d.dead_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "lastError": d.last_error,
        });
        writeln!(out, "{line}")?;
    }
    Ok(dead.len())
}

/// Makes dead entries pending again (all, or the one of `event`); returns how many.
/// Naming an event that has no dead entry is an error.
pub async fn retry_dead(settings: &Settings, event: Option<&str>) -> anyhow::Result<u64> {
    let filter = match event {
        None => DeadFilter::All,
        Some(text) => DeadFilter::Event(
            EventId::parse(text.trim())
                .map_err(|e| anyhow::anyhow!("--event {text:?}: {e} (an event id is a UUIDv7)"))?,
        ),
    };
    let n = store(settings)?.retry_dead(filter).await?;
    if n == 0 {
        if let Some(text) = event {
            anyhow::bail!("no dead outbox entry for event {text}");
        }
    }
    Ok(n)
}
