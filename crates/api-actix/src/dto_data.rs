//! The JSON shapes of message search, export lines and their query, and their
//! conversion from the domain.

use crate::dto::{ChatDto, MessageDto};
use crate::error::ApiError;
use crate::extract::Fields;
use domain::{ChatId, MessageQuery, MessageSearchCursor, PageLimit, PageRequest, SearchHit};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Query of `GET /api/v1/messages/search`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct MessageSearchQuery {
    /// What to look for, 1–200 characters: words (all must occur, whole words, any
    /// case), `"quoted phrases"`, `-word` to exclude, `or` between alternatives.
    #[param(required = true, min_length = 1, max_length = 200)]
    pub q: Option<String>,
    /// Only this chat's messages (a chat id, UUIDv7).
    #[param(format = Uuid)]
    pub chat_id: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100, value_type = Option<u32>)]
    pub limit: Option<String>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// A checked search request.
#[derive(Debug)]
pub struct SearchRequest {
    /// The chat to search in, if any.
    pub chat_id: Option<ChatId>,
    /// The query.
    pub query: MessageQuery,
    /// The page.
    pub page: PageRequest<MessageSearchCursor>,
}

impl MessageSearchQuery {
    /// The request, every invalid field reported.
    pub fn try_into_domain(&self) -> Result<SearchRequest, ApiError> {
        let mut f = Fields::default();
        let limit = match &self.limit {
            None => Some(PageLimit::default()),
            Some(l) => f.check(
                "limit",
                l.trim()
                    .parse::<u32>()
                    .ok()
                    .and_then(|n| PageLimit::new(n).ok())
                    .ok_or("must be a whole number from 1 to 100"),
            ),
        };
        let after = match self.cursor.as_deref() {
            None => Some(None),
            Some(c) => f.check("cursor", MessageSearchCursor::decode(c)).map(Some),
        };
        let query = match &self.q {
            Some(q) => f.check("q", MessageQuery::parse(q)),
            None => {
                f.push("q", "is required");
                None
            }
        };
        let chat_id = match self.chat_id.as_deref() {
            None => Some(None),
            Some(id) => f
                .check(
                    "chatId",
                    ChatId::parse(id.trim()).map_err(|_| "is not a chat id"),
                )
                .map(Some),
        };
        f.finish(|| {
            Some(SearchRequest {
                chat_id: chat_id?,
                query: query?,
                page: PageRequest {
                    limit: limit?,
                    after: after?,
                },
            })
        })
    }
}

/// A match in a snippet: character offsets (Unicode code points) into `text`, end exclusive.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HighlightDto {
    /// First character of the match.
    #[schema(minimum = 0)]
    pub start: u32,
    /// Just after its last character.
    #[schema(minimum = 1)]
    pub end: u32,
}

/// A plain-text excerpt of the message around its first match (never markup).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SnippetDto {
    /// At most 200 characters of the message (plus `…` where it was cut), white space
    /// collapsed to single spaces.
    pub text: String,
    /// Where the searched words are in `text`.
    pub matches: Vec<HighlightDto>,
}

/// The chat of a hit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HitChatDto {
    /// UUIDv7.
    #[schema(format = Uuid)]
    pub id: String,
    /// Its title.
    pub title: String,
}

/// One search result.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchHitDto {
    /// The message.
    pub message: MessageDto,
    /// Its chat.
    pub chat: HitChatDto,
    /// How many times the searched words occur in the message (the rank, before recency).
    #[schema(minimum = 0)]
    pub relevance: u32,
    /// The excerpt.
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
    pub items: Vec<SearchHitDto>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
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
        message: MessageDto,
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
