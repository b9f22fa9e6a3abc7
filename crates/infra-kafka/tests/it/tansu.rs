//! Against a real Kafka-protocol broker: tansu (in-memory storage) killed while events
//! wait and restarted empty, with no memory of this producer. The outbox drains within
//! 30 s of it being back, in per-chat order. Needs the `tansu` binary (`just tansu`,
//! or `TANSU=path`); built only with `--features tansu-tests` (`just test-tansu`),
//! so it is not part of `cargo test --workspace`.

use crate::relay::{relay_config, start};
use crate::support::{self, events, outbox::MemoryOutbox};
use domain::model::{ChatId, Event};
use infra_kafka::{KafkaConfig, KafkaPublisher};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn tansu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU") {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("tansu"))
        .find(|p| p.is_file());
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    on_path
        .or_else(|| {
            cargo_home
                .map(|h| h.join("bin/tansu"))
                .filter(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("tansu not found: `just tansu` (cargo install tansu --locked --features dynostore), or set TANSU")
        })
}

/// The storage engine: `memory://tansu/` (needs tansu built with `--features
/// dynostore`), or `TANSU_STORAGE`.
fn storage_engine() -> String {
    std::env::var("TANSU_STORAGE").unwrap_or_else(|_| "memory://tansu/".to_owned())
}

/// A tansu broker on 127.0.0.1:`port`, storage in memory; killed when dropped.
struct Tansu(Child);

impl Tansu {
    fn start(port: u16) -> Tansu {
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu_bin())
            .args(["broker", "--kafka-listener-url", &url])
            .args(["--kafka-advertised-listener-url", &url])
            .args(["--storage-engine", &storage_engine()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let broker = Tansu(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let created = Command::new(tansu_bin())
            .args(["topic", "create", support::TOPIC, "--partitions", "3"])
            .args(["--broker", &url])
            .status()
            .unwrap();
        assert!(created.success(), "creating the topic failed");
        broker
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wave(chats: &[ChatId], seqs: std::ops::RangeInclusive<u32>) -> Vec<Event> {
    seqs.flat_map(|seq| chats.iter().map(move |c| events::created(*c, seq)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_drains_within_30_s_of_a_broker_back_with_no_memory_of_the_producer() {
    let port = free_port();
    let broker = Tansu::start(port);
    let bootstrap = format!("127.0.0.1:{port}");
    let mut config = KafkaConfig::new(bootstrap.clone());
    config.topic = support::TOPIC.to_owned();
    config.message_timeout = Duration::from_secs(5);
    let publisher = Arc::new(KafkaPublisher::new(&config).unwrap());
    let outbox = Arc::new(MemoryOutbox::default());
    let shutdown = CancellationToken::new();
    let mut relay = relay_config("tansu");
    relay.backoff_max = infra_kafka::RelayConfig::default().backoff_max;
    let (stats, task) = start(&outbox, publisher.clone(), relay, &shutdown);
    let chats: Vec<ChatId> = (0..4).map(|_| ChatId::new()).collect();
    for e in wave(&chats, 1..=3) {
        outbox.append(vec![e]);
    }
    support::wait_until("the first wave is out", Duration::from_secs(60), || {
        outbox.unpublished() == 0
    })
    .await;

    drop(broker); // killed: its memory goes with it
    let second = wave(&chats, 4..=6);
    for e in &second {
        outbox.append(vec![e.clone()]);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _broker = Tansu::start(port); // empty: no topic data, no producer state
    let back = Instant::now();
    support::wait_until("the outbox drains", Duration::from_secs(120), || {
        outbox.unpublished() == 0
    })
    .await;
    let drained = back.elapsed();
    eprintln!(
        "drained {drained:?} after the broker came back; producer replaced {} time(s)",
        publisher.replacements()
    );
    assert!(
        drained <= Duration::from_secs(30),
        "drained after {drained:?}"
    );
    assert_eq!(stats.dead_total(), 0);

    let ids: Vec<String> = second.iter().map(|e| e.id.to_string()).collect();
    let got = support::consume_from(
        &bootstrap,
        |r| ids.iter().all(|id| r.iter().any(|x| x.id() == id)),
        Duration::from_millis(500),
    )
    .await;
    let seen = support::first_seen_per_chat(&got);
    for (chat, expected) in support::expected_per_chat(&second) {
        assert_eq!(seen.get(&chat), Some(&expected), "chat {chat} out of order");
    }
    shutdown.cancel();
    task.await.unwrap();
}
