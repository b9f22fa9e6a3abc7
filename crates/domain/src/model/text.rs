//! How message text is cut into words for search: the one definition both storage
//! adapters follow (PostgreSQL builds its `tsvector` from the same words).
//!
//! - A **word** is a maximal run of letters and decimal digits of any script (Unicode
//!   alphabetic characters and decimal digits). Everything else separates words:
//!   spaces, punctuation, symbols, `_`, `-`, `@`, `.`, and numeric symbols that are not
//!   decimal digits (`½`, `²`, `①`). So `snake_case` is `snake` + `case`,
//!   `bob@example.com` is `bob` + `example` + `com`, `abc123` is one word.
//! - Words are compared in lowercase (each character's own lowercase form).
//! - Words longer than [`MAX_WORD_BYTES`] bytes are not indexed (PostgreSQL's limit).
//! - Each word has a position (1, 2, 3…); positions above [`MAX_POSITION`] all count
//!   as [`MAX_POSITION`], and a word keeps at most [`MAX_POSITIONS_PER_WORD`]
//!   positions (PostgreSQL's `tsvector` limits): they bound phrase matches and
//!   relevance in very long messages the same way in every adapter.

use std::collections::HashMap;

/// Longest word indexed, in bytes of UTF-8.
pub const MAX_WORD_BYTES: usize = 2047;
/// Highest word position kept.
pub const MAX_POSITION: u32 = 16_383;
/// Most positions kept per word.
pub const MAX_POSITIONS_PER_WORD: usize = 255;

/// Numeric symbols that are not decimal digits (Unicode category `No`, the common
/// blocks): superscripts, fractions, circled and parenthesized numbers.
const OTHER_NUMBERS: &[(u32, u32)] = &[
    (0x00B2, 0x00B3),
    (0x00B9, 0x00B9),
    (0x00BC, 0x00BE),
    (0x2070, 0x2079),
    (0x2080, 0x2089),
    (0x2150, 0x215F),
    (0x2189, 0x2189),
    (0x2460, 0x24FF),
    (0x2776, 0x2793),
    (0x2CFD, 0x2CFD),
    (0x3192, 0x3195),
    (0x3220, 0x3229),
    (0x3248, 0x325F),
    (0x3280, 0x3289),
    (0x32B1, 0x32BF),
    (0x1F100, 0x1F10C),
];

/// Whether `c` belongs to a word.
pub fn is_word_char(c: char) -> bool {
    if c.is_alphabetic() {
        return true;
    }
    if !c.is_numeric() {
        return false;
    }
    let n = u32::from(c);
    !OTHER_NUMBERS
        .iter()
        .any(|(lo, hi)| (*lo..=*hi).contains(&n))
}

/// The lowercase form of one character (its first character when lowercasing expands).
fn lower(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// A word of a text: where it is (byte range) and its lowercase form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset just after its last character.
    pub end: usize,
    /// The word in lowercase.
    pub text: String,
}

/// The words of `text`, in order (including those too long to be indexed).
pub fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, c) in text.char_indices() {
        if is_word_char(c) {
            current
                .get_or_insert_with(|| (i, String::new()))
                .1
                .push(lower(c));
        } else if let Some((start, w)) = current.take() {
            out.push(Word {
                start,
                end: i,
                text: w,
            });
        }
    }
    if let Some((start, w)) = current {
        out.push(Word {
            start,
            end: text.len(),
            text: w,
        });
    }
    out
}

/// The lowercase words of `text`, as a search query uses them (indexed words only).
pub fn query_words(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .filter(|w| w.text.len() <= MAX_WORD_BYTES)
        .map(|w| w.text)
        .collect()
}

/// The indexed words of a text with their positions: what PostgreSQL's `tsvector`
/// holds for it, and what the in-memory adapter matches queries against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WordIndex {
    positions: HashMap<String, Vec<u32>>,
}

impl WordIndex {
    /// Indexes `text`.
    pub fn new(text: &str) -> Self {
        let mut positions: HashMap<String, Vec<u32>> = HashMap::new();
        let mut pos: u32 = 0;
        for w in words(text) {
            if w.text.len() > MAX_WORD_BYTES {
                continue;
            }
            pos = (pos + 1).min(MAX_POSITION);
            let list = positions.entry(w.text).or_default();
            if list.len() < MAX_POSITIONS_PER_WORD && list.last() != Some(&pos) {
                list.push(pos);
            }
        }
        Self { positions }
    }

    /// The positions of `word` (lowercase), ascending; empty if absent.
    pub fn positions(&self, word: &str) -> &[u32] {
        self.positions.get(word).map_or(&[], Vec::as_slice)
    }

    /// Whether `phrase` (lowercase words) occurs with consecutive positions.
    pub fn has_phrase(&self, phrase: &[String]) -> bool {
        let Some((first, rest)) = phrase.split_first() else {
            return false;
        };
        self.positions(first).iter().any(|&p| {
            rest.iter().zip(1u32..).all(|(w, k)| {
                p.checked_add(k)
                    .is_some_and(|q| self.positions(w).binary_search(&q).is_ok())
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        words(s).into_iter().map(|w| w.text).collect()
    }

    #[test]
    fn words_are_letter_and_digit_runs_in_lowercase() {
        assert_eq!(
            texts("Größe ÉCOLE, snake_case foo-bar bob@example.com abc123 3.14"),
            [
                "größe", "école", "snake", "case", "foo", "bar", "bob", "example", "com", "abc123",
                "3", "14"
            ]
        );
        assert_eq!(texts("Ёлка 中文字符 ٣x ½ ² ①"), ["ёлка", "中文字符", "٣x"]);
        assert_eq!(texts("İstanbul ǅemal"), ["istanbul", "ǆemal"]);
        assert!(texts(" \n!?").is_empty());
    }

    #[test]
    fn word_offsets_are_bytes_of_the_original() {
        let w = words("é-Ab");
        assert_eq!((w[0].start, w[0].end), (0, 2));
        assert_eq!((w[1].start, w[1].end, w[1].text.as_str()), (3, 5, "ab"));
    }

    #[test]
    fn positions_follow_the_tsvector_limits() {
        let idx = WordIndex::new(&"a ".repeat(300));
        assert_eq!(idx.positions("a").len(), 255);
        let long = format!("{} x y", "z ".repeat(16_390));
        let idx = WordIndex::new(&long);
        assert_eq!(idx.positions("x"), [MAX_POSITION]);
        assert!(!idx.has_phrase(&["x".into(), "y".into()]));
        let too_long = "w".repeat(MAX_WORD_BYTES + 1);
        assert!(WordIndex::new(&too_long).positions(&too_long).is_empty());
    }

    #[test]
    fn phrases_need_consecutive_positions() {
        let idx = WordIndex::new("the quick brown fox, quick fox");
        let p = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert!(idx.has_phrase(&p("quick brown fox")));
        assert!(idx.has_phrase(&p("quick fox")));
        assert!(!idx.has_phrase(&p("brown quick")));
        assert!(!idx.has_phrase(&[]));
    }
}
