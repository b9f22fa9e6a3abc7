//! Message search: the query language (web-search style), how a query matches a message
//! and how relevant it is, the search cursor, and the plain-text snippet of a hit.
//!
//! A query is a list of items separated by white space:
//! - a word (`lisbon`): the message contains it;
//! - a `"quoted phrase"`: the message contains these words one after the other
//!   (an unquoted item made of several words, such as `foo-bar`, is a phrase too);
//! - `-` before a word or phrase: the message does not contain it;
//! - `or` between two items: either side. `or` binds looser than the implicit "and":
//!   `a b or c` means (a and b) or c. An `or` with nothing on one side is a word.
//!
//! Words are those of [`crate::model::text`]. Every alternative (the items between two
//! `or`s) needs at least one word that is not excluded. These are the semantics of
//! PostgreSQL's `websearch_to_tsquery` over the same words: [`MessageQuery::websearch`]
//! renders the parsed query in a canonical form that it reads exactly so.

use super::ids::{ChatId, MessageId};
use super::message_entity::Message;
use super::page::{decode, encode, storable_time, PageError};
use super::text::{query_words, words, WordIndex};
use super::ChatTitle;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Why a message search query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageQueryError {
    /// Empty, longer than [`MessageQuery::MAX_CHARS`], or holding NUL.
    #[error(
        "q must be 1-{} characters once trimmed, without NUL",
        MessageQuery::MAX_CHARS
    )]
    Length,
    /// No letter or digit to search for.
    #[error("q has no word to search for")]
    NoWords,
    /// An alternative only excludes words (it would match almost everything).
    #[error("each alternative of q needs a word that is not excluded with -")]
    OnlyExclusions,
}

/// One item of a query: a word or a phrase, wanted or excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    words: Vec<String>,
    excluded: bool,
}

/// A parsed message search query; see the module documentation for its language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageQuery {
    text: String,
    /// Alternatives (`or`), each a conjunction of items.
    groups: Vec<Vec<Item>>,
}

/// A raw item as written: its text, whether it was quoted, whether it had a `-`.
struct Raw<'a> {
    text: &'a str,
    quoted: bool,
    excluded: bool,
}

fn split(q: &str) -> Vec<Raw<'_>> {
    let mut out = Vec::new();
    let mut rest = q;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return out;
        }
        let excluded = rest.starts_with('-');
        if excluded {
            rest = &rest[1..];
        }
        if let Some(after) = rest.strip_prefix('"') {
            let end = after.find('"').unwrap_or(after.len());
            out.push(Raw {
                text: &after[..end],
                quoted: true,
                excluded,
            });
            rest = after.get(end + 1..).unwrap_or("");
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '"')
                .unwrap_or(rest.len());
            out.push(Raw {
                text: &rest[..end],
                quoted: false,
                excluded,
            });
            rest = &rest[end..];
        }
    }
}

impl MessageQuery {
    /// Longest query, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Parses a query.
    pub fn parse(q: &str) -> Result<Self, MessageQueryError> {
        let text = q.trim();
        if text.is_empty() || text.chars().count() > Self::MAX_CHARS || text.contains('\0') {
            return Err(MessageQueryError::Length);
        }
        let raws = split(text);
        let mut groups: Vec<Vec<Item>> = vec![Vec::new()];
        for (i, raw) in raws.iter().enumerate() {
            let is_or = !raw.quoted && !raw.excluded && raw.text.eq_ignore_ascii_case("or");
            let current_has_items = groups.last().is_some_and(|g| !g.is_empty());
            if is_or && current_has_items && i + 1 < raws.len() {
                groups.push(Vec::new());
                continue;
            }
            let ws = query_words(raw.text);
            if ws.is_empty() {
                continue;
            }
            if let Some(g) = groups.last_mut() {
                g.push(Item {
                    words: ws,
                    excluded: raw.excluded,
                });
            }
        }
        groups.retain(|g| !g.is_empty());
        if groups.is_empty() {
            return Err(MessageQueryError::NoWords);
        }
        if groups.iter().any(|g| g.iter().all(|i| i.excluded)) {
            return Err(MessageQueryError::OnlyExclusions);
        }
        Ok(Self {
            text: text.to_owned(),
            groups,
        })
    }

