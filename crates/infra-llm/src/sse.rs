//! An incremental Server-Sent Events decoder that follows the WHATWG "event stream
//! interpretation" rules exactly, fed with network reads split at any byte.
//!
//! Lines end with CRLF, LF or CR (a CRLF split across two reads is still one line
//! end); a line starting with `:` is a comment (keep-alive); `data:` lines of one
//! event are joined with `\n`; an empty line dispatches the event; a leading BOM is
//! skipped; an event not closed by an empty line when the stream ends is discarded.
//! Lines are decoded as UTF-8 only once complete, so a character split across
//! reads is never damaged.

use std::mem;

/// Largest event (data plus the line being read) the decoder accepts.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

const BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field; empty for the default type (`message`).
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// The stream carried an event larger than [`MAX_EVENT_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("server-sent event larger than {MAX_EVENT_BYTES} bytes")]
pub struct EventTooLarge;

/// The decoder's state between reads.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    after_cr: bool,
    first_line_done: bool,
    data: String,
    event: String,
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next read, appending the events it completes to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), EventTooLarge> {
        let mut rest = bytes;
        if self.after_cr {
            let Some(&first) = rest.first() else {
                return Ok(());
            };
            self.after_cr = false;
            if first == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.push_line_bytes(&rest[..pos])?;
            let terminator = rest[pos];
            rest = &rest[pos + 1..];
            if terminator == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            self.end_line(out);
        }
        self.push_line_bytes(rest)
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<(), EventTooLarge> {
        if self.line.len() + self.data.len() + bytes.len() > MAX_EVENT_BYTES {
            return Err(EventTooLarge);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let mut raw = mem::take(&mut self.line);
        if !self.first_line_done {
            self.first_line_done = true;
            if raw.starts_with(BOM) {
                raw.drain(..BOM.len());
            }
        }
        let line = String::from_utf8_lossy(&raw);
        if line.is_empty() {
            self.dispatch(out);
        } else if !line.starts_with(':') {
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line.as_ref(), ""),
            };
            match field {
                "data" => {
                    self.data.push_str(value);
                    self.data.push('\n');
                }
                "event" => value.clone_into(&mut self.event),
                // `id` and `retry` only matter to reconnecting clients, which we are not.
                _ => {}
            }
        }
        raw.clear();
        self.line = raw;
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.data.is_empty() {
            self.event.clear();
            return;
        }
        let mut data = mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        out.push(SseEvent {
            event: mem::take(&mut self.event),
            data,
        });
    }
}

#[cfg(test)]
mod tests;
