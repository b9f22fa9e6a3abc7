//! The composition root: builds adapters, services and the HTTP server from settings.

use crate::auth::{generate_secret, JwtVerifier};
use crate::config::{Secret, Settings};
use crate::error::ApiError;
use crate::extract::BodyLimit;
use crate::metrics::{http::SseKeepAlive, Metrics};
use crate::rate_limit::RateLimits;
use crate::routes::{self, health::Probe};
use crate::state::{AppState, Spawner};
use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App};
use domain::ports::{
    ChatRepository, Clock, ErasureRepository, EventPublisher, ExportRepository, LiveReplies,
    LlmClient, MessageRepository, MessageSearchRepository, ModelCatalog, RetentionRepository,
    SystemClock,
};
use domain::services::{
    history::HistoryBudget, ChatService, FallbackLlm, LiveConfig, MessageService,
    MessageServiceConfig, ModelService, TitleConfig, TitleService,
};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// The adapters the services run on.
#[derive(Clone)]
pub struct Adapters {
    /// Chat storage.
    pub chats: Arc<dyn ChatRepository>,
    /// Message storage.
    pub messages: Arc<dyn MessageRepository>,
    /// Search, export, erasure and retention.
    pub data: DataAdapters,
    /// The LLM (every provider, routed by model).
    pub llm: Arc<dyn LlmClient>,
    /// The models on offer.
    pub models: Arc<dyn ModelCatalog>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Readiness checks.
    pub probe: Arc<dyn Probe>,
    /// Live state of replies being generated (in-process by default; shared, such as
    /// Redis, when several replicas serve the API).
    pub live: Arc<dyn LiveReplies>,
    /// Lease, coalescing and waiting times of live replies.
    pub live_config: LiveConfig,
    /// Where the Redis adapter reports its operations, once the metrics exist.
    pub redis_metrics: Option<Arc<crate::redis_live::MetricsSlot>>,
}

impl std::fmt::Debug for Adapters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapters")
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

impl Adapters {
    /// In-memory storage publishing to `events`, and the given LLM (with the catalog of
    /// the echo model: set `models` for others).
    pub fn memory(events: Arc<dyn EventPublisher>, llm: Arc<dyn LlmClient>) -> Self {
        let store = Arc::new(infra_memory::MemoryStore::new(events));
        Self {
            chats: store.clone(),
            messages: store.clone(),
            data: DataAdapters::of(store.clone(), store),
            llm,
            models: Arc::new(infra_llm::ProviderCatalog::new(
                infra_llm::CatalogConfig::echo(),
            )),
            clock: Arc::new(SystemClock),
            probe: Arc::new(routes::health::MemoryProbe),
            live: Arc::new(infra_memory::MemoryLive::new()),
            live_config: LiveConfig::default(),
            redis_metrics: None,
        }
    }
}

/// The adapters of a user's own data. Requests use the first four; the background
/// maintenance (stalled erasures, retention) uses its own (a pool of its own on
/// PostgreSQL, so background work cannot starve requests).
#[derive(Clone)]
pub struct DataAdapters {
    /// Message search.
    pub search: Arc<dyn MessageSearchRepository>,
    /// Export.
    pub export: Arc<dyn ExportRepository>,
    /// Erasure, for requests (`DELETE /api/v1/me`).
    pub erasure: Arc<dyn ErasureRepository>,
    /// Erasure, for the maintenance job.
    pub background_erasure: Arc<dyn ErasureRepository>,
    /// Retention, for the maintenance job.
    pub retention: Arc<dyn RetentionRepository>,
    /// The usage ledger (replies are charged through `MessageRepository::finish_reply`).
    pub usage: Arc<dyn domain::ports::UsageRepository>,
}

impl std::fmt::Debug for DataAdapters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataAdapters")
    }
}

