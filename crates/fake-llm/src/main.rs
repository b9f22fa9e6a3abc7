//! The `fake-llm` binary: an OpenAI-compatible fake LLM server configured by flags
//! or environment variables.

use clap::Parser;
use fake_llm::{FakeLlmConfig, FaultKind};
use std::net::SocketAddr;
use std::time::Duration;

/// An OpenAI-compatible fake LLM server with latency, token rate and fault injection.
#[derive(Debug, Parser)]
#[command(name = "fake-llm", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "FAKE_LLM_ADDR", default_value = "127.0.0.1:8081")]
    addr: SocketAddr,
    /// Time to first token, in milliseconds.
    #[arg(long, env = "FAKE_LLM_TTFT_MS", default_value_t = 0)]
    ttft_ms: u64,
    /// Tokens per second (0 = unlimited).
    #[arg(long, env = "FAKE_LLM_TOKENS_PER_SEC", default_value_t = 0)]
    tokens_per_sec: u32,
    /// Tokens (words) per reply.
    #[arg(long, env = "FAKE_LLM_REPLY_TOKENS", default_value_t = 16)]
    reply_tokens: u32,
    /// Probability (0..=1) of a random fault on requests that ask for none.
    #[arg(long, env = "FAKE_LLM_FAULT_RATE", default_value_t = 0.0)]
    fault_rate: f64,
    /// Fault kinds picked at random, comma-separated (429,500,401,400,cut,stall,stall-mid,malformed).
    #[arg(
        long,
        env = "FAKE_LLM_FAULT_KINDS",
        value_delimiter = ',',
        default_value = "429,500,cut,stall,malformed"
    )]
    fault_kinds: Vec<FaultKind>,
    /// `Retry-After` of injected 429s, in seconds.
    #[arg(long, env = "FAKE_LLM_RETRY_AFTER_SECS", default_value_t = 1)]
    retry_after_secs: u64,
    /// Length of injected stalls, in milliseconds.
    #[arg(long, env = "FAKE_LLM_STALL_MS", default_value_t = 30_000)]
    stall_ms: u64,
    /// Model name reported when a request names none.
    #[arg(long, env = "FAKE_LLM_MODEL", default_value = "fake-llm")]
    model: String,
    /// Require `Authorization: Bearer <key>` when set.
    #[arg(long, env = "FAKE_LLM_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Worker threads (0 = one per core).
    #[arg(long, env = "FAKE_LLM_WORKERS", default_value_t = 0)]
    workers: usize,
    /// Never report token usage (as some providers do), even when asked.
    #[arg(long, env = "FAKE_LLM_NO_USAGE")]
    no_usage: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    if !(0.0..=1.0).contains(&args.fault_rate) {
        anyhow::bail!(
            "--fault-rate must be between 0 and 1, got {}",
            args.fault_rate
        );
    }
    let config = FakeLlmConfig {
        addr: args.addr,
        ttft: Duration::from_millis(args.ttft_ms),
        tokens_per_sec: args.tokens_per_sec,
        reply_tokens: args.reply_tokens,
        fault_rate: args.fault_rate,
        fault_kinds: args.fault_kinds,
        retry_after_secs: args.retry_after_secs,
        stall: Duration::from_millis(args.stall_ms),
        model: args.model,
        api_key: args.api_key.filter(|k| !k.is_empty()),
        workers: args.workers,
        report_usage: !args.no_usage,
    };
    tracing::info!(
        ttft_ms = args.ttft_ms,
        tokens_per_sec = config.tokens_per_sec,
        reply_tokens = config.reply_tokens,
        fault_rate = config.fault_rate,
        "fake-llm starting"
    );
    let server = fake_llm::serve(config).await?;
    let handle = server.handle();
    tracing::info!(addr = %server.addr(), base_url = %server.base_url(), "fake-llm listening");
    tokio::select! {
        result = server.run_until_stopped() => result?,
        () = shutdown_signal() => {
            tracing::info!("fake-llm stopping");
            handle.stop(true).await;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
