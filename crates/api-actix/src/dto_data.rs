//! The JSON shapes of message search results and export lines, and their conversion
//! from the domain (the search's query type is in `dto::query`).

use crate::dto::{ChatDto, MessageDto, RoleDto, StatusDto, UsageDto};
use chrono::{DateTime, Utc};
use domain::{Message, SearchHit};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A match in a snippet: character offsets (Unicode code points) into `text`, end exclusive.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HighlightDto {
    /// First character of the match.
    #[schema(required = true, minimum = 0)]
    pub start: u32,
    /// Just after its last character.
    #[schema(required = true, minimum = 1)]
    pub end: u32,
}

/// A plain-text excerpt of the message around its first match (never markup).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SnippetDto {
    /// At most 200 characters of the message (plus `…` where it was cut), white space
    /// collapsed to single spaces.
    #[schema(required = true)]
    pub text: String,
    /// Where the searched words are in `text`.
    #[schema(required = true)]
    pub matches: Vec<HighlightDto>,
}

/// The chat of a hit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HitChatDto {
    /// UUIDv7.
    #[schema(required = true, format = Uuid)]
    pub id: String,
    /// Its title.
    #[schema(required = true)]
    pub title: String,
}

/// One search result.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchHitDto {
    /// The message.
    #[schema(required = true)]
    pub message: MessageDto,
    /// Its chat.
    #[schema(required = true)]
    pub chat: HitChatDto,
    /// How many times the searched words occur in the message (the rank, before recency).
    #[schema(required = true, minimum = 0)]
    pub relevance: u32,
    /// The excerpt.
    #[schema(required = true)]
    pub snippet: SnippetDto,
}

impl From<&SearchHit> for SearchHitDto {
    fn from(h: &SearchHit) -> Self {
        Self {
            message: MessageDto::from(&h.message),
            chat: HitChatDto {
                id: h.chat_id.to_string(),
                title: h.chat_title.as_str().to_owned(),
            },
            relevance: h.relevance,
            snippet: SnippetDto {
                text: h.snippet.text.clone(),
                matches: h
                    .snippet
                    .matches
                    .iter()
                    .map(|m| HighlightDto {
                        start: m.start,
                        end: m.end,
                    })
                    .collect(),
            },
        }
    }
}

/// A page of search results.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchPage {
    /// Most relevant first, then newest.
    #[schema(required = true)]
    pub items: Vec<SearchHitDto>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// One line of an export (`application/x-ndjson`), told apart by `type`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ExportLine {
    /// The first line.
    Export {
        /// Format version of the export, 1.
        version: u32,
        /// The user exported (the token's `sub`).
        #[serde(rename = "userId")]
        user_id: String,
        /// When the export started.
        #[serde(rename = "exportedAt")]
        exported_at: chrono::DateTime<chrono::Utc>,
    },
    /// A chat; its messages follow.
    Chat {
        /// The chat.
        chat: ChatDto,
    },
    /// A message of the last chat (every branch, by `seq`).
    Message {
        /// The message.
        message: ExportedMessageDto,
    },
    /// The last line of a complete export.
    End {
        /// Chats exported.
        chats: u64,
        /// Messages exported.
        messages: u64,
    },
    /// The export failed here; what came before is valid, the rest is missing.
    Error {
        /// What happened.
        detail: String,
    },
}

/// A message in an export: a `Message` without `branch`. An export reads each chat's
/// messages by `seq`, not branch by branch; `parentId` and `seq` give the tree (a
/// message's siblings are the messages with the same `parentId`, in `seq` order).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportedMessageDto {
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

impl From<&Message> for ExportedMessageDto {
    fn from(m: &Message) -> Self {
        let MessageDto {
            id,
            chat_id,
            seq,
            parent_id,
            branch: _,
            role,
            content,
            status,
            model,
            usage,
            error,
            created_at,
            updated_at,
        } = MessageDto::from(m);
        Self {
            id,
            chat_id,
            seq,
            parent_id,
            role,
            content,
            status,
            model,
            usage,
            error,
            created_at,
            updated_at,
        }
    }
}
