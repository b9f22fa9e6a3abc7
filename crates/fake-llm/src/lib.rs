//! `fake-llm`: an OpenAI-compatible chat-completions server for local runs,
//! benchmarks and fault tests, usable as a library (start it in-process on port 0)
//! or as the `fake-llm` binary.
//!
//! Replies are deterministic: the words of the last user message, cycled to
//! `reply_tokens` words (see [`reply_text`]). Faults are chosen per request by an
//! `x-fake-fault: KIND[xN]` header or a `[fault:KIND[xN]]` marker in the last user
//! message (`xN`: only the first N such requests fail), else at random at
//! `fault_rate`. Kinds: `429`, `500`, `401`, `400`, `cut`, `stall`, `stall-mid`, `malformed`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let fake = fake_llm::spawn(fake_llm::FakeLlmConfig::for_tests()).await?;
//! println!("OpenAI-compatible API at {}", fake.base_url());
//! # Ok(()) }
//! ```

pub mod config;
pub mod faults;
pub mod reply;
mod server;

pub use config::{FakeLlmConfig, FaultKind};
pub use reply::{reply_text, reply_words};

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use server::AppState;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counters of what the server did, for tests and logs.
#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    faults: AtomicU64,
    finished: AtomicU64,
    dropped: AtomicU64,
    /// The body of the last chat-completion request (JSON), for tests of the prompt.
    last_request: std::sync::Mutex<Option<serde_json::Value>>,
}

impl Stats {
    /// Chat-completion requests received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    /// Requests that got an injected fault.
    pub fn faults(&self) -> u64 {
        self.faults.load(Ordering::Relaxed)
    }
    /// Responses sent to their planned end (an injected cut included).
    pub fn finished(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }
    /// Streamed responses abandoned because the client went away.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    /// The JSON body of the last chat-completion request received, if any.
    pub fn last_request(&self) -> Option<serde_json::Value> {
        self.last_request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    pub(crate) fn record_request(&self, body: &[u8]) {
        if let Ok(v) = serde_json::from_slice(body) {
            *self.last_request.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
        }
    }
}

/// A bound, not yet running, fake server.
pub struct FakeLlm {
    addr: SocketAddr,
    server: Server,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for FakeLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeLlm")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Binds the fake server on `config.addr` (port 0 picks a free port). Await
/// [`FakeLlm::run_until_stopped`] or call [`FakeLlm::spawn`] to serve.
pub async fn serve(config: FakeLlmConfig) -> io::Result<FakeLlm> {
    let stats = Arc::new(Stats::default());
    let workers = config.workers;
    let addr = config.addr;
    let state = web::Data::new(AppState {
        config,
        stats: stats.clone(),
        faults: faults::FaultPicker::default(),
        next_id: AtomicU64::new(1),
    });
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
            .route(
                "/chat/completions",
                web::post().to(server::chat_completions),
            )
            .route(
                "/v1/chat/completions",
                web::post().to(server::chat_completions),
            )
            .route("/models", web::get().to(server::models))
            .route("/v1/models", web::get().to(server::models))
            .route("/health", web::get().to(server::health))
    })
    .disable_signals()
    .backlog(4096)
    .max_connections(100_000)
    .shutdown_timeout(1);
    if workers > 0 {
        server = server.workers(workers);
    }
    let server = server.bind(addr)?;
    let addr = server.addrs().first().copied().ok_or_else(|| {
        io::Error::new(io::ErrorKind::AddrNotAvailable, "fake-llm bound no address")
    })?;
    Ok(FakeLlm {
        addr,
        server: server.run(),
        stats,
    })
}

/// Binds and starts the fake server on the current Tokio runtime.
pub async fn spawn(config: FakeLlmConfig) -> io::Result<RunningFakeLlm> {
    Ok(serve(config).await?.spawn())
}

impl FakeLlm {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI base URL (`http://{addr}/v1`), what `LLM_BASE_URL` should be.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The server's counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped through [`FakeLlm::handle`].
    pub async fn run_until_stopped(self) -> io::Result<()> {
        self.server.await
    }

    /// Serves in a Tokio task; the server stops when the returned value is dropped.
    pub fn spawn(self) -> RunningFakeLlm {
        let handle = self.server.handle();
        let (addr, stats) = (self.addr, self.stats.clone());
        tokio::spawn(self.server);
        RunningFakeLlm {
            addr,
            stats,
            handle,
        }
    }
}

/// A fake server serving in the background; stops when dropped.
#[derive(Debug)]
pub struct RunningFakeLlm {
    addr: SocketAddr,
    stats: Arc<Stats>,
    handle: ServerHandle,
}

impl RunningFakeLlm {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI base URL (`http://{addr}/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The server's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

impl Drop for RunningFakeLlm {
    fn drop(&mut self) {
        // `stop` sends the command at once; the returned future only waits for it.
        drop(self.handle.stop(false));
    }
}
