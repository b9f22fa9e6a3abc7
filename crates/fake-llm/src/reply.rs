//! The deterministic reply (the prompt's words, cycled) and the wire bytes that carry
//! it: an SSE plan of byte runs, pauses and faults, or a whole JSON body.

use crate::config::FaultKind;
use crate::faults::strip_markers;
use bytes::Bytes;
use std::time::Duration;

/// The reply's words: the words of `last_user` (markers removed) cycled to `tokens`
/// words, or `fake` repeated when the message has none.
pub fn reply_words(last_user: &str, tokens: usize) -> Vec<String> {
    let clean = strip_markers(last_user);
    let words: Vec<&str> = clean.split_whitespace().collect();
    let words = if words.is_empty() {
        vec!["fake"]
    } else {
        words
    };
    words
        .iter()
        .cycle()
        .take(tokens)
        .map(|w| (*w).to_owned())
        .collect()
}

/// The whole reply text for `last_user`: [`reply_words`] joined by single spaces.
pub fn reply_text(last_user: &str, tokens: usize) -> String {
    reply_words(last_user, tokens).join(" ")
}

/// One step of a streamed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Bytes to write.
    Bytes(Bytes),
    /// A pause.
    Sleep(Duration),
    /// Close the connection abruptly.
    Abort,
}

/// What one reply is made of.
#[derive(Debug, Clone)]
pub struct ReplyPlan<'a> {
    /// Completion id.
    pub id: &'a str,
    /// Model name.
    pub model: &'a str,
    /// Unix time.
    pub created: u64,
    /// The words.
    pub words: Vec<String>,
    /// `stop` or `length`.
    pub finish_reason: &'static str,
    /// Prompt tokens to report.
    pub prompt_tokens: u64,
    /// Whether to send the usage chunk.
    pub include_usage: bool,
    /// Whether a whole reply carries `usage`.
    pub report_usage: bool,
    /// Pause before the first chunk.
    pub ttft: Duration,
    /// Pause between tokens.
    pub token_gap: Duration,
    /// Length of a stall fault.
    pub stall: Duration,
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

