//! Migrations: applied once under the advisory lock even when two runners race, each
//! `down.sql` reverting its `up.sql` exactly, and readiness reporting what is pending.

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_migrations::MigrationHarness;
use infra_postgres::testing::TestDb;
use infra_postgres::{migration_status, run_migrations, MIGRATIONS};

#[derive(QueryableByName, Debug, PartialEq)]
struct Object {
    #[diesel(sql_type = Text)]
    object: String,
}

/// Every schema object a migration could leave behind, except diesel's own table.
fn schema_objects(conn: &mut PgConnection) -> Vec<String> {
    diesel::sql_query(
        "SELECT kind || ' ' || name AS object FROM ( \
            SELECT 'relation' AS kind, c.relname::text || ':' || c.relkind::text AS name \
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE n.nspname = 'public' AND c.relname NOT LIKE '\\_\\_diesel%' \
            UNION ALL SELECT 'function', p.oid::regprocedure::text \
              FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
              WHERE n.nspname = 'public' \
            UNION ALL SELECT 'extension', extname::text FROM pg_extension \
            UNION ALL SELECT 'trigger', tgname::text FROM pg_trigger WHERE NOT tgisinternal \
            UNION ALL SELECT 'column', table_name || '.' || column_name || ' ' || data_type \
              FROM information_schema.columns \
              WHERE table_schema = 'public' AND table_name NOT LIKE '\\_\\_diesel%' \
         ) o ORDER BY 1",
    )
    .load::<Object>(conn)
    .unwrap()
    .into_iter()
    .map(|o| o.object)
    .collect()
}

#[test]
fn down_reverts_up_exactly_and_up_again_works() {
    let db = TestDb::empty();
    let mut conn = db.connect();
    let bare = schema_objects(&mut conn);
    let status = migration_status(&mut conn).unwrap();
    assert!(status.applied.is_empty());
    assert_eq!(status.pending.len(), embedded());

    let applied = run_migrations(&mut conn).unwrap();
    assert_eq!(applied.len(), embedded());
    let migrated = schema_objects(&mut conn);
    assert!(migrated.iter().any(|o| o == "extension pg_trgm"));
    assert!(migrated
        .iter()
        .any(|o| o.starts_with("relation chats_owner_title_trgm_idx")));

    // Down one at a time, checking each step reverts to the state before its up.
    conn.revert_all_migrations(MIGRATIONS).unwrap();
    assert_eq!(schema_objects(&mut conn), bare);

    assert_eq!(run_migrations(&mut conn).unwrap().len(), embedded());
    assert_eq!(schema_objects(&mut conn), migrated);
    assert!(run_migrations(&mut conn).unwrap().is_empty());
    assert!(migration_status(&mut conn).unwrap().is_current());
}

#[test]
fn each_down_reverts_its_own_up() {
    let db = TestDb::empty();
    let mut conn = db.connect();
    let mut states = vec![schema_objects(&mut conn)];
    let total = migration_status(&mut conn).unwrap().pending.len();
    for _ in 0..total {
        conn.run_next_migration(MIGRATIONS).unwrap();
        states.push(schema_objects(&mut conn));
    }
    for i in (0..total).rev() {
        conn.revert_last_migration(MIGRATIONS).unwrap();
        assert_eq!(
            schema_objects(&mut conn),
            states[i],
            "after reverting migration {}",
            i + 1
        );
    }
}

#[test]
fn racing_runners_apply_each_migration_once() {
    let db = TestDb::empty();
    let runners: Vec<_> = (0..3)
        .map(|_| {
            let url = db.url().to_owned();
            std::thread::spawn(move || {
                let mut conn = PgConnection::establish(&url).unwrap();
                run_migrations(&mut conn).unwrap().len()
            })
        })
        .collect();
    let mut counts: Vec<usize> = runners.into_iter().map(|r| r.join().unwrap()).collect();
    counts.sort();
    assert_eq!(counts, [0, 0, embedded()]);
}

#[tokio::test]
async fn readiness_reports_pending_migrations() {
    let db = TestDb::empty();
    let store = db.store();
    let status = store.readiness().await.unwrap();
    assert!(!status.is_current());
    assert_eq!(store.run_migrations().await.unwrap().len(), embedded());
    let status = store.readiness().await.unwrap();
    assert!(status.is_current());
    assert_eq!(status.applied.len(), embedded());
    // A database cloned from the template is current from the start.
    let cloned = TestDb::new();
    assert!(cloned.store().readiness().await.unwrap().is_current());
}

/// How many migrations the binary embeds (one per folder of the top-level `migrations/`).
fn embedded() -> usize {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("up.sql").exists())
        .count()
}
