//! The data ports beyond the shared contract: one retention sweeper at a time across
//! replicas (the advisory lock), and the text-search configuration rebuild.

use crate::support::{chat, created, turn, user};
use diesel::prelude::*;
use domain::model::Tweak;
use domain::model::{Chat, Event, EventKind, MessageQuery};
use domain::ports::{
    ChatRepository, MessageRepository, MessageSearch, MessageSearchRepository, RetentionRepository,
};
use infra_postgres::testing::TestDb;
use infra_postgres::PgStore;

fn deleted(c: &Chat, at: chrono::DateTime<chrono::Utc>) -> Event {
    Event::new(
        at,
        c.owner().clone(),
        c.id(),
        EventKind::ChatDeleted { chat_id: c.id() },
    )
}

#[tokio::test]
async fn retention_skips_while_another_replica_holds_the_job() {
    let db = TestDb::new();
    let store = db.store();
    let c = chat("alice", "old");
    store.insert_chat(&c, &created(&c)).await.unwrap();
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    // Another replica, mid-batch: it holds the job's lock in its transaction.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let mut other = db.connect();
    let holder = std::thread::spawn(move || {
        other
            .transaction::<_, diesel::result::Error, _>(|other| {
                diesel::sql_query("SELECT pg_advisory_xact_lock(x'72657461696e'::bigint)")
                    .execute(other)?;
                locked_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok(())
            })
            .unwrap();
    });
    locked_rx.recv().unwrap();
    let busy = store
        .delete_idle_chats(later, 10, later, deleted)
        .await
        .unwrap();
    assert!(busy.is_none(), "another sweeper holds the job");
    assert!(store.find_chat(c.id()).await.unwrap().is_some());
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    let done = store
        .delete_idle_chats(later, 10, later, deleted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.len(), 1);
}

/// The turn with its reply already complete (so the next turn may start).
fn finished(mut t: domain::ports::NewTurn) -> domain::ports::NewTurn {
    t.reply
        .tweak(|p| p.status = domain::model::MessageStatus::Complete);
    t
}

async fn search(store: &PgStore, q: &str) -> Vec<String> {
    store
        .search_messages(&MessageSearch {
            owner: user("alice"),
            chat_id: None,
            query: MessageQuery::parse(q).unwrap(),
            after: None,
            limit: 10,
            window: 100,
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.message.content().to_owned())
        .collect()
}

#[tokio::test]
async fn another_text_search_configuration_rebuilds_the_index_once() {
    let db = TestDb::new();
    let mut config = db.config();
    config.text_search_config = "english".into();
    let store = PgStore::new(&config).unwrap();
    let c = chat("alice", "Sport");
    store.insert_chat(&c, &created(&c)).await.unwrap();
    store
        .start_turn(&finished(turn(&c, 0, "She runs every morning")))
        .await
        .unwrap();
    assert!(
        search(&store, "running").await.is_empty(),
        "simple: no stemming"
    );
    assert!(store.apply_text_search_config().await.unwrap());
    assert!(!store.apply_text_search_config().await.unwrap(), "once");
    assert_eq!(search(&store, "running").await, ["She runs every morning"]);
    // New messages are indexed with it too.
    store
        .start_turn(&finished(turn(&c, 2, "Cats were running")))
        .await
        .unwrap();
    assert_eq!(search(&store, "run cat").await, ["Cats were running"]);
    let mut bad = db.config();
    bad.text_search_config = "klingon".into();
    assert!(PgStore::new(&bad)
        .unwrap()
        .apply_text_search_config()
        .await
        .is_err());
}
