//! Outages: a cut connection, a timed-out statement and an exhausted pool are all
//! "unavailable" (HTTP 503) within bounded time, and the store recovers by itself.

use crate::support::*;
use diesel::prelude::*;
use domain::ports::{ChatRepository, MessageRepository, StoreError};
use infra_postgres::testing::proxy::{url_target, via, Proxy};
use infra_postgres::testing::TestDb;
use infra_postgres::PgStore;
use std::time::{Duration, Instant};

const NO_HANG: Duration = Duration::from_secs(15);

fn assert_unavailable<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "expected Unavailable, got {r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connection_is_unavailable_then_recovers_without_a_new_store() {
    let db = TestDb::new();
    let mut proxy = Proxy::start(url_target(db.url())).await;
    let mut config = db.config();
    config.url = infra_postgres::DatabaseUrl::new(via(db.url(), proxy.addr()));
    config.connect_timeout = Duration::from_secs(2);
    config.wait_timeout = Duration::from_secs(2);
    let s = PgStore::new(&config).unwrap();

    let c = chat("alice", "Outage");
    s.insert_chat(&c, &created(&c)).await.unwrap();
    assert!(s.readiness().await.unwrap().is_current());

    proxy.kill().await;
    let started = Instant::now();
    for _ in 0..3 {
        let r = tokio::time::timeout(NO_HANG, s.find_chat(c.id()))
            .await
            .expect("a cut connection must not hang");
        assert_unavailable(r);
    }
    assert_unavailable(tokio::time::timeout(NO_HANG, s.ping()).await.unwrap());
    assert_unavailable(tokio::time::timeout(NO_HANG, s.readiness()).await.unwrap());
    assert!(started.elapsed() < NO_HANG);

    proxy.restore().await;
    assert_eq!(s.find_chat(c.id()).await.unwrap(), Some(c.clone()));
    s.ping().await.unwrap();
    let t = turn(&c, 0, "back");
    s.start_turn(&t).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lock_wait_and_exhausted_pool_are_unavailable() {
    let db = TestDb::new();
    let mut config = db.config();
    config.max_connections = 1;
    config.statement_timeout = Duration::from_millis(800);
    config.wait_timeout = Duration::from_millis(300);
    let s = PgStore::new(&config).unwrap();
    let c = chat("alice", "Locked");
    s.insert_chat(&c, &created(&c)).await.unwrap();

    // Another session holds the chat's row lock.
    let mut other = db.connect();
    diesel::sql_query("BEGIN").execute(&mut other).unwrap();
    diesel::sql_query("SELECT 1 FROM chats WHERE id = $1 FOR UPDATE")
        .bind::<diesel::sql_types::Uuid, _>(c.id().as_uuid())
        .execute(&mut other)
        .unwrap();

    let blocked = {
        let s = s.clone();
        let t = turn(&c, 0, "waits");
        tokio::spawn(async move { s.start_turn(&t).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The only connection is busy waiting: the pool times out.
    let started = Instant::now();
    assert_unavailable(s.find_chat(c.id()).await);
    assert!(started.elapsed() < Duration::from_secs(3));
    // The statement times out instead of waiting forever.
    assert_unavailable(
        tokio::time::timeout(NO_HANG, blocked)
            .await
            .unwrap()
            .unwrap(),
    );

    diesel::sql_query("ROLLBACK").execute(&mut other).unwrap();
    s.start_turn(&turn(&c, 0, "after")).await.unwrap();
    assert_eq!(s.list_messages(c.id(), None, 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn unreachable_server_is_unavailable_fast() {
    // Nothing listens on this port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = PgStore::new(&infra_postgres::PgConfig::new(format!(
        "postgres://postgres@127.0.0.1:{port}/nothing"
    )))
    .unwrap();
    let started = Instant::now();
    assert_unavailable(s.ping().await);
    assert_unavailable(s.run_migrations().await);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    application_name: String,
}

#[tokio::test]
async fn connections_carry_their_settings() {
    let db = TestDb::new();
    let config = db.config();
    let requests = PgStore::new(&config).unwrap();
    let relay = PgStore::relay(&config).unwrap();
    requests.ping().await.unwrap();
    relay.ping().await.unwrap();
    let mut names: Vec<String> = diesel::sql_query(
        "SELECT application_name FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind::<diesel::sql_types::Text, _>(db.name())
    .load::<Name>(&mut db.connect())
    .unwrap()
    .into_iter()
    .map(|n| n.application_name)
    .collect();
    names.sort();
    assert_eq!(names, ["chat-service-test", "chat-service-test-relay"]);
}

#[tokio::test]
async fn config_from_parts_connects() {
    let db = TestDb::new();
    let server = infra_postgres::testing::proxy::url_target(db.url());
    // The credentials of the test server URL, decoded (from_parts encodes them again).
    let authority = db
        .url()
        .split("://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let credentials = authority.rsplit_once('@').map_or("postgres", |(c, _)| c);
    let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
    let (user, password) = (decode(user), decode(password));
    let config = infra_postgres::PgConfig::from_parts(
        &server.ip().to_string(),
        server.port(),
        &user,
        &password,
        db.name(),
    );
    let s = PgStore::new(&config).unwrap();
    s.ping().await.unwrap();
    assert!(s.readiness().await.unwrap().is_current());
}

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}
