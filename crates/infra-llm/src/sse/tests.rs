//! Tests of the SSE decoder: the format's rules one by one, and properties over
//! arbitrary splits of the byte stream.

use super::*;
use proptest::prelude::*;

fn decode_all(parts: &[&[u8]]) -> Vec<SseEvent> {
    let mut decoder = SseDecoder::new();
    let mut out = Vec::new();
    for part in parts {
        decoder.feed(part, &mut out).unwrap();
    }
    out
}

fn data(d: &str) -> SseEvent {
    SseEvent {
        event: String::new(),
        data: d.into(),
    }
}

#[test]
fn one_event_per_blank_line() {
    let events = decode_all(&[b"data: a\n\ndata: b\n\n"]);
    assert_eq!(events, vec![data("a"), data("b")]);
}

#[test]
fn comments_are_skipped() {
    let events = decode_all(&[b": keep-alive\n\n:\ndata: x\n: inside\n\n"]);
    assert_eq!(events, vec![data("x")]);
}

#[test]
fn multi_line_data_is_joined_with_newlines() {
    let events = decode_all(&[b"data: first\ndata:second\ndata\ndata:  indented\n\n"]);
    assert_eq!(events, vec![data("first\nsecond\n\n indented")]);
}

#[test]
fn crlf_cr_and_lf_line_endings() {
    let events = decode_all(&[b"data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d\r\n\n"]);
    assert_eq!(events, vec![data("a"), data("b"), data("c"), data("d")]);
}

#[test]
fn crlf_split_across_reads_is_one_line_end() {
    let events = decode_all(&[b"data: a\r", b"\n", b"\r", b"\ndata: b\r", b"\r", b""]);
    assert_eq!(events, vec![data("a"), data("b")]);
}

#[test]
fn utf8_character_split_across_reads() {
    let text = "data: héllo 🌍\n\n".as_bytes();
    let (a, b) = text.split_at(9); // inside 'é'
    let (b, c) = b.split_at(6); // inside the emoji
    assert_eq!(decode_all(&[a, b, c]), vec![data("héllo 🌍")]);
}

#[test]
fn event_field_and_unknown_fields() {
    let events =
        decode_all(&[b"event: error\nid: 7\nretry: 10\nfoo: bar\ndata: {}\n\ndata: x\n\n"]);
    assert_eq!(
        events,
        vec![
            SseEvent {
                event: "error".into(),
                data: "{}".into()
            },
            data("x")
        ]
    );
}

#[test]
fn empty_data_field_still_dispatches_and_no_data_does_not() {
    let events = decode_all(&[b"event: ping\n\ndata:\n\n"]);
    assert_eq!(events, vec![data("")]);
}

#[test]
fn leading_bom_is_skipped_even_when_split() {
    let body = b"\xEF\xBB\xBFdata: a\n\n";
    assert_eq!(
        decode_all(&[&body[..1], &body[1..2], &body[2..]]),
        vec![data("a")]
    );
}

#[test]
fn unterminated_event_at_end_is_not_dispatched() {
    assert_eq!(decode_all(&[b"data: a\n\ndata: b\n"]), vec![data("a")]);
}

#[test]
fn huge_event_is_refused() {
    let mut decoder = SseDecoder::new();
    let mut out = Vec::new();
    let chunk = vec![b'x'; 1024 * 1024];
    let result = (0..8).try_for_each(|_| decoder.feed(&chunk, &mut out));
    assert_eq!(result, Err(EventTooLarge));
}

/// A well-formed stream: events of data lines with comments mixed in, each line
/// ended by a random terminator (never a CR directly before an LF-ended empty
/// line, which the format itself would read as one CRLF).
fn well_formed() -> impl Strategy<Value = (Vec<u8>, Vec<String>)> {
    let line_text = "[a-z {}\":,é🌍\\[\\]]{0,12}";
    let event = (prop::collection::vec(line_text, 1..4), any::<bool>());
    (
        prop::collection::vec(event, 0..6),
        prop::collection::vec(0u8..3, 64),
    )
        .prop_map(|(events, endings)| {
            let mut lines: Vec<String> = Vec::new();
            let mut expected = Vec::new();
            for (data_lines, with_comment) in events {
                if with_comment {
                    lines.push(": keep-alive".into());
                }
                for l in &data_lines {
                    lines.push(format!("data: {l}"));
                }
                lines.push(String::new());
                expected.push(data_lines.join("\n"));
            }
            let mut body = Vec::new();
            let mut previous_cr = false;
            for (i, line) in lines.iter().enumerate() {
                body.extend_from_slice(line.as_bytes());
                let mut ending = endings[i % endings.len()];
                if previous_cr && line.is_empty() && ending == 1 {
                    ending = 0;
                }
                let terminator: &[u8] = match ending {
                    0 => b"\r\n",
                    1 => b"\n",
                    _ => b"\r",
                };
                body.extend_from_slice(terminator);
                previous_cr = ending == 2;
            }
            (body, expected)
        })
}

fn split_at_points(body: &[u8], mut points: Vec<usize>) -> Vec<&[u8]> {
    points.iter_mut().for_each(|p| *p %= body.len() + 1);
    points.sort_unstable();
    let mut parts = Vec::new();
    let mut start = 0;
    for p in points {
        parts.push(&body[start..p]);
        start = p;
    }
    parts.push(&body[start..]);
    parts
}

proptest! {
    #[test]
    fn splitting_anywhere_yields_the_same_events(
        (body, expected) in well_formed(),
        points in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let whole: Vec<String> = decode_all(&[&body]).into_iter().map(|e| e.data).collect();
        prop_assert_eq!(&whole, &expected);
        let split: Vec<String> = decode_all(&split_at_points(&body, points)).into_iter().map(|e| e.data).collect();
        prop_assert_eq!(split, expected);
    }

    #[test]
    fn byte_by_byte_equals_whole_for_any_bytes(
        body in prop::collection::vec(prop::sample::select(b"data: x\r\n:\xC3\xA9\xEF\xBB\xBFevent".to_vec()), 0..200),
        points in prop::collection::vec(any::<usize>(), 0..30),
    ) {
        let whole = decode_all(&[&body]);
        let split = decode_all(&split_at_points(&body, points));
        prop_assert_eq!(&split, &whole);
        let singles: Vec<&[u8]> = body.chunks(1).collect();
        prop_assert_eq!(decode_all(&singles), whole);
    }
}
