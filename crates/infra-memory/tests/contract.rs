//! The storage contract suite, run against the in-memory adapter.

use domain::testing::Storage;
use infra_memory::{LogPublisher, MemoryStore};
use std::sync::Arc;

async fn storage() -> Storage {
    let store = Arc::new(MemoryStore::new(Arc::new(LogPublisher::default())));
    Storage {
        chats: store.clone(),
        messages: store,
    }
}

domain::storage_contract_tests!(storage());

async fn data_storage() -> domain::testing::DataStorage {
    let store = Arc::new(MemoryStore::new(Arc::new(LogPublisher::default())));
    domain::testing::DataStorage {
        chats: store.clone(),
        messages: store.clone(),
        search: store.clone(),
        export: store.clone(),
        erasure: store.clone(),
        retention: store,
    }
}

mod data {
    domain::data_contract_tests!(super::data_storage());
}