    /// The query as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The canonical form for PostgreSQL's `websearch_to_tsquery`: every item quoted
    /// (so a word such as `or` stays a word), `-` for exclusions, alternatives joined
    /// by ` or `. Words are letters and digits only, so nothing needs escaping.
    pub fn websearch(&self) -> String {
        self.groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|i| {
                        format!(
                            "{}\"{}\"",
                            if i.excluded { "-" } else { "" },
                            i.words.join(" ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join(" or ")
    }

    /// The distinct words the query looks for (not those it excludes), in order.
    pub fn wanted_words(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for w in self
            .groups
            .iter()
            .flatten()
            .filter(|i| !i.excluded)
            .flat_map(|i| &i.words)
        {
            if !out.contains(w) {
                out.push(w.clone());
            }
        }
        out
    }

    /// Whether the query only asks for words that must all occur: no phrase, no
    /// exclusion, no `or` (a storage may then answer from a word index alone).
    pub fn words_only(&self) -> bool {
        matches!(self.groups.as_slice(), [g] if g.iter().all(|i| !i.excluded && i.words.len() == 1))
    }

    /// Whether a message with these words matches (the reference semantics).
    pub fn matches(&self, index: &WordIndex) -> bool {
        self.groups.iter().any(|g| {
            g.iter().all(|i| {
                let found = match i.words.as_slice() {
                    [w] => !index.positions(w).is_empty(),
                    ws => index.has_phrase(ws),
                };
                found != i.excluded
            })
        })
    }

    /// How relevant a matching message is: how many times the wanted words occur in
    /// it (each word's positions, as [`WordIndex`] keeps them).
    pub fn relevance(&self, index: &WordIndex) -> u32 {
        self.wanted_words()
            .iter()
            .map(|w| u32::try_from(index.positions(w).len()).unwrap_or(u32::MAX))
            .fold(0, u32::saturating_add)
    }
}

/// Position in a search result list, ordered by relevance, then newest first: the
/// last hit of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSearchCursor {
    /// Relevance of the last hit.
    #[serde(rename = "r")]
    pub relevance: u32,
    /// Its `created_at`.
    #[serde(rename = "u")]
    pub created_at: DateTime<Utc>,
    /// Its id, the last tie-breaker.
    #[serde(rename = "i")]
    pub id: MessageId,
}

impl MessageSearchCursor {
    /// Highest relevance a cursor may carry (what storage can hold).
    pub const MAX_RELEVANCE: u32 = i32::MAX as u32;

    /// The cursor just after `hit`.
    pub fn after(hit: &SearchRow) -> Self {
        Self {
            relevance: hit.relevance,
            created_at: hit.message.created_at(),
            id: hit.message.id(),
        }
    }

    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        encode(self)
    }

    /// Reads the opaque text form; values out of range are refused like garbage.
    pub fn decode(s: &str) -> Result<Self, PageError> {
        let c: Self = decode(s)?;
        if c.relevance > Self::MAX_RELEVANCE || !storable_time(&c.created_at) {
            return Err(PageError::BadCursor);
        }
        Ok(c)
    }
}

/// A matching message as storage returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRow {
    /// The message.
    pub message: Message,
    /// Its chat's title.
    pub chat_title: ChatTitle,
    /// Its relevance ([`MessageQuery::relevance`]).
    pub relevance: u32,
}

/// A match inside a snippet: character offsets (Unicode code points), end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Highlight {
    /// First character of the match.
    pub start: u32,
    /// Just after its last character.
    pub end: u32,
}

/// A short plain-text excerpt of a message around its first match, with every wanted
/// word in it located by character offsets. Never markup: the client highlights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snippet {
    /// The excerpt: white space runs collapsed to one space, `…` where text was cut.
    pub text: String,
    /// The wanted words in `text`, in order.
    pub matches: Vec<Highlight>,
}

