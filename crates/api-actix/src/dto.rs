//! The JSON shapes of the HTTP API (camelCase), and their conversion to and from the
//! domain. Requests are converted with one `try_into_domain()` that reports every
//! invalid field. Request bodies refuse unknown fields; their rule-bearing fields take
//! their schema from [`rules`] (the domain's constants); response fields that are always
//! present are `required` (and nullable when they can be `null`).

use crate::error::ApiError;
use crate::extract::Fields;
use chrono::{DateTime, Utc};
use domain::services::{CreateChat, UpdateChat};
use domain::{
    Chat, ChatSettings, ChatTitle, MaxTokens, Message, MessageContent, ModelName, SystemPrompt,
    Temperature,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod events;
mod query;
mod resume;
pub mod rules;
mod tree;
pub mod usage;

pub use events::{Delta, TurnEvent, TurnProblem};
pub use query::{
    param, ChatListQuery, ChatSearchQuery, MessageListQuery, MessageSearchQuery,
    MessageSearchRequest, SendHeaders, SendQuery,
};
pub use resume::StreamQuery;
pub use tree::{BranchDto, ChatUpdateRequest, ForkRequest, SendRequest};

/// A chat's generation settings; `null` means the service default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsDto {
    /// Model name; `null`: the service's default model.
    #[schema(required = true, example = "gpt-4o-mini")]
    pub model: Option<String>,
    /// System prompt; `null`: none.
    #[schema(required = true)]
    pub system_prompt: Option<String>,
    /// Sampling temperature; `null`: the provider's default.
    #[schema(required = true)]
    pub temperature: Option<f64>,
    /// Largest reply in tokens; `null`: the provider's default.
    #[schema(required = true)]
    pub max_tokens: Option<u32>,
}

impl SettingsDto {
    fn from_domain(s: &ChatSettings) -> Self {
        Self {
            model: s.model.as_ref().map(|m| m.as_str().to_owned()),
            system_prompt: s.system_prompt.as_ref().map(|p| p.as_str().to_owned()),
            temperature: s.temperature.map(|t| t.value()),
            max_tokens: s.max_tokens.map(|m| m.value()),
        }
    }
}

/// Generation settings in a request: each absent or `null` field means the service
/// default.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsRequest {
    /// Model name.
    #[schema(schema_with = rules::model)]
    pub model: Option<String>,
    /// System prompt.
    #[schema(schema_with = rules::system_prompt)]
    pub system_prompt: Option<String>,
    /// Sampling temperature.
    #[schema(schema_with = rules::temperature)]
    pub temperature: Option<f64>,
    /// Largest reply in tokens (any JSON number with no fraction, as JSON Schema's
    /// `integer`).
    #[schema(schema_with = rules::max_tokens)]
    pub max_tokens: Option<serde_json::Number>,
}

/// A JSON integer as `u32`: `10` and `10.0` alike; `None` when it has a fraction, and
/// `Some(u32::MAX)` (out of every range) when it is too large or negative.
fn whole_u32(n: &serde_json::Number) -> Option<u32> {
    let v = match (n.as_u64(), n.as_i64(), n.as_f64()) {
        (Some(u), _, _) => u,
        (None, Some(_), _) => return Some(u32::MAX),
        (None, None, Some(f)) if f.fract() == 0.0 => {
            if f < 0.0 || f > f64::from(u32::MAX) {
                return Some(u32::MAX);
            }
            f as u64
        }
        _ => return None,
    };
    Some(u32::try_from(v).unwrap_or(u32::MAX))
}

impl SettingsRequest {
    fn try_into_domain(self, f: &mut Fields) -> Option<ChatSettings> {
        let model = self
            .model
            .map(|m| f.check("settings.model", ModelName::parse(&m)));
        let system_prompt = self
            .system_prompt
            .map(|p| f.check("settings.systemPrompt", SystemPrompt::parse(&p)));
        let temperature = self
            .temperature
            .map(|t| f.check("settings.temperature", Temperature::new(t)));
        let max_tokens = self.max_tokens.map(|n| match whole_u32(&n) {
            Some(n) => f.check("settings.maxTokens", MaxTokens::new(n)),
            None => {
                f.push("settings.maxTokens", "must be a whole number");
                None
            }
        });
        Some(ChatSettings {
            model: model.map(|m| m.ok_or(())).transpose().ok()?,
            system_prompt: system_prompt.map(|m| m.ok_or(())).transpose().ok()?,
            temperature: temperature.map(|m| m.ok_or(())).transpose().ok()?,
            max_tokens: max_tokens.map(|m| m.ok_or(())).transpose().ok()?,
        })
    }
}

/// Body of `POST /api/v1/chats` and `PUT /api/v1/chats/{id}`; no other field is accepted.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChatRequest {
    /// Title.
    #[schema(schema_with = rules::title)]
    pub title: Option<String>,
    /// Settings; on update, replaces the whole settings object. Absent or `null`:
    /// unchanged (the defaults when creating).
    pub settings: Option<SettingsRequest>,
}

impl ChatRequest {
    fn parts(self) -> Result<(Option<ChatTitle>, Option<ChatSettings>), ApiError> {
        let mut f = Fields::default();
        let title = self.title.map(|t| f.check("title", ChatTitle::parse(&t)));
        let settings = self.settings.map(|s| s.try_into_domain(&mut f));
        f.finish(|| Some((title.flatten(), settings.flatten())))
    }

