//! The word index of message search (`message_terms`): in step with `messages` after
//! every kind of write and after the migration that creates it, and answering a
//! search for words exactly as the scan does.

use crate::support::*;
use chrono::Duration;
use diesel::prelude::*;
use domain::model::{EventKind, MessageQuery, Tweak};
use domain::ports::{ChatRepository, MessageRepository, MessageSearch, MessageSearchRepository};
use infra_postgres::testing::TestDb;
use infra_postgres::PgStore;

/// The word index's rows that differ from what `messages` implies (either way), and
/// its size.
fn stale_and_size(conn: &mut PgConnection) -> (i64, i64) {
    let stale = count(
        conn,
        "WITH derived AS (SELECT m.owner, u.lexeme, m.created_at, m.id AS message_id, \
                coalesce(array_length(u.positions, 1), 0) AS n \
              FROM messages m, unnest(m.content_tsv) u), \
              stored AS (SELECT owner, lexeme, created_at, message_id, n FROM message_terms) \
         SELECT count(*) AS n FROM ((SELECT * FROM derived EXCEPT ALL SELECT * FROM stored) \
           UNION ALL (SELECT * FROM stored EXCEPT ALL SELECT * FROM derived)) x",
    );
    (
        stale,
        count(conn, "SELECT count(*) AS n FROM message_terms"),
    )
}

#[tokio::test]
async fn the_word_index_follows_every_write() {
    let (db, s) = store();
    let conn = &mut db.connect();
    let c = chat("alice", "Words");
    s.insert_chat(&c, &created(&c)).await.unwrap();
    let first = answered(&s, &c, 0, "Lisbon food", "Try the pastel de nata, twice").await;
    let (stale, size) = stale_and_size(conn);
    assert_eq!(stale, 0, "after a turn and its reply");
    assert!(size >= 8, "both messages' words: {size}");
    answered(&s, &c, 2, "And Porto?", "Francesinha").await;
    assert_eq!(stale_and_size(conn).0, 0, "after a second turn");
    // An edit replaces the words.
    let mut edited = first.clone();
    edited.tweak(|p| {
        p.content = "Try the bacalhau".into();
        p.updated_at = now();
    });
    let e = event(&c, EventKind::MessageUpdated(edited.clone()));
    s.update_message(&edited, &e).await.unwrap();
    assert_eq!(stale_and_size(conn).0, 0, "after an edit");
    // Deleting the first question takes its subtree, renumbering the rest.
    let question = s
        .list_messages(c.id(), None, 10)
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let e = event(
        &c,
        EventKind::MessageDeleted {
            message_id: question.id(),
            seq: 1,
        },
    );
    s.delete_message(&question, now() - Duration::minutes(10), &e)
        .await
        .unwrap();
    assert_eq!(stale_and_size(conn).0, 0, "after deleting a subtree");
    // Another user's words stay when alice's chat goes.
    let other = chat("bob", "Other");
    s.insert_chat(&other, &created(&other)).await.unwrap();
    answered(&s, &other, 0, "lisbon", "nata").await;
    let e = event(&c, EventKind::ChatDeleted { chat_id: c.id() });
    s.delete_chat(c.id(), &e).await.unwrap();
    let (stale, size) = stale_and_size(conn);
    assert_eq!(stale, 0, "after deleting a chat");
    assert_eq!(
        count(
            conn,
            "SELECT count(*) AS n FROM message_terms WHERE owner = 'alice'"
        ),
        0
    );
    assert!(size > 0, "bob's words remain");
}

#[tokio::test]
async fn the_migration_fills_the_word_index_from_stored_messages() {
    let db = TestDb::empty();
    let conn = &mut db.connect();
    migrate_until(conn, "20261201001000");
    let s = db.store();
    let c = chat("alice", "Old");
    s.insert_chat(&c, &created(&c)).await.unwrap();
    answered(&s, &c, 0, "Lisbon food", "pastel nata nata").await;
    {
        use diesel_migrations::MigrationHarness;
        conn.run_pending_migrations(infra_postgres::MIGRATIONS)
            .unwrap();
    }
    let (stale, size) = stale_and_size(conn);
    assert_eq!((stale, size), (0, 4), "two lexemes in each message");
    let nata = "SELECT sum(n) AS n FROM message_terms WHERE lexeme = 'nata'";
    assert_eq!(count(conn, nata), 2, "a lexeme's positions");
}

/// The ids of alice's newest 100 matches of `q` that one page of `limit` 100 returns, in
/// rank order.
async fn ranked(s: &PgStore, q: &str) -> Vec<String> {
    s.search_messages(&MessageSearch {
        window: 100,
        limit: 100,
        ..alice_search(q)
    })
    .await
    .unwrap()
    .iter()
    .map(|h| format!("{}:{}", h.relevance, h.message.content()))
    .collect()
}

