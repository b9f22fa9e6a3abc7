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

async fn usage_storage() -> domain::testing::UsageStorage {
    let store = Arc::new(MemoryStore::new(Arc::new(LogPublisher::default())));
    domain::testing::UsageStorage {
        chats: store.clone(),
        messages: store.clone(),
        usage: store.clone(),
        erasure: store.clone(),
        // Another replica over the same state: a clone shares it.
        replica: Arc::new((*store).clone()),
    }
}

mod usage {
    domain::usage_contract_tests!(super::usage_storage());
}
