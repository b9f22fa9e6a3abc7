//! The document's schemas of the values the domain checks, built from the domain's own
//! constants (lengths, ranges, character sets) so the OpenAPI document states exactly
//! the rules the value objects enforce. Used with `#[schema(schema_with = ...)]` on DTO
//! fields and by the hand-written `IntoParams` of the query types.

use domain::{
    ChatCursor, ChatId, ChatTitle, IdempotencyKey, MaxTokens, MessageContent, MessageCursor,
    ModelName, PageLimit, SearchQuery, SystemPrompt,
};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};

/// What `str::trim` removes: Unicode `White_Space`, spelled out (ECMA-262's `\s` differs).
const WHITE_SPACE: &str = r"\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";
/// What `char::is_control` refuses: general category Cc.
const CONTROL: &str = r"\u0000-\u001F\u007F-\u009F";
/// NUL alone.
const NUL: &str = r"\u0000";

/// The custom `format` of cursors: opaque text the service issued (`nextCursor`). A
/// schema cannot say which strings decode, so its `examples` are the valid values a
/// document-driven test may use.
pub const CURSOR_FORMAT: &str = "cursor";

fn string(nullable: bool) -> ObjectBuilder {
    let t = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::new(Type::String)
    };
    ObjectBuilder::new().schema_type(t)
}

/// A pattern for text that is trimmed, then must hold 1 to `max` characters, none of
/// them in `forbidden` (a character-class body).
fn trimmed_pattern(max: usize, forbidden: &str) -> String {
    let edge = format!("[^{WHITE_SPACE}{forbidden}]");
    format!(
        "^[{WHITE_SPACE}]*{edge}(?:[^{forbidden}]{{0,{}}}{edge})?[{WHITE_SPACE}]*$",
        max.saturating_sub(2)
    )
}

/// A chat title in a request (`null` or absent: unchanged, or "New chat" on create).
pub fn title() -> ObjectBuilder {
    string(true)
        .description(Some(format!(
            "Title: 1-{} characters once leading and trailing white space is trimmed \
             (the trimmed text is stored), no control characters. Absent or null: \
             unchanged (\"{}\" when creating).",
            ChatTitle::MAX_CHARS,
            ChatTitle::DEFAULT
        )))
        .pattern(Some(trimmed_pattern(ChatTitle::MAX_CHARS, CONTROL)))
        .examples(["Trip to Lisbon"])
}

/// A model name in a request.
pub fn model() -> ObjectBuilder {
    let punctuation: String = ModelName::PUNCTUATION
        .chars()
        .map(|c| match c {
            '-' | '/' | '\\' | ']' | '^' => format!("\\{c}"),
            c => c.to_string(),
        })
        .collect();
    string(true)
        .description(Some(format!(
            "Model name: 1-{} ASCII letters, digits and `{}`. Absent or null: the \
             service's default model.",
            ModelName::MAX_LEN,
            ModelName::PUNCTUATION
        )))
        .pattern(Some(format!(
            "^[A-Za-z0-9{punctuation}]{{1,{}}}$",
            ModelName::MAX_LEN
        )))
        .examples(["gpt-4o-mini"])
}

/// A system prompt in a request.
pub fn system_prompt() -> ObjectBuilder {
    string(true)
        .description(Some(format!(
            "System prompt, at most {} characters (empty: none), no NUL. Absent or \
             null: none.",
            SystemPrompt::MAX_CHARS
        )))
        .max_length(Some(SystemPrompt::MAX_CHARS))
        .pattern(Some(format!("^[^{NUL}]*$")))
}

/// A sampling temperature in a request.
pub fn temperature() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
        .description(Some(
            "Sampling temperature, 0 to 2 inclusive. Absent or null: the provider's default.",
        ))
        .minimum(Some(domain::Temperature::MIN))
        .maximum(Some(domain::Temperature::MAX))
}

/// A reply token limit in a request.
pub fn max_tokens() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .description(Some(format!(
            "Largest reply in tokens, 1 to {}. Absent or null: the provider's default.",
            MaxTokens::MAX
        )))
        .minimum(Some(1))
        .maximum(Some(MaxTokens::MAX))
}

/// A message's content in a request.
pub fn content() -> ObjectBuilder {
    string(false)
        .description(Some(format!(
            "Text: at most {} characters, not only white space, no NUL; stored exactly \
             as given.",
            MessageContent::MAX_CHARS
        )))
        .max_length(Some(MessageContent::MAX_CHARS))
        .pattern(Some(format!("^[^{NUL}]*[^{WHITE_SPACE}{NUL}][^{NUL}]*$")))
        .examples(["What should I see in Lisbon?"])
}

/// A page size.
pub fn page_limit() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(PageLimit::MAX))
        .default(Some(PageLimit::DEFAULT.into()))
}

fn cursor(example: String) -> ObjectBuilder {
    string(false)
        .format(Some(SchemaFormat::Custom(CURSOR_FORMAT.to_owned())))
        .max_length(Some(domain::MAX_CURSOR_LEN))
        .pattern(Some("^[A-Za-z0-9_-]*$"))
        .examples([example])
}

