//! Shared helpers: stores on fresh databases and entity builders (the contract suite's).

pub use domain::testing::{chat, chat_at, created, event, now, turn, user};
use infra_postgres::testing::TestDb;
use infra_postgres::PgStore;

/// Alice's message search for `q`, over all her chats: the first 10 hits of the newest
/// 100 matches.
pub fn alice_search(q: &str) -> domain::ports::MessageSearch {
    domain::ports::MessageSearch {
        owner: user("alice"),
        chat_id: None,
        query: domain::model::MessageQuery::parse(q).unwrap(),
        after: None,
        limit: 10,
        window: 100,
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The one `n` (`bigint`) that `sql` selects.
pub fn count(conn: &mut diesel::PgConnection, sql: &str) -> i64 {
    use diesel::RunQueryDsl;
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
}

/// A completed turn of chat `c` at `seq`: the question, then its reply with `answer`
/// (returned).
pub async fn answered(
    s: &PgStore,
    c: &domain::model::Chat,
    seq: u32,
    question: &str,
    answer: &str,
) -> domain::model::Message {
    use domain::ports::MessageRepository;
    let t = turn(c, seq, question);
    let mut r = t.reply.clone();
    s.start_turn(&t).await.unwrap();
    domain::model::Tweak::tweak(&mut r, |p| {
        p.status = domain::model::MessageStatus::Complete;
        p.content = answer.into();
    });
    let done = event(
        c,
        domain::model::EventKind::MessageCompleted {
            message: r.clone(),
            latency_ms: 1,
        },
    );
    assert!(s.finish_reply(&r, &done, None).await.unwrap());
    r
}

/// A fresh database and a store on it.
pub fn store() -> (TestDb, PgStore) {
    let db = TestDb::new();
    let store = db.store();
    (db, store)
}

/// A migration's version as its digits (`2026-12-01-000900` and `20261201000900` alike).
pub fn digits(version: &str) -> String {
    version.chars().filter(char::is_ascii_digit).collect()
}

/// Applies the migrations before `version` (digits only), which must be embedded and
/// pending.
pub fn migrate_until(conn: &mut diesel::PgConnection, version: &str) {
    use diesel_migrations::MigrationHarness;
    loop {
        let status = infra_postgres::migration_status(conn).unwrap();
        match status.pending.first() {
            Some(next) if digits(next).as_str() < version => {
                conn.run_next_migration(infra_postgres::MIGRATIONS).unwrap();
            }
            Some(next) => {
                assert_eq!(digits(next), version, "migration {version} is next");
                return;
            }
            None => panic!("migration {version} is not embedded or already applied"),
        }
    }
}
