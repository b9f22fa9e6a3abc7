//! Rough measurement behind the adapter's design (README, "Live replies on Redis"):
//! a stored buffer appended by a script that also publishes (what `RedisLive` does)
//! against Redis Streams (`XADD` per piece, followers in `XREAD BLOCK`), with F
//! followers of one reply. Bounded: a few thousand operations on a Redis at REDIS_URL
//! (default 127.0.0.1:6379), under a key prefix of its own, deleted at the end.
//!
//!     cargo run --release -p infra-redis --example measure_live [pieces] [followers]

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::StreamExt;
use redis::AsyncCommands;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> redis::RedisResult<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let pieces = args.first().copied().unwrap_or(2_000).min(20_000);
    let followers = args.get(1).copied().unwrap_or(50).min(500);
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = redis::Client::open(url)?;
    let prefix = format!("measure:{}:", uuid::Uuid::now_v7());
    let piece = "twenty bytes of text";
    let mut c = client.get_multiplexed_async_connection().await?;

    // 1. Buffer + pub/sub: one script per piece; followers share ONE subscriber connection.
    let script = redis::Script::new(
        "redis.call('APPEND', KEYS[1], ARGV[1]) redis.call('PEXPIRE', KEYS[1], 60000) \
         return redis.call('PUBLISH', KEYS[2], ARGV[1])",
    );
    let text_key = format!("{prefix}text");
    let channel = format!("{prefix}chan");
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(&channel).await?;
    let (tx, _) = tokio::sync::broadcast::channel::<Instant>(pieces + 16);
    let mut receivers: Vec<_> = (0..followers).map(|_| tx.subscribe()).collect();
    let fan = tokio::spawn(async move {
        let mut msgs = pubsub.on_message();
        let mut n = 0;
        while n < pieces {
            if msgs.next().await.is_none() {
                break;
            }
            let _ = tx.send(Instant::now());
            n += 1;
        }
    });
    let started = Instant::now();
    for _ in 0..pieces {
        let _: i64 = script
            .key(&text_key)
            .key(&channel)
            .arg(piece)
            .invoke_async(&mut c)
            .await?;
    }
    let append_secs = started.elapsed().as_secs_f64();
    let _ = tokio::time::timeout(Duration::from_secs(30), fan).await;
    let mut got = 0usize;
    for r in &mut receivers {
        while r.try_recv().is_ok() {
            got += 1;
        }
    }
    println!(
        "buffer+pubsub: {pieces} appends in {:.3} s ({:.0}/s, {:.1} µs each); {followers} followers received {got} pieces over 1 subscriber connection",
        append_secs,
        pieces as f64 / append_secs,
        append_secs * 1e6 / pieces as f64
    );

    // 2. Streams: XADD per piece; each follower blocks in XREAD on a connection of its own
    //    (a blocking read stalls a multiplexed connection for everyone on it).
    let stream_key = format!("{prefix}stream");
    let mut readers = Vec::new();
    for _ in 0..followers {
        let mut rc = client.get_multiplexed_async_connection().await?;
        let key = stream_key.clone();
        readers.push(tokio::spawn(async move {
            let mut last = "0-0".to_owned();
            let mut n = 0usize;
            while n < pieces {
                let opts = redis::streams::StreamReadOptions::default()
                    .block(5_000)
                    .count(1_000);
                let reply: redis::RedisResult<redis::streams::StreamReadReply> =
                    rc.xread_options(&[&key], &[&last], &opts).await;
                let Ok(reply) = reply else { break };
                if reply.keys.is_empty() {
                    break;
                }
                for k in reply.keys {
                    for id in k.ids {
                        last = id.id;
                        n += 1;
                    }
                }
            }
            n
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    for _ in 0..pieces {
        let _: String = c.xadd(&stream_key, "*", &[("t", piece)]).await?;
    }
    let xadd_secs = started.elapsed().as_secs_f64();
    let mut got = 0usize;
    for r in readers {
        got += r.await.unwrap_or(0);
    }
    println!(
        "streams: {pieces} XADDs in {:.3} s ({:.0}/s, {:.1} µs each); {followers} followers received {got} pieces over {followers} connections",
        xadd_secs,
        pieces as f64 / xadd_secs,
        xadd_secs * 1e6 / pieces as f64
    );
    let _: () = c.del(&[&text_key, &stream_key]).await?;
    Ok(())
}
