//! Messages: the turn's all-or-nothing behaviour with its events, renumbering on delete,
//! and the chat's activity time.

use crate::support::*;
use chrono::Duration;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use domain::model::Tweak;
use domain::model::{Chat, EventKind, MessageStatus};
use domain::ports::{ChatRepository, MessageRepository, StoreError};
use infra_postgres::testing::TestDb;
use infra_postgres::PgStore;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn outbox_len(db: &TestDb) -> i64 {
    diesel::sql_query("SELECT count(*) AS n FROM outbox")
        .get_result::<Count>(&mut db.connect())
        .unwrap()
        .n
}

async fn chat_with_turns(s: &PgStore, turns: u32) -> Chat {
    let c = chat("alice", "Messages");
    s.insert_chat(&c, &created(&c)).await.unwrap();
    for i in 0..turns {
        answered(s, &c, i * 2, &format!("q{i}"), &format!("a{i}")).await;
    }
    s.find_chat(c.id()).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_refused_turn_stores_nothing_not_even_events() {
    let (db, s) = store();
    let c = chat("alice", "Busy");
    s.insert_chat(&c, &created(&c)).await.unwrap();
    s.start_turn(&turn(&c, 0, "first")).await.unwrap();
    assert_eq!(outbox_len(&db), 3);
    let second = turn(&c, 2, "second");
    assert!(matches!(
        s.start_turn(&second).await,
        Err(StoreError::ChatBusy)
    ));
    let stale = turn(&c, 0, "stale count");
    assert!(matches!(
        s.start_turn(&stale).await,
        Err(StoreError::ChatBusy)
    ));
    assert_eq!(outbox_len(&db), 3);
    let msgs = s.list_messages(c.id(), None, 10).await.unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(s.find_message(second.reply.id()).await.unwrap(), None);
}

#[tokio::test]
async fn turn_with_wrong_seqs_is_refused_as_a_bug() {
    let (_db, s) = store();
    let c = chat("alice", "Seqs");
    s.insert_chat(&c, &created(&c)).await.unwrap();
    let mut t = turn(&c, 0, "x");
    t.reply.tweak(|p| p.seq = 5);
    assert!(matches!(
        s.start_turn(&t).await,
        Err(StoreError::Unknown(_))
    ));
}

#[tokio::test]
async fn deleting_the_first_of_many_renumbers_all_and_counts_down() {
    let (db, s) = store();
    let c = chat_with_turns(&s, 6).await;
    assert_eq!(c.message_count(), 12);
    let before = outbox_len(&db);
    let first = s.list_messages(c.id(), None, 1).await.unwrap().remove(0);
    let e = event(
        &c,
        EventKind::MessageDeleted {
            message_id: first.id(),
            seq: 1,
        },
    );
    s.delete_message(&first, now() - Duration::minutes(10), &e)
        .await
        .unwrap();
    // The first question is a root with its reply below it: both go.
    let left = s.list_messages(c.id(), None, 100).await.unwrap();
    assert_eq!(
        left.iter().map(|m| m.seq()).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(left[0].content(), "q1");
    let chat = s.find_chat(c.id()).await.unwrap().unwrap();
    assert_eq!(chat.message_count(), 10);
    assert!(chat.updated_at() >= c.updated_at());
    assert_eq!(outbox_len(&db), before + 1);
}

#[tokio::test]
async fn delete_uses_the_stored_position_of_a_moved_message() {
    let (_db, s) = store();
    let c = chat_with_turns(&s, 3).await;
    let all = s.list_messages(c.id(), None, 10).await.unwrap();
    let stale_copy = all[5].clone(); // a reply (a leaf): seq 6, about to become 5
    let e = |m: &domain::model::Message| {
        event(
            &c,
            EventKind::MessageDeleted {
                message_id: m.id(),
                seq: m.seq(),
            },
        )
    };
    let cutoff = now() - Duration::minutes(10);
    s.delete_message(&all[1], cutoff, &e(&all[1]))
        .await
        .unwrap();
    s.delete_message(&stale_copy, cutoff, &e(&stale_copy))
        .await
        .unwrap();
    let left = s.list_messages(c.id(), None, 10).await.unwrap();
    let ids: Vec<_> = left.iter().map(|m| m.id()).collect();
    assert_eq!(ids, [all[0].id(), all[2].id(), all[3].id(), all[4].id()]);
    assert_eq!(
        left.iter().map(|m| m.seq()).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
}

#[tokio::test]
async fn finishing_a_reply_moves_chat_activity_forward() {
    let (_db, s) = store();
    let c = chat("alice", "Activity");
    s.insert_chat(&c, &created(&c)).await.unwrap();
    let t = turn(&c, 0, "q");
    s.start_turn(&t).await.unwrap();
    let mut r = t.reply.clone();
    r.tweak(|p| p.status = MessageStatus::Complete);
    r.tweak(|p| {
        p.usage = Some(domain::model::Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
        })
    });
    r.tweak(|p| p.updated_at = t.now + Duration::seconds(5));
    let done = event(
        &c,
        EventKind::MessageCompleted {
            message: r.clone(),
            latency_ms: 5,
        },
    );
    assert!(s.finish_reply(&r, &done, None).await.unwrap());
    assert_eq!(s.find_message(r.id()).await.unwrap(), Some(r.clone()));
    let chat = s.find_chat(c.id()).await.unwrap().unwrap();
    assert_eq!(chat.updated_at(), r.updated_at());
    // A chat never moves back in time.
    let mut older = r.clone();
    older.tweak(|p| {
        p.content = "edited".into();
        p.updated_at = t.now;
    });
    let edit = event(&c, EventKind::MessageUpdated(older.clone()));
    s.update_message(&older, &edit).await.unwrap();
    let chat = s.find_chat(c.id()).await.unwrap().unwrap();
    assert_eq!(chat.updated_at(), r.updated_at());
}

/// `UNIQUE (chat_id, seq)` is checked row by row in the order rows are visited, and
/// edits and earlier renumberings leave the rows in any physical order: repeated
/// deletions must still renumber cleanly.
#[tokio::test]
async fn repeated_deletes_after_edits_keep_seq_gapless() {
    let (_db, s) = store();
    let c = chat_with_turns(&s, 5).await;
    let mut all = s.list_messages(c.id(), None, 100).await.unwrap();
    for m in all.iter_mut().rev() {
        m.tweak(|p| {
            p.content = format!("edited {}", p.seq);
            p.updated_at = now();
        });
        let e = event(&c, EventKind::MessageUpdated(m.clone()));
        s.update_message(m, &e).await.unwrap();
    }
    let cutoff = now() - Duration::minutes(10);
    let mut expected: Vec<_> = all.iter().map(|m| m.id()).collect();
    // Replies are leaves here, so each delete takes exactly one message.
    for position in [0, 2, 0, 1] {
        let current = s.list_messages(c.id(), None, 100).await.unwrap();
        let replies: Vec<_> = current
            .iter()
            .filter(|m| m.role() == domain::model::Role::Assistant)
            .collect();
        let victim = replies[position].clone();
        let e = event(
            &c,
            EventKind::MessageDeleted {
                message_id: victim.id(),
                seq: victim.seq(),
            },
        );
        s.delete_message(&victim, cutoff, &e).await.unwrap();
        expected.retain(|id| *id != victim.id());
        let left = s.list_messages(c.id(), None, 100).await.unwrap();
        assert_eq!(left.iter().map(|m| m.id()).collect::<Vec<_>>(), expected);
        let n = u32::try_from(expected.len()).unwrap();
        assert_eq!(
            left.iter().map(|m| m.seq()).collect::<Vec<_>>(),
            (1..=n).collect::<Vec<_>>()
        );
    }
    assert_eq!(
        s.find_chat(c.id()).await.unwrap().unwrap().message_count(),
        6
    );
}