    /// The create command.
    pub fn try_into_create(self) -> Result<CreateChat, ApiError> {
        let (title, settings) = self.parts()?;
        Ok(CreateChat { title, settings })
    }

    /// The update command.
    pub fn try_into_update(self) -> Result<UpdateChat, ApiError> {
        let (title, settings) = self.parts()?;
        Ok(UpdateChat { title, settings })
    }
}

/// A chat.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatDto {
    /// UUIDv7.
    #[schema(format = Uuid)]
    pub id: String,
    /// Title.
    pub title: String,
    /// Generation settings.
    pub settings: SettingsDto,
    /// Number of messages.
    pub message_count: u32,
    /// The last message of the branch shown by default (`GET /api/v1/messages`
    /// lists root → it); `null` while the chat has no messages.
    #[schema(required = true, format = Uuid)]
    pub active_leaf_id: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: DateTime<Utc>,
    /// Last activity, RFC 3339 UTC.
    pub updated_at: DateTime<Utc>,
}

impl From<&Chat> for ChatDto {
    fn from(c: &Chat) -> Self {
        Self {
            id: c.id().to_string(),
            title: c.title().as_str().to_owned(),
            settings: SettingsDto::from_domain(c.settings()),
            message_count: c.message_count(),
            active_leaf_id: c.active_leaf_id().map(|id| id.to_string()),
            created_at: c.created_at(),
            updated_at: c.updated_at(),
        }
    }
}

/// Token usage of a reply.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageDto {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Completion tokens.
    pub completion_tokens: u32,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = Role)]
pub enum RoleDto {
    /// The human user.
    User,
    /// The model.
    Assistant,
    /// Instructions to the model.
    System,
}

impl From<domain::Role> for RoleDto {
    fn from(r: domain::Role) -> Self {
        match r {
            domain::Role::User => Self::User,
            domain::Role::Assistant => Self::Assistant,
            domain::Role::System => Self::System,
        }
    }
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = MessageStatus)]
pub enum StatusDto {
    /// Finished (user messages always are).
    Complete,
    /// A reply being generated.
    Streaming,
    /// A reply whose generation failed; `error` says why.
    Failed,
    /// A reply stopped on request; its content is the partial text.
    Cancelled,
}

impl From<domain::MessageStatus> for StatusDto {
    fn from(s: domain::MessageStatus) -> Self {
        match s {
            domain::MessageStatus::Complete => Self::Complete,
            domain::MessageStatus::Streaming => Self::Streaming,
            domain::MessageStatus::Failed => Self::Failed,
            domain::MessageStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// A message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageDto {
    /// UUIDv7.
    #[schema(format = Uuid)]
    pub id: String,
    /// The chat.
    #[schema(format = Uuid)]
    pub chat_id: String,
    /// Position in the chat: 1, 2, 3…
    #[schema(minimum = 1)]
    pub seq: u32,
    /// The message it follows; `null` for a first message (a root).
    #[schema(required = true, format = Uuid)]
    pub parent_id: Option<String>,
    /// Its place among its siblings (the messages with the same parent).
    pub branch: BranchDto,
    /// Who wrote it.
    pub role: RoleDto,
    /// Text.
    pub content: String,
    /// Where it is in its life.
    pub status: StatusDto,
    /// Model that wrote it (replies; `null` for user messages).
    #[schema(required = true)]
    pub model: Option<String>,
    /// Tokens used (replies, once the provider reported them; else `null`).
    #[schema(required = true)]
    pub usage: Option<UsageDto>,
    /// Why it failed (failed replies; else `null`).
    #[schema(required = true)]
    pub error: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: DateTime<Utc>,
    /// RFC 3339 UTC.
    pub updated_at: DateTime<Utc>,
}

impl From<&Message> for MessageDto {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id().to_string(),
            chat_id: m.chat_id().to_string(),
            seq: m.seq(),
            parent_id: m.parent_id().map(|id| id.to_string()),
            branch: BranchDto::from(&m.branch()),
            role: m.role().into(),
            content: m.content().to_owned(),
            status: m.status().into(),
            model: m.model().map(str::to_owned),
            usage: m.usage().map(|u| UsageDto {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            }),
            error: m.error().map(str::to_owned),
            created_at: m.created_at(),
            updated_at: m.updated_at(),
        }
    }
}

/// Body of `POST /api/v1/messages` and `PUT /api/v1/messages/{id}`; no other field is
/// accepted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    /// Text.
    #[schema(schema_with = rules::content)]
    pub content: String,
}

impl MessageRequest {
    /// The content, checked.
    pub fn try_into_content(self) -> Result<MessageContent, ApiError> {
        let mut f = Fields::default();
        let content = f.check("content", MessageContent::parse(&self.content));
        f.finish(|| content)
    }
}

/// A send's result: the stored user message and the stored reply.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TurnDto {
    /// The user's message.
    pub message: MessageDto,
    /// The assistant's reply.
    pub reply: MessageDto,
}

/// A page of chats.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatPage {
    /// The chats, newest activity first.
    pub items: Vec<ChatDto>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A page of messages.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    /// The messages, in conversation order.
    pub items: Vec<MessageDto>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}
