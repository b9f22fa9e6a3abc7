//! One query type per route (only the parameters that route reads), each documented by
//! a hand-written `IntoParams` whose schemas come from [`super::rules`], and converted
//! into domain values with every invalid parameter reported at once.
//!
//! The pattern for a new route: a `Deserialize` struct of `Option<String>` fields (so a
//! missing or malformed value is a 422 naming the parameter, never a serde message), an
//! `IntoParams` impl listing [`param`]s, and one method returning the domain values.

use super::rules;
use crate::error::ApiError;
use crate::extract::Fields;
use domain::{ChatCursor, ChatId, IdError, MessageCursor, PageLimit, PageRequest, SearchQuery};
use serde::Deserialize;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::ObjectBuilder;
use utoipa::openapi::Required;
use utoipa::IntoParams;

/// A documented parameter (`in` query unless the caller says otherwise).
pub fn param(
    name: &str,
    required: bool,
    description: &str,
    schema: ObjectBuilder,
    location: Option<ParameterIn>,
) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(location.unwrap_or(ParameterIn::Query))
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

const LIMIT: &str = "Page size (default 20).";
const CURSOR: &str = "The `nextCursor` of the previous page; absent or empty: the first page.";

fn limit(raw: Option<&str>, f: &mut Fields) -> PageLimit {
    let Some(raw) = raw else {
        return PageLimit::default();
    };
    let rule = || format!("must be a whole number from 1 to {}", PageLimit::MAX);
    let n = if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        raw.parse::<u32>().ok().and_then(|n| PageLimit::new(n).ok())
    } else {
        None
    };
    f.check("limit", n.ok_or_else(rule)).unwrap_or_default()
}

fn cursor<C>(
    raw: Option<&str>,
    f: &mut Fields,
    decode: fn(&str) -> Result<C, domain::PageError>,
) -> Option<C> {
    match raw {
        None | Some("") => None,
        Some(c) => f.check("cursor", decode(c)),
    }
}

/// A required chat id. A well-formed UUID that is not a chat id (not v7) names no chat:
/// that is the service's 404, not a 422.
fn chat_id(raw: Option<&str>, f: &mut Fields) -> Option<Result<ChatId, ApiError>> {
    match raw.map(ChatId::parse) {
        None => {
            f.push("chatId", "is required");
            None
        }
        Some(Ok(id)) => Some(Ok(id)),
        Some(Err(IdError::NotV7)) => Some(Err(ApiError::NotFound)),
        Some(Err(e @ IdError::NotAUuid)) => {
            f.push("chatId", format!("must be a chat id: {e}"));
            None
        }
    }
}

/// Query of `GET /api/v1/chats`.
#[derive(Debug, Default, Deserialize)]
pub struct ChatListQuery {
    /// Page size.
    pub limit: Option<String>,
    /// Position.
    pub cursor: Option<String>,
}

impl IntoParams for ChatListQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            param("limit", false, LIMIT, rules::page_limit(), None),
            param("cursor", false, CURSOR, rules::chat_cursor(), None),
        ]
    }
}

impl ChatListQuery {
    /// The page request.
    pub fn page(&self) -> Result<PageRequest<ChatCursor>, ApiError> {
        let mut f = Fields::default();
        let limit = limit(self.limit.as_deref(), &mut f);
        let after = cursor(self.cursor.as_deref(), &mut f, ChatCursor::decode);
        f.finish(|| Some(PageRequest { limit, after }))
    }
}

/// Query of `GET /api/v1/chats/search`.
#[derive(Debug, Default, Deserialize)]
pub struct ChatSearchQuery {
    /// Search text.
    pub q: Option<String>,
    /// Page size.
    pub limit: Option<String>,
    /// Position.
    pub cursor: Option<String>,
}

impl IntoParams for ChatSearchQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let q = format!(
            "Text the title contains, ignoring case (`%` and `_` are literal): 1-{} \
             characters once trimmed, no NUL.",
            SearchQuery::MAX_CHARS
        );
        vec![
            param("q", true, &q, rules::search_query(), None),
            param("limit", false, LIMIT, rules::page_limit(), None),
            param("cursor", false, CURSOR, rules::chat_cursor(), None),
        ]
    }
}

impl ChatSearchQuery {
    /// The search and its page request.
    pub fn search(&self) -> Result<(SearchQuery, PageRequest<ChatCursor>), ApiError> {
        let mut f = Fields::default();
        let q = match &self.q {
            Some(q) => f.check("q", SearchQuery::parse(q)),
            None => {
                f.push("q", "is required");
                None
            }
        };
        let limit = limit(self.limit.as_deref(), &mut f);
        let after = cursor(self.cursor.as_deref(), &mut f, ChatCursor::decode);
        f.finish(|| Some((q?, PageRequest { limit, after })))
    }
}

const CHAT_ID: &str = "The chat.";

/// Query of `GET /api/v1/messages`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageListQuery {
    /// The chat.
    pub chat_id: Option<String>,
    /// The branch through this message instead of the active one.
    pub leaf_id: Option<String>,
    /// Page size.
    pub limit: Option<String>,
    /// Position.
    pub cursor: Option<String>,
}

