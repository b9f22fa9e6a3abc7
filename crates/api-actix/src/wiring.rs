//! Chooses the adapters from the settings: in-memory or PostgreSQL storage, the echo
//! model or OpenAI-compatible providers (with their model catalog), events to the log
//! or to Kafka; and the background work they need (the outbox relay, model discovery).

use crate::config::{
    DatabaseSettings, KafkaSettings, LlmSettings, ModelEntry, ProviderSettings, Settings,
};
use crate::startup::Adapters;
use domain::ports::{EventPublisher, LlmClient};
use std::collections::HashMap;
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

/// The LLM side of the wiring: the model catalog, the client routing each model to
/// its provider, and the discovery of the providers that list their models.
pub struct Providers {
    /// The models on offer.
    pub catalog: Arc<infra_llm::ProviderCatalog>,
    /// One client for every provider, routed by model.
    pub llm: Arc<dyn LlmClient>,
    /// Re-reads the discovering providers' lists (already read once at start).
    pub discovery: Option<infra_llm::Discovery>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers").finish_non_exhaustive()
    }
}

impl Providers {
    /// Starts the periodic discovery (if any) as a background task of `background`.
    pub fn spawn_discovery(&mut self, background: &mut Background) {
        if let Some(d) = self.discovery.take() {
            let stop = background.stop.clone();
            background
                .tasks
                .push(tokio::spawn(d.run(async move { stop.cancelled().await })));
        }
    }
}

fn model_name(s: &str) -> anyhow::Result<domain::ModelName> {
    domain::ModelName::parse(s).map_err(|e| anyhow::anyhow!("model {s:?}: {e}"))
}

fn spec(m: &ModelEntry) -> anyhow::Result<infra_llm::ModelSpec> {
    Ok(infra_llm::ModelSpec {
        name: model_name(&m.name)?,
        settings: infra_llm::ModelSettings {
            max_output_tokens: m
                .max_output_tokens
                .map(domain::MaxTokens::new)
                .transpose()?,
            fallbacks: m
                .fallbacks
                .as_ref()
                .map(|f| f.iter().map(|n| model_name(n)).collect())
                .transpose()?,
        },
    })
}

/// Ceilings and fallbacks by model name, from `llm.model_max_tokens` and `llm.fallbacks`.
fn per_model(l: &LlmSettings) -> anyhow::Result<HashMap<String, infra_llm::ModelSettings>> {
    let mut out: HashMap<String, infra_llm::ModelSettings> = HashMap::new();
    for (m, n) in &l.model_max_tokens {
        out.entry(m.clone()).or_default().max_output_tokens = Some(domain::MaxTokens::new(*n)?);
    }
    for (m, list) in &l.fallbacks {
        let list = list
            .iter()
            .map(|n| model_name(n))
            .collect::<Result<_, _>>()?;
        out.entry(m.clone()).or_default().fallbacks = Some(list);
    }
    Ok(out)
}

fn openai_client(p: &ProviderSettings) -> anyhow::Result<infra_llm::OpenAiClient> {
    let mut cfg = infra_llm::OpenAiConfig::new(p.base_url.clone());
    cfg.api_key = p
        .api_key
        .as_ref()
        .and_then(|k| infra_llm::ApiKey::new(k.expose()));
    cfg.connect_timeout = Duration::from_millis(p.connect_timeout_ms);
    cfg.first_token_timeout = Duration::from_millis(p.first_token_timeout_ms);
    cfg.idle_timeout = Duration::from_millis(p.idle_timeout_ms);
    cfg.total_timeout = Duration::from_millis(p.total_timeout_ms);
    cfg.retry.max_retries = p.max_retries;
    infra_llm::OpenAiClient::new(cfg).map_err(|e| anyhow::anyhow!("provider {}: {e}", p.name))
}

