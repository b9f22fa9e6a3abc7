//! Builders for domain events of every type, as the services emit them.

use chrono::{SubsecRound, Utc};
use domain::model::Tweak;
use domain::model::{
    Chat, ChatId, ChatSettings, ChatTitle, Event, EventKind, MaxTokens, Message, MessageId,
    MessageStatus, ModelName, Role, SystemPrompt, Temperature, Usage, UserId,
};

pub fn user() -> UserId {
    UserId::parse("alice").unwrap()
}

pub fn chat(id: ChatId, message_count: u32) -> Chat {
    let now = Utc::now().trunc_subsecs(6);
    Chat::restore(domain::model::ChatParts {
        id,
        owner: user(),
        title: ChatTitle::parse("Trip to Lisbon").unwrap(),
        settings: ChatSettings {
            model: Some(ModelName::parse("gpt-4o-mini").unwrap()),
            system_prompt: Some(SystemPrompt::parse("Be brief.").unwrap()),
            temperature: Some(Temperature::new(0.7).unwrap()),
            max_tokens: Some(MaxTokens::new(512).unwrap()),
        },
        message_count,
        active_leaf_id: None,
        created_at: now,
        updated_at: now,
    })
}

pub fn message(chat_id: ChatId, seq: u32, role: Role, status: MessageStatus) -> Message {
    let now = Utc::now().trunc_subsecs(6);
    let reply = role == Role::Assistant;
    Message::restore(domain::model::MessageParts {
        id: MessageId::new(),
        chat_id,
        seq,
        parent_id: None,
        branch: Default::default(),
        role,
        content: format!("message {seq}"),
        status,
        model: reply.then(|| "gpt-4o-mini".to_owned()),
        usage: (reply && status == MessageStatus::Complete).then_some(Usage {
            prompt_tokens: 12,
            completion_tokens: 34,
        }),
        error: (status == MessageStatus::Failed).then(|| "provider timed out".to_owned()),
        created_at: now,
        updated_at: now,
    })
}

fn event(chat_id: ChatId, kind: EventKind, request_id: Option<&str>) -> Event {
    Event::new(Utc::now().trunc_subsecs(6), user(), chat_id, kind)
        .with_request_id(request_id.map(str::to_owned))
}

/// One event of each of the ten types, in the order a chat's life could emit them.
pub fn one_of_each(chat_id: ChatId) -> Vec<Event> {
    use EventKind as K;
    use MessageStatus as S;
    let user_msg = message(chat_id, 1, Role::User, S::Complete);
    vec![
        event(chat_id, K::ChatCreated(chat(chat_id, 0)), Some("req-1")),
        event(chat_id, K::ChatUpdated(chat(chat_id, 0)), Some("req-2")),
        event(chat_id, K::MessageCreated(user_msg.clone()), Some("req-3")),
        event(
            chat_id,
            K::MessageCompleted {
                message: message(chat_id, 2, Role::Assistant, S::Complete),
                latency_ms: 420,
            },
            Some("req-3"),
        )
        .with_provider(Some("openai".into())),
        event(chat_id, K::MessageUpdated(user_msg), None),
        event(
            chat_id,
            K::MessageFailed(message(chat_id, 3, Role::Assistant, S::Failed)),
            Some("req-4"),
        )
        .with_provider(Some("local".into())),
        event(
            chat_id,
            K::MessageCancelled(message(chat_id, 4, Role::Assistant, S::Cancelled)),
            Some("req-5"),
        ),
        event(
            chat_id,
            K::MessageDeleted {
                message_id: MessageId::new(),
                seq: 4,
            },
            None,
        ),
        event(chat_id, K::ChatDeleted { chat_id }, Some("req-6")),
        Event::user_erased(Utc::now().trunc_subsecs(6), user())
            .with_request_id(Some("req-7".into())),
    ]
}

/// A `message.created` event for position `seq` of a chat.
pub fn created(chat_id: ChatId, seq: u32) -> Event {
    event(
        chat_id,
        EventKind::MessageCreated(message(chat_id, seq, Role::User, MessageStatus::Complete)),
        None,
    )
}

/// A `message.completed` event whose reply holds `bytes` bytes of text (a reply too
/// large for the broker's `message.max.bytes` when `bytes` exceeds it).
pub fn large_reply(chat_id: ChatId, seq: u32, bytes: usize) -> Event {
    let mut reply = message(chat_id, seq, Role::Assistant, MessageStatus::Complete);
    reply.tweak(|p| p.content = "x".repeat(bytes));
    event(
        chat_id,
        EventKind::MessageCompleted {
            message: reply,
            latency_ms: 1,
        },
        None,
    )
}
