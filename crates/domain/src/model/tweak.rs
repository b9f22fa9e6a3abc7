//! Tests only (the `testing` feature): change any field of an entity in place, no
//! rule checked. The same door as `restore(into_parts())`, shorter to write.

use super::chat_entity::{Chat, ChatParts};
use super::message_entity::{Message, MessageParts};

/// An entity whose fields a test may set directly.
pub trait Tweak {
    /// Its fields.
    type Parts;
    /// Changes its fields with `f`.
    fn tweak(&mut self, f: impl FnOnce(&mut Self::Parts));
}

impl Tweak for Message {
    type Parts = MessageParts;
    fn tweak(&mut self, f: impl FnOnce(&mut MessageParts)) {
        let mut p = self.clone().into_parts();
        f(&mut p);
        *self = Message::restore(p);
    }
}

impl Tweak for Chat {
    type Parts = ChatParts;
    fn tweak(&mut self, f: impl FnOnce(&mut ChatParts)) {
        let mut p = self.clone().into_parts();
        f(&mut p);
        *self = Chat::restore(p);
    }
}
