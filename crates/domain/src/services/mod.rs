//! Domain services: the business rules, over the ports.

mod chats;
mod data_errors;
mod erasure;
mod errors;
mod export;
mod fallback;
mod generation;
pub mod history;
mod live_reaper;
mod live_replies;
mod messages;
mod models;
mod observer;
mod quota;
mod resume;
mod retention;
mod search;
pub mod title_text;
mod titles;
mod usage;

pub use chats::*;
pub use data_errors::*;
pub use erasure::*;
pub use errors::*;
pub use export::*;
pub use fallback::*;
pub use generation::*;
pub use live_replies::LiveConfig;
pub use messages::*;
pub use models::ModelService;
pub use observer::*;
pub use quota::*;
pub use resume::*;
pub use retention::*;
pub use search::*;
pub use titles::*;
pub use usage::*;

use crate::model::UserId;

/// Who is acting, and on behalf of which request (for events and tracing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The authenticated user.
    pub user: UserId,
    /// The request id, when there is one.
    pub request_id: Option<String>,
}

impl Actor {
    /// An actor with no request id.
    pub fn new(user: UserId) -> Self {
        Self {
            user,
            request_id: None,
        }
    }
}

#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_data;
#[cfg(test)]
mod tests_hardening;
#[cfg(test)]
mod tests_usage;
#[cfg(test)]
mod turn_mock;

#[cfg(test)]
mod testing_support {
    use crate::model::*;
    use chrono::Utc;

    pub fn message(chat_id: ChatId, seq: u32, role: Role, status: MessageStatus) -> Message {
        let now = Utc::now();
        Message::restore(crate::model::MessageParts {
            id: MessageId::new(),
            chat_id,
            seq,
            parent_id: None,
            branch: Default::default(),
            role,
            content: String::new(),
            status,
            model: None,
            usage: None,
            error: None,
            created_at: now,
            updated_at: now,
        })
    }
}