impl DataAdapters {
    /// Every data port from `requests`, the background ones from `background`.
    pub fn of<R, B>(requests: Arc<R>, background: Arc<B>) -> Self
    where
        R: MessageSearchRepository
            + ExportRepository
            + ErasureRepository
            + domain::ports::UsageRepository
            + 'static,
        B: ErasureRepository + RetentionRepository + 'static,
    {
        Self {
            search: requests.clone(),
            export: requests.clone(),
            usage: requests.clone(),
            erasure: requests,
            background_erasure: background.clone(),
            retention: background,
        }
    }
}

/// A built, bound, not yet running service.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    /// The HS256 secret in use (configured or generated).
    pub jwt_secret: Option<Secret>,
    /// A ready-to-use token for `dev`, when the secret was generated.
    pub dev_token: Option<String>,
    drain: Duration,
    delay: Duration,
    draining: crate::shutdown::Draining,
    maintenance: crate::maintenance::Running,
    live_sweep: crate::live_sweep::LiveSweep,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

fn message_config(settings: &Settings) -> MessageServiceConfig {
    MessageServiceConfig {
        default_model: settings.llm.model.clone(),
        history: HistoryBudget {
            default_tokens: settings.llm.history_budget_tokens,
            per_model: settings.llm.model_budgets.clone(),
        },
        history_fetch_limit: 200,
        stale_after: Duration::from_secs(settings.llm.stale_reply_secs),
    }
}

fn title_config(settings: &Settings) -> TitleConfig {
    TitleConfig {
        enabled: settings.llm.auto_title,
        model: settings
            .llm
            .title_model
            .as_deref()
            .and_then(|m| domain::ModelName::parse(m).ok()),
    }
}

