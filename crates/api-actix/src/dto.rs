//! The JSON shapes of the HTTP API (camelCase), and their conversion to and from the
//! domain. Requests are converted with one `try_into_domain()` that reports every
//! invalid field.

use crate::error::ApiError;
use crate::extract::Fields;
use chrono::{DateTime, Utc};
use domain::services::{CreateChat, UpdateChat};
use domain::{
    Chat, ChatCursor, ChatId, ChatSettings, ChatTitle, MaxTokens, Message, MessageContent,
    MessageCursor, ModelName, PageLimit, PageRequest, SearchQuery, SystemPrompt, Temperature,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A chat's generation settings; `null` or absent means the service default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsDto {
    /// Model name (1–100 of letters, digits and `._:/@+-`).
    #[schema(example = "gpt-4o-mini")]
    pub model: Option<String>,
    /// System prompt (at most 20,000 characters).
    pub system_prompt: Option<String>,
    /// Sampling temperature, 0–2.
    pub temperature: Option<f64>,
    /// Largest reply in tokens, 1–1,000,000.
    pub max_tokens: Option<i64>,
}

impl SettingsDto {
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
        let max_tokens = self.max_tokens.map(|n| {
            let n = u32::try_from(n).unwrap_or(0);
            f.check("settings.maxTokens", MaxTokens::new(n))
        });
        Some(ChatSettings {
            model: model.map(|m| m.ok_or(())).transpose().ok()?,
            system_prompt: system_prompt.map(|m| m.ok_or(())).transpose().ok()?,
            temperature: temperature.map(|m| m.ok_or(())).transpose().ok()?,
            max_tokens: max_tokens.map(|m| m.ok_or(())).transpose().ok()?,
        })
    }

    fn from_domain(s: &ChatSettings) -> Self {
        Self {
            model: s.model.as_ref().map(|m| m.as_str().to_owned()),
            system_prompt: s.system_prompt.as_ref().map(|p| p.as_str().to_owned()),
            temperature: s.temperature.map(|t| t.value()),
            max_tokens: s.max_tokens.map(|m| i64::from(m.value())),
        }
    }
}

/// Body of `POST /api/v1/chats` and `PUT /api/v1/chats/{id}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatRequest {
    /// Title, 1–200 characters after trimming; "New chat" when creating without one.
    #[schema(example = "Trip to Lisbon")]
    pub title: Option<String>,
    /// Settings; on update, replaces the whole settings object.
    pub settings: Option<SettingsDto>,
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
    pub id: String,
    /// Title.
    pub title: String,
    /// Generation settings.
    pub settings: SettingsDto,
    /// Number of messages.
    pub message_count: u32,
    /// RFC 3339 UTC.
    pub created_at: DateTime<Utc>,
    /// Last activity, RFC 3339 UTC.
    pub updated_at: DateTime<Utc>,
}