/// The providers of these settings; discovering ones are read once now (each bounded
/// by the discovery timeout), so their models are listed from the start when they answer.
pub async fn providers(settings: &Settings, notes: &mut Vec<String>) -> anyhow::Result<Providers> {
    let l = &settings.llm;
    let mut models = Vec::new();
    let mut clients: HashMap<domain::ProviderName, Arc<dyn LlmClient>> = HashMap::new();
    let mut targets = Vec::new();
    if l.providers.is_empty() {
        notes.push(format!(
            "LLM: the embedded echo model, as {} (set LLM_BASE_URL or llm.providers for a real provider)",
            l.models.join(", ")
        ));
        let name = domain::ProviderName::parse(infra_llm::EchoModel::NAME)?;
        models.push(infra_llm::ProviderModels {
            provider: name.clone(),
            fixed: l
                .models
                .iter()
                .map(|m| {
                    spec(&ModelEntry {
                        name: m.clone(),
                        max_output_tokens: None,
                        fallbacks: None,
                    })
                })
                .collect::<anyhow::Result<_>>()?,
            discover: false,
        });
        let echo = infra_llm::EchoModel::with_delay(Duration::from_millis(l.echo_delay_ms));
        clients.insert(name, Arc::new(echo));
    }
    for p in &l.providers {
        let name = domain::ProviderName::parse(&p.name)?;
        let fixed = p
            .models
            .iter()
            .map(spec)
            .collect::<anyhow::Result<Vec<_>>>()?;
        notes.push(format!(
            "LLM: provider {} at {} ({}{})",
            p.name,
            p.base_url,
            p.models
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if p.discover {
                " + discovered models"
            } else {
                ""
            }
        ));
        clients.insert(name.clone(), Arc::new(openai_client(p)?));
        if p.discover {
            let key = p
                .api_key
                .as_ref()
                .and_then(|k| infra_llm::ApiKey::new(k.expose()));
            let lister = infra_llm::ModelLister::new(
                &p.base_url,
                key.as_ref(),
                Duration::from_millis(p.connect_timeout_ms),
            )
            .map_err(|e| anyhow::anyhow!("provider {}: {e}", p.name))?;
            targets.push((name.clone(), lister));
        }
        models.push(infra_llm::ProviderModels {
            provider: name,
            fixed,
            discover: p.discover,
        });
    }
    let mut config = infra_llm::CatalogConfig::new(models);
    config.default_model = domain::ModelName::parse(&l.model).ok();
    config.default_max_output_tokens = Some(domain::MaxTokens::new(l.max_output_tokens)?);
    config.per_model = per_model(l)?;
    let catalog = Arc::new(infra_llm::ProviderCatalog::new(config));
    let discovery = if targets.is_empty() {
        None
    } else {
        let d = infra_llm::Discovery::new(
            catalog.clone(),
            targets,
            Duration::from_secs(l.discovery_interval_secs),
        );
        for (provider, outcome) in d.refresh().await {
            notes.push(match outcome {
                Ok(n) => format!("LLM: provider {provider} lists {n} model(s)"),
                Err(e) => {
                    format!("LLM: provider {provider} did not list its models yet ({e}); retrying")
                }
            });
        }
        Some(d)
    };
    let list = domain::ports::ModelCatalog::models(&*catalog);
    notes.push(format!(
        "LLM: {} model(s) on offer, default {}",
        list.models().len(),
        list.default_model()
            .map_or("none yet", |m| m.name().as_str())
    ));
    let router = infra_llm::ProviderRouter::new(catalog.clone(), clients);
    Ok(Providers {
        catalog,
        llm: Arc::new(router),
        discovery,
    })
}

/// The adapters for these settings.
pub async fn wire(settings: &Settings) -> anyhow::Result<Wired> {
    let mut wired = wire_storage(settings).await?;
    match &settings.redis {
        Some(r) => {
            let redis = crate::redis_live::wire(r, &mut wired.notes).await?;
            redis.apply(&mut wired.adapters, r);
        }
        None => wired.notes.push(
            "live replies: in process (resume, cancel and rate limits per replica; set REDIS_URL to share them)"
                .to_owned(),
        ),
    }
    Ok(wired)
}

async fn wire_storage(settings: &Settings) -> anyhow::Result<Wired> {
    let mut notes = Vec::new();
    let mut providers = providers(settings, &mut notes).await?;
    let llm = providers.llm.clone();
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
        let mut wired = postgres(settings, db, llm, events, notes).await?;
        wired.adapters.models = providers.catalog.clone();
        providers.spawn_discovery(&mut wired.background);
        return Ok(wired);
    }
    notes.push(
        "storage: IN MEMORY — throw-away, everything is lost on exit (set DATABASE_URL or DB_HOST for PostgreSQL)"
            .to_owned(),
    );
    let mut adapters = Adapters::memory(events, llm);
    adapters.models = providers.catalog.clone();
    let mut background = Background::default();
    providers.spawn_discovery(&mut background);
    Ok(Wired {
        adapters,
        notes,
        background,
    })
}

/// The PostgreSQL settings as the adapter's config.
pub fn pg_config(db: &DatabaseSettings) -> infra_postgres::PgConfig {
    let mut cfg = infra_postgres::PgConfig::new(db.url.expose());
    cfg.max_connections = db.pool_size;
    cfg.relay_max_connections = db.relay_pool_size;
    cfg.read_concurrency = (db.read_concurrency > 0).then_some(db.read_concurrency);
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
    let kafka_message_timeout = settings
        .kafka
        .as_ref()
        .map(|k| Duration::from_millis(k.message_timeout_ms));
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
            lease: kafka_message_timeout.map_or(
                infra_kafka::RelayConfig::default().lease,
                infra_kafka::RelayConfig::lease_covering,
            ),
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
        kafka: kafka_message_timeout.is_some(),
    };
    let adapters = Adapters {
        chats: store.clone(),
        messages: store.clone(),
        data: crate::startup::DataAdapters::of(store, Arc::new(maintenance)),
        llm,
        models: Arc::new(infra_llm::ProviderCatalog::new(
            infra_llm::CatalogConfig::echo(),
        )),
        clock: Arc::new(domain::ports::SystemClock),
        probe: Arc::new(probe),
        live: Arc::new(infra_memory::MemoryLive::new()),
        live_config: domain::services::LiveConfig::default(),
        redis_metrics: None,
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
