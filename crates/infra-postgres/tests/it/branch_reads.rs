//! Migration `branch_reads`: it gives the messages of trees stored before it their
//! places among their siblings and every chat the lines of its active branch, the
//! service's writes keep both (checked after every write by `lines::checked_lines`),
//! and its `down.sql` drops them and nothing else.

use crate::lines::{
    active_lines_table, check_reads, checked_lines, checked_places, delete, grow, new_chat,
    parent_of, regenerate, send, walk,
};
use crate::support::migrate_until;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::MigrationHarness;
use domain::ports::{ChatRepository, MessageRepository};
use infra_postgres::testing::TestDb;
use infra_postgres::MIGRATIONS;

const BRANCH_READS: &str = "20261201000900";

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn columns_named(conn: &mut PgConnection, name: &str) -> i64 {
    diesel::sql_query(
        "SELECT count(*) AS n FROM information_schema.columns \
         WHERE table_name = 'messages' AND column_name = $1",
    )
    .bind::<Text, _>(name)
    .get_result::<Count>(conn)
    .unwrap()
    .n
}

#[tokio::test]
async fn the_migration_fills_places_and_active_lines_of_stored_trees_and_down_drops_them() {
    let db = TestDb::empty();
    let mut conn = db.connect();
    migrate_until(&mut conn, BRANCH_READS);
    // Trees stored before it: regenerated replies (a branch point every turn, one with
    // three replies), a second root, a plain chat.
    let s = db.store();
    let c = new_chat(&s).await;
    let (regenerated, leaf) = grow(&s, &c, None, 3).await;
    let question = parent_of(&mut conn, regenerated[1]).unwrap();
    let third = regenerate(&s, &c, question).await;
    send(&s, &c, None).await;
    let (_, leaf) = grow(&s, &c, leaf, 1).await;
    let plain = new_chat(&s).await;
    send(&s, &plain, None).await;
    let total = s.find_chat(c.id()).await.unwrap().unwrap().message_count();

    conn.run_next_migration(MIGRATIONS).unwrap();
    for chat in [c.id(), plain.id()] {
        checked_places(&mut conn, chat);
    }
    check_reads(&s, &c, leaf.unwrap()).await;
    // Writes after it keep both: a fourth reply, a branch from an older reply, the
    // deletion of a first reply (its siblings renumbered) and of the fourth.
    let other = regenerate(&s, &c, question).await;
    checked_lines(&mut conn, c.id());
    let (_, side) = grow(&s, &c, Some(third), 1).await;
    checked_lines(&mut conn, c.id());
    check_reads(&s, &c, side.unwrap()).await;
    let first = s.children(c.id(), Some(question)).await.unwrap()[0];
    delete(&s, &c, first).await;
    checked_lines(&mut conn, c.id());
    delete(&s, &c, other).await;
    checked_lines(&mut conn, c.id());

    // Down: the table and the columns go, every message stays; up again fills them.
    let kept = s.find_chat(c.id()).await.unwrap().unwrap().message_count();
    conn.revert_last_migration(MIGRATIONS).unwrap();
    assert_eq!(active_lines_table(&mut conn), None);
    assert_eq!(columns_named(&mut conn, "branch_index"), 0);
    assert_eq!(
        s.list_messages(c.id(), None, 10_000).await.unwrap().len(),
        kept as usize
    );
    assert!(kept > total, "the writes after the migration are kept");
    let back = walk(&s, &c, side.unwrap()).await;
    conn.run_next_migration(MIGRATIONS).unwrap();
    checked_places(&mut conn, c.id());
    assert_eq!(walk(&s, &c, side.unwrap()).await, back);
    check_reads(&s, &c, side.unwrap()).await;
}

/// A stored place that is out of range (not a position) is reported as bad stored
/// data, not read as some other place.
#[tokio::test]
async fn a_stored_place_out_of_range_is_bad_data_not_another_place() {
    let (db, s) = crate::support::store();
    let c = new_chat(&s).await;
    let (question, _) = send(&s, &c, None).await;
    diesel::sql_query("UPDATE messages SET branch_index = -1 WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(question.as_uuid())
        .execute(&mut db.connect())
        .unwrap();
    match s.find_message(question).await {
        Err(domain::ports::StoreError::Unknown(e)) => {
            assert!(e.to_string().contains("branch_index"), "{e}");
        }
        other => panic!("expected bad stored data, got {other:?}"),
    }
}
