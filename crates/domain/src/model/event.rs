//! Domain events: one per state change, and their CloudEvents 1.0 JSON form.

use super::chat_entity::Chat;
use super::ids::{ChatId, EventId, MessageId, UserId};
use super::message_entity::Message;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a forked chat comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForkOrigin {
    /// The chat forked.
    pub chat_id: ChatId,
    /// The last message copied (the branch root → this message was copied).
    pub message_id: MessageId,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "camelCase")]
pub enum EventKind {
    /// A chat was created; carries the new chat.
    ChatCreated(Chat),
    /// A chat's title, settings or active branch changed; carries the chat after the change.
    ChatUpdated(Chat),
    /// A chat was created as a fork of another one's branch; published as
    /// `chat.created`, its data carrying `forkedFrom`.
    ChatForked {
        /// The new chat.
        chat: Chat,
        /// The chat and message it copies the branch up to.
        forked_from: ForkOrigin,
    },
    /// A chat and all its messages were deleted.
    ChatDeleted {
        /// The deleted chat.
        chat_id: ChatId,
    },
    /// A message was stored (a user message, or a reply as it starts generating).
    MessageCreated(Message),
    /// A message's content was edited.
    MessageUpdated(Message),
    /// A message was deleted; later messages moved up one place.
    MessageDeleted {
        /// The deleted message.
        message_id: MessageId,
        /// The position it had.
        seq: u32,
    },
    /// A reply finished; carries the stored reply (model and usage) and how long it took.
    MessageCompleted {
        /// The finished reply.
        message: Message,
        /// Milliseconds from the request to the provider to the last token.
        latency_ms: u64,
    },
    /// A reply failed; carries the stored reply with its error.
    MessageFailed(Message),
    /// A reply was cancelled; carries the stored partial reply.
    MessageCancelled(Message),
    /// Everything the user had stored was erased (chats, messages, records); carries
    /// no content. Its `chat_id` is [`Event::user_key`] of the user.
    UserErased,
}

impl EventKind {
    /// The CloudEvents `type`, such as `chat.created`.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::ChatCreated(_) | EventKind::ChatForked { .. } => "chat.created",
            EventKind::ChatUpdated(_) => "chat.updated",
            EventKind::ChatDeleted { .. } => "chat.deleted",
            EventKind::MessageCreated(_) => "message.created",
            EventKind::MessageUpdated(_) => "message.updated",
            EventKind::MessageDeleted { .. } => "message.deleted",
            EventKind::MessageCompleted { .. } => "message.completed",
            EventKind::MessageFailed(_) => "message.failed",
            EventKind::MessageCancelled(_) => "message.cancelled",
            EventKind::UserErased => "user.erased",
        }
    }

    /// The message `seq` this event concerns, where one applies.
    pub fn seq(&self) -> Option<u32> {
        match self {
            EventKind::MessageCreated(m)
            | EventKind::MessageUpdated(m)
            | EventKind::MessageFailed(m)
            | EventKind::MessageCancelled(m)
            | EventKind::MessageCompleted { message: m, .. } => Some(m.seq()),
            EventKind::MessageDeleted { seq, .. } => Some(*seq),
            _ => None,
        }
    }
}

/// Every event type name, for documentation and checks.
pub const EVENT_TYPES: [&str; 10] = [
    "chat.created",
    "chat.updated",
    "chat.deleted",
    "message.created",
    "message.updated",
    "message.deleted",
    "message.completed",
    "message.failed",
    "message.cancelled",
    "user.erased",
];

