//! `loadgen hold`: open N concurrent streams (one chat each, a bounded number being
//! opened at a time), hold them all open, and sample the service's resident memory.
//! The provider must be slow enough for the replies to outlast the hold.

use crate::acks::Acks;
use crate::cli::HoldArgs;
use crate::ops;
use crate::rss::{self, Sampler};
use crate::setup::create_chats;
use crate::sse::Splitter;
use crate::stats::Dist;
use crate::target::{loopback, Tokens};
use anyhow::{bail, Context};
use futures::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

#[derive(Debug, Default)]
struct Counters {
    opened: AtomicU32,
    failed: AtomicU32,
    ended_early: AtomicU32,
    statuses: Mutex<BTreeMap<String, u32>>,
    open_latency: Mutex<Dist>,
}

impl Counters {
    fn fail(&self, why: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        *self
            .statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(why)
            .or_insert(0) += 1;
    }
}

/// Opens one stream, reports it open at its `message` event, then reads it until
/// `release` flips (or it ends by itself, which is counted).
async fn one_stream(
    client: reqwest::Client,
    url: String,
    bearer: String,
    permits: Arc<Semaphore>,
    counters: Arc<Counters>,
    mut release: watch::Receiver<bool>,
) {
    let Ok(permit) = permits.acquire_owned().await else {
        return;
    };
    let t0 = Instant::now();
    let resp = client
        .post(&url)
        .header(AUTHORIZATION, &bearer)
        .header(ACCEPT, "text/event-stream")
        .json(&json!({ "content": "hold this stream open" }))
        .send()
        .await;
    let resp = match resp {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => return counters.fail(r.status().as_u16().to_string()),
        Err(e) => {
            return counters.fail(
                if e.is_connect() {
                    "connect"
                } else {
                    "transport"
                }
                .into(),
            )
        }
    };
    let mut body = resp.bytes_stream();
    let mut sse = Splitter::default();
    let mut open = false;
    while !open {
        tokio::select! {
            chunk = body.next() => match chunk {
                Some(Ok(c)) => {
                    sse.push(&c);
                    while let Some(ev) = sse.next_event() {
                        open |= ev.name == "message";
                    }
                }
                _ => return counters.fail("ended before message".into()),
            },
            _ = release.changed() => return,
        }
    }
    counters
        .open_latency
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .record(t0.elapsed());
    counters.opened.fetch_add(1, Ordering::Relaxed);
    drop(sse);
    drop(permit);
    loop {
        tokio::select! {
            chunk = body.next() => match chunk {
                Some(Ok(_)) => {}
                _ => {
                    counters.ended_early.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
            _ = release.changed() => return,
        }
    }
}

/// Open file descriptors of `pid`.
fn fd_count(pid: u32) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count())
}

/// `loadgen hold`.
pub async fn hold(args: HoldArgs) -> anyhow::Result<Value> {
    let base = loopback(args.common.targets.first().context("give a --target")?)?;
    if args.streams == 0 || args.streams > 50_000 {
        bail!("--streams must be 1..=50000");
    }
    let secret = args
        .common
        .jwt_secret
        .clone()
        .context("set JWT_SECRET (or --jwt-secret)")?;
    let mut tokens = Tokens::new(&secret)?;
    let client = ops::client()?;
    let pid = args.common.rss_pid;
    let rss_before = pid.and_then(rss::rss_kib);
    let t_setup = Instant::now();
    let chats = create_chats(
        &client,
        &base,
        &mut tokens,
        &args.user,
        args.streams,
        &Acks::default(),
    )
    .await?;
    let setup_s = t_setup.elapsed().as_secs_f64();
    let rss_after_setup = pid.and_then(rss::rss_kib);
    let bearer = tokens.bearer(&args.user)?;
    let counters = Arc::new(Counters::default());
    let permits = Arc::new(Semaphore::new(args.open_concurrency.max(1) as usize));
    let (release_tx, release_rx) = watch::channel(false);
    let t_open = Instant::now();
    let mut tasks = Vec::with_capacity(chats.len());
    for c in &chats {
        let url = format!("{base}/api/v1/messages?chatId={}", c.chat);
        tasks.push(tokio::spawn(one_stream(
            client.clone(),
            url,
            bearer.clone(),
            permits.clone(),
            counters.clone(),
            release_rx.clone(),
        )));
    }
    let open_deadline = t_open + Duration::from_secs_f64(args.open_timeout_secs.clamp(1.0, 600.0));
    while Instant::now() < open_deadline {
        let done =
            counters.opened.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed);
        if done >= args.streams {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open_s = t_open.elapsed().as_secs_f64();
    let rss_open = pid.and_then(rss::rss_kib);
    let fds_open = pid.and_then(fd_count);
    let sampler = pid.map(Sampler::start);
    tokio::time::sleep(Duration::from_secs_f64(args.hold_secs.clamp(0.0, 600.0))).await;
    let held_at_end = counters.opened.load(Ordering::Relaxed)
        - counters
            .ended_early
            .load(Ordering::Relaxed)
            .min(counters.opened.load(Ordering::Relaxed));
    let rss_hold = sampler.map(Sampler::finish);
    let _ = release_tx.send(true);
    let stop_by = Instant::now() + Duration::from_secs(30);
    for t in tasks {
        let left = stop_by.saturating_duration_since(Instant::now());
        let abort = t.abort_handle();
        if tokio::time::timeout(left, t).await.is_err() {
            abort.abort();
        }
    }
    let opened = counters.opened.load(Ordering::Relaxed);
    let max_kib = rss_hold
        .as_ref()
        .and_then(|v| v["max_kib"].as_u64())
        .or(rss_open);
    let per_stream = match (max_kib, rss_after_setup) {
        (Some(m), Some(b)) if opened > 0 => {
            Some(((m.saturating_sub(b)) as f64 / f64::from(opened) * 100.0).round() / 100.0)
        }
        _ => None,
    };
    let statuses = counters
        .statuses
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let open_latency = counters
        .open_latency
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .summary();
    Ok(json!({
        "scenario": "hold",
        "label": args.common.label,
        "streams": args.streams,
        "opened": opened,
        "failed": counters.failed.load(Ordering::Relaxed),
        "failures": statuses,
        "ended_early": counters.ended_early.load(Ordering::Relaxed),
        "held_at_end": held_at_end,
        "setup_s": (setup_s * 1000.0).round() / 1000.0,
        "open_s": (open_s * 1000.0).round() / 1000.0,
        "open_latency_ms": open_latency,
        "fds_open": fds_open,
        "rss": {
            "before_kib": rss_before,
            "after_setup_kib": rss_after_setup,
            "open_kib": rss_open,
            "hold": rss_hold,
            "max_kib": max_kib,
            "per_stream_kib": per_stream,
        },
    }))
}
