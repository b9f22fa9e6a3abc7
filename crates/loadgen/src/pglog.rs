//! `loadgen pglog`: turns a pgbench run (its per-transaction logs from `-l` and its
//! printed summary) into the same JSON shape as a loadgen result: tps and HDR
//! latency percentiles.

use crate::stats::Dist;
use anyhow::Context;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Arguments of `loadgen pglog`.
#[derive(Debug, Clone, clap::Args)]
pub struct PglogArgs {
    /// The `--log-prefix` given to pgbench (files `<prefix>.<pid>[.<thread>]`).
    #[arg(long)]
    pub prefix: PathBuf,
    /// pgbench's printed output (for tps and failure counts).
    #[arg(long)]
    pub summary: PathBuf,
    /// The concurrency this run stands for.
    #[arg(long)]
    pub concurrency: u32,
    /// The clients pgbench actually ran (fewer when connection slots were short).
    #[arg(long)]
    pub clients: u32,
    /// Write the JSON result here (it is always printed to stdout too).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The per-transaction log files written under `prefix`.
fn log_files(prefix: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = prefix
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stem = prefix
        .file_name()
        .and_then(|s| s.to_str())
        .context("the prefix has no file name")?;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|s| s.to_str()).unwrap_or("");
        if let Some(rest) = name.strip_prefix(stem).and_then(|r| r.strip_prefix('.')) {
            if rest.starts_with(|c: char| c.is_ascii_digit()) {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// Adds the latencies of one log's lines (`client tx latency_us script epoch us …`);
/// returns how many transactions were logged as failed or skipped.
fn add_log(text: &str, dist: &mut Dist) -> u64 {
    let mut failed = 0;
    for line in text.lines() {
        if let Some(us) = line.split_whitespace().nth(2) {
            match us.parse::<u64>() {
                Ok(us) => dist.record(Duration::from_micros(us)),
                Err(_) => failed += 1,
            }
        }
    }
    failed
}

/// The number after `key` on the first line that holds it.
fn number_after(text: &str, key: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.contains(key))?;
    let rest = &line[line.find(key)? + key.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// `loadgen pglog`.
pub fn pglog(args: &PglogArgs) -> anyhow::Result<Value> {
    let summary = std::fs::read_to_string(&args.summary)
        .with_context(|| format!("reading {}", args.summary.display()))?;
    let mut dist = Dist::default();
    let mut logged_failures = 0;
    for f in log_files(&args.prefix)? {
        let text = std::fs::read_to_string(&f)?;
        logged_failures += add_log(&text, &mut dist);
    }
    let tps = number_after(&summary, "tps = ").context("pgbench printed no tps")?;
    Ok(json!({
        "tool": "pgbench",
        "concurrency": args.concurrency,
        "clients": args.clients,
        "tps": (tps * 1000.0).round() / 1000.0,
        "transactions": number_after(&summary, "number of transactions actually processed:"),
        "failed": number_after(&summary, "number of failed transactions:").unwrap_or(logged_failures as f64),
        "latency_ms": dist.summary(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_logs_and_summary() {
        let mut d = Dist::default();
        let failed = add_log(
            "0 1 1500 0 1700000000 1\n0 2 2500 0 1700000000 2\n1 3 failed 0 1 2\n",
            &mut d,
        );
        assert_eq!(failed, 1);
        assert_eq!(d.summary()["count"], json!(2));
        let s = "number of transactions actually processed: 977\nnumber of failed transactions: 0 (0.000%)\ntps = 244.655199 (without initial connection time)\n";
        assert_eq!(number_after(s, "tps = "), Some(244.655199));
        assert_eq!(number_after(s, "number of failed transactions:"), Some(0.0));
        assert_eq!(number_after(s, "nothing"), None);
    }

    #[test]
    fn finds_the_log_files_of_a_prefix() {
        let dir = std::env::temp_dir().join(format!("loadgen-pglog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["send-c1.123", "send-c1.123.1", "send-c1.out", "send-c16.9"] {
            std::fs::write(dir.join(name), "0 1 1000 0 1 1\n").unwrap();
        }
        let mut files = log_files(&dir.join("send-c1")).unwrap();
        files.sort();
        let _ = std::fs::remove_dir_all(&dir);
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, vec!["send-c1.123", "send-c1.123.1"]);
    }
}
