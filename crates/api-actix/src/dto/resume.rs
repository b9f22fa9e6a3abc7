//! The parameters of `GET /api/v1/messages/{id}/stream`: where the client's copy of
//! the reply's text ends (`Last-Event-ID`, or `?after=`).

use super::query::param;
use crate::error::ApiError;
use serde::Deserialize;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::IntoParams;

/// At most 20 digits (`u64`); larger values saturate (past any reply's end).
const OFFSET_PATTERN: &str = "^[0-9]{1,20}$";

/// Query of `GET /api/v1/messages/{id}/stream`.
#[derive(Debug, Default, Deserialize)]
pub struct StreamQuery {
    /// A byte offset of the reply's text.
    pub after: Option<String>,
}

/// A byte offset as the client wrote it; `None` when malformed.
fn offset(raw: &str) -> Option<u64> {
    let ok = !raw.is_empty() && raw.len() <= 20 && raw.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| raw.parse::<u64>().unwrap_or(u64::MAX))
}

impl StreamQuery {
    /// Where the stream starts, with the `Last-Event-ID` header if the client sent one
    /// (it wins: `EventSource` sends it when it reconnects to the same URL).
    pub fn offset(&self, last_event_id: Option<&str>) -> Result<u64, ApiError> {
        let invalid = |field: &str, rule: &str| {
            ApiError::Validation(vec![crate::error::FieldError::new(field, rule)])
        };
        if let Some(id) = last_event_id {
            return match id {
                crate::routes::sse::END_ID => Ok(u64::MAX),
                other => offset(other).ok_or_else(|| {
                    invalid(
                        "Last-Event-ID",
                        "must be an id of this stream's events: a byte offset (digits) or `end`",
                    )
                }),
            };
        }
        match self.after.as_deref() {
            None => Ok(0),
            Some(raw) => {
                offset(raw).ok_or_else(|| invalid("after", "must be a byte offset: 1 to 20 digits"))
            }
        }
    }
}

fn string_with(pattern: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .pattern(Some(pattern))
}

impl IntoParams for StreamQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            param(
                "after",
                false,
                "The byte offset in the reply's text up to which the client has it (the \
                 `id` of the last `delta` received); the stream sends the text after it. \
                 Absent: from the start. `Last-Event-ID` wins when both are sent.",
                string_with(OFFSET_PATTERN),
                None,
            ),
            param(
                "Last-Event-ID",
                false,
                "The `id` of the last event received (what `EventSource` sends when it \
                 reconnects): a `delta`'s id (a byte offset) sends the text after it, `0` \
                 (the `message` event) all of it, `end` only the final event.",
                string_with("^([0-9]{1,20}|end)$"),
                Some(ParameterIn::Header),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(after: Option<&str>) -> StreamQuery {
        StreamQuery {
            after: after.map(str::to_owned),
        }
    }

    #[test]
    fn last_event_id_wins_end_is_everything_and_big_offsets_saturate() {
        assert_eq!(q(None).offset(None).unwrap(), 0);
        assert_eq!(q(Some("7")).offset(None).unwrap(), 7);
        assert_eq!(q(Some("7")).offset(Some("12")).unwrap(), 12);
        assert_eq!(q(None).offset(Some("end")).unwrap(), u64::MAX);
        assert_eq!(
            q(Some("99999999999999999999")).offset(None).unwrap(),
            u64::MAX
        );
        for bad in ["", "-1", "1.5", "abc", "123456789012345678901"] {
            assert!(q(Some(bad)).offset(None).is_err(), "{bad:?}");
            assert!(q(None).offset(Some(bad)).is_err(), "{bad:?}");
        }
    }
}
