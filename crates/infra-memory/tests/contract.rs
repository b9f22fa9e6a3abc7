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