impl Application {
    /// Builds the service on the given adapters and binds its listener (port 0 picks a free port).
    pub fn build(settings: &Settings, adapters: Adapters) -> anyhow::Result<Self> {
        let generated = settings.auth.jwt_secret.is_none();
        let secret = settings
            .auth
            .jwt_secret
            .clone()
            .or_else(|| generated.then(generate_secret));
        let verifier = JwtVerifier::new(&settings.auth, secret.clone())?;
        let dev_token = if generated {
            verifier.mint("dev", 24 * 3600)
        } else {
            None
        };

        let metrics = Metrics::new(Some(adapters.probe.clone()))?;
        if let Some(slot) = &adapters.redis_metrics {
            slot.connect(metrics.redis.clone());
        }
        let models = adapters.models.clone();
        let chats = ChatService::new(adapters.chats.clone(), adapters.clock.clone())
            .with_models(models.clone());
        // Each attempt (a model, then its fallbacks) is metered on its own.
        let llm: Arc<dyn LlmClient> = Arc::new(FallbackLlm::new(
            metrics.metered(adapters.llm.clone(), models.clone()),
            models.clone(),
        ));
        let spawner = Spawner::current();
        let titles = TitleService::new(
            adapters.chats.clone(),
            adapters.messages.clone(),
            llm.clone(),
            adapters.clock.clone(),
            title_config(settings),
        )
        .with_models(models.clone())
        .with_usage(adapters.data.usage.clone());
        let quota = domain::services::Quota::new(
            adapters.data.usage.clone(),
            adapters.clock.clone(),
            settings.quota,
        );
        let messages = MessageService::new(
            adapters.chats.clone(),
            adapters.messages.clone(),
            llm,
            adapters.clock.clone(),
            message_config(settings),
        )
        .with_sleeper(std::sync::Arc::new(crate::state::TokioSleeper))
        .with_live(adapters.live.clone(), adapters.live_config.clone())
        .with_models(models.clone())
        .with_quota(Arc::new(quota))
        .with_observer(Arc::new(crate::state::TitleTrigger::new(
            titles,
            spawner.clone(),
        )));
        let maintenance =
            crate::maintenance::Maintenance::new(&settings.data, &adapters, &metrics)?;
        let state = AppState {
            chats,
            messages,
            models: ModelService::new(models),
            search: domain::services::SearchService::new(
                adapters.chats.clone(),
                adapters.data.search.clone(),
            ),
            export: domain::services::ExportService::new(adapters.data.export.clone()),
            usage: domain::services::UsageService::new(
                adapters.data.usage.clone(),
                adapters.clock.clone(),
            ),
            erasure: domain::services::ErasureService::new(
                adapters.data.erasure.clone(),
                adapters.clock.clone(),
            ),
            spawner,
            replay_wait: Duration::from_millis(settings.llm.total_timeout_ms)
                + Duration::from_secs(30),
        };

        let listener = TcpListener::bind(&settings.http.addr)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.http.addr))?;
        let port = listener.local_addr()?.port();
        let data = web::Data::new(state.clone());
        let verifier = web::Data::new(verifier);
        let probe: web::Data<dyn Probe> = web::Data::from(adapters.probe.clone());
        let limit = settings.http.body_limit;
        let metrics = web::Data::new(metrics);
        let rate_limits = web::Data::new(RateLimits::new(&settings.rate_limit).with_live(
            adapters.live.clone(),
            adapters.clock.clone(),
            metrics.registry(),
        )?);
        let spec = web::Data::new(crate::openapi::SpecJson(crate::openapi::json()));
        let playground = web::Data::new(crate::playground::Playground::new(
            settings.http.playground,
            dev_token
                .as_deref()
                .filter(|_| crate::playground::is_loopback(&settings.http.addr)),
        ));
        let draining = crate::shutdown::Draining::default();
        let draining_data = web::Data::new(draining.clone());
        let origins = settings.http.cors_allowed_origins.clone();
        let keep_alive = SseKeepAlive(
            (settings.http.sse_keep_alive_secs > 0)
                .then(|| Duration::from_secs(settings.http.sse_keep_alive_secs)),
        );
        let cuts: crate::slow_client::CutCounter = {
            let metrics = metrics.clone();
            Arc::new(move |status| metrics.http.record_cut(status))
        };
        let limits = crate::slow_client::Limits::new(Duration::from_millis(
            settings.http.client_request_timeout_ms,
        ));
        let app = move || {
            App::new()
                .app_data(metrics.clone())
                .app_data(rate_limits.clone())
                .app_data(spec.clone())
                .app_data(playground.clone())
                .app_data(draining_data.clone())
                .app_data(keep_alive)
                .app_data(data.clone())
                .app_data(verifier.clone())
                .app_data(probe.clone())
                .app_data(BodyLimit(limit))
                .app_data(web::PayloadConfig::new(limit))
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    ApiError::BadRequest(format!("the query string is not valid: {e}")).into()
                }))
                .app_data(
                    web::PathConfig::default().error_handler(|_, _| ApiError::NotFound.into()),
                )
                .wrap(from_fn(crate::rate_limit::middleware))
                .wrap(Condition::new(
                    !origins.is_empty(),
                    crate::cors::middleware(&origins),
                ))
                .wrap(from_fn(crate::metrics::http::middleware))
                .wrap(from_fn(crate::problems::middleware))
                .wrap(from_fn(crate::request_id::middleware))
                .wrap(from_fn(crate::slow_client::middleware))
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
        };
        let server = serve(listener, app, settings, limits, Some(cuts))?;
        let maintenance = maintenance.spawn();
        let live_sweep = crate::live_sweep::LiveSweep::spawn(
            state.messages.clone(),
            adapters.live_config.renew_every,
        );
        Ok(Self {
            live_sweep,
            port,
            maintenance,
            server,
            state,
            jwt_secret: secret,
            dev_token,
            drain: Duration::from_secs(settings.http.shutdown_drain_secs),
            delay: Duration::from_secs(settings.http.shutdown_delay_secs),
            draining,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The handlers' state (services and spawner).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `stop` resolves (e.g. SIGTERM), then answers 503 on `/readyz` (for
    /// the shutdown delay, still accepting, so load balancers stop routing here), stops
    /// accepting, lets in-flight requests and streams finish within the drain time, and
    /// waits for detached generations to be stored.
    pub async fn run_until<F: std::future::Future<Output = ()>>(
        self,
        stop: F,
    ) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let server = self.server;
        let spawner = self.state.spawner.clone();
        let drain = self.drain;
        let mut server = std::pin::pin!(server);
        tokio::select! {
            r = &mut server => return r.map_err(Into::into),
            () = stop => tracing::info!("shutting down: finishing in-flight requests and replies"),
        }
        self.draining.start();
        if !self.delay.is_zero() {
            tracing::info!(
                delay_secs = self.delay.as_secs(),
                "readiness is now 503; still accepting until the delay ends"
            );
            tokio::select! {
                r = &mut server => return r.map_err(Into::into),
                () = tokio::time::sleep(self.delay) => {}
            }
        }
        // The server future processes the stop command: it must be polled meanwhile.
        let stopping = handle.stop(true);
        let (served, finished, ()) = tokio::join!(&mut server, spawner.drain(drain), stopping);
        if !finished {
            tracing::warn!("some replies were still generating when the drain time ran out");
        }
        self.maintenance.stop().await;
        self.live_sweep.stop();
        served?;
        Ok(())
    }

    /// Serves until the process is stopped.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(std::future::pending()).await
    }
}

