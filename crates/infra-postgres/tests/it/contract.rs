//! The shared storage contract suite (`domain::testing`), run against `PgStore`, each
//! case on a database of its own.

use domain::testing::Storage;
use infra_postgres::testing::TestDb;
use std::sync::Arc;

async fn storage() -> (Storage, TestDb) {
    let db = TestDb::new();
    let store = Arc::new(db.store());
    (
        Storage {
            chats: store.clone(),
            messages: store,
        },
        db,
    )
}

domain::storage_contract_tests!(storage());

async fn data_storage() -> (domain::testing::DataStorage, TestDb) {
    let db = TestDb::new();
    let store = Arc::new(db.store());
    (
        domain::testing::DataStorage {
            chats: store.clone(),
            messages: store.clone(),
            search: store.clone(),
            export: store.clone(),
            erasure: store.clone(),
            retention: store,
        },
        db,
    )
}

mod data {
    domain::data_contract_tests!(super::data_storage());
}
