//! A minimal Server-Sent Events splitter: feed it body chunks, take whole events out.

/// One event: its `event:` name (`message` when absent) and its joined `data:` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event name.
    pub name: String,
    /// The data (lines joined by `\n`).
    pub data: String,
}

/// Accumulates bytes and yields complete events (blocks ended by a blank line).
#[derive(Debug, Default)]
pub struct Splitter {
    buf: Vec<u8>,
}

impl Splitter {
    /// Adds a chunk of the body.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, if one is buffered.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let end = find_blank_line(&self.buf)?;
            let block: Vec<u8> = self.buf.drain(..end.0 + end.1).collect();
            let text = String::from_utf8_lossy(&block[..end.0]);
            let mut name = None;
            let mut data: Vec<&str> = Vec::new();
            for line in text.split('\n') {
                let line = line.strip_suffix('\r').unwrap_or(line);
                if let Some(v) = field(line, "event") {
                    name = Some(v.to_owned());
                } else if let Some(v) = field(line, "data") {
                    data.push(v);
                }
            }
            if name.is_none() && data.is_empty() {
                continue; // a comment or keep-alive block
            }
            return Some(Event {
                name: name.unwrap_or_else(|| "message".to_owned()),
                data: data.join("\n"),
            });
        }
    }
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(name)?.strip_prefix(':')?;
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// Position of the first blank line (`\n\n` or `\r\n\r\n`) and its length.
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_events_across_chunks() {
        let mut s = Splitter::default();
        s.push(b"event: message\ndata: {\"id\":1}\n\nevent: del");
        assert_eq!(
            s.next_event(),
            Some(Event {
                name: "message".into(),
                data: "{\"id\":1}".into()
            })
        );
        assert_eq!(s.next_event(), None);
        s.push(b"ta\ndata: x\n\n: keep-alive\n\ndata: [DONE]\r\n\r\n");
        assert_eq!(s.next_event().map(|e| e.name), Some("delta".into()));
        assert_eq!(s.next_event().map(|e| e.data), Some("[DONE]".into()));
        assert_eq!(s.next_event(), None);
    }
}