/// Serves `app` on `listener`, each accepted connection wrapped in the slow-client guard
/// (which also times every request head, so actix-http's own first-head timer is off).
/// What `HttpServer::listen` does, with the guard around the socket.
fn serve<F, I, S, B>(
    listener: TcpListener,
    app: F,
    settings: &Settings,
    limits: crate::slow_client::Limits,
    cuts: Option<crate::slow_client::CutCounter>,
) -> anyhow::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: actix_service::IntoServiceFactory<S, actix_http::Request>,
    S: actix_service::ServiceFactory<actix_http::Request, Config = actix_web::dev::AppConfig>
        + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<actix_http::Response<B>> + 'static,
    <S::Service as actix_service::Service<actix_http::Request>>::Future: 'static,
    S::Service: 'static,
    B: actix_web::body::MessageBody + 'static,
{
    use crate::slow_client::Guarded;
    use actix_http::{HttpService, KeepAlive, Protocol};
    use actix_service::{fn_service, map_config, ServiceFactoryExt};
    use actix_web::rt::net::TcpStream;

    let addr = listener.local_addr()?;
    let mut builder = actix_server::Server::build()
        .shutdown_timeout(settings.http.shutdown_drain_secs)
        .disable_signals();
    if settings.http.workers > 0 {
        builder = builder.workers(settings.http.workers);
    }
    let shutdown = builder.graceful_shutdown_signal();
    let builder = builder.listen("chat-service", listener, move || {
        let shutdown = shutdown.clone();
        let cuts = cuts.clone();
        let http = HttpService::<Guarded<TcpStream>, _, _, _, _>::build()
            .graceful_shutdown_signal(move || {
                let signal = shutdown.clone();
                async move { signal.notified().await }
            })
            .keep_alive(KeepAlive::Timeout(Duration::from_secs(5)))
            .client_request_timeout(Duration::ZERO)
            .client_disconnect_timeout(Duration::from_secs(1))
            .h1_allow_half_closed(true)
            .local_addr(addr)
            .on_connect_ext(
                |io: &Guarded<TcpStream>, ext: &mut actix_http::Extensions| {
                    ext.insert(io.handle());
                },
            )
            .finish(map_config(
                app()
                    .into_factory()
                    .map_err(|e| crate::problems::escaped(e.into())),
                move |()| actix_web::dev::AppConfig::default(),
            ));
        fn_service(move |io: TcpStream| {
            let cuts = cuts.clone();
            async move {
                // Small writes (SSE events) go out at once: without TCP_NODELAY, Nagle's
                // algorithm holds a `delta` behind the unacknowledged `message` event for the
                // client's delayed-ACK time (~40 ms).
                let _ = io.set_nodelay(true);
                let peer = io.peer_addr().ok();
                Ok::<_, actix_http::error::DispatchError>((
                    Guarded::new(io, limits, cuts),
                    Protocol::Http1,
                    peer,
                ))
            }
        })
        .and_then(http)
    })?;
    Ok(builder.run())
}
