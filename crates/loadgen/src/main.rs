//! `loadgen`: drives chat-service (and the fake LLM) on loopback with a fixed
//! concurrency for a bounded time, and prints HDR latency percentiles as JSON.

mod acks;
mod cli;
mod hold;
mod ops;
mod pglog;
mod report;
mod report_md;
mod report_redis;
mod report_tree;
mod rss;
mod runner;
mod setup;
mod sse;
mod startup;
mod stats;
mod target;

use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

async fn dispatch(cli: Cli) -> anyhow::Result<(serde_json::Value, Option<std::path::PathBuf>)> {
    Ok(match cli.command {
        Command::Run(a) => {
            let out = a.common.out.clone();
            (runner::run(a).await?, out)
        }
        Command::Hold(a) => {
            let out = a.common.out.clone();
            (hold::hold(a).await?, out)
        }
        Command::Startup(a) => {
            let out = a.out.clone();
            (startup::startup(a).await?, out)
        }
        Command::Pglog(a) => (pglog::pglog(&a)?, a.out.clone()),
        Command::Report(a) => (report::report(&a)?, None),
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli).await {
        Ok((value, out)) => {
            let text = serde_json::to_string_pretty(&value).unwrap_or_default();
            println!("{text}");
            if let Some(path) = out {
                if let Err(e) = std::fs::write(&path, format!("{text}\n")) {
                    eprintln!("loadgen: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}
