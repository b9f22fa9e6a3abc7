//! `loadgen startup`: starts a program several times and measures the time from exec
//! to its readiness URL answering 200, then its idle resident memory; stops it with
//! SIGTERM (SIGKILL if it lingers) each time.

use crate::cli::StartupArgs;
use crate::rss;
use crate::stats::Dist;
use crate::target::loopback;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Sends SIGTERM, waits up to 15 s, then SIGKILL.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn output(log: Option<&std::path::Path>) -> anyhow::Result<(Stdio, Stdio)> {
    match log {
        None => Ok((Stdio::null(), Stdio::null())),
        Some(p) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?;
            Ok((Stdio::from(f.try_clone()?), Stdio::from(f)))
        }
    }
}

/// `loadgen startup`.
pub async fn startup(args: StartupArgs) -> anyhow::Result<Value> {
    let ready = args.ready_url.clone();
    let base = ready
        .find("/readyz")
        .map_or(ready.as_str(), |i| &ready[..i]);
    loopback(base)?;
    if args.runs == 0 || args.runs > 50 {
        bail!("--runs must be 1..=50");
    }
    // A fresh connection per probe: the server is not listening yet at first.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_millis(500))
        .build()?;
    let mut ready_ms = Dist::default();
    let mut runs = Vec::new();
    for _ in 0..args.runs {
        let (out, err) = output(args.log.as_deref())?;
        let t0 = Instant::now();
        let mut child = Command::new(&args.exec)
            .args(&args.args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", args.exec.display()))?;
        let limit = t0 + Duration::from_secs_f64(args.timeout_secs.clamp(1.0, 120.0));
        let mut took = None;
        while Instant::now() < limit {
            if let Ok(Some(status)) = child.try_wait() {
                bail!("{} exited during start-up: {status}", args.exec.display());
            }
            if let Ok(r) = client.get(&ready).send().await {
                if r.status().is_success() {
                    took = Some(t0.elapsed());
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let Some(took) = took else {
            stop(&mut child);
            bail!("{} was not ready within {} s", ready, args.timeout_secs);
        };
        ready_ms.record(took);
        let rss_ready = rss::rss_kib(child.id());
        tokio::time::sleep(Duration::from_secs_f64(args.idle_secs.clamp(0.0, 60.0))).await;
        let rss_idle = rss::rss_kib(child.id());
        stop(&mut child);
        runs.push(json!({
            "ready_ms": (took.as_secs_f64() * 1e6).round() / 1e3,
            "rss_ready_kib": rss_ready,
            "rss_idle_kib": rss_idle,
        }));
    }
    let mut idle: Vec<u64> = runs
        .iter()
        .filter_map(|r| r["rss_idle_kib"].as_u64())
        .collect();
    idle.sort_unstable();
    Ok(json!({
        "scenario": "startup",
        "runs": runs,
        "ready_ms": ready_ms.summary(),
        "rss_idle_kib_median": idle.get(idle.len() / 2),
        "rss_idle_kib_max": idle.last(),
    }))
}
