//! W3C Trace Context: a `traceparent` header whose trace id is derived from our request id.

/// A `traceparent` value (`00-{trace id}-{parent id}-01`) for a call made on behalf
/// of `request_id`, with a fresh parent (span) id.
pub(crate) fn traceparent(request_id: &str) -> String {
    let span: u64 = loop {
        let s: u64 = rand::random();
        if s != 0 {
            break s;
        }
    };
    format!("00-{}-{span:016x}-01", trace_id(request_id))
}

/// 32 lowercase hex digits, never all zero: the request id itself when it is a
/// UUID or 32 hex digits, otherwise a stable 128-bit FNV-1a hash of it.
pub(crate) fn trace_id(request_id: &str) -> String {
    let hex: String = request_id.chars().filter(|c| *c != '-').collect();
    if hex.len() == 32
        && hex.chars().all(|c| c.is_ascii_hexdigit())
        && hex.chars().any(|c| c != '0')
    {
        return hex.to_ascii_lowercase();
    }
    let high = fnv1a(request_id.as_bytes(), 0xcbf2_9ce4_8422_2325);
    let low = fnv1a(request_id.as_bytes(), 0x6c62_272e_07bb_0142);
    let low = if high == 0 && low == 0 { 1 } else { low };
    format!("{high:016x}{low:016x}")
}

fn fnv1a(bytes: &[u8], basis: u64) -> u64 {
    bytes.iter().fold(basis, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_valid(tp: &str) -> bool {
        let parts: Vec<&str> = tp.split('-').collect();
        parts.len() == 4
            && parts[0] == "00"
            && parts[1].len() == 32
            && parts[2].len() == 16
            && parts[3] == "01"
            && parts[1..3].iter().all(|p| {
                p.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
                    && p.chars().any(|c| c != '0')
            })
    }

    #[test]
    fn a_uuid_request_id_is_the_trace_id() {
        let tp = traceparent("0190A5B2-7C3D-7E4F-8A1B-2C3D4E5F6A7B");
        assert!(is_valid(&tp), "{tp}");
        assert!(tp.starts_with("00-0190a5b27c3d7e4f8a1b2c3d4e5f6a7b-"));
    }

    #[test]
    fn other_ids_hash_stably() {
        assert_eq!(trace_id("req-1"), trace_id("req-1"));
        assert_ne!(trace_id("req-1"), trace_id("req-2"));
        for id in ["", "req-1", "00000000-0000-0000-0000-000000000000", "ü"] {
            assert!(is_valid(&traceparent(id)), "{id}");
        }
    }
}