impl ReplyPlan<'_> {
    fn chunk(&self, model: &str, choices: &str, usage: Option<&str>) -> String {
        let usage = usage.map(|u| format!(",\"usage\":{u}")).unwrap_or_default();
        format!(
            "data: {{\"id\":\"{}\",\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":{model},\"choices\":[{choices}]{usage}}}\n\n",
            self.id, self.created
        )
    }

    fn usage_json(&self) -> String {
        let completion = self.words.len();
        format!(
            "{{\"prompt_tokens\":{},\"completion_tokens\":{completion},\"total_tokens\":{}}}",
            self.prompt_tokens,
            self.prompt_tokens + completion as u64
        )
    }

    /// The steps of the SSE body, with `fault` played half-way (or at the start for
    /// `stall`); consecutive byte runs are merged.
    pub fn sse_steps(&self, fault: Option<FaultKind>) -> Vec<Step> {
        let model = json_str(self.model);
        let mut steps = Vec::new();
        let mut text = String::new();
        let flush = |text: &mut String, steps: &mut Vec<Step>| {
            if !text.is_empty() {
                steps.push(Step::Bytes(Bytes::from(std::mem::take(text))));
            }
        };
        let pause = |d: Duration, text: &mut String, steps: &mut Vec<Step>| {
            if !d.is_zero() {
                flush(text, steps);
                steps.push(Step::Sleep(d));
            }
        };
        if fault == Some(FaultKind::Stall) {
            pause(self.stall, &mut text, &mut steps);
        }
        pause(self.ttft, &mut text, &mut steps);
        text.push_str(&self.chunk(
            &model,
            r#"{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}"#,
            None,
        ));
        let n = self.words.len();
        let half = n / 2;
        for i in 0..=n {
            if i == half {
                match fault {
                    Some(FaultKind::Cut) => {
                        flush(&mut text, &mut steps);
                        steps.push(Step::Abort);
                        return steps;
                    }
                    Some(FaultKind::Malformed) => {
                        text.push_str("data: {\"id\":\"broken\",\"choices\":[{\"delta\":\n\n");
                        text.push_str("data: [DONE]\n\n");
                        flush(&mut text, &mut steps);
                        return steps;
                    }
                    Some(FaultKind::StallMid) => pause(self.stall, &mut text, &mut steps),
                    _ => {}
                }
            }
            if i == n {
                break;
            }
            if i > 0 {
                pause(self.token_gap, &mut text, &mut steps);
            }
            let piece = if i == 0 {
                self.words[i].clone()
            } else {
                format!(" {}", self.words[i])
            };
            let choice = format!(
                "{{\"index\":0,\"delta\":{{\"content\":{}}},\"finish_reason\":null}}",
                json_str(&piece)
            );
            text.push_str(&self.chunk(&model, &choice, None));
        }
        let finish = format!(
            "{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"{}\"}}",
            self.finish_reason
        );
        text.push_str(&self.chunk(&model, &finish, None));
        if self.include_usage {
            text.push_str(&self.chunk(&model, "", Some(&self.usage_json())));
        }
        text.push_str("data: [DONE]\n\n");
        flush(&mut text, &mut steps);
        steps
    }

    /// The JSON body of a whole (non-streamed) reply.
    pub fn json_body(&self) -> String {
        let usage = if self.report_usage {
            format!(",\"usage\":{}", self.usage_json())
        } else {
            String::new()
        };
        format!(
            "{{\"id\":\"{}\",\"object\":\"chat.completion\",\"created\":{},\"model\":{},\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":{}}},\"finish_reason\":\"{}\"}}]{usage}}}",
            self.id,
            self.created,
            json_str(self.model),
            json_str(&self.words.join(" ")),
            self.finish_reason,
        )
    }

    /// How long generating the whole reply takes.
    pub fn generation_time(&self) -> Duration {
        let gaps = u32::try_from(self.words.len().saturating_sub(1)).unwrap_or(u32::MAX);
        self.ttft + self.token_gap.saturating_mul(gaps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(words: usize) -> ReplyPlan<'static> {
        ReplyPlan {
            id: "c1",
            model: "m",
            created: 1,
            words: reply_words("hello \"world\"", words),
            finish_reason: "stop",
            prompt_tokens: 2,
            include_usage: true,
            report_usage: true,
            ttft: Duration::ZERO,
            token_gap: Duration::ZERO,
            stall: Duration::from_secs(1),
        }
    }

    fn body(steps: &[Step]) -> String {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Bytes(b) => Some(String::from_utf8(b.to_vec()).unwrap()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn words_cycle_and_markers_are_dropped() {
        assert_eq!(reply_text("a b [fault:cut]", 5), "a b a b a");
        assert_eq!(reply_text("", 2), "fake fake");
        assert_eq!(reply_text("x", 0), "");
    }

    #[test]
    fn zero_latency_reply_is_one_byte_run() {
        let steps = plan(3).sse_steps(None);
        assert_eq!(steps.len(), 1);
        let text = body(&steps);
        assert!(text.ends_with("data: [DONE]\n\n"));
        assert!(text.contains(r#""content":" \"world\"""#), "{text}");
        assert!(text.contains(r#""choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3"#));
    }

    #[test]
    fn cut_aborts_half_way_without_done() {
        let steps = plan(4).sse_steps(Some(FaultKind::Cut));
        assert_eq!(steps.last(), Some(&Step::Abort));
        assert!(!body(&steps).contains("[DONE]"));
    }

    #[test]
    fn pacing_and_stalls_are_sleeps() {
        let mut p = plan(3);
        p.token_gap = Duration::from_millis(10);
        let steps = p.sse_steps(Some(FaultKind::Stall));
        assert_eq!(steps[0], Step::Sleep(Duration::from_secs(1)));
        assert_eq!(
            steps.iter().filter(|s| matches!(s, Step::Sleep(_))).count(),
            3
        );
    }

    #[test]
    fn json_body_parses() {
        let v: serde_json::Value = serde_json::from_str(&plan(2).json_body()).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "hello \"world\"");
        assert_eq!(v["usage"]["total_tokens"], 4);
    }
}
