//! Builders of valid entities and events for the contract cases.

use super::Storage;
use crate::model::*;
use chrono::{DateTime, Duration, SubsecRound, Utc};

pub fn user(name: &str) -> UserId {
    UserId::parse(name).unwrap()
}

/// Now, truncated to microseconds as every storage keeps it.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub fn chat_at(owner: &str, title: &str, at: DateTime<Utc>) -> Chat {
    Chat::restore(crate::model::ChatParts {
        id: ChatId::new(),
        owner: user(owner),
        title: ChatTitle::parse(title).unwrap(),
        settings: ChatSettings::default(),
        message_count: 0,
        active_leaf_id: None,
        created_at: at,
        updated_at: at,
    })
}

pub fn chat(owner: &str, title: &str) -> Chat {
    chat_at(owner, title, now())
}

pub fn event(chat: &Chat, kind: EventKind) -> Event {
    Event::new(now(), chat.owner().clone(), chat.id(), kind)
}

pub fn created(chat: &Chat) -> Event {
    event(chat, EventKind::ChatCreated(chat.clone()))
}

pub fn message(
    chat_id: ChatId,
    seq: u32,
    role: Role,
    status: MessageStatus,
    content: &str,
) -> Message {
    let at = now();
    Message::restore(crate::model::MessageParts {
        id: MessageId::new(),
        chat_id,
        seq,
        parent_id: None,
        branch: Default::default(),
        role,
        content: content.into(),
        status,
        model: (role == Role::Assistant).then(|| "echo".to_owned()),
        usage: None,
        error: None,
        created_at: at,
        updated_at: at,
    })
}

/// A turn after `count` messages: a user message following the chat's active leaf (as
/// `chat` has it) and a streaming reply to it.
pub fn turn(chat: &Chat, count: u32, text: &str) -> crate::ports::NewTurn {
    let mut user_message = message(
        chat.id(),
        count + 1,
        Role::User,
        MessageStatus::Complete,
        text,
    );
    user_message.tweak(|p| p.parent_id = chat.active_leaf_id());
    let mut reply = message(
        chat.id(),
        count + 2,
        Role::Assistant,
        MessageStatus::Streaming,
        "",
    );
    reply.tweak(|p| p.parent_id = Some(user_message.id()));
    crate::ports::NewTurn {
        chat_id: chat.id(),
        expected_count: count,
        events: vec![
            event(chat, EventKind::MessageCreated(user_message.clone())),
            event(chat, EventKind::MessageCreated(reply.clone())),
        ],
        user_message: Some(user_message),
        reply,
        stale_before: now() - Duration::minutes(10),
        now: now(),
        idempotency: None,
    }
}

/// A chat of alice's ("Talk"), stored.
pub(super) async fn new_chat(s: &Storage) -> Chat {
    let c = chat("alice", "Talk");
    s.chats.insert_chat(&c, &created(&c)).await.unwrap();
    c
}