/// A search for words is answered from the word index, any other query by the scan:
/// both give the same hits in the same order, with the same relevance, for words at
/// every frequency and words repeated within a message, on the request's thread and on
/// the pool. (`-nowhere` excludes a word no message holds: the same matches and
/// relevance, but not a query of words only.)
#[tokio::test]
async fn the_word_index_answers_as_the_scan_does() {
    let db = TestDb::new();
    let local = db.store();
    let pooled = local.without_local_reads();
    let c = chat("alice", "Mixed");
    local.insert_chat(&c, &created(&c)).await.unwrap();
    diesel::sql_query(
        "INSERT INTO messages (id, chat_id, seq, role, content, status, created_at, updated_at, depth, line_id) \
         SELECT gen_random_uuid(), $1, s, 'user', \
                'n' || s \
                || CASE WHEN s % 2 = 0 THEN ' common' ELSE '' END \
                || CASE WHEN s % 7 = 0 THEN ' mid mid' ELSE '' END \
                || CASE WHEN s % 90 = 0 THEN ' rare' ELSE '' END, \
                'complete', now() - (2001 - s) * interval '1 ms', now(), 1, gen_random_uuid() \
         FROM generate_series(1, 2000) s",
    )
    .bind::<diesel::sql_types::Uuid, _>(c.id().as_uuid())
    .execute(&mut db.connect())
    .unwrap();
    for words in [
        "common",
        "mid",
        "rare",
        "common mid",
        "mid common rare",
        "absent",
        "common absent",
    ] {
        assert!(MessageQuery::parse(words).unwrap().words_only());
        for s in [&local, &pooled] {
            let by_words = ranked(s, words).await;
            let by_scan = ranked(s, &format!("{words} -nowhere")).await;
            assert_eq!(by_words, by_scan, "{words}");
            let expected = match words {
                "common" | "mid" | "common mid" => 100,
                "rare" => 22,
                "mid common rare" => 3,
                _ => 0,
            };
            assert_eq!(by_words.len(), expected, "{words}");
        }
    }
    // It is the word index that answers a search for words: with `rare`'s rows taken
    // out of it, the scan still finds those messages and the search for words does not.
    // Nine words are more than its statement takes: the scan answers them.
    let conn = &mut db.connect();
    diesel::sql_query(
        "INSERT INTO messages (id, chat_id, seq, role, content, status, created_at, updated_at, depth, line_id) \
         VALUES (gen_random_uuid(), $1, 2001, 'user', 'w1 w2 w3 w4 w5 w6 w7 w8 w9', 'complete', \
                 now(), now(), 1, gen_random_uuid())",
    )
    .bind::<diesel::sql_types::Uuid, _>(c.id().as_uuid())
    .execute(conn)
    .unwrap();
    diesel::sql_query("DELETE FROM message_terms WHERE lexeme IN ('rare', 'w1')")
        .execute(conn)
        .unwrap();
    for s in [&local, &pooled] {
        assert!(ranked(s, "rare").await.is_empty());
        assert_eq!(ranked(s, "rare -nowhere").await.len(), 22);
        assert!(ranked(s, "w1 w2 w3 w4 w5 w6 w7 w8").await.is_empty());
        assert_eq!(ranked(s, "w1 w2 w3 w4 w5 w6 w7 w8 w9").await.len(), 1);
    }
}

/// The largest row the word index can get — the longest owner (255 bytes) and the
/// longest word a `tsvector` keeps (2,047 bytes, letters and digits that do not
/// compress) — is stored and found: a send never fails on the index's row size.
#[tokio::test]
async fn the_longest_word_of_the_longest_owner_is_indexed() {
    let (db, s) = store();
    let owner = "o".repeat(255);
    let c = chat(&owner, "Long");
    s.insert_chat(&c, &created(&c)).await.unwrap();
    let alphabet: Vec<char> = ('a'..='z').chain('0'..='9').collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let word: String = (0..2047)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            alphabet[(x >> 33) as usize % alphabet.len()]
        })
        .collect();
    answered(&s, &c, 0, &format!("see {word}"), "ok").await;
    assert_eq!(stale_and_size(&mut db.connect()).0, 0);
    let hits = s
        .search_messages(&MessageSearch {
            owner: c.owner().clone(),
            ..alice_search(&word[..200])
        })
        .await;
    // A query holds at most 200 characters, so it can only name a prefix of the word:
    // whole words only, no hit (and no error).
    assert!(hits.unwrap().is_empty());
    let lexeme = format!(
        "SELECT count(*) AS n FROM message_terms WHERE lexeme = '{word}' AND owner = '{owner}'"
    );
    assert_eq!(count(&mut db.connect(), &lexeme), 1);
}
