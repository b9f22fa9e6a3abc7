//! What only Redis has: finished buffers expire, a Redis that does not answer is
//! `Unavailable` at once (never a hang), and the adapter recovers by itself once Redis
//! is back — checked against a `redis-server` this test starts and kills itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use domain::ports::{BucketLimit, LiveEnd, LiveError, LiveReplies};
use domain::MessageId;
use infra_redis::{NoObserver, Outcome, Redis, RedisConfig, RedisLive, RedisObserver};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn config(url: &str) -> RedisConfig {
    let mut cfg = RedisConfig::new(url);
    cfg.key_prefix = format!("test:{}:", uuid::Uuid::now_v7());
    cfg
}

#[derive(Debug, Default)]
struct Seen(Mutex<Vec<(&'static str, Outcome)>>);

impl RedisObserver for Seen {
    fn operation(&self, op: &'static str, outcome: Outcome, _: Duration) {
        self.0.lock().unwrap().push((op, outcome));
    }
}

#[tokio::test]
async fn finished_buffers_expire_after_the_retention() {
    let mut cfg = config(&url());
    cfg.finished_ttl = Duration::from_secs(120);
    let prefix = cfg.key_prefix.clone();
    let live = RedisLive::new(Redis::new(cfg, Arc::new(NoObserver)).unwrap());
    let reply = MessageId::new();
    live.append(reply, 0, "text").await.unwrap();
    live.finish(reply, LiveEnd::Complete).await.unwrap();
    let client = redis::Client::open(url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    for key in ["text", "end"] {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(format!("{prefix}reply:{reply}:{key}"))
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= 120_000, "{key}: {ttl}");
    }
    // An unfinished reply's buffer expires too (its process may die).
    let open = MessageId::new();
    live.append(open, 0, "going").await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}reply:{open}:text"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= infra_redis::ACTIVE_TTL.as_millis() as i64);
}

#[tokio::test]
async fn nothing_listening_is_unavailable_at_once() {
    let port = free_port();
    let seen = Arc::new(Seen::default());
    let live = RedisLive::new(
        Redis::new(config(&format!("redis://127.0.0.1:{port}")), seen.clone()).unwrap(),
    );
    let reply = MessageId::new();
    let limit = BucketLimit {
        per_sec: 1.0,
        burst: 1,
    };
    let now = chrono::Utc::now();
    let outcome = tokio::time::timeout(Duration::from_secs(30), async {
        (
            live.append(reply, 0, "x").await,
            live.read(reply, 0).await,
            live.follow(reply, 0).await.map(drop),
            live.request_cancel(reply).await,
            live.take_tokens("u", 1, limit, now).await,
        )
    })
    .await
    .expect("no hang");
    assert!(matches!(outcome.0, Err(LiveError::Unavailable(_))));
    assert!(matches!(outcome.1, Err(LiveError::Unavailable(_))));
    assert!(matches!(outcome.2, Err(LiveError::Unavailable(_))));
    assert!(matches!(outcome.3, Err(LiveError::Unavailable(_))));
    assert!(matches!(outcome.4, Err(LiveError::Unavailable(_))));
    assert!(!live.redis().is_up());
    let ops = seen.0.lock().unwrap();
    assert!(ops.contains(&("append", Outcome::Unavailable)), "{ops:?}");
    assert!(
        ops.contains(&("rate_limit", Outcome::Unavailable)),
        "{ops:?}"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(Child);

impl Server {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        Self(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn until_ok<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, LiveError>>,
{
    for _ in 0..600 {
        if let Ok(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: never succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_redis_is_unavailable_then_recovered_by_itself() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut server = Server::start(port);
    let cfg = config(&url);
    let live = RedisLive::new(Redis::new(cfg.clone(), Arc::new(NoObserver)).unwrap());
    let peer = RedisLive::new(Redis::new(cfg, Arc::new(NoObserver)).unwrap());
    let reply = MessageId::new();
    until_ok("first append", || live.append(reply, 0, "before ")).await;
    let mut follow = peer.follow(reply, 0).await.unwrap();
    drop(server);
    // Down: every operation fails fast with Unavailable.
    let err = until_err(|| live.append(reply, 7, "during")).await;
    assert!(matches!(err, LiveError::Unavailable(_)), "{err:?}");
    assert!(!live.redis().is_up());
    // The follower ends with an error (its caller answers 503 and the client resumes).
    use futures::StreamExt;
    let mut saw_error = false;
    while let Some(item) = tokio::time::timeout(Duration::from_secs(30), follow.next())
        .await
        .expect("the follower does not hang")
    {
        if item.is_err() {
            saw_error = true;
            break;
        }
    }
    assert!(saw_error, "the follow ends with an error");
    server = Server::start(port);
    // Back (empty: this Redis keeps nothing): appends start again by themselves.
    let other = MessageId::new();
    until_ok("append after recovery", || live.append(other, 0, "after")).await;
    assert!(live.redis().is_up());
    let mut s = until_ok("follow after recovery", || peer.follow(other, 0)).await;
    live.finish(other, LiveEnd::Complete).await.unwrap();
    let mut text = String::new();
    while let Some(item) = s.next().await {
        match item.unwrap() {
            domain::ports::LiveEvent::Delta { text: t, .. } => text.push_str(&t),
            domain::ports::LiveEvent::End(e) => {
                assert_eq!(e, LiveEnd::Complete);
                break;
            }
        }
    }
    assert_eq!(text, "after");
    // Cancel across "processes" works again (the subscriber reconnected).
    let watched = MessageId::new();
    let watch = until_ok("watch", || live.watch_cancel(watched)).await;
    until_ok("cancel", || peer.request_cancel(watched)).await;
    tokio::time::timeout(Duration::from_secs(30), watch)
        .await
        .expect("the cancel is seen")
        .unwrap();
    drop(server);
}

async fn until_err<T, F, Fut>(mut f: F) -> LiveError
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, LiveError>>,
{
    for _ in 0..600 {
        if let Err(e) = f().await {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never failed");
}
