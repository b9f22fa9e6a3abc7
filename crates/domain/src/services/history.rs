//! History budgeting: which messages of a chat go into the prompt.
//!
//! The prompt is the system prompt, then as many of the most recent messages as fit
//! the token budget (oldest dropped first), then the new user message. The system
//! prompt and the new message are always sent, whatever the budget.

use crate::model::{Message, MessageStatus, Role};
use crate::ports::PromptMessage;
use std::collections::HashMap;

/// Token budget for the prompt, per model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryBudget {
    /// Budget for models not listed in `per_model`.
    pub default_tokens: u32,
    /// Budget per model name.
    pub per_model: HashMap<String, u32>,
}

impl Default for HistoryBudget {
    fn default() -> Self {
        Self {
            default_tokens: 8_000,
            per_model: HashMap::new(),
        }
    }
}

impl HistoryBudget {
    /// The budget for `model`.
    pub fn for_model(&self, model: &str) -> u32 {
        self.per_model
            .get(model)
            .copied()
            .unwrap_or(self.default_tokens)
    }
}

/// A conservative (high) estimate of the tokens a message costs: one token per three
/// bytes of UTF-8, plus four for the message framing. Real tokenizers average about
/// four bytes of English per token, so this over-counts rather than overflow.
pub fn estimate_tokens(text: &str) -> u32 {
    u32::try_from(text.len().div_ceil(3))
        .unwrap_or(u32::MAX)
        .saturating_add(4)
}

/// Whether a stored message belongs in a prompt: finished text (complete, or the
/// partial text of a cancelled reply); failed and in-progress replies are left out.
pub fn is_context(m: &Message) -> bool {
    match m.status() {
        MessageStatus::Complete => true,
        MessageStatus::Cancelled => !m.content().is_empty(),
        MessageStatus::Failed | MessageStatus::Streaming => false,
    }
}

/// Builds the prompt. `history_newest_first` are earlier messages of the chat,
/// newest first (as [`crate::ports::MessageRepository::recent_messages`] returns them).
pub fn build_prompt(
    system_prompt: Option<&str>,
    history_newest_first: &[Message],
    new_message: &str,
    budget: u32,
) -> Vec<PromptMessage> {
    let system = system_prompt.filter(|s| !s.trim().is_empty());
    let mut used = estimate_tokens(new_message).saturating_add(system.map_or(0, estimate_tokens));
    let mut kept: Vec<PromptMessage> = Vec::new();
    for m in history_newest_first.iter().filter(|m| is_context(m)) {
        let cost = estimate_tokens(m.content());
        if used.saturating_add(cost) > budget {
            break;
        }
        used += cost;
        kept.push(PromptMessage {
            role: m.role(),
            content: m.content().to_owned(),
        });
    }
    let mut prompt = Vec::with_capacity(kept.len() + 2);
    if let Some(s) = system {
        prompt.push(PromptMessage {
            role: Role::System,
            content: s.to_owned(),
        });
    }
    prompt.extend(kept.into_iter().rev());
    prompt.push(PromptMessage {
        role: Role::User,
        content: new_message.to_owned(),
    });
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChatId, MessageId};
    use chrono::Utc;

    fn msg(seq: u32, role: Role, content: &str, status: MessageStatus) -> Message {
        let now = Utc::now();
        Message::restore(crate::model::MessageParts {
            id: MessageId::new(),
            chat_id: ChatId::new(),
            seq,
            parent_id: None,
            branch: Default::default(),
            role,
            content: content.into(),
            status,
            model: None,
            usage: None,
            error: None,
            created_at: now,
            updated_at: now,
        })
    }

    #[test]
    fn order_is_system_history_oldest_first_then_new() {
        let hist = vec![
            msg(2, Role::Assistant, "two", MessageStatus::Complete),
            msg(1, Role::User, "one", MessageStatus::Complete),
        ];
        let p = build_prompt(Some("be nice"), &hist, "three", 10_000);
        let texts: Vec<_> = p.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["be nice", "one", "two", "three"]);
        assert_eq!(p[0].role, Role::System);
        assert_eq!(p[3].role, Role::User);
    }

    #[test]
    fn oldest_are_dropped_first_when_over_budget() {
        let hist = vec![
            msg(3, Role::User, &"c".repeat(30), MessageStatus::Complete),
            msg(2, Role::Assistant, &"b".repeat(30), MessageStatus::Complete),
            msg(1, Role::User, &"a".repeat(30), MessageStatus::Complete),
        ];
        // new (1+4=5) + two history messages (14 each) = 33 fits; a third does not.
        let p = build_prompt(None, &hist, "x", 33);
        let texts: Vec<_> = p
            .iter()
            .map(|m| m.content.chars().next().unwrap_or(' '))
            .collect();
        assert_eq!(texts, ['b', 'c', 'x']);
    }

    #[test]
    fn system_prompt_and_new_message_survive_a_tiny_budget() {
        let hist = vec![msg(1, Role::User, "old", MessageStatus::Complete)];
        let p = build_prompt(Some("sys"), &hist, "new", 1);
        let texts: Vec<_> = p.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["sys", "new"]);
    }

    #[test]
    fn failed_and_streaming_replies_are_left_out() {
        let hist = vec![
            msg(3, Role::Assistant, "", MessageStatus::Streaming),
            msg(2, Role::Assistant, "oops", MessageStatus::Failed),
            msg(1, Role::Assistant, "half", MessageStatus::Cancelled),
        ];
        let p = build_prompt(None, &hist, "q", 1000);
        let texts: Vec<_> = p.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["half", "q"]);
    }

    #[test]
    fn estimate_is_conservative() {
        assert_eq!(estimate_tokens(""), 4);
        assert_eq!(estimate_tokens("abcd"), 6);
        assert!(estimate_tokens(&"word ".repeat(100)) >= 500 / 4);
    }

    #[test]
    fn budget_per_model() {
        let mut b = HistoryBudget::default();
        b.per_model.insert("small".into(), 100);
        assert_eq!(b.for_model("small"), 100);
        assert_eq!(b.for_model("other"), 8_000);
    }
}
