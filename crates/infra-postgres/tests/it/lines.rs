//! The line paths (`message_lines`, migration `branch_lines`) equal a walk of the
//! parents (`sql/naive_lines.sql`) after every kind of write: turns and regenerations,
//! new roots, subtree deletions (which renumber), forks, concurrent sends on two
//! branches from two pools, chat deletion; the migration fills them for the trees
//! already stored, and its `down.sql` drops them and nothing else.

use crate::support::*;
use chrono::Duration;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Uuid as SqlUuid};
use diesel_migrations::MigrationHarness;
use domain::model::{Chat, ChatId, EventKind, MessageId, Tweak};
use domain::ports::{ChatRepository, MessageRepository, StoreError};
use infra_postgres::testing::TestDb;
use infra_postgres::{PgStore, MIGRATIONS};
use std::collections::HashMap;

const LINES: &str = "20261201000800";

#[derive(QueryableByName)]
struct Check {
    #[diesel(sql_type = BigInt)]
    lines: i64,
    #[diesel(sql_type = BigInt)]
    wrong: i64,
}

/// The number of lines of the chat, after checking that each has its row in
/// `message_lines`, equal to the walk's, and no other row is there.
pub(crate) fn checked_lines(conn: &mut PgConnection, chat: ChatId) -> i64 {
    let c: Check = diesel::sql_query(include_str!("sql/naive_lines.sql"))
        .bind::<SqlUuid, _>(chat.as_uuid())
        .get_result(conn)
        .unwrap();
    assert_eq!(c.wrong, 0, "paths that differ from the walk of the parents");
    if active_lines_table(conn).is_some() {
        checked_places(conn, chat);
    }
    c.lines
}

#[derive(QueryableByName)]
struct Places {
    #[diesel(sql_type = BigInt)]
    wrong_places: i64,
    #[diesel(sql_type = BigInt)]
    wrong_lines: i64,
}

/// Checks each message's stored place among its siblings and the chat's rows of
/// `chat_active_lines` (migration `branch_reads`) against the walk of the parents.
pub(crate) fn checked_places(conn: &mut PgConnection, chat: ChatId) {
    let c: Places = diesel::sql_query(include_str!("sql/naive_branch.sql"))
        .bind::<SqlUuid, _>(chat.as_uuid())
        .get_result(conn)
        .unwrap();
    assert_eq!(c.wrong_places, 0, "places among siblings that differ");
    assert_eq!(c.wrong_lines, 0, "active lines that differ from the walk");
}