impl Snippet {
    /// Longest excerpt of the message, in characters (before the `…` marks).
    pub const MAX_CHARS: usize = 200;
    /// Characters of context kept before the first match.
    pub const CONTEXT_CHARS: usize = 60;

    /// The snippet of `content` for `query`.
    pub fn build(content: &str, query: &MessageQuery) -> Self {
        let wanted = query.wanted_words();
        let chars: Vec<(usize, char)> = content.char_indices().collect();
        let char_at = |byte: usize| chars.partition_point(|(b, _)| *b < byte);
        let hits: Vec<(usize, usize)> = words(content)
            .into_iter()
            .filter(|w| wanted.contains(&w.text))
            .map(|w| (char_at(w.start), char_at(w.end)))
            .collect();
        let first = hits.first().map_or(0, |h| h.0);
        // Context before the match, but no less text than fits when the end is near.
        let mut from = first
            .saturating_sub(Self::CONTEXT_CHARS)
            .min(chars.len().saturating_sub(Self::MAX_CHARS));
        // Start at a word boundary (after a space), unless that passes the match.
        while from > 0 && from < first && !chars[from - 1].1.is_whitespace() {
            from += 1;
        }
        let mut to = (from + Self::MAX_CHARS).min(chars.len());
        if to < chars.len() {
            // Cut at a space, but never before the end of the first match.
            let keep = hits.first().map_or(from + 1, |h| h.1).max(from + 1);
            if let Some(space) = (keep..to).rev().find(|i| chars[*i].1.is_whitespace()) {
                to = space;
            }
        }
        let mut text = String::new();
        let mut map = vec![0u32; to.saturating_sub(from) + 1];
        let mut n: u32 = 0;
        if from > 0 {
            text.push('…');
            n += 1;
        }
        let mut pending_space = false;
        for (k, i) in (from..to).enumerate() {
            let c = chars[i].1;
            if c.is_whitespace() {
                pending_space = n > 0;
                map[k] = n;
                continue;
            }
            if pending_space {
                text.push(' ');
                n += 1;
                pending_space = false;
            }
            map[k] = n;
            text.push(c);
            n += 1;
        }
        if let Some(last) = map.last_mut() {
            *last = n;
        }
        if to < chars.len() {
            text.push('…');
        }
        let matches = hits
            .iter()
            .filter(|(s, e)| *s >= from && *e <= to)
            .map(|(s, e)| Highlight {
                start: map[s - from],
                end: map[e - 1 - from] + 1,
            })
            .collect();
        Self { text, matches }
    }
}

