//! Chooses the adapters from the settings: in-memory or PostgreSQL storage, the echo
//! model or an OpenAI-compatible provider, events to the log or to Kafka; and the
//! background work they need (the outbox relay).

use crate::config::{DatabaseSettings, KafkaSettings, Settings};
use crate::startup::Adapters;
use domain::ports::{EventPublisher, LlmClient};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Background tasks started with the service and stopped after the HTTP drain.
#[derive(Debug, Default)]
pub struct Background {
    /// Cancelled to stop them.
    pub stop: CancellationToken,
    /// Their tasks.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    /// Stops every task and waits for each to finish its work in hand.
    pub async fn shutdown(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// What the wiring produced.
#[derive(Debug)]
pub struct Wired {
    /// The adapters.
    pub adapters: Adapters,
    /// One line per choice, for the start-up log.
    pub notes: Vec<String>,
    /// Background work.
    pub background: Background,
}

fn kafka_config(k: &KafkaSettings) -> anyhow::Result<infra_kafka::KafkaConfig> {
    let mut c = infra_kafka::KafkaConfig::new(k.brokers.clone());
    c.topic = k.topic.clone();
    c.client_id = k.client_id.clone();
    c.message_timeout = Duration::from_millis(k.message_timeout_ms);
    if let Some(comp) = infra_kafka::Compression::parse(&k.compression) {
        c.compression = comp;
    }
    c.security_protocol = k.security_protocol.clone();
    c.sasl_mechanism = k.sasl_mechanism.clone();
    c.sasl_username = k.sasl_username.clone();
    c.sasl_password = k
        .sasl_password
        .as_ref()
        .map(|p| infra_kafka::SecretString::new(p.expose()));
    c.ssl_ca_location = k.ssl_ca_location.clone();
    c.validate()
        .map_err(|errs| anyhow::anyhow!("invalid Kafka settings: {}", errs.join("; ")))?;
    Ok(c)
}

fn llm(settings: &Settings, notes: &mut Vec<String>) -> anyhow::Result<Arc<dyn LlmClient>> {
    Ok(match &settings.llm.base_url {
        None => {
            notes.push(
                "LLM: the embedded echo model (set LLM_BASE_URL for a real provider)".to_owned(),
            );
            Arc::new(infra_llm::EchoModel::with_delay(Duration::from_millis(
                settings.llm.echo_delay_ms,
            )))
        }
        Some(url) => {
            let l = &settings.llm;
            let mut cfg = infra_llm::OpenAiConfig::new(url.clone());
            cfg.api_key = l
                .api_key
                .as_ref()
                .and_then(|k| infra_llm::ApiKey::new(k.expose()));
            cfg.connect_timeout = Duration::from_millis(l.connect_timeout_ms);
            cfg.first_token_timeout = Duration::from_millis(l.first_token_timeout_ms);
            cfg.idle_timeout = Duration::from_millis(l.idle_timeout_ms);
            cfg.total_timeout = Duration::from_millis(l.total_timeout_ms);
            cfg.retry.max_retries = l.max_retries;
            notes.push(format!(
                "LLM: OpenAI-compatible provider at {url}, default model {}",
                l.model
            ));
            Arc::new(infra_llm::OpenAiClient::new(cfg)?)
        }
    })
}

/// The adapters for these settings.
pub async fn wire(settings: &Settings) -> anyhow::Result<Wired> {
    let mut notes = Vec::new();
    let llm = llm(settings, &mut notes)?;
    let events: Arc<dyn EventPublisher> = match &settings.kafka {
        Some(k) => {
            notes.push(format!(
                "events: to Kafka topic {} at {}",
                k.topic, k.brokers
            ));
            Arc::new(infra_kafka::KafkaPublisher::new(&kafka_config(k)?)?)
        }
        None => {
            notes.push("events: to the log (set KAFKA_BROKERS to publish to Kafka)".to_owned());
            Arc::new(infra_memory::LogPublisher::default())
        }
    };
    if let Some(db) = &settings.database {
        return postgres(settings, db, llm, events, notes).await;
    }
    notes.push(
        "storage: IN MEMORY — throw-away, everything is lost on exit (set DATABASE_URL or DB_HOST for PostgreSQL)"
            .to_owned(),
    );
    Ok(Wired {
        adapters: Adapters::memory(events, llm),
        notes,
        background: Background::default(),
    })
}

/// The PostgreSQL settings as the adapter's config.
pub fn pg_config(db: &DatabaseSettings) -> infra_postgres::PgConfig {
    let mut cfg = infra_postgres::PgConfig::new(db.url.expose());
    cfg.max_connections = db.pool_size;
    cfg.relay_max_connections = db.relay_pool_size;
    cfg.wait_timeout = Duration::from_millis(db.wait_timeout_ms);
    cfg.connect_timeout = Duration::from_millis(db.connect_timeout_ms);
    cfg.statement_timeout = Duration::from_millis(db.statement_timeout_ms);
    cfg.application_name = db.application_name.clone();
    cfg.sslmode = db.sslmode;
    cfg
}

/// PostgreSQL storage: migrations applied first (under an advisory lock, so replicas
/// starting together do not race), then the outbox relay on its own small pool.
async fn postgres(
    settings: &Settings,
    db: &DatabaseSettings,
    llm: Arc<dyn LlmClient>,
    events: Arc<dyn EventPublisher>,
    mut notes: Vec<String>,
) -> anyhow::Result<Wired> {
    use anyhow::Context;
    let kafka = settings.kafka.is_some();
    let mut cfg = pg_config(db);
    cfg.text_search_config = settings.data.text_search_config.clone();
    let store = infra_postgres::PgStore::new(&cfg).context("PostgreSQL pool")?;
    let applied = store
        .run_migrations()
        .await
        .context("applying migrations")?;
    if store
        .apply_text_search_config()
        .await
        .context("applying search.text_config")?
    {
        notes.push(format!(
            "message search: index rebuilt for text-search configuration {}",
            cfg.text_search_config
        ));
    }
    let maintenance = infra_postgres::PgStore::with_pool_size(
        &cfg,
        1,
        &format!("{}-maintenance", db.application_name),
    )
    .context("PostgreSQL maintenance pool")?;
    notes.push(format!(
        "storage: PostgreSQL (pool of {}, {} migration(s) applied now)",
        db.pool_size,
        applied.len()
    ));
    let relay_store = infra_postgres::PgStore::relay(&cfg).context("PostgreSQL relay pool")?;
    let wakeups = relay_store.outbox_wakeups();
    let relay_pool = relay_store.clone();
    let relay_id = format!(
        "{}-{}-{}",
        db.application_name,
        std::process::id(),
        uuid::Uuid::now_v7()
    );
    let relay = infra_kafka::OutboxRelay::new(
        Arc::new(relay_store),
        events,
        infra_kafka::RelayConfig {
            relay_id,
            ..Default::default()
        },
    );
    let stats = relay.stats();
    let background = Background::default();
    let task = relay.spawn(wakeups, background.stop.clone());
    notes.push("events: stored in the outbox with each change, published by the relay".to_owned());
    let store = Arc::new(store);
    let probe = crate::probes::PgProbe {
        store: (*store).clone(),
        relay_store: relay_pool,
        relay: stats,
        kafka,
    };
    let adapters = Adapters {
        chats: store.clone(),
        messages: store.clone(),
        data: crate::startup::DataAdapters::of(store, Arc::new(maintenance)),
        llm,
        clock: Arc::new(domain::ports::SystemClock),
        probe: Arc::new(probe),
    };
    Ok(Wired {
        adapters,
        notes,
        background: Background {
            tasks: vec![task],
            ..background
        },
    })
}