pub(crate) fn active_lines_table(conn: &mut PgConnection) -> Option<String> {
    diesel::sql_query("SELECT to_regclass('chat_active_lines')::text AS name")
        .get_result::<Relation>(conn)
        .unwrap()
        .name
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn stored_paths(conn: &mut PgConnection, chat: ChatId) -> i64 {
    diesel::sql_query("SELECT count(*) AS n FROM message_lines WHERE chat_id = $1")
        .bind::<SqlUuid, _>(chat.as_uuid())
        .get_result::<Count>(conn)
        .unwrap()
        .n
}

pub(crate) async fn new_chat(s: &PgStore) -> Chat {
    let c = chat("alice", "Lines");
    s.insert_chat(&c, &created(&c)).await.unwrap();
    c
}

/// A user message after `parent` and a reply to it (never blocking the next turn),
/// retried while another writer moves the count; returns their ids.
pub(crate) async fn send(
    s: &PgStore,
    c: &Chat,
    parent: Option<MessageId>,
) -> (MessageId, MessageId) {
    loop {
        let n = s.find_chat(c.id()).await.unwrap().unwrap().message_count();
        let mut t = turn(c, n, "question");
        if let Some(u) = t.user_message.as_mut() {
            u.tweak(|p| p.parent_id = parent);
        }
        t.stale_before = now() + Duration::hours(1);
        match s.start_turn(&t).await {
            Ok(()) => return (t.user_message.unwrap().id(), t.reply.id()),
            Err(StoreError::Conflict) => continue,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}

/// Another reply to `question`, retried likewise; returns its id.
pub(crate) async fn regenerate(s: &PgStore, c: &Chat, question: MessageId) -> MessageId {
    loop {
        let n = s.find_chat(c.id()).await.unwrap().unwrap().message_count();
        let mut t = turn(c, n, "unused");
        t.user_message = None;
        t.reply.tweak(|p| {
            p.seq = n + 1;
            p.parent_id = Some(question);
        });
        t.events.truncate(1);
        t.stale_before = now() + Duration::hours(1);
        match s.start_turn(&t).await {
            Ok(()) => return t.reply.id(),
            Err(StoreError::Conflict) => continue,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}

/// `points` branch points from `at`: a question, its first reply continued by a turn,
/// the reply regenerated and one turn from the new one. Returns the regenerated
/// replies and the last reply.
pub(crate) async fn grow(
    s: &PgStore,
    c: &Chat,
    mut at: Option<MessageId>,
    points: usize,
) -> (Vec<MessageId>, Option<MessageId>) {
    let mut regenerated = vec![];
    for _ in 0..points {
        let (q, a) = send(s, c, at).await;
        send(s, c, Some(a)).await;
        let b = regenerate(s, c, q).await;
        regenerated.push(b);
        at = Some(send(s, c, Some(b)).await.1);
    }
    (regenerated, at)
}

pub(crate) async fn delete(s: &PgStore, c: &Chat, id: MessageId) {
    let target = s.find_message(id).await.unwrap().unwrap();
    let e = event(
        c,
        EventKind::MessageDeleted {
            message_id: id,
            seq: target.seq(),
        },
    );
    s.delete_message(&target, now() + Duration::hours(1), &e)
        .await
        .unwrap();
}

/// The branch root → `leaf` by walking the parents of the flat listing.
pub(crate) async fn walk(s: &PgStore, c: &Chat, leaf: MessageId) -> Vec<MessageId> {
    let all = s.list_messages(c.id(), None, 10_000).await.unwrap();
    let parent: HashMap<MessageId, Option<MessageId>> =
        all.iter().map(|m| (m.id(), m.parent_id())).collect();
    let mut path = vec![];
    let mut at = Some(leaf);
    while let Some(id) = at {
        path.push(id);
        at = parent[&id];
    }
    path.reverse();
    path
}

async fn branch(s: &PgStore, c: &Chat, leaf: MessageId) -> Vec<MessageId> {
    let listed = s.list_branch(c.id(), leaf, None, 10_000).await.unwrap();
    listed.iter().map(|m| m.id()).collect()
}

#[tokio::test]
async fn paths_follow_turns_roots_deletions_and_forks() {
    let (db, s) = store();
    let mut conn = db.connect();
    let c = new_chat(&s).await;
    let (regenerated, leaf) = grow(&s, &c, None, 5).await;
    // The root's line and one per regenerated reply.
    assert_eq!(checked_lines(&mut conn, c.id()), 6);
    assert_eq!(
        branch(&s, &c, leaf.unwrap()).await,
        walk(&s, &c, leaf.unwrap()).await
    );
    send(&s, &c, None).await;
    assert_eq!(checked_lines(&mut conn, c.id()), 7, "a second root");

    // The first reply of a branch point (its side branch, on the question's line):
    // the later `seq`s close up, every line stays.
    let question = s
        .find_message(regenerated[1])
        .await
        .unwrap()
        .unwrap()
        .parent_id();
    let replies = s.children(c.id(), question).await.unwrap();
    delete(&s, &c, replies[0]).await;
    assert_eq!(checked_lines(&mut conn, c.id()), 7);
    // A regenerated reply with two more branch points below it: three lines go.
    delete(&s, &c, regenerated[2]).await;
    assert_eq!(checked_lines(&mut conn, c.id()), 4);
    assert_eq!(stored_paths(&mut conn, c.id()), 4);
    // Branch points after the renumbering, from an old reply (its second child starts
    // a line, and so does each regeneration).
    let (_, leaf) = grow(&s, &c, Some(regenerated[1]), 2).await;
    assert_eq!(checked_lines(&mut conn, c.id()), 4 + 3);
    assert_eq!(
        branch(&s, &c, leaf.unwrap()).await,
        walk(&s, &c, leaf.unwrap()).await
    );

    // A fork: the branch copied as one chain, one line.
    let path = walk(&s, &c, leaf.unwrap()).await;
    let mut f = chat("alice", "Fork");
    let mut copies: Vec<domain::model::Message> = vec![];
    for (i, _) in path.iter().enumerate() {
        let role = if i % 2 == 0 {
            domain::model::Role::User
        } else {
            domain::model::Role::Assistant
        };
        let status = domain::model::MessageStatus::Complete;
        let mut m = domain::testing::message(f.id(), i as u32 + 1, role, status, "copy");
        m.tweak(|p| p.parent_id = copies.last().map(|p| p.id()));
        copies.push(m);
    }
    f.tweak(|p| {
        p.message_count = copies.len() as u32;
        p.active_leaf_id = copies.last().map(|m| m.id());
    });
    s.insert_chat_with_messages(&f, &copies, &[created(&f)])
        .await
        .unwrap();
    assert_eq!(checked_lines(&mut conn, f.id()), 1);
    grow(&s, &f, copies.last().map(|m| m.id()), 2).await;
    assert_eq!(checked_lines(&mut conn, f.id()), 3);

    // Deleting a chat (as erasure and retention do) takes its paths.
    s.delete_chat(f.id(), &created(&f)).await.unwrap();
    assert_eq!(stored_paths(&mut conn, f.id()), 0);
    assert_eq!(stored_paths(&mut conn, c.id()), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_branch_points_on_two_branches_from_two_pools() {
    let db = TestDb::new();
    let pools = [db.store(), db.store()];
    let c = new_chat(&pools[0]).await;
    let (q, left) = send(&pools[0], &c, None).await;
    let right = regenerate(&pools[0], &c, q).await;
    let tasks = [(0, left), (1, right)].map(|(w, start)| {
        let s = pools[w].clone();
        let c = c.clone();
        tokio::spawn(async move {
            let mut at = start;
            for _ in 0..6 {
                let (q, _) = send(&s, &c, Some(at)).await;
                at = regenerate(&s, &c, q).await;
            }
            at
        })
    });
    let mut leaves = vec![];
    for t in tasks {
        leaves.push(t.await.unwrap());
    }
    let mut conn = db.connect();
    // The root's line, the right reply's, and one per regeneration.
    assert_eq!(checked_lines(&mut conn, c.id()), 2 + 12);
    for leaf in leaves {
        let path = walk(&pools[1], &c, leaf).await;
        assert_eq!(path.len(), 2 + 12);
        assert_eq!(branch(&pools[1], &c, leaf).await, path);
    }
}

#[derive(QueryableByName)]
struct Relation {
    #[diesel(sql_type = Nullable<Text>)]
    name: Option<String>,
}

fn message_lines_table(conn: &mut PgConnection) -> Option<String> {
    diesel::sql_query("SELECT to_regclass('message_lines')::text AS name")
        .get_result::<Relation>(conn)
        .unwrap()
        .name
}

#[tokio::test]
async fn the_migration_fills_the_paths_of_stored_trees_and_down_drops_them() {
    let db = TestDb::empty();
    let mut conn = db.connect();
    migrate_until(&mut conn, LINES);
    // Trees stored before the migration (writes need no paths).
    let s = db.store();
    let c = new_chat(&s).await;
    let (regenerated, leaf) = grow(&s, &c, None, 4).await;
    let leaf = leaf.unwrap();
    let old_question = parent_of(&mut conn, regenerated[0]);
    let older = s.children(c.id(), old_question).await.unwrap()[0];
    let (_, side_leaf) = grow(&s, &c, Some(older), 2).await;
    let plain = new_chat(&s).await;
    send(&s, &plain, None).await;
    let total = s.find_chat(c.id()).await.unwrap().unwrap().message_count();

    conn.run_next_migration(MIGRATIONS).unwrap();
    // The root's line, one per regenerated reply, and the older reply's branch: its
    // first question (a second child) and two regenerated replies.
    assert_eq!(checked_lines(&mut conn, c.id()), 1 + 4 + 3);
    assert_eq!(checked_lines(&mut conn, plain.id()), 1);
    // The reads need the later migrations too (`branch_reads`).
    conn.run_pending_migrations(MIGRATIONS).unwrap();
    for l in [leaf, side_leaf.unwrap()] {
        assert_eq!(branch(&s, &c, l).await, walk(&s, &c, l).await);
    }
    // A branch point after the migration extends a filled path.
    let (_, after) = grow(&s, &c, Some(leaf), 1).await;
    assert_eq!(checked_lines(&mut conn, c.id()), 1 + 4 + 3 + 1);
    assert_eq!(
        branch(&s, &c, after.unwrap()).await,
        walk(&s, &c, after.unwrap()).await
    );

    // Down (past `branch_reads`): the paths go, every message stays; up again fills
    // them the same.
    while digits(&conn.revert_last_migration(MIGRATIONS).unwrap().to_string()) != LINES {}
    assert_eq!(message_lines_table(&mut conn), None);
    let kept = s.find_chat(c.id()).await.unwrap().unwrap().message_count();
    assert_eq!(kept, total + 7);
    assert_eq!(
        s.list_messages(c.id(), None, 10_000).await.unwrap().len(),
        kept as usize
    );
    conn.run_pending_migrations(MIGRATIONS).unwrap();
    assert_eq!(checked_lines(&mut conn, c.id()), 1 + 4 + 3 + 1);
}

/// The parent of message `id`, read straight from the table (the service's reads may
/// need later migrations).
pub(crate) fn parent_of(conn: &mut PgConnection, id: MessageId) -> Option<MessageId> {
    #[derive(QueryableByName)]
    struct Parent {
        #[diesel(sql_type = Nullable<SqlUuid>)]
        parent_id: Option<uuid::Uuid>,
    }
    diesel::sql_query("SELECT parent_id FROM messages WHERE id = $1")
        .bind::<SqlUuid, _>(id.as_uuid())
        .get_result::<Parent>(conn)
        .unwrap()
        .parent_id
        .map(MessageId::from_uuid)
}

/// A chat of `points` branch points in one statement: question k (`seq` 3k + 1), its
/// first reply (3k + 2, a leaf) and a regenerated reply (3k + 3) that the next question
/// follows; ids `md5(chat || seq)`. The root's line and one per regenerated reply.
fn insert_branch_points(conn: &mut PgConnection, c: &Chat, points: i32) {
    diesel::sql_query(
        "INSERT INTO messages (id, chat_id, seq, parent_id, role, content, status, created_at, updated_at) \
         SELECT md5($1::text || s)::uuid, $1, s, \
                md5($1::text || CASE s % 3 WHEN 1 THEN NULLIF(s - 1, 0) WHEN 2 THEN s - 1 ELSE s - 2 END)::uuid, \
                CASE s % 3 WHEN 1 THEN 'user' ELSE 'assistant' END, 'message ' || s, 'complete', now(), now() \
           FROM generate_series(1, 3 * $2) AS s ORDER BY s",
    )
    .bind::<SqlUuid, _>(c.id().as_uuid())
    .bind::<diesel::sql_types::Integer, _>(points)
    .execute(conn)
    .unwrap();
    diesel::sql_query(
        "UPDATE chats SET message_count = 3 * $2, active_leaf_id = md5($1::text || 3 * $2)::uuid \
         WHERE id = $1",
    )
    .bind::<SqlUuid, _>(c.id().as_uuid())
    .bind::<diesel::sql_types::Integer, _>(points)
    .execute(conn)
    .unwrap();
}

/// The page after every cursor (limits 1, 5 and 21) and the history of every length
/// up to the whole branch, for the branch through `leaf`, against the walk; when `leaf`
/// is the active leaf, the pages of the active branch too.
pub(crate) async fn check_reads(s: &PgStore, c: &Chat, leaf: MessageId) {
    assert!(
        s.has_local_reads(),
        "the test store reads the page on its own thread"
    );
    let all = s.list_messages(c.id(), None, 10_000).await.unwrap();
    let seq: HashMap<MessageId, u32> = all.iter().map(|m| (m.id(), m.seq())).collect();
    let path = walk(s, c, leaf).await;
    let chat = s.find_chat(c.id()).await.unwrap().unwrap();
    let active = chat.active_leaf_id() == Some(leaf);
    for after in 0..=all.len() as u32 + 1 {
        for limit in [1, 5, 21] {
            let cursor = domain::model::MessageCursor { seq: after };
            let page = s
                .list_branch(c.id(), leaf, Some(cursor), limit as u32)
                .await
                .unwrap();
            let want: Vec<MessageId> = path
                .iter()
                .copied()
                .filter(|id| seq[id] > after)
                .take(limit)
                .collect();
            let got: Vec<MessageId> = page.iter().map(|m| m.id()).collect();
            assert_eq!(got, want, "after {after}, limit {limit}");
            if active {
                let page = s
                    .list_owned_active_branch(c.owner(), c.id(), Some(cursor), limit as u32)
                    .await
                    .unwrap()
                    .unwrap();
                let got: Vec<MessageId> = page.iter().map(|m| m.id()).collect();
                assert_eq!(got, want, "active branch, after {after}, limit {limit}");
                // The same page from the pool, as under a TLS sslmode: same messages,
                // same `branch` on each.
                let pooled = s
                    .without_local_reads()
                    .list_owned_active_branch(c.owner(), c.id(), Some(cursor), limit as u32)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(pooled, page, "pool and local reads, after {after}");
            }
        }
    }
    let back: Vec<MessageId> = path.iter().rev().copied().collect();
    for limit in (1..=path.len() + 1).step_by(7) {
        let history = s.branch_history(c.id(), leaf, limit as u32).await.unwrap();
        let got: Vec<MessageId> = history.iter().map(|m| m.id()).collect();
        assert_eq!(got, back[..limit.min(back.len())], "history, limit {limit}");
    }
}

#[tokio::test]
async fn a_branch_through_150_branch_points_reads_across_three_rows() {
    let (db, s) = store();
    let mut conn = db.connect();
    let c = new_chat(&s).await;
    insert_branch_points(&mut conn, &c, 150);
    // Levels 0..=150: rows of 64, 64 and 23 lines on the active branch.
    assert_eq!(checked_lines(&mut conn, c.id()), 151);
    let mut id = |s: i32| MessageId::from_uuid(uuid_of(&mut conn, &c, s));
    let (leaf, side_early, side_late) = (id(450), id(3 * 10 + 2), id(3 * 100 + 2));
    let (side_70, regenerated_140) = (id(3 * 70 + 2), id(3 * 140 + 3));
    for l in [leaf, side_early, side_late] {
        check_reads(&s, &c, l).await;
    }
    // A leaf in the second row's range goes (every later `seq` closes up); then a
    // regenerated reply in the third row with the lines below it.
    delete(&s, &c, side_70).await;
    assert_eq!(checked_lines(&mut conn, c.id()), 151);
    delete(&s, &c, regenerated_140).await;
    assert_eq!(checked_lines(&mut conn, c.id()), 141);
    let leaf = s
        .find_chat(c.id())
        .await
        .unwrap()
        .unwrap()
        .active_leaf_id()
        .unwrap();
    check_reads(&s, &c, leaf).await;
    // New branch points from there.
    let (_, leaf) = grow(&s, &c, Some(leaf), 2).await;
    assert_eq!(checked_lines(&mut conn, c.id()), 143);
    check_reads(&s, &c, leaf.unwrap()).await;
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
}

fn uuid_of(conn: &mut PgConnection, c: &Chat, seq: i32) -> uuid::Uuid {
    diesel::sql_query("SELECT id FROM messages WHERE chat_id = $1 AND seq = $2")
        .bind::<SqlUuid, _>(c.id().as_uuid())
        .bind::<diesel::sql_types::Integer, _>(seq)
        .get_result::<Id>(conn)
        .unwrap()
        .id
}
