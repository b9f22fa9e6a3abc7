//! A raw TCP client for what reqwest cannot send: dribbled heads and bodies, malformed
//! requests, pipelining. A background task collects everything the server sends until it
//! closes the connection.

use crate::helpers::TestApp;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::task::JoinHandle;

/// The longest any raw test waits for the server (generous: the machine may be busy).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// One response read off the wire.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Asserts a problem document with this status and a request id matching the header.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:?}"
        );
        let body: Value = serde_json::from_slice(&self.body).unwrap();
        assert_eq!(body["status"], status);
        assert!(body["type"].as_str().unwrap().starts_with("/problems/"));
        let id = self.header("x-request-id").expect("x-request-id");
        assert_eq!(body["requestId"], id);
        body
    }
}

/// A connection to the app.
pub struct Raw {
    write: OwnedWriteHalf,
    seen: Arc<Mutex<Vec<u8>>>,
    reader: JoinHandle<()>,
}

impl Raw {
    pub async fn connect(app: &TestApp) -> Raw {
        let addr = app.address.trim_start_matches("http://");
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut read, write) = stream.into_split();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            // Ends at EOF, and on a reset (the connection is gone either way).
            while let Ok(n @ 1..) = read.read(&mut buf).await {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Raw {
            write,
            seen,
            reader,
        }
    }

    /// Sends bytes; false when the server no longer takes them.
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.write.write_all(bytes).await.is_ok()
    }

    /// Whether the server closed the connection.
    pub fn closed(&self) -> bool {
        self.reader.is_finished()
    }

    /// Sends `bytes` one at a time, `every` apart, until all are sent or the server has
    /// answered or closed; returns how many were sent.
    pub async fn dribble(&mut self, bytes: &[u8], every: Duration) -> usize {
        let before = self.seen.lock().unwrap().len();
        for (i, b) in bytes.iter().enumerate() {
            if self.closed() || self.seen.lock().unwrap().len() > before {
                return i;
            }
            if !self.send(&[*b]).await {
                return i;
            }
            tokio::time::sleep(every).await;
        }
        bytes.len()
    }

    /// Sends `bytes` again and again, `every` apart (at most `times` times), until the
    /// server closes or refuses them.
    pub async fn keep_sending(&mut self, bytes: &[u8], every: Duration, times: usize) {
        for _ in 0..times {
            if self.closed() || !self.send(bytes).await {
                return;
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Waits (up to [`PATIENCE`]) until `n` whole responses have arrived, or the
    /// connection closed; returns the responses.
    pub async fn responses(&self, n: usize) -> Vec<RawResponse> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let got = parse(&self.seen.lock().unwrap());
            if got.len() >= n || self.closed() || tokio::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (up to [`PATIENCE`]) for the server to close; returns everything it sent.
    pub async fn until_closed(self) -> (Vec<RawResponse>, bool) {
        let closed = tokio::time::timeout(PATIENCE, self.reader).await.is_ok();
        let seen = self.seen.lock().unwrap();
        (parse(&seen), closed)
    }
}

/// The body of a chunked message at the start of `bytes`, and the bytes it took.
fn dechunk(bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = at + bytes[at..].windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&bytes[at..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        let data = line_end + 2;
        if size == 0 {
            // No trailers are sent: the final CRLF ends the message.
            return (bytes.len() >= data + 2).then_some((body, data + 2));
        }
        if bytes.len() < data + size + 2 {
            return None;
        }
        body.extend_from_slice(&bytes[data..data + size]);
        at = data + size + 2;
    }
}

/// The whole responses in `bytes` (bodies framed by Content-Length or chunked, or empty).
pub fn parse(bytes: &[u8]) -> Vec<RawResponse> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_owned()))
            .collect();
        let start = end + 4;
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
        let (body, taken) = if chunked {
            match dechunk(&rest[start..]) {
                Some(found) => found,
                None => break,
            }
        } else {
            let len: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            if rest.len() < start + len {
                break;
            }
            (rest[start..start + len].to_vec(), len)
        };
        out.push(RawResponse {
            status,
            headers,
            body,
        });
        rest = &rest[start + taken..];
    }
    out
}
