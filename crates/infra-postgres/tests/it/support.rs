//! Shared helpers: stores on fresh databases and entity builders (the contract suite's).

pub use domain::testing::{chat, chat_at, created, event, now, turn, user};
use infra_postgres::testing::TestDb;
use infra_postgres::PgStore;

/// A fresh database and a store on it.
pub fn store() -> (TestDb, PgStore) {
    let db = TestDb::new();
    let store = db.store();
    (db, store)
}
