//! Keyset pagination: page sizes, opaque cursors and title search queries.

use super::ids::ChatId;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Datelike, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// How many items a page holds: 1 to 100, 20 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u32);

/// Why a page request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// The limit is not between 1 and [`PageLimit::MAX`].
    #[error("limit must be between 1 and {}", PageLimit::MAX)]
    LimitOutOfRange,
    /// The cursor was not produced by this service (or was altered).
    #[error("the cursor is not valid")]
    BadCursor,
    /// The search query is empty or too long.
    #[error("q must be 1-{} characters", SearchQuery::MAX_CHARS)]
    BadQuery,
}

impl PageLimit {
    /// Largest page.
    pub const MAX: u32 = 100;
    /// Page size when none is asked for.
    pub const DEFAULT: u32 = 20;

    /// Checks a page size.
    pub fn new(n: u32) -> Result<Self, PageError> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(PageError::LimitOutOfRange)
        }
    }

    /// The size.
    pub fn get(&self) -> u32 {
        self.0
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

pub(super) fn encode<T: Serialize>(v: &T) -> String {
    // Serializing these plain structs cannot fail; an empty cursor would be refused on decode.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default())
}

/// Longest cursor text accepted (cursors are URL-safe base64 without padding).
pub const MAX_CURSOR_LEN: usize = 512;

pub(super) fn decode<T: DeserializeOwned>(s: &str) -> Result<T, PageError> {
    if s.len() > MAX_CURSOR_LEN {
        return Err(PageError::BadCursor);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| PageError::BadCursor)?;
    serde_json::from_slice(&bytes).map_err(|_| PageError::BadCursor)
}

/// Whether an instant in a cursor is one storage can hold and the API can render: years
/// 1 to 9999 (RFC 3339's four-digit years; PostgreSQL's `timestamptz` holds more, but
/// nothing the service ever stored lies outside them). A decoded cursor with a time
/// outside is refused like garbage.
pub(super) fn storable_time(t: &DateTime<Utc>) -> bool {
    (1..=9999).contains(&t.year())
}

/// Position in a list of chats ordered by last activity, newest first: the last
/// chat of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatCursor {
    /// `updated_at` of the last chat seen.
    #[serde(rename = "u")]
    pub updated_at: DateTime<Utc>,
    /// Its id, the tie-breaker.
    #[serde(rename = "i")]
    pub id: ChatId,
}

impl ChatCursor {
    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        encode(self)
    }

    /// Reads the opaque text form; a time out of range is refused like garbage.
    pub fn decode(s: &str) -> Result<Self, PageError> {
        let c: Self = decode(s)?;
        if !storable_time(&c.updated_at) {
            return Err(PageError::BadCursor);
        }
        Ok(c)
    }
}

/// Position in a chat's messages (conversation order): the `seq` of the last message seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageCursor {
    /// `seq` of the last message of the previous page.
    #[serde(rename = "s")]
    pub seq: u32,
}

impl MessageCursor {
    /// Highest `seq` a cursor may carry (what storage can hold).
    pub const MAX_SEQ: u32 = i32::MAX as u32;

    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        encode(self)
    }

    /// Reads the opaque text form; a `seq` out of range is refused like garbage.
    pub fn decode(s: &str) -> Result<Self, PageError> {
        let c: Self = decode(s)?;
        if c.seq > Self::MAX_SEQ {
            return Err(PageError::BadCursor);
        }
        Ok(c)
    }
}

/// A page request: how many, and after which item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageRequest<C> {
    /// Page size.
    pub limit: PageLimit,
    /// Start after this position; from the start when `None`.
    pub after: Option<C>,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, C> {
    /// The items, in list order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<C>,
}

/// A title search: case-insensitive substring, 1 to 200 characters (trimmed).
/// `%` and `_` are matched literally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery(String);

impl SearchQuery {
    /// Longest query, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Trims and checks a query.
    pub fn parse(s: &str) -> Result<Self, PageError> {
        let t = s.trim();
        if t.is_empty() || t.chars().count() > Self::MAX_CHARS || t.contains('\0') {
            return Err(PageError::BadQuery);
        }
        Ok(Self(t.to_owned()))
    }

    /// The query text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `title` contains the query, ignoring case (the reference semantics
    /// every storage adapter must match).
    pub fn matches(&self, title: &str) -> bool {
        title.to_lowercase().contains(&self.0.to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert!(PageLimit::new(0).is_err());
        assert!(PageLimit::new(101).is_err());
        assert_eq!(PageLimit::new(100).map(|l| l.get()), Ok(100));
        assert_eq!(PageLimit::default().get(), 20);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = ChatCursor {
            updated_at: Utc::now(),
            id: ChatId::new(),
        };
        assert_eq!(ChatCursor::decode(&c.encode()), Ok(c));
        let m = MessageCursor { seq: 42 };
        assert_eq!(MessageCursor::decode(&m.encode()), Ok(m));
        assert_eq!(MessageCursor::decode("!!!"), Err(PageError::BadCursor));
        assert_eq!(ChatCursor::decode(&m.encode()), Err(PageError::BadCursor));
        assert_eq!(
            ChatCursor::decode(&"A".repeat(600)),
            Err(PageError::BadCursor)
        );
    }

    #[test]
    fn cursors_out_of_the_storable_range_are_refused() {
        let id = ChatId::new();
        for text in [
            "-5000-01-01T00:00:00Z",
            "0000-12-31T23:59:59Z",
            "+10000-01-01T00:00:00Z",
        ] {
            let t: DateTime<Utc> = text.parse().unwrap();
            let c = ChatCursor { updated_at: t, id };
            assert_eq!(
                ChatCursor::decode(&c.encode()),
                Err(PageError::BadCursor),
                "{text}"
            );
        }
        for text in ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"] {
            let t: DateTime<Utc> = text.parse().unwrap();
            let c = ChatCursor { updated_at: t, id };
            assert_eq!(ChatCursor::decode(&c.encode()), Ok(c), "{text}");
        }
        let far = MessageCursor { seq: u32::MAX };
        assert_eq!(
            MessageCursor::decode(&far.encode()),
            Err(PageError::BadCursor)
        );
        let last = MessageCursor {
            seq: MessageCursor::MAX_SEQ,
        };
        assert_eq!(MessageCursor::decode(&last.encode()), Ok(last));
    }

    #[test]
    fn search_is_case_insensitive_and_literal() {
        let q = SearchQuery::parse(" LisBON ").unwrap();
        assert!(q.matches("Trip to lisbon"));
        assert!(!q.matches("Porto"));
        let pct = SearchQuery::parse("100%").unwrap();
        assert!(pct.matches("We are 100% sure"));
        assert!(!pct.matches("1000 ways"));
        assert!(SearchQuery::parse("  ").is_err());
    }
}
