//! Entities and value objects of the chat domain.

mod catalog;
mod chat;
mod chat_entity;
mod event;
mod idempotency;
mod ids;
mod message;
mod message_entity;
mod page;
mod search;
pub mod text;
#[cfg(any(test, feature = "testing"))]
mod tweak;
mod usage;

pub use catalog::*;
pub use chat::*;
pub use chat_entity::*;
pub use event::*;
pub use idempotency::*;
pub use ids::*;
pub use message::*;
pub use message_entity::*;
pub use page::*;
pub use search::*;
#[cfg(any(test, feature = "testing"))]
pub use tweak::*;
pub use usage::*;
