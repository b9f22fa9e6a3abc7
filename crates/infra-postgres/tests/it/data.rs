//! The data ports beyond the shared contract: one retention sweeper at a time across
//! replicas (the advisory lock), and the text-search configuration rebuild.

use crate::support::{alice_search, chat, created, turn, user};
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
        .search_messages(&alice_search(q))
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

/// Which of the 12,000 seeded messages (`s` = 1 oldest .. 12,000 newest) hold `word`.
fn holds(word: &str, s: i64) -> bool {
    match word {
        "common" => s % 3 == 0,
        "mid" => s % 80 == 0,
        "deep" => s % 150 == 0,
        "sparse" => s % 400 == 0,
        "ancient" => s <= 50,
        _ => false,
    }
}

/// One chat of 12,000 messages (more than the scans' budget), each word at its own
/// density, so that every search plan runs: the first scan alone (`common`), the scan
/// continued (`mid`), the scan then the GIN index past its budget (`deep`), the GIN
/// index at once (`sparse`, `ancient`, `absent`). Each finds exactly the newest 100
/// matches (all of them when fewer), newest first (equal relevance), in the user's
/// scope and in the chat's, and pages join up — read on the request's thread
/// (`local_reads`) and on the pool alike, from the word index and by the scan.
#[tokio::test]
async fn search_past_the_scan_budget_finds_the_newest_window() {
    let db = TestDb::new();
    let local = db.store();
    assert!(local.has_local_reads());
    let pooled = local.without_local_reads();
    let store = &local;
    let c = chat("alice", "Long");
    store.insert_chat(&c, &created(&c)).await.unwrap();
    diesel::sql_query(
        "INSERT INTO messages (id, chat_id, seq, role, content, status, created_at, updated_at, depth, line_id) \
         SELECT gen_random_uuid(), $1, s, 'user', \
                'message ' || s \
                || CASE WHEN s % 3 = 0 THEN ' common' ELSE '' END \
                || CASE WHEN s % 80 = 0 THEN ' mid' ELSE '' END \
                || CASE WHEN s % 150 = 0 THEN ' deep' ELSE '' END \
                || CASE WHEN s % 400 = 0 THEN ' sparse' ELSE '' END \
                || CASE WHEN s <= 50 THEN ' ancient' ELSE '' END, \
                'complete', now() - (12001 - s) * interval '1 ms', now(), 1, gen_random_uuid() \
         FROM generate_series(1, 12000) s",
    )
    .bind::<diesel::sql_types::Uuid, _>(c.id().as_uuid())
    .execute(&mut db.connect())
    .unwrap();
    for word in ["common", "mid", "deep", "sparse", "ancient", "absent"] {
        let expected: Vec<String> = (1..=12_000)
            .rev()
            .filter(|&s| holds(word, s))
            .take(100)
            .map(|s| s.to_string())
            .collect();
        // A word alone is answered from the word index in the user's scope; with an
        // exclusion no message matches, by the scan (and in the chat's scope, always).
        let queries = [word.to_owned(), format!("{word} -nowhere")];
        for (chat_id, store, q) in [None, Some(c.id())]
            .into_iter()
            .flat_map(|c| [(c, &local), (c, &pooled)])
            .flat_map(|(c, s)| queries.iter().map(move |q| (c, s, q)))
        {
            let mut got = Vec::new();
            let mut after = None;
            loop {
                let page = store
                    .search_messages(&MessageSearch {
                        owner: user("alice"),
                        chat_id,
                        query: MessageQuery::parse(q).unwrap(),
                        after,
                        limit: 30,
                        window: 100,
                    })
                    .await
                    .unwrap();
                let Some(last) = page.last() else { break };
                after = Some(domain::model::MessageSearchCursor::after(last));
                got.extend(page.iter().map(|r| {
                    r.message.content()["message ".len()..]
                        .split(' ')
                        .next()
                        .unwrap()
                        .to_owned()
                }));
            }
            let how = if store.has_local_reads() {
                "local"
            } else {
                "pool"
            };
            assert_eq!(got, expected, "{q}, chat {chat_id:?}, {how}");
        }
    }
}
