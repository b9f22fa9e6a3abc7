//! `loadgen run`: a fixed number of workers, each with one request in flight, for a
//! fixed time or request count; every request is bounded by the per-request timeout
//! and the whole run by a hard deadline.

use crate::acks::Acks;
use crate::cli::{RunArgs, Scenario};
use crate::ops::{self, StreamCall};
use crate::rss::Sampler;
use crate::setup::{self, Owned, Plan};
use crate::stats::{Outcome, Recorder};
use crate::target::{loopback, Tokens, Users};
use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Client, Url};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest measured duration a run accepts, in seconds.
pub const MAX_DURATION_SECS: f64 = 600.0;

/// Placeholder secret for scenarios that need no token (the provider baseline).
const NO_SECRET: &str = "loadgen-no-secret-loadgen-no-secret";

struct Ctx {
    client: Client,
    targets: Vec<String>,
    rr: AtomicUsize,
    args: RunArgs,
    users: Users,
    plan: Plan,
    acks: Acks,
    timeout: Duration,
}

impl Ctx {
    fn base(&self) -> &str {
        let i = self.rr.fetch_add(1, Ordering::Relaxed) % self.targets.len();
        &self.targets[i]
    }
}

struct Worker {
    id: usize,
    rng: StdRng,
    tokens: Tokens,
    next: usize,
}

impl Worker {
    /// The chat this worker sends to next: its own in turn, or a random shared one.
    fn chat<'a>(&mut self, plan: &'a Plan) -> Option<&'a Owned> {
        match plan.own.get(self.id) {
            Some(own) if !own.is_empty() => {
                self.next = (self.next + 1) % own.len();
                own.get(self.next)
            }
            _ => self.random(plan),
        }
    }

    fn random<'a>(&mut self, plan: &'a Plan) -> Option<&'a Owned> {
        if plan.pool.is_empty() {
            return None;
        }
        plan.pool.get(self.rng.gen_range(0..plan.pool.len()))
    }
}

fn url(base: &str, path: &str, query: &[(&str, &str)]) -> String {
    Url::parse_with_params(&format!("{base}{path}"), query)
        .map(String::from)
        .unwrap_or_else(|_| format!("{base}{path}"))
}

/// The service's cursor for "after the message with this `seq`": URL-safe base64
/// (no padding) of `{"s":seq}` (domain `MessageCursor`).
fn message_cursor(seq: u32) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = format!("{{\"s\":{seq}}}").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// One request of the run's scenario.
async fn one(ctx: &Ctx, w: &mut Worker, rec: &mut Recorder) -> anyhow::Result<Outcome> {
    let a = &ctx.args;
    let base = ctx.base();
    let limit = a.page_limit.to_string();
    let c = &ctx.client;
    Ok(match a.scenario {
        Scenario::CreateChat => {
            let user = ctx.users.pick(&mut w.rng);
            let bearer = w.tokens.bearer(&user)?;
            let title = format!("bench chat {}", w.rng.gen::<u32>());
            ops::create_chat(c, base, &bearer, &title, &ctx.acks, rec)
                .await
                .0
        }
        Scenario::ListChats => {
            let bearer = w.tokens.bearer(&ctx.users.pick(&mut w.rng))?;
            let u = url(base, "/api/v1/chats", &[("limit", &limit)]);
            ops::get(c, &u, &bearer, rec).await
        }
        Scenario::Search => {
            let bearer = w.tokens.bearer(&ctx.users.pick(&mut w.rng))?;
            let q = &a.queries[w.rng.gen_range(0..a.queries.len())];
            let u = url(base, "/api/v1/chats/search", &[("q", q), ("limit", &limit)]);
            ops::get(c, &u, &bearer, rec).await
        }
        Scenario::MessageSearch => {
            let bearer = w.tokens.bearer(&ctx.users.pick(&mut w.rng))?;
            let q = &a.queries[w.rng.gen_range(0..a.queries.len())];
            let u = url(
                base,
                "/api/v1/messages/search",
                &[("q", q), ("limit", &limit)],
            );
            ops::get(c, &u, &bearer, rec).await
        }
        Scenario::GetChat => {
            let o = w.random(&ctx.plan).context("no chats to read")?;
            let bearer = w.tokens.bearer(&o.user)?;
            let u = format!("{base}/api/v1/chats/{}", o.chat);
            ops::get(c, &u, &bearer, rec).await
        }
        Scenario::ListMessages => {
            let o = w.random(&ctx.plan).context("no chats to read")?;
            let bearer = w.tokens.bearer(&o.user)?;
            let mut q = vec![("chatId", o.chat.clone()), ("limit", limit.clone())];
            match a.cursor_below.map(|n| w.rng.gen_range(0..=n)) {
                Some(seq) if seq > 0 => q.push(("cursor", message_cursor(seq))),
                _ => {}
            }
            let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let u = url(base, "/api/v1/messages", &q);
            ops::get(c, &u, &bearer, rec).await
        }
        Scenario::Send => {
            let o = w.chat(&ctx.plan).context("no chats to send to")?.clone();
            let bearer = w.tokens.bearer(&o.user)?;
            ops::send_message(c, base, &bearer, &o.chat, &a.content, &ctx.acks, rec).await
        }
        Scenario::Stream => {
            let o = w.chat(&ctx.plan).context("no chats to send to")?.clone();
            let bearer = w.tokens.bearer(&o.user)?;
            let call = StreamCall {
                base,
                bearer: &bearer,
                chat: &o.chat,
                content: &a.content,
                disconnect: a.disconnect_after,
            };
            ops::stream_message(c, call, &ctx.acks, rec).await
        }
        Scenario::LlmDirect => ops::llm_direct(c, base, &a.content, rec).await,
    })
}