impl From<&Chat> for ChatDto {
    fn from(c: &Chat) -> Self {
        Self {
            id: c.id.to_string(),
            title: c.title.as_str().to_owned(),
            settings: SettingsDto::from_domain(&c.settings),
            message_count: c.message_count,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// Token usage of a reply.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageDto {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Completion tokens.
    pub completion_tokens: u32,
}

/// A message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageDto {
    /// UUIDv7.
    pub id: String,
    /// The chat.
    pub chat_id: String,
    /// Position in the chat: 1, 2, 3…
    pub seq: u32,
    /// `user`, `assistant` or `system`.
    #[schema(example = "user")]
    pub role: String,
    /// Text.
    pub content: String,
    /// `complete`, `streaming`, `failed` or `cancelled`.
    #[schema(example = "complete")]
    pub status: String,
    /// Model that wrote it (replies).
    pub model: Option<String>,
    /// Tokens used (replies).
    pub usage: Option<UsageDto>,
    /// Why it failed (failed replies).
    pub error: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: DateTime<Utc>,
    /// RFC 3339 UTC.
    pub updated_at: DateTime<Utc>,
}

impl From<&Message> for MessageDto {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.to_string(),
            chat_id: m.chat_id.to_string(),
            seq: m.seq,
            role: m.role.as_str().to_owned(),
            content: m.content.clone(),
            status: m.status.as_str().to_owned(),
            model: m.model.clone(),
            usage: m.usage.map(|u| UsageDto {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            }),
            error: m.error.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// Body of `POST /api/v1/messages` and `PUT /api/v1/messages/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MessageRequest {
    /// Text, 1–100,000 characters, not only white space.
    #[schema(example = "What should I see in Lisbon?")]
    pub content: Option<String>,
}

impl MessageRequest {
    /// The content, checked.
    pub fn try_into_content(self) -> Result<MessageContent, ApiError> {
        let mut f = Fields::default();
        let content = match self.content {
            Some(c) => f.check("content", MessageContent::parse(&c)),
            None => {
                f.push("content", "is required");
                None
            }
        };
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
    pub next_cursor: Option<String>,
}

/// A page of messages.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    /// The messages, in conversation order.
    pub items: Vec<MessageDto>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Query of the list routes.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// Page size, 1–100 (default 20).
    pub limit: Option<String>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Search text (search route only): case-insensitive substring of the title.
    pub q: Option<String>,
    /// The chat (message routes only).
    pub chat_id: Option<String>,
}

impl ListQuery {
    fn limit(&self, f: &mut Fields) -> PageLimit {
        match &self.limit {
            None => PageLimit::default(),
            Some(l) => f
                .check(
                    "limit",
                    l.trim()
                        .parse::<u32>()
                        .map_err(|_| "must be a whole number from 1 to 100")
                        .and_then(|n| {
                            PageLimit::new(n).map_err(|_| "must be a whole number from 1 to 100")
                        }),
                )
                .unwrap_or_default(),
        }
    }

    /// The chat page request.
    pub fn chat_page(&self) -> Result<PageRequest<ChatCursor>, ApiError> {
        let mut f = Fields::default();
        let limit = self.limit(&mut f);
        let after = self
            .cursor
            .as_deref()
            .and_then(|c| f.check("cursor", ChatCursor::decode(c)));
        f.finish(|| Some(PageRequest { limit, after }))
    }

    /// The search query and page request.
    pub fn search(&self) -> Result<(SearchQuery, PageRequest<ChatCursor>), ApiError> {
        let mut f = Fields::default();
        let limit = self.limit(&mut f);
        let after = self
            .cursor
            .as_deref()
            .and_then(|c| f.check("cursor", ChatCursor::decode(c)));
        let q = match &self.q {
            Some(q) => f.check("q", SearchQuery::parse(q)),
            None => {
                f.push("q", "is required");
                None
            }
        };
        f.finish(|| Some((q?, PageRequest { limit, after })))
    }

    /// The chat id of a message route.
    pub fn chat_id(&self) -> Result<ChatId, ApiError> {
        let mut f = Fields::default();
        let id = match &self.chat_id {
            Some(id) => f.check(
                "chatId",
                ChatId::parse(id.trim()).map_err(|_| "is not a chat id"),
            ),
            None => {
                f.push("chatId", "is required");
                None
            }
        };
        f.finish(|| id)
    }

    /// The chat id and message page request.
    pub fn message_page(&self) -> Result<(ChatId, PageRequest<MessageCursor>), ApiError> {
        let mut f = Fields::default();
        let limit = self.limit(&mut f);
        let after = self
            .cursor
            .as_deref()
            .and_then(|c| f.check("cursor", MessageCursor::decode(c)));
        let chat = match self.chat_id() {
            Ok(c) => Some(c),
            Err(ApiError::Validation(errs)) => {
                for e in errs {
                    f.push(&e.field, e.message);
                }
                None
            }
            Err(e) => return Err(e),
        };
        f.finish(|| Some((chat?, PageRequest { limit, after })))
    }
}
