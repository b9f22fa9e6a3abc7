//! The shared storage and outbox contract suites (`domain::testing`), run against `PgStore`, each
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

/// The outbox contract over `PgStore`, entries appended as a committed change would.
struct PgOutbox {
    store: infra_postgres::PgStore,
    _db: TestDb,
}

#[async_trait::async_trait]
impl domain::testing::OutboxUnderTest for PgOutbox {
    fn outbox(&self) -> &dyn domain::ports::Outbox {
        &self.store
    }
    async fn append(&self, events: &[domain::model::Event]) {
        infra_postgres::testing::append_to_outbox(&self.store, events)
            .await
            .unwrap();
    }
}

async fn outbox() -> PgOutbox {
    let db = TestDb::new();
    PgOutbox {
        store: db.store(),
        _db: db,
    }
}

domain::outbox_contract_tests!(outbox());

/// The same contract over the relay's store, whose sessions commit without the WAL
/// flush (`synchronous_commit` off once per connection; mark, release and failures one
/// statement each, without a transaction block).
mod relay_pool {
    async fn outbox() -> super::PgOutbox {
        let db = super::TestDb::new();
        super::PgOutbox {
            store: infra_postgres::PgStore::relay(&db.config()).unwrap(),
            _db: db,
        }
    }

    domain::outbox_contract_tests!(outbox());
}

async fn usage_storage() -> (domain::testing::UsageStorage, TestDb) {
    let db = TestDb::new();
    let store = Arc::new(db.store());
    (
        domain::testing::UsageStorage {
            chats: store.clone(),
            messages: store.clone(),
            usage: store.clone(),
            erasure: store,
            // Another replica: a pool of its own on the same database.
            replica: Arc::new(db.store()),
        },
        db,
    )
}

mod usage {
    domain::usage_contract_tests!(super::usage_storage());
}
