//! Command-line arguments: `run` (a scenario at a fixed concurrency), `hold` (N open
//! streams, memory sampled), `startup` (time from exec to ready, idle memory), and the
//! bench script's helpers `pglog` and `report`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Load generator for chat-service (loopback targets only; every run is bounded).
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one scenario at a fixed concurrency for a fixed time or request count.
    Run(RunArgs),
    /// Open N concurrent streams, hold them, and sample a process's resident memory.
    Hold(HoldArgs),
    /// Start a command N times; time from exec to `/readyz` 200, and idle memory.
    Startup(StartupArgs),
    /// Summarize a pgbench run (per-transaction logs and printed summary) as JSON.
    Pglog(crate::pglog::PglogArgs),
    /// Gather a bench run's raw results into results.json and BENCHMARKS.md.
    Report(crate::report::ReportArgs),
}

/// A request kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// `POST /api/v1/chats`.
    CreateChat,
    /// `GET /api/v1/chats?limit=…`.
    ListChats,
    /// `GET /api/v1/chats/{id}`.
    GetChat,
    /// `GET /api/v1/chats/search?q=…`.
    Search,
    /// `GET /api/v1/messages/search?q=…` (full text over messages).
    MessageSearch,
    /// `GET /api/v1/messages?chatId=…`.
    ListMessages,
    /// `POST /api/v1/messages?chatId=…` answered as JSON.
    Send,
    /// `POST /api/v1/messages?chatId=…` as Server-Sent Events.
    Stream,
    /// A streamed chat completion straight from the (fake) provider: the baseline.
    LlmDirect,
}

impl Scenario {
    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::CreateChat => "create-chat",
            Scenario::ListChats => "list-chats",
            Scenario::GetChat => "get-chat",
            Scenario::Search => "search",
            Scenario::MessageSearch => "message-search",
            Scenario::ListMessages => "list-messages",
            Scenario::Send => "send",
            Scenario::Stream => "stream",
            Scenario::LlmDirect => "llm-direct",
        }
    }
}

/// When a streaming client hangs up on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Disconnect {
    /// Read the stream to its end.
    Never,
    /// Right after the `message` event (the user message is stored).
    Message,
    /// Right after the first `delta`.
    Delta,
}

/// Options every subcommand shares.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Base URL(s), `http://127.0.0.1:<port>`; requests go round-robin over them.
    #[arg(long = "target", required = true)]
    pub targets: Vec<String>,
    /// HS256 secret the service verifies tokens with.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Per-request timeout in ms; a request still unanswered then counts as hung.
    #[arg(long, default_value_t = 30_000)]
    pub timeout_ms: u64,
    /// Write the JSON result here (it is always printed to stdout too).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A label copied into the result.
    #[arg(long)]
    pub label: Option<String>,
    /// Sample this process's resident memory during the run.
    #[arg(long)]
    pub rss_pid: Option<u32>,
}

/// `loadgen run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: Common,
    /// The request kind.
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// Concurrent workers, each with one request in flight.
    #[arg(long, default_value_t = 1)]
    pub concurrency: u32,
    /// Measured duration in seconds (at most 600).
    #[arg(long, default_value_t = 10.0)]
    pub duration_secs: f64,
    /// Stop after this many requests (whichever comes first).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Unmeasured warm-up before the measured run, in seconds.
    #[arg(long, default_value_t = 0.0)]
    pub warmup_secs: f64,
    /// Users the requests are made as: `name` or `prefix:count`.
    #[arg(long, default_value = "bench")]
    pub users: String,
    /// Send/stream: chats created per worker (each worker sends to its own chats in turn).
    #[arg(long, default_value_t = 4)]
    pub chats_per_worker: u32,
    /// Send/stream: instead, every worker sends to one of this many chats shared by
    /// all (409 "busy" answers are expected and counted).
    #[arg(long)]
    pub shared_chats: Option<u32>,
    /// Send/stream: instead, send to the existing chats of `--users` (such as the deep
    /// chat of bench/seed_tree.sql), each following its active branch.
    #[arg(long)]
    pub existing_chats: bool,
    /// Search terms, picked at random per request.
    #[arg(long = "query", default_values_t = ["lisbon".to_owned(), "zzqx".to_owned()])]
    pub queries: Vec<String>,
    /// Page size of list and search requests.
    #[arg(long, default_value_t = 20)]
    pub page_limit: u32,
    /// List-messages: start each page after a random `seq` in `0..=N` (0: from the
    /// start), as bench/pgbench/branch_page.sql does; without it, always the first page.
    #[arg(long)]
    pub cursor_below: Option<u32>,
    /// Content of sent messages (`[fault:…]` markers reach the fake LLM).
    #[arg(long, default_value = "Tell me something about benchmarks")]
    pub content: String,
    /// Streams: hang up on purpose at this point.
    #[arg(long, value_enum, default_value_t = Disconnect::Never)]
    pub disconnect_after: Disconnect,
    /// Record every acknowledged write to this CSV file.
    #[arg(long)]
    pub acks: Option<PathBuf>,
    /// Include the per-second outcome timeline in the result.
    #[arg(long)]
    pub timeline: bool,
    /// Pause after a transport error, 409, 429 or 503 before the worker's next request, in ms.
    #[arg(long, default_value_t = 20)]
    pub error_pause_ms: u64,
}

/// `loadgen hold`.
#[derive(Debug, Clone, Args)]
pub struct HoldArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: Common,
    /// Streams to open (one chat each).
    #[arg(long, default_value_t = 10_000)]
    pub streams: u32,
    /// Streams being opened at once (the rest wait).
    #[arg(long, default_value_t = 64)]
    pub open_concurrency: u32,
    /// How long to hold them once all are open, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub hold_secs: f64,
    /// Give up opening after this many seconds.
    #[arg(long, default_value_t = 120.0)]
    pub open_timeout_secs: f64,
    /// The user owning the chats.
    #[arg(long, default_value = "holder")]
    pub user: String,
}

/// `loadgen startup`.
#[derive(Debug, Clone, Args)]
pub struct StartupArgs {
    /// The program to start (its environment is inherited).
    #[arg(long)]
    pub exec: PathBuf,
    /// Its arguments.
    #[arg(long = "arg", allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Readiness URL, `http://127.0.0.1:<port>/readyz`.
    #[arg(long)]
    pub ready_url: String,
    /// How many starts.
    #[arg(long, default_value_t = 5)]
    pub runs: u32,
    /// Idle time before memory is read, in seconds.
    #[arg(long, default_value_t = 2.0)]
    pub idle_secs: f64,
    /// Give up on a start after this many seconds.
    #[arg(long, default_value_t = 20.0)]
    pub timeout_secs: f64,
    /// Where the started program's output goes (appended).
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Write the JSON result here (it is always printed to stdout too).
    #[arg(long)]
    pub out: Option<PathBuf>,
}