/// A fixed, well-formed position, so the examples (and the document) never change.
fn example_time() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default()
}

/// The cursor of the chat lists.
pub fn chat_cursor() -> ObjectBuilder {
    let id = ChatId::from_uuid(uuid::Uuid::from_u128(
        0x019b_7a4c_0000_7000_8000_0000_0000_0001,
    ));
    cursor(
        ChatCursor {
            updated_at: example_time(),
            id,
        }
        .encode(),
    )
}

/// The cursor of a chat's messages.
pub fn message_cursor() -> ObjectBuilder {
    cursor(MessageCursor { seq: 20 }.encode())
}

/// A message search (its words and operators are checked by the service: a query
/// without a word to look for is 422 `/problems/unprocessable`).
pub fn message_query() -> ObjectBuilder {
    string(false).pattern(Some(trimmed_pattern(domain::MessageQuery::MAX_CHARS, NUL)))
}

/// The cursor of message search results.
pub fn search_cursor() -> ObjectBuilder {
    let id = domain::MessageId::from_uuid(uuid::Uuid::from_u128(
        0x019b_7a4c_0000_7000_8000_0000_0000_0002,
    ));
    cursor(
        domain::MessageSearchCursor {
            relevance: 2,
            created_at: example_time(),
            id,
        }
        .encode(),
    )
}

/// A title search.
pub fn search_query() -> ObjectBuilder {
    string(false).pattern(Some(trimmed_pattern(SearchQuery::MAX_CHARS, NUL)))
}

/// The text form of an id: a hyphenated UUID, either case (what `ChatId::parse` reads).
pub const ID_PATTERN: &str =
    "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$";

/// An id (chats and messages are UUIDv7; another well-formed UUID names nothing: 404).
pub fn uuid() -> ObjectBuilder {
    string(false).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
}

/// The `Idempotency-Key` header.
pub fn idempotency_key() -> ObjectBuilder {
    string(false)
        .min_length(Some(1))
        .max_length(Some(IdempotencyKey::MAX_LEN))
        .pattern(Some(format!(
            "^[\\u0021-\\u007E]{{1,{}}}$",
            IdempotencyKey::MAX_LEN
        )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(b: ObjectBuilder) -> regex::Regex {
        let schema = serde_json::to_value(b.build()).unwrap();
        regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn the_title_pattern_is_the_title_rule() {
        let re = pattern(title());
        for s in [
            "a",
            "  padded\t",
            "\n lead",
            &"é".repeat(200),
            &format!("  {}  ", "x".repeat(200)),
            "a\u{0}b",
            "a\nb",
            "",
            " \t ",
            &"x".repeat(201),
            "\u{feff}",
            "x\u{85}",
            "\u{85}x",
            "a\u{2028}b",
        ] {
            assert_eq!(re.is_match(s), ChatTitle::parse(s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn the_query_pattern_is_the_search_rule() {
        let re = pattern(search_query());
        for s in [
            "a",
            " a ",
            "",
            "  ",
            "a\u{0}",
            &"q".repeat(200),
            &"q".repeat(201),
            "a\nb",
        ] {
            assert_eq!(re.is_match(s), SearchQuery::parse(s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn the_model_and_content_patterns_are_their_rules() {
        let re = pattern(model());
        for s in [
            "gpt-4o-mini",
            "meta-llama/Llama-3.1-8B:q4",
            "a b",
            "",
            "a]",
            "a\\b",
        ] {
            assert_eq!(re.is_match(s), ModelName::parse(s).is_ok(), "{s:?}");
        }
        let re = pattern(content());
        for s in ["x", " x ", " ", "", "a\u{0}", "\u{3000}"] {
            assert_eq!(re.is_match(s), MessageContent::parse(s).is_ok(), "{s:?}");
        }
        let re = pattern(system_prompt());
        for s in ["", "Be brief.", "a\u{0}", "\u{0}", "line\nbreak"] {
            assert_eq!(re.is_match(s), SystemPrompt::parse(s).is_ok(), "{s:?}");
        }
        let re = pattern(idempotency_key());
        for s in ["abc-123_XYZ", "", "has space", "ü"] {
            assert_eq!(re.is_match(s), IdempotencyKey::parse(s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn the_id_pattern_is_the_id_rule() {
        let re = regex::Regex::new(ID_PATTERN).unwrap();
        let v7 = uuid::Uuid::now_v7();
        for s in [
            v7.to_string(),
            v7.to_string().to_uppercase(),
            v7.urn().to_string(),
            v7.braced().to_string(),
            v7.simple().to_string(),
            format!("{v7}0"),
            "not-a-uuid".to_owned(),
        ] {
            assert_eq!(re.is_match(&s), ChatId::parse(&s).is_ok(), "{s}");
        }
    }

    #[test]
    fn the_cursor_examples_decode() {
        let c = serde_json::to_value(chat_cursor().build()).unwrap();
        assert!(ChatCursor::decode(c["examples"][0].as_str().unwrap()).is_ok());
        let m = serde_json::to_value(message_cursor().build()).unwrap();
        assert!(MessageCursor::decode(m["examples"][0].as_str().unwrap()).is_ok());
    }
}
