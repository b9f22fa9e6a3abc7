//! Domain services: the business rules, over the ports.

mod chats;
mod errors;
mod generation;
pub mod history;
mod messages;

pub use chats::*;
pub use errors::*;
pub use generation::*;
pub use messages::*;

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
