//! Turning what a model wrote into a chat title: reasoning blocks removed, the first
//! line kept, quotes and a `Title:` prefix stripped, white space collapsed, at most
//! [`MAX_AUTO_TITLE_CHARS`] characters cut at a word.

use crate::model::ChatTitle;

/// Longest automatic title, in characters.
pub const MAX_AUTO_TITLE_CHARS: usize = 60;

/// Tags whose content is a model's reasoning, not its answer.
const REASONING_TAGS: [&str; 4] = ["think", "thinking", "reasoning", "reflection"];

/// Characters stripped from both ends of a title.
const EDGE: &[char] = &[
    '"', '\'', '`', '“', '”', '‘', '’', '«', '»', '„', '*', '_', '#', '.', ':', ';', ',', '-',
];

/// Double quotes, removed wherever they are.
const QUOTES: &[char] = &['"', '“', '”', '„', '«', '»', '`'];

/// Finds `needle` (ASCII) in `hay` ignoring ASCII case; the byte offset.
fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    if n.is_empty() || h.len() < n.len() {
        return None;
    }
    (0..=h.len() - n.len()).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Removes reasoning blocks: `<think>…</think>` (and `thinking`, `reasoning`,
/// `reflection`), an opening tag never closed (everything after it), and text
/// before a closing tag whose opening is missing (as some models send it).
pub fn strip_reasoning(text: &str) -> String {
    let mut out = text.to_owned();
    for tag in REASONING_TAGS {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        loop {
            let o = find_ci(&out, &open);
            let c = find_ci(&out, &close);
            match (o, c) {
                (Some(o), Some(c)) if o < c => {
                    out.replace_range(o..c + close.len(), " ");
                }
                (Some(o), _) => {
                    // A close before this open is an orphan: handled on the next turn.
                    if let Some(c) = c.filter(|c| *c < o) {
                        out.replace_range(..c + close.len(), " ");
                        continue;
                    }
                    out.truncate(o);
                }
                (None, Some(c)) => {
                    out.replace_range(..c + close.len(), " ");
                }
                (None, None) => break,
            }
        }
    }
    out
}

/// A title from a model's answer, or `None` when nothing usable is left.
pub fn clean_title(raw: &str) -> Option<ChatTitle> {
    let text = strip_reasoning(raw);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = match find_ci(line, "title:") {
        Some(0) => &line["title:".len()..],
        _ => line,
    };
    let unquoted: String = line
        .chars()
        .filter(|c| !QUOTES.contains(c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let collapsed = unquoted.split_whitespace().collect::<Vec<_>>().join(" ");
    let trimmed = collapsed.trim_matches(|c: char| EDGE.contains(&c) || c.is_whitespace());
    ChatTitle::parse(&shorten(trimmed, MAX_AUTO_TITLE_CHARS)).ok()
}

/// At most `max` characters, cut at the last space when there is one in the second half.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max).collect();
    let at_word = match cut.rfind(' ') {
        Some(i) if cut[..i].chars().count() >= max / 2 => cut[..i].to_owned(),
        _ => cut,
    };
    at_word
        .trim_end_matches(|c: char| EDGE.contains(&c) || c.is_whitespace())
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(raw: &str) -> Option<String> {
        clean_title(raw).map(String::from)
    }

    #[test]
    fn think_blocks_are_removed() {
        assert_eq!(
            t("<think>The user asks about Lisbon.\nSo: travel.</think>\n\nTrip to Lisbon"),
            Some("Trip to Lisbon".into())
        );
        assert_eq!(
            t("<THINKING>x</THINKING>Weekend plans<reasoning>y</reasoning>"),
            Some("Weekend plans".into())
        );
    }

    #[test]
    fn an_unclosed_block_or_an_orphan_close_are_handled() {
        assert_eq!(
            t("Rust lifetimes <think>and then I was cut"),
            Some("Rust lifetimes".into())
        );
        assert_eq!(t("<think>never closed"), None);
        assert_eq!(
            t("reasoning without its opening tag</think> Tax forms"),
            Some("Tax forms".into())
        );
    }

    #[test]
    fn quotes_prefix_and_newlines_go() {
        assert_eq!(t("\"Trip to Lisbon\""), Some("Trip to Lisbon".into()));
        assert_eq!(t("Title: “Budget review”."), Some("Budget review".into()));
        assert_eq!(
            t("**Sourdough starter**\nHere is why..."),
            Some("Sourdough starter".into())
        );
        assert_eq!(
            t("  Lisbon's   best\tcafés "),
            Some("Lisbon's best cafés".into())
        );
    }

    #[test]
    fn long_titles_are_cut_at_a_word() {
        let long = "A very long title that goes on and on about many different things at once";
        let title = t(long).unwrap();
        assert!(title.chars().count() <= 60, "{title}");
        assert!(long.starts_with(&title));
        assert!(!title.ends_with(' '));
        let one_word = "x".repeat(100);
        assert_eq!(t(&one_word).map(|s| s.chars().count()), Some(60));
    }

    #[test]
    fn nothing_usable_is_none() {
        assert_eq!(t(""), None);
        assert_eq!(t("   \n\n "), None);
        assert_eq!(t("\"\""), None);
        assert_eq!(t("<think>only thoughts</think>"), None);
    }

    proptest! {
        #[test]
        fn any_title_is_short_single_line_and_unquoted(s in "\\PC{0,300}") {
            if let Some(title) = clean_title(&s) {
                let text = title.as_str();
                prop_assert!(text.chars().count() <= MAX_AUTO_TITLE_CHARS);
                prop_assert!(!text.contains('\n') && !text.contains('"'));
                prop_assert!(!text.to_ascii_lowercase().contains("<think>"));
            }
        }
    }
}
