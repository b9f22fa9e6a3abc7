//! The branch page and message search on the request's own thread (`local_reads`,
//! `sslmode=disable`): who may read, a cut connection, a statement timeout and a runtime
//! gone — each answered as the pool's reads are, and the store recovering by itself.
//! (Their results against the pool's: `lines.rs`, `check_reads`, and `data.rs`,
//! `search_past_the_scan_budget_finds_the_newest_window`.)

use crate::support::*;
use diesel::prelude::*;
use domain::model::{Chat, MessageId};
use domain::ports::{ChatRepository, MessageRepository, MessageSearchRepository, StoreError};
use infra_postgres::testing::proxy::{url_target, via, Proxy};
use infra_postgres::testing::TestDb;
use infra_postgres::PgStore;
use std::time::{Duration, Instant};

const NO_HANG: Duration = Duration::from_secs(15);

/// A chat of alice's with one turn (its question and the reply being written).
async fn chat_with_a_turn(s: &PgStore) -> Chat {
    let c = chat("alice", "Local");
    s.insert_chat(&c, &created(&c)).await.unwrap();
    s.start_turn(&turn(&c, 0, "hello")).await.unwrap();
    c
}

async fn page(s: &PgStore, c: &Chat) -> Result<Option<Vec<MessageId>>, StoreError> {
    let page = s
        .list_owned_active_branch(c.owner(), c.id(), None, 50)
        .await?;
    Ok(page.map(|p| p.iter().map(|m| m.id()).collect()))
}

/// The ids of alice's messages that hold `q`, as message search finds them.
async fn search(s: &PgStore, q: &str) -> Result<Vec<MessageId>, StoreError> {
    let hits = s.search_messages(&alice_search(q)).await?;
    Ok(hits.iter().map(|h| h.message.id()).collect())
}

#[tokio::test]
async fn the_owner_reads_others_and_unknown_chats_are_none() {
    let (_db, s) = store();
    assert!(s.has_local_reads());
    let c = chat_with_a_turn(&s).await;
    assert_eq!(page(&s, &c).await.unwrap().map(|p| p.len()), Some(2));
    let not_owner = s
        .list_owned_active_branch(&user("mallory"), c.id(), None, 50)
        .await
        .unwrap();
    assert_eq!(not_owner, None);
    let unknown = chat("alice", "Never stored");
    assert_eq!(page(&s, &unknown).await.unwrap(), None);
    let empty = chat("alice", "Empty");
    s.insert_chat(&empty, &created(&empty)).await.unwrap();
    assert_eq!(page(&s, &empty).await.unwrap(), Some(vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_is_unavailable_then_recovers() {
    let db = TestDb::new();
    let mut proxy = Proxy::start(url_target(db.url())).await;
    let mut config = db.config();
    config.url = infra_postgres::DatabaseUrl::new(via(db.url(), proxy.addr()));
    config.connect_timeout = Duration::from_secs(2);
    let s = PgStore::new(&config).unwrap();
    assert!(s.has_local_reads());
    let c = chat_with_a_turn(&s).await;
    let before = page(&s, &c).await.unwrap();
    let found = search(&s, "hello").await.unwrap();
    assert_eq!(found.len(), 1, "the question");

    proxy.kill().await;
    let started = Instant::now();
    for _ in 0..3 {
        let r = tokio::time::timeout(NO_HANG, page(&s, &c))
            .await
            .expect("a cut connection must not hang");
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "got {r:?}");
        let r = tokio::time::timeout(NO_HANG, search(&s, "hello"))
            .await
            .expect("a cut connection must not hang");
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "got {r:?}");
    }
    assert!(started.elapsed() < NO_HANG);

    proxy.restore().await;
    assert_eq!(page(&s, &c).await.unwrap(), before);
    assert_eq!(search(&s, "hello").await.unwrap(), found);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_timeout_is_unavailable() {
    let db = TestDb::new();
    let mut config = db.config();
    config.statement_timeout = Duration::from_millis(600);
    let s = PgStore::new(&config).unwrap();
    let c = chat_with_a_turn(&s).await;
    page(&s, &c).await.unwrap();

    // Another session holds a lock every read of `messages` waits for.
    let mut other = db.connect();
    diesel::sql_query("BEGIN").execute(&mut other).unwrap();
    diesel::sql_query("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        .execute(&mut other)
        .unwrap();
    let started = Instant::now();
    let r = tokio::time::timeout(NO_HANG, page(&s, &c)).await.unwrap();
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "got {r:?}");
    let r = tokio::time::timeout(NO_HANG, search(&s, "hello"))
        .await
        .unwrap();
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "got {r:?}");
    assert!(started.elapsed() < NO_HANG);
    diesel::sql_query("ROLLBACK").execute(&mut other).unwrap();
    assert_eq!(page(&s, &c).await.unwrap().map(|p| p.len()), Some(2));
    assert_eq!(search(&s, "hello").await.unwrap().len(), 1);
}

#[test]
fn a_connection_whose_runtime_is_gone_is_replaced() {
    let (_db, s) = store();
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let first = runtime();
    let c = first.block_on(chat_with_a_turn(&s));
    let before = first.block_on(page(&s, &c)).unwrap();
    let found = first.block_on(search(&s, "hello")).unwrap();
    // The connections' tasks ran on `first`: they end with it, and this thread's
    // connections with them.
    drop(first);
    let second = runtime();
    assert_eq!(second.block_on(page(&s, &c)).unwrap(), before);
    assert_eq!(second.block_on(search(&s, "hello")).unwrap(), found);
    // The pool closes its connections on a runtime.
    second.block_on(async move { drop(s) });
}

#[tokio::test]
async fn the_read_connection_is_named_as_the_pool() {
    let db = TestDb::new();
    let s = PgStore::new(&db.config()).unwrap();
    let c = chat_with_a_turn(&s).await;
    page(&s, &c).await.unwrap();
    search(&s, "hello").await.unwrap();
    #[derive(QueryableByName)]
    struct Named {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let named: Named = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 \
         AND application_name = 'chat-service-test' AND pid <> pg_backend_pid()",
    )
    .bind::<diesel::sql_types::Text, _>(db.name())
    .get_result(&mut db.connect())
    .unwrap();
    // The pool's connection (the chat's writes) and the thread's two read connections
    // (branch pages, searches).
    assert_eq!(named.n, 3);
}