/// One search result: the message, its chat, how relevant it is, and its snippet.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The message.
    pub message: Message,
    /// Its chat's id.
    pub chat_id: ChatId,
    /// Its chat's title.
    pub chat_title: ChatTitle,
    /// Its relevance.
    pub relevance: u32,
    /// The excerpt with its matches.
    pub snippet: Snippet,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> MessageQuery {
        MessageQuery::parse(s).unwrap()
    }

    #[test]
    fn rendering_is_canonical_websearch() {
        assert_eq!(q("Lisbon  FOOD").websearch(), r#""lisbon" "food""#);
        assert_eq!(
            q(r#"a b or c -d "E f" -"g h""#).websearch(),
            r#""a" "b" or "c" -"d" "e f" -"g h""#
        );
        assert_eq!(q("foo-bar").websearch(), r#""foo bar""#);
        assert_eq!(q("or").websearch(), r#""or""#);
        assert_eq!(q("a or").websearch(), r#""a" "or""#);
        assert_eq!(q(r#"a "or" b"#).websearch(), r#""a" "or" "b""#);
        assert_eq!(q("a or or b").websearch(), r#""a" or "or" "b""#);
    }

    #[test]
    fn words_only_is_a_conjunction_of_single_words() {
        assert!(q("Lisbon food").words_only());
        assert!(
            q(r#""lisbon" food"#).words_only(),
            "a quoted word is a word"
        );
        assert!(q("a or").words_only(), "a trailing or is a word");
        for s in ["a b or c", "a -b", r#""a b""#, "foo-bar"] {
            assert!(!q(s).words_only(), "{s}");
        }
    }

    #[test]
    fn refused_queries() {
        assert_eq!(MessageQuery::parse("  "), Err(MessageQueryError::Length));
        assert_eq!(
            MessageQuery::parse(&"a".repeat(201)),
            Err(MessageQueryError::Length)
        );
        assert_eq!(
            MessageQuery::parse("!!! -"),
            Err(MessageQueryError::NoWords)
        );
        assert_eq!(
            MessageQuery::parse("-secret"),
            Err(MessageQueryError::OnlyExclusions)
        );
        assert_eq!(
            MessageQuery::parse("a or -b"),
            Err(MessageQueryError::OnlyExclusions)
        );
    }

    #[test]
    fn matching_and_relevance() {
        let idx = WordIndex::new("The SQL query: SELECT * FROM t; the query runs fast");
        assert!(q("sql").matches(&idx));
        assert!(q("SQL query").matches(&idx));
        assert!(q(r#""sql query""#).matches(&idx));
        assert!(!q(r#""query sql""#).matches(&idx));
        assert!(!q("sql -fast").matches(&idx));
        assert!(q("python or fast").matches(&idx));
        assert!(!q("python").matches(&idx));
        assert!(!q("que").matches(&idx), "whole words only");
        assert_eq!(q("query the").relevance(&idx), 4);
        assert_eq!(q("query -python").relevance(&idx), 2);
    }

    #[test]
    fn cursor_round_trip_and_range() {
        let c = MessageSearchCursor {
            relevance: 3,
            created_at: Utc::now(),
            id: MessageId::new(),
        };
        assert_eq!(MessageSearchCursor::decode(&c.encode()), Ok(c));
        let big = MessageSearchCursor {
            relevance: u32::MAX,
            ..c
        };
        assert_eq!(
            MessageSearchCursor::decode(&big.encode()),
            Err(PageError::BadCursor)
        );
        assert_eq!(
            MessageSearchCursor::decode("garbage"),
            Err(PageError::BadCursor)
        );
        let ancient = MessageSearchCursor {
            created_at: "-5000-01-01T00:00:00Z".parse().unwrap(),
            ..c
        };
        assert_eq!(
            MessageSearchCursor::decode(&ancient.encode()),
            Err(PageError::BadCursor)
        );
    }

    #[test]
    fn snippet_is_plain_text_around_the_first_match() {
        let s = Snippet::build("Hello <b>World</b>,\n\n  the world is big", &q("world"));
        assert_eq!(s.text, "Hello <b>World</b>, the world is big");
        let found: Vec<String> = s
            .matches
            .iter()
            .map(|h| {
                s.text
                    .chars()
                    .skip(h.start as usize)
                    .take((h.end - h.start) as usize)
                    .collect()
            })
            .collect();
        assert_eq!(found, ["World", "world"]);
    }

    #[test]
    fn long_content_is_cut_with_marks_and_offsets_count_characters() {
        let content = format!("{} élan vital {}", "début ".repeat(40), "fin ".repeat(100));
        let s = Snippet::build(&content, &q("VITAL"));
        assert!(
            s.text.starts_with('…') && s.text.ends_with('…'),
            "{}",
            s.text
        );
        assert!(s.text.chars().count() <= Snippet::MAX_CHARS + 2);
        let h = s.matches[0];
        let word: String = s
            .text
            .chars()
            .skip(h.start as usize)
            .take((h.end - h.start) as usize)
            .collect();
        assert_eq!(word, "vital");
    }

    #[test]
    fn a_message_that_fits_is_not_cut() {
        let content = format!("{}needle", "word ".repeat(30));
        let s = Snippet::build(&content, &q("needle"));
        assert_eq!(s.text, content);
        assert_eq!(
            s.matches,
            [Highlight {
                start: 150,
                end: 156
            }]
        );
    }

    #[test]
    fn no_match_gives_the_start() {
        let s = Snippet::build("short text", &q("absent"));
        assert_eq!(s.text, "short text");
        assert!(s.matches.is_empty());
    }
}
