//! The migration `conversation_trees` on a database filled with the old, flat layout:
//! every message is kept; a reply following another reply (a regenerated one) becomes
//! its sibling; the active leaf is the last message; the tree reads work on the result
//! (with the later migrations); and `down.sql` gives the flat layout back with every
//! message.

use diesel::prelude::*;
use diesel::sql_types::{Integer, Nullable, Text, Uuid as SqlUuid};
use diesel_migrations::MigrationHarness;
use domain::model::{ChatId, MessageId};
use domain::ports::{ChatRepository, MessageRepository};
use infra_postgres::testing::TestDb;
use infra_postgres::{migration_status, MIGRATIONS};
use uuid::Uuid;

const TREES: &str = "20261201000500";

/// Applies the migrations before `conversation_trees`.
fn migrate_to_flat(conn: &mut PgConnection) {
    crate::support::migrate_until(conn, TREES);
}

fn id(n: u32) -> Uuid {
    // UUIDv7-shaped, ordered by n.
    Uuid::parse_str(&format!("01900000-0000-7000-8000-{n:012}")).unwrap()
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Row {
    #[diesel(sql_type = Integer)]
    seq: i32,
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    parent_id: Option<Uuid>,
}

#[derive(QueryableByName)]
struct Leaf {
    #[diesel(sql_type = Nullable<SqlUuid>)]
    active_leaf_id: Option<Uuid>,
}

/// Old chats: `roles` in `seq` order (`u` user, `a` assistant), message ids `base + seq`.
fn insert_flat_chat(conn: &mut PgConnection, chat: Uuid, base: u32, roles: &str) {
    diesel::sql_query(
        "INSERT INTO chats (id, owner, title, settings, message_count, created_at, updated_at) \
         VALUES ($1, 'alice', 'old', '{}', $2, now(), now())",
    )
    .bind::<SqlUuid, _>(chat)
    .bind::<Integer, _>(roles.len() as i32)
    .execute(conn)
    .unwrap();
    for (i, r) in roles.chars().enumerate() {
        let seq = i as u32 + 1;
        let role = if r == 'u' { "user" } else { "assistant" };
        diesel::sql_query(
            "INSERT INTO messages (id, chat_id, seq, role, content, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'complete', now(), now())",
        )
        .bind::<SqlUuid, _>(id(base + seq))
        .bind::<SqlUuid, _>(chat)
        .bind::<Integer, _>(seq as i32)
        .bind::<Text, _>(role)
        .bind::<Text, _>(format!("{role} {seq}"))
        .execute(conn)
        .unwrap();
    }
}

fn rows(conn: &mut PgConnection, chat: Uuid) -> Vec<Row> {
    diesel::sql_query("SELECT seq, role, parent_id FROM messages WHERE chat_id = $1 ORDER BY seq")
        .bind::<SqlUuid, _>(chat)
        .load(conn)
        .unwrap()
}

#[tokio::test]
async fn old_flat_chats_become_trees_with_every_message_kept() {
    let db = TestDb::empty();
    let mut conn = db.connect();
    migrate_to_flat(&mut conn);
    let (regenerated, plain, empty) = (
        Uuid::parse_str("01900000-0000-7000-8000-aaaaaaaaaaaa").unwrap(),
        Uuid::parse_str("01900000-0000-7000-8000-bbbbbbbbbbbb").unwrap(),
        Uuid::parse_str("01900000-0000-7000-8000-cccccccccccc").unwrap(),
    );
    // u1 a2 a3 a4 (two regenerations) u5 a6 a7 (one) u8 a9
    insert_flat_chat(&mut conn, regenerated, 0, "uaaauaaua");
    insert_flat_chat(&mut conn, plain, 100, "uaua");
    insert_flat_chat(&mut conn, empty, 200, "");

    conn.run_next_migration(MIGRATIONS).unwrap();

    let parents: Vec<Option<Uuid>> = rows(&mut conn, regenerated)
        .iter()
        .map(|r| r.parent_id)
        .collect();
    // Replies after replies are siblings (parent: the user message before the run);
    // everything else follows the message before it.
    let p = |n| Some(id(n));
    assert_eq!(
        parents,
        [None, p(1), p(1), p(1), p(4), p(5), p(5), p(7), p(8)]
    );
    let plain_parents: Vec<Option<Uuid>> =
        rows(&mut conn, plain).iter().map(|r| r.parent_id).collect();
    assert_eq!(
        plain_parents,
        [None, Some(id(101)), Some(id(102)), Some(id(103))]
    );
    let leaf = |conn: &mut PgConnection, chat: Uuid| {
        diesel::sql_query("SELECT active_leaf_id FROM chats WHERE id = $1")
            .bind::<SqlUuid, _>(chat)
            .get_result::<Leaf>(conn)
            .unwrap()
            .active_leaf_id
    };
    assert_eq!(leaf(&mut conn, regenerated), Some(id(9)));
    assert_eq!(leaf(&mut conn, plain), Some(id(104)));
    assert_eq!(leaf(&mut conn, empty), None);

    // The tree reads work on migrated data (with the later migrations: the branch
    // reads need the line paths of `branch_lines`, filled from these trees): the active
    // branch skips the older replies.
    conn.run_pending_migrations(MIGRATIONS).unwrap();
    let store = db.store();
    let chat = ChatId::from_uuid(regenerated);
    let branch = store
        .list_branch(chat, MessageId::from_uuid(id(9)), None, 100)
        .await
        .unwrap();
    let seqs: Vec<u32> = branch.iter().map(|m| m.seq()).collect();
    assert_eq!(seqs, [1, 4, 5, 7, 8, 9]);
    let a3 = store
        .find_message(MessageId::from_uuid(id(3)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a3.branch().index, a3.branch().count), (2, 3));
    let through_a2 = store
        .list_branch(chat, MessageId::from_uuid(id(2)), None, 100)
        .await
        .unwrap();
    assert_eq!(
        through_a2.len(),
        2,
        "an older reply is a leaf of its own branch"
    );

    // A send after migration continues the active branch (the trigger reads the
    // migrated lines), and the prompt history is that branch.
    let stored = store.find_chat(chat).await.unwrap().unwrap();
    let t = domain::testing::turn(&stored, 9, "after the migration");
    store.start_turn(&t).await.unwrap();
    let branch = store
        .list_branch(chat, t.reply.id(), None, 100)
        .await
        .unwrap();
    let seqs: Vec<u32> = branch.iter().map(|m| m.seq()).collect();
    assert_eq!(seqs, [1, 4, 5, 7, 8, 9, 10, 11]);
    let history = store.branch_history(chat, t.reply.id(), 100).await.unwrap();
    assert_eq!(history.len(), 8);

    // Down (the later migrations first): flat again, every message kept in `seq` order.
    while migration_status(&mut conn)
        .unwrap()
        .applied
        .iter()
        .any(|v| crate::support::digits(v).as_str() >= TREES)
    {
        conn.revert_last_migration(MIGRATIONS).unwrap();
    }
    let flat: Vec<(i32, String)> = diesel::sql_query(
        "SELECT seq, role, NULL::uuid AS parent_id FROM messages WHERE chat_id = $1 ORDER BY seq",
    )
    .bind::<SqlUuid, _>(regenerated)
    .load::<Row>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|r| (r.seq, r.role))
    .collect();
    assert_eq!(flat.len(), 11);
    assert_eq!(flat[2], (3, "assistant".to_owned()));
}