/// One state change, as emitted by a domain service and stored with the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Unique; consumers drop duplicates by it.
    pub id: EventId,
    /// When the change happened.
    pub time: DateTime<Utc>,
    /// The user who made it.
    pub user_id: UserId,
    /// The chat it concerns: the CloudEvents `subject` and the Kafka key (for a user's
    /// own events, [`Event::user_key`], a version 8 UUID).
    #[serde(deserialize_with = "ChatId::deserialize_subject")]
    pub chat_id: ChatId,
    /// The request that caused it, when known.
    pub request_id: Option<String>,
    /// The provider serving the model of the reply it concerns (message events of
    /// assistant replies), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// What changed.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// A new event with a fresh id.
    pub fn new(time: DateTime<Utc>, user_id: UserId, chat_id: ChatId, kind: EventKind) -> Self {
        Self {
            id: EventId::new(),
            time,
            user_id,
            chat_id,
            request_id: None,
            provider: None,
            kind,
        }
    }

    /// The `user.erased` event of `user`.
    pub fn user_erased(time: DateTime<Utc>, user_id: UserId) -> Self {
        let key = Self::user_key(&user_id);
        Self::new(time, user_id, key, EventKind::UserErased)
    }

    /// The subject and record key of a user's own events (`user.erased`), which concern
    /// no chat: a UUID (version 8) made of the first 16 bytes of SHA-256 of
    /// `"user:" + user id`, so one user's erasures always share a partition.
    pub fn user_key(user: &UserId) -> ChatId {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("user:{user}").as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        ChatId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }

    /// The same event, tagged with the request that caused it.
    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    /// The same event, naming the provider of the reply's model.
    pub fn with_provider(mut self, provider: Option<String>) -> Self {
        self.provider = provider;
        self
    }

    /// The model of the reply this event concerns: the `model` of an assistant
    /// message carried by a message event.
    pub fn reply_model(&self) -> Option<&str> {
        match &self.kind {
            EventKind::MessageCreated(m)
            | EventKind::MessageUpdated(m)
            | EventKind::MessageFailed(m)
            | EventKind::MessageCancelled(m)
            | EventKind::MessageCompleted { message: m, .. } => m.model(),
            _ => None,
        }
    }

    /// The CloudEvents 1.0 structured-mode JSON form of this event.
    ///
    /// `source` names the emitting service (a URI reference such as `/chat-service`).
    /// The `data` member holds the changed entity (camelCase, as in the HTTP API);
    /// the extension attributes `userid`, `chatid`, `seq`, `requestid` and
    /// `provider` (the provider serving a reply's model) carry the routing facts
    /// consumers filter on.
    pub fn to_cloudevent(&self, source: &str) -> serde_json::Value {
        let data = match &self.kind {
            EventKind::ChatCreated(c) | EventKind::ChatUpdated(c) => chat_data(c),
            EventKind::ChatForked { chat, forked_from } => {
                let mut d = chat_data(chat);
                if let Some(o) = d.as_object_mut() {
                    o.insert(
                        "forkedFrom".into(),
                        serde_json::to_value(forked_from).unwrap_or_default(),
                    );
                }
                d
            }
            EventKind::ChatDeleted { chat_id } => serde_json::json!({ "id": chat_id }),
            EventKind::MessageCreated(m)
            | EventKind::MessageUpdated(m)
            | EventKind::MessageFailed(m)
            | EventKind::MessageCancelled(m) => message_data(m),
            EventKind::UserErased => serde_json::json!({ "userId": self.user_id }),
            EventKind::MessageDeleted { message_id, seq } => {
                serde_json::json!({ "id": message_id, "chatId": self.chat_id, "seq": seq })
            }
            EventKind::MessageCompleted {
                message,
                latency_ms,
            } => {
                let mut d = message_data(message);
                if let Some(o) = d.as_object_mut() {
                    o.insert("latencyMs".into(), (*latency_ms).into());
                }
                d
            }
        };
        let mut ce = serde_json::json!({
            "specversion": "1.0",
            "id": self.id,
            "source": source,
            "type": self.kind.type_name(),
            "subject": self.chat_id,
            "time": self.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "datacontenttype": "application/json",
            "userid": self.user_id,
            "chatid": self.chat_id,
            "data": data,
        });
        if let Some(o) = ce.as_object_mut() {
            if let Some(seq) = self.kind.seq() {
                o.insert("seq".into(), seq.into());
            }
            if let Some(r) = &self.request_id {
                o.insert("requestid".into(), r.clone().into());
            }
            if let Some(p) = &self.provider {
                o.insert("provider".into(), p.clone().into());
            }
        }
        ce
    }
}

fn chat_data(c: &Chat) -> serde_json::Value {
    serde_json::json!({
        "id": c.id(),
        "title": c.title(),
        "settings": c.settings(),
        "messageCount": c.message_count(),
        "activeLeafId": c.active_leaf_id(),
        "createdAt": c.created_at(),
        "updatedAt": c.updated_at(),
    })
}

