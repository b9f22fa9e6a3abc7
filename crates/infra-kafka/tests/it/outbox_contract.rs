//! The outbox contract suite (`domain::testing`) run against the in-memory outbox
//! these tests use, so the test double behaves like the PostgreSQL outbox.

use crate::support::outbox::MemoryOutbox;
use domain::model::Event;
use domain::ports::Outbox;
use domain::testing::OutboxUnderTest;

struct Memory(MemoryOutbox);

#[async_trait::async_trait]
impl OutboxUnderTest for Memory {
    fn outbox(&self) -> &dyn Outbox {
        &self.0
    }
    async fn append(&self, events: &[Event]) {
        self.0.append(events.to_vec());
    }
}

async fn memory() -> Memory {
    Memory(MemoryOutbox::default())
}

domain::outbox_contract_tests!(memory());