/// Runs the workers until `duration` has passed or `max` requests were issued.
/// Returns the merged measurements, the time taken, and how many workers had to be
/// stopped at the hard deadline (hung).
async fn phase(
    ctx: Arc<Ctx>,
    tokens: &Tokens,
    duration: Duration,
    max: Option<u64>,
) -> (Recorder, Duration, u64) {
    let start = Instant::now();
    let deadline = start + duration;
    let issued = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for id in 0..ctx.args.concurrency as usize {
        let ctx = ctx.clone();
        let issued = issued.clone();
        let mut w = Worker {
            id,
            rng: StdRng::seed_from_u64(id as u64 ^ 0x5eed),
            tokens: tokens.clone(),
            next: id,
        };
        handles.push(tokio::spawn(async move {
            let mut rec = Recorder::default();
            let pause = Duration::from_millis(ctx.args.error_pause_ms);
            while Instant::now() < deadline
                && max.is_none_or(|m| issued.fetch_add(1, Ordering::Relaxed) < m)
            {
                let t = Instant::now();
                let outcome =
                    match tokio::time::timeout(ctx.timeout, one(&ctx, &mut w, &mut rec)).await {
                        Ok(Ok(o)) => o,
                        Ok(Err(e)) => {
                            rec.sample_error(format!("{e:#}"));
                            Outcome::Transport
                        }
                        Err(_) => Outcome::Timeout,
                    };
                rec.finish(t, start, outcome);
                if matches!(
                    outcome,
                    Outcome::Transport | Outcome::Status(409 | 429 | 503)
                ) {
                    tokio::time::sleep(pause).await;
                }
            }
            rec
        }));
    }
    // Each request is bounded by the timeout; this is the backstop.
    let hard = deadline + ctx.timeout + Duration::from_secs(10);
    let mut total = Recorder::default();
    let mut hung = 0;
    for h in handles {
        let left = hard.saturating_duration_since(Instant::now());
        let abort = h.abort_handle();
        match tokio::time::timeout(left, h).await {
            Ok(Ok(rec)) => total.merge(&rec),
            _ => {
                abort.abort();
                hung += 1;
            }
        }
    }
    (total, start.elapsed(), hung)
}

fn secs(s: f64) -> anyhow::Result<Duration> {
    if !(0.0..=MAX_DURATION_SECS).contains(&s) {
        bail!("durations must be between 0 and {MAX_DURATION_SECS} s, got {s}");
    }
    Ok(Duration::from_secs_f64(s))
}

/// `loadgen run`: setup, optional warm-up, the measured phase; the JSON result.
pub async fn run(args: RunArgs) -> anyhow::Result<Value> {
    let targets = args
        .common
        .targets
        .iter()
        .map(|t| loopback(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.concurrency == 0 || args.concurrency > 20_000 {
        bail!("--concurrency must be 1..=20000");
    }
    if args.queries.is_empty() {
        bail!("give at least one --query");
    }
    let duration = secs(args.duration_secs)?;
    let warmup = secs(args.warmup_secs)?;
    let secret = match (&args.common.jwt_secret, args.scenario) {
        (Some(s), _) => s.clone(),
        (None, Scenario::LlmDirect) => NO_SECRET.to_owned(),
        (None, _) => bail!("set JWT_SECRET (or --jwt-secret) to the service's HS256 secret"),
    };
    let mut tokens = Tokens::new(&secret)?;
    let client = ops::client()?;
    let acks = Acks::open(args.acks.as_deref())?;
    let setup_start = Instant::now();
    let plan = setup::prepare(&client, &targets[0], &args, &mut tokens, &acks).await?;
    let setup_s = setup_start.elapsed().as_secs_f64();
    let ctx = Arc::new(Ctx {
        client,
        targets: targets.clone(),
        rr: AtomicUsize::new(0),
        users: Users::parse(&args.users)?,
        timeout: Duration::from_millis(args.common.timeout_ms.max(1)),
        args: args.clone(),
        plan,
        acks,
    });
    if !warmup.is_zero() {
        let _ = phase(ctx.clone(), &tokens, warmup, None).await;
    }
    let sampler = args.common.rss_pid.map(Sampler::start);
    let (rec, elapsed, hung) = phase(ctx.clone(), &tokens, duration, args.requests).await;
    ctx.acks.flush()?;
    let mut v = rec.summary(elapsed, args.timeline);
    v["scenario"] = json!(args.scenario.name());
    v["concurrency"] = json!(args.concurrency);
    v["targets"] = json!(targets);
    v["label"] = json!(args.common.label);
    v["setup_s"] = json!((setup_s * 1000.0).round() / 1000.0);
    v["hung_workers"] = json!(hung);
    v["rss"] = sampler.map_or(Value::Null, Sampler::finish);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::message_cursor;

    #[test]
    fn message_cursors_are_the_services() {
        // URL_SAFE_NO_PAD of `{"s":42}` and `{"s":10880}`.
        assert_eq!(message_cursor(42), "eyJzIjo0Mn0");
        assert_eq!(message_cursor(10880), "eyJzIjoxMDg4MH0");
    }
}