fn message_data(m: &Message) -> serde_json::Value {
    serde_json::to_value(m).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChatSettings, ChatTitle, MessageStatus, Role};

    fn chat() -> Chat {
        let now = Utc::now();
        Chat::restore(crate::model::ChatParts {
            id: ChatId::new(),
            owner: UserId::parse("alice").unwrap(),
            title: ChatTitle::default(),
            settings: ChatSettings::default(),
            message_count: 0,
            active_leaf_id: None,
            created_at: now,
            updated_at: now,
        })
    }

    #[test]
    fn cloudevent_has_required_attributes() {
        let c = chat();
        let e = Event::new(
            Utc::now(),
            c.owner().clone(),
            c.id(),
            EventKind::ChatCreated(c.clone()),
        )
        .with_request_id(Some("req-1".into()));
        let ce = e.to_cloudevent("/chat-service");
        assert_eq!(ce["specversion"], "1.0");
        assert_eq!(ce["type"], "chat.created");
        assert_eq!(ce["subject"], c.id().to_string());
        assert_eq!(ce["id"], e.id.to_string());
        assert_eq!(ce["userid"], "alice");
        assert_eq!(ce["requestid"], "req-1");
        assert_eq!(ce["data"]["title"], "New chat");
        assert!(ce.get("seq").is_none());
    }

    #[test]
    fn message_events_carry_seq_and_latency() {
        let c = chat();
        let now = Utc::now();
        let m = Message::restore(crate::model::MessageParts {
            id: MessageId::new(),
            chat_id: c.id(),
            seq: 2,
            parent_id: None,
            branch: Default::default(),
            role: Role::Assistant,
            content: "hi".into(),
            status: MessageStatus::Complete,
            model: Some("echo".into()),
            usage: None,
            error: None,
            created_at: now,
            updated_at: now,
        });
        let e = Event::new(
            now,
            c.owner().clone(),
            c.id(),
            EventKind::MessageCompleted {
                message: m,
                latency_ms: 7,
            },
        );
        assert_eq!(e.reply_model(), Some("echo"));
        let ce = e.to_cloudevent("/x");
        assert_eq!(ce["type"], "message.completed");
        assert_eq!(ce["seq"], 2);
        assert_eq!(ce["data"]["latencyMs"], 7);
        assert_eq!(ce["data"]["model"], "echo");
        assert!(ce.get("provider").is_none());
        let tagged = e.with_provider(Some("local".into()));
        assert_eq!(tagged.to_cloudevent("/x")["provider"], "local");
        let back: Event = serde_json::from_value(serde_json::to_value(&tagged).unwrap()).unwrap();
        assert_eq!(back.provider.as_deref(), Some("local"));
    }

    #[test]
    fn events_stored_before_the_provider_attribute_still_read() {
        let c = chat();
        let e = Event::new(
            Utc::now(),
            c.owner().clone(),
            c.id(),
            EventKind::ChatCreated(c),
        );
        let mut v = serde_json::to_value(&e).unwrap();
        assert!(v.get("provider").is_none());
        v.as_object_mut().unwrap().remove("provider");
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn events_round_trip_through_json() {
        let c = chat();
        let e = Event::new(
            Utc::now(),
            c.owner().clone(),
            c.id(),
            EventKind::ChatDeleted { chat_id: c.id() },
        );
        let back: Event = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        assert_eq!(EVENT_TYPES.len(), 10);
    }

    #[test]
    fn user_erased_carries_no_content_and_a_stable_key() {
        let u = UserId::parse("alice").unwrap();
        let e = Event::user_erased(Utc::now(), u.clone());
        assert_eq!(e.chat_id, Event::user_key(&u));
        assert_ne!(e.chat_id, Event::user_key(&UserId::parse("bob").unwrap()));
        assert_eq!(e.chat_id.as_uuid().get_version_num(), 8);
        let ce = e.to_cloudevent("/x");
        assert_eq!(ce["type"], "user.erased");
        assert_eq!(ce["data"], serde_json::json!({ "userId": "alice" }));
        let back: Event = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
}
