//! A hook told about every reply once its final state is stored, so work that must
//! follow a reply (an automatic title) runs after it without delaying it.

use super::Actor;
use crate::model::Message;

/// Told about each reply right after its final state (complete, failed or cancelled)
/// is stored. Called on the generation's task: it must return at once (spawn any
/// real work), and it cannot change or delay the reply.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait ReplyObserver: Send + Sync {
    /// A reply's final state is stored.
    fn reply_stored(&self, actor: &Actor, reply: &Message);
}
