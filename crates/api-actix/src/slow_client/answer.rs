//! The answers the connection guard writes itself (no request reached the service):
//! whole HTTP/1.1 responses carrying a problem document and a fresh request id.

use crate::error::ApiError;
use actix_http::error::ParseError;
use actix_web::ResponseError;
use bytes::Bytes;
use std::time::Duration;

/// The largest request head actix-http reads, in bytes.
pub(super) const MAX_HEAD_BYTES: usize = 131_072;
/// The most header fields actix-http reads.
pub(super) const MAX_HEAD_FIELDS: usize = 96;

/// A whole response the guard writes itself.
#[derive(Debug)]
pub(super) struct Answer {
    /// Its status.
    pub status: u16,
    /// The response, head and body.
    pub bytes: Bytes,
}

/// 408: the head did not arrive within `limit`.
pub(super) fn timeout(limit: Duration) -> Answer {
    render(&ApiError::RequestTimeout(limit.as_millis()))
}

/// The answer to a head actix-http's decoder refused, by the kind of its error.
pub(super) fn refused(e: &ParseError) -> Answer {
    let detail = match e {
        ParseError::TooLarge => {
            return render(&ApiError::HeadersTooLarge {
                bytes: MAX_HEAD_BYTES,
                fields: MAX_HEAD_FIELDS,
            })
        }
        ParseError::Method => "the request method is not valid",
        ParseError::Uri(_) => "the request target is not a valid URI",
        ParseError::Version => "the HTTP version is not supported",
        ParseError::Header => {
            "a header is malformed, Host is missing, or Content-Length and Transfer-Encoding are not valid together"
        }
        ParseError::Utf8(_) => "the request head is not valid UTF-8",
        _ => "the request is not valid HTTP/1.1",
    };
    render(&ApiError::BadRequest(detail.to_owned()))
}

fn render(err: &ApiError) -> Answer {
    let id = uuid::Uuid::now_v7().to_string();
    let status = err.status_code();
    let mut problem = err.problem();
    problem.request_id = Some(id.clone());
    tracing::info!(
        request_id = %id,
        status = status.as_u16(),
        detail = %problem.detail,
        "connection cut before a request reached the service"
    );
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT");
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\n\
         x-request-id: {id}\r\nconnection: close\r\ndate: {date}\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len(),
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Answer {
        status: status.as_u16(),
        bytes: Bytes::from(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(raw: &Answer) -> (String, serde_json::Value) {
        let text = std::str::from_utf8(&raw.bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        (head.to_owned(), serde_json::from_str(body).unwrap())
    }

    #[test]
    fn answers_are_whole_problem_responses() {
        let (head, body) = split(&timeout(Duration::from_millis(300)));
        assert!(
            head.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{head}"
        );
        assert!(head.contains("content-type: application/problem+json"));
        assert!(head.contains("connection: close"));
        let id = head
            .lines()
            .find_map(|l| l.strip_prefix("x-request-id: "))
            .unwrap();
        assert_eq!(body["requestId"], id);
        assert_eq!(body["status"], 408);
        assert_eq!(body["type"], "/problems/request-timeout");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, body.to_string().len());

        let (head, body) = split(&refused(&ParseError::TooLarge));
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert_eq!(body["type"], "/problems/headers-too-large");
        let (head, body) = split(&refused(&ParseError::Method));
        assert!(head.starts_with("HTTP/1.1 400 Bad Request"), "{head}");
        assert_eq!(body["detail"], "the request method is not valid");
    }
}