impl IntoParams for MessageListQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            param("chatId", true, CHAT_ID, rules::uuid(), None),
            param(
                "leafId",
                false,
                "A message of the chat: list the branch through it (its ancestors from the root, \
                 itself, then its newest descendants) instead of the active branch.",
                rules::uuid(),
                None,
            ),
            param("limit", false, LIMIT, rules::page_limit(), None),
            param("cursor", false, CURSOR, rules::message_cursor(), None),
        ]
    }
}

impl MessageListQuery {
    /// The chat, the message the branch goes through (`None`: the active branch) and
    /// the page request.
    pub fn page(&self) -> Result<BranchPageRequest, ApiError> {
        let mut f = Fields::default();
        let chat = chat_id(self.chat_id.as_deref(), &mut f);
        let leaf = self
            .leaf_id
            .as_deref()
            .map(|raw| super::tree::message_ref(raw, "leafId", &mut f));
        let limit = limit(self.limit.as_deref(), &mut f);
        let after = cursor(self.cursor.as_deref(), &mut f, MessageCursor::decode);
        let chat = f.finish(|| chat)??;
        Ok((
            chat,
            leaf.flatten().transpose()?,
            PageRequest { limit, after },
        ))
    }
}

/// What `GET /api/v1/messages` asks for: the chat, the message the branch goes
/// through, the page.
pub type BranchPageRequest = (
    ChatId,
    Option<domain::MessageId>,
    PageRequest<MessageCursor>,
);

/// Query of `POST /api/v1/messages`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendQuery {
    /// The chat.
    pub chat_id: Option<String>,
}

impl IntoParams for SendQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![param("chatId", true, CHAT_ID, rules::uuid(), None)]
    }
}

impl SendQuery {
    /// The chat sent to.
    pub fn chat_id(&self) -> Result<ChatId, ApiError> {
        let mut f = Fields::default();
        let chat = chat_id(self.chat_id.as_deref(), &mut f);
        f.finish(|| chat)?
    }
}

/// Headers of `POST /api/v1/messages` (documentation only: read by the handler).
#[derive(Debug)]
pub struct SendHeaders;

impl IntoParams for SendHeaders {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let description = format!(
            "Makes the send safe to retry: a retry with the same key within {} hours gets \
             the first send's response (waiting for its reply if it is still being \
             generated) and never calls the provider again; the same key with another chat \
             or content is 422 (`/problems/unprocessable`).",
            domain::IdempotentSend::TTL_HOURS
        );
        vec![param(
            "Idempotency-Key",
            false,
            &description,
            rules::idempotency_key(),
            Some(ParameterIn::Header),
        )]
    }
}

/// Query of `GET /api/v1/messages/search`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageSearchQuery {
    /// What to look for.
    pub q: Option<String>,
    /// Only this chat.
    pub chat_id: Option<String>,
    /// Page size.
    pub limit: Option<String>,
    /// Position.
    pub cursor: Option<String>,
}

impl IntoParams for MessageSearchQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let q = format!(
            "What to look for, 1-{} characters once trimmed, no NUL: words (all must occur; \
             whole words of letters and digits, any case), `\"quoted phrases\"`, `-word` or \
             `-\"phrase\"` to exclude, `or` between alternatives. A query with no word to \
             look for, or an alternative that only excludes, is 422 \
             (`/problems/unprocessable`).",
            domain::MessageQuery::MAX_CHARS
        );
        vec![
            param("q", true, &q, rules::message_query(), None),
            param(
                "chatId",
                false,
                "Only this chat's messages.",
                rules::uuid(),
                None,
            ),
            param("limit", false, LIMIT, rules::page_limit(), None),
            param("cursor", false, CURSOR, rules::search_cursor(), None),
        ]
    }
}

/// A checked message search request.
#[derive(Debug)]
pub struct MessageSearchRequest {
    /// The chat to search in, if any.
    pub chat_id: Option<ChatId>,
    /// The query.
    pub query: domain::MessageQuery,
    /// The page.
    pub page: PageRequest<domain::MessageSearchCursor>,
}

impl MessageSearchQuery {
    /// The search: every malformed parameter in one 422 (`validation`); a well-formed
    /// query with nothing to look for is a 422 `unprocessable`.
    pub fn search(&self) -> Result<MessageSearchRequest, ApiError> {
        use domain::MessageQueryError;
        let mut f = Fields::default();
        let mut semantic = None;
        let query = match self.q.as_deref().map(domain::MessageQuery::parse) {
            None => {
                f.push("q", "is required");
                None
            }
            Some(Ok(q)) => Some(q),
            Some(Err(e @ MessageQueryError::Length)) => {
                f.push("q", e);
                None
            }
            Some(Err(e)) => {
                semantic = Some(e);
                None
            }
        };
        let chat = match self.chat_id.as_deref() {
            None => None,
            Some(raw) => chat_id(Some(raw), &mut f),
        };
        let limit = limit(self.limit.as_deref(), &mut f);
        let after = cursor(
            self.cursor.as_deref(),
            &mut f,
            domain::MessageSearchCursor::decode,
        );
        let chat = f.finish(|| Some(chat))?.transpose()?;
        if let Some(e) = semantic {
            return Err(ApiError::Unprocessable(vec![
                crate::error::FieldError::new("q", e),
            ]));
        }
        let query = query.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("query missing")))?;
        Ok(MessageSearchRequest {
            chat_id: chat,
            query,
            page: PageRequest { limit, after },
        })
    }
}
