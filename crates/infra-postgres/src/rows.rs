//! Rows as stored, and their conversion from and to the domain's entities.

use crate::errors::PgError;
use crate::schema::{chats, messages, outbox};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::model::{
    Chat, ChatId, ChatParts, ChatTitle, Event, Message, MessageId, MessageParts, MessageStatus,
    Role, Usage, UserId,
};
use uuid::Uuid;

/// A row of `chats`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = chats, check_for_backend(diesel::pg::Pg))]
pub(crate) struct ChatRow {
    pub id: Uuid,
    pub owner: String,
    pub title: String,
    pub settings: serde_json::Value,
    pub message_count: i32,
    pub active_leaf_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn to_i32(n: u32, what: &str) -> Result<i32, PgError> {
    i32::try_from(n).map_err(|_| PgError::Data(format!("{what} {n} does not fit a column")))
}

pub(crate) fn to_u32<T: TryInto<u32> + Copy + std::fmt::Display>(
    n: T,
    what: &str,
) -> Result<u32, PgError> {
    n.try_into()
        .map_err(|_| PgError::Data(format!("{what} {n} is out of range")))
}

impl ChatRow {
    pub(crate) fn from_domain(c: &Chat) -> Result<Self, PgError> {
        Ok(Self {
            id: c.id().as_uuid(),
            owner: c.owner().as_str().to_owned(),
            title: c.title().as_str().to_owned(),
            settings: serde_json::to_value(c.settings())
                .map_err(|e| PgError::Data(format!("chat settings: {e}")))?,
            message_count: to_i32(c.message_count(), "message_count")?,
            active_leaf_id: c.active_leaf_id().map(|id| id.as_uuid()),
            created_at: c.created_at(),
            updated_at: c.updated_at(),
        })
    }

    pub(crate) fn into_domain(self) -> Result<Chat, PgError> {
        Ok(Chat::restore(ChatParts {
            id: ChatId::from_uuid(self.id),
            owner: UserId::parse(&self.owner)
                .map_err(|e| PgError::Data(format!("chat {} owner: {e}", self.id)))?,
            title: ChatTitle::parse(&self.title)
                .map_err(|e| PgError::Data(format!("chat {} title: {e}", self.id)))?,
            settings: serde_json::from_value(self.settings)
                .map_err(|e| PgError::Data(format!("chat {} settings: {e}", self.id)))?,
            message_count: to_u32(self.message_count, "message_count")?,
            active_leaf_id: self.active_leaf_id.map(MessageId::from_uuid),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }))
    }
}

/// A row of `messages`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = messages, check_for_backend(diesel::pg::Pg))]
pub(crate) struct MessageRow {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub seq: i32,
    pub parent_id: Option<Uuid>,
    pub role: String,
    pub content: String,
    pub status: String,
    pub model: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl MessageRow {
    pub(crate) fn from_domain(m: &Message) -> Result<Self, PgError> {
        Ok(Self {
            id: m.id().as_uuid(),
            chat_id: m.chat_id().as_uuid(),
            seq: to_i32(m.seq(), "seq")?,
            parent_id: m.parent_id().map(|id| id.as_uuid()),
            role: m.role().as_str().to_owned(),
            content: m.content().to_owned(),
            status: m.status().as_str().to_owned(),
            model: m.model().map(str::to_owned),
            prompt_tokens: m.usage().map(|u| i64::from(u.prompt_tokens)),
            completion_tokens: m.usage().map(|u| i64::from(u.completion_tokens)),
            error: m.error().map(str::to_owned),
            created_at: m.created_at(),
            updated_at: m.updated_at(),
        })
    }

    pub(crate) fn into_domain(self) -> Result<Message, PgError> {
        let usage = match (self.prompt_tokens, self.completion_tokens) {
            (Some(p), Some(c)) => Some(Usage {
                prompt_tokens: to_u32(p, "prompt_tokens")?,
                completion_tokens: to_u32(c, "completion_tokens")?,
            }),
            _ => None,
        };
        Ok(Message::restore(MessageParts {
            id: MessageId::from_uuid(self.id),
            chat_id: ChatId::from_uuid(self.chat_id),
            seq: to_u32(self.seq, "seq")?,
            parent_id: self.parent_id.map(MessageId::from_uuid),
            branch: Default::default(),
            role: Role::parse(&self.role)
                .ok_or_else(|| PgError::Data(format!("message {} role {}", self.id, self.role)))?,
            content: self.content,
            status: MessageStatus::parse(&self.status).ok_or_else(|| {
                PgError::Data(format!("message {} status {}", self.id, self.status))
            })?,
            model: self.model,
            usage,
            error: self.error,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }))
    }
}

/// A new row of `outbox`: one event, as the serde JSON of the domain `Event`.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = outbox, check_for_backend(diesel::pg::Pg))]
pub(crate) struct NewOutboxRow {
    pub event_id: Uuid,
    pub chat_id: Uuid,
    pub event_type: String,
    pub payload: serde_json::Value,
}

impl NewOutboxRow {
    pub(crate) fn from_domain(e: &Event) -> Result<Self, PgError> {
        Ok(Self {
            event_id: e.id.as_uuid(),
            chat_id: e.chat_id.as_uuid(),
            event_type: e.kind.type_name().to_owned(),
            payload: serde_json::to_value(e)
                .map_err(|err| PgError::Data(format!("event {}: {err}", e.id)))?,
        })
    }

    pub(crate) fn all(events: &[Event]) -> Result<Vec<Self>, PgError> {
        events.iter().map(Self::from_domain).collect()
    }
}

/// Converts loaded rows, failing on the first bad one.
pub(crate) fn chats_into_domain(rows: Vec<ChatRow>) -> Result<Vec<Chat>, PgError> {
    rows.into_iter().map(ChatRow::into_domain).collect()
}

/// Converts loaded rows, failing on the first bad one.
pub(crate) fn messages_into_domain(rows: Vec<MessageRow>) -> Result<Vec<Message>, PgError> {
    rows.into_iter().map(MessageRow::into_domain).collect()
}
