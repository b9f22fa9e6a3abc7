//! The decisions of a turn's start over the facts storage read in the turn's
//! transaction (`MessageRepository::run_turn`): pure functions (no I/O), so every rule
//! of a send and a regenerate is decided here and unit-tested without storage.

use super::*;
use crate::model::Branch;
use crate::ports::{TurnFacts, TurnParent, TurnRead};

/// Why a turn was not started.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Refused for good: this is the answer.
    Error(SendError),
    /// A retry of an idempotent send: its turn as stored now.
    Replay {
        /// The user's message.
        message: Box<Message>,
        /// The reply.
        reply: Box<Message>,
    },
    /// The chat has `streaming` replies that stop the turn: being generated (busy) or,
    /// perhaps, abandoned by a dead process (to be marked failed, then try again).
    Streaming(Vec<Message>),
}

impl From<SendError> for Refusal {
    fn from(e: SendError) -> Self {
        Refusal::Error(e)
    }
}

/// One attempt at a send: what is fixed before storage is read (the ids the claim
/// records, the time).
#[derive(Debug, Clone)]
pub(crate) struct SendAttempt {
    pub(crate) actor: Actor,
    pub(crate) cmd: SendMessage,
    pub(crate) message_id: MessageId,
    pub(crate) reply_id: MessageId,
    pub(crate) now: chrono::DateTime<chrono::Utc>,
    pub(crate) stale_before: chrono::DateTime<chrono::Utc>,
    pub(crate) claim: Option<IdempotentSend>,
}

/// A decided turn: what to store, and the prompt for the provider.
#[derive(Debug)]
pub(crate) struct Decided {
    pub(crate) turn: NewTurn,
    pub(crate) request: LlmRequest,
}

impl Inner {
    /// The storage reads a send needs.
    pub(crate) fn send_read(&self, a: &SendAttempt) -> TurnRead {
        TurnRead {
            chat_id: a.cmd.chat_id,
            claim: a.claim.clone(),
            live_since: a.now - chrono::Duration::hours(IdempotentSend::TTL_HOURS),
            parent: match a.cmd.parent {
                SendParent::ActiveLeaf => TurnParent::ActiveLeaf,
                SendParent::Root => TurnParent::Root,
                SendParent::Message(id) => TurnParent::Message(id),
            },
            history_limit: self.config.history_fetch_limit.max(1),
            usage: self.usage_read(&a.actor, a.now),
        }
    }

    /// The storage reads a regenerate needs: the branch up to the question (itself
    /// included, then the prompt's history).
    pub(crate) fn regenerate_read(&self, a: &RegenerateAttempt, chat_id: ChatId) -> TurnRead {
        TurnRead {
            chat_id,
            claim: None,
            live_since: a.now,
            parent: TurnParent::Message(a.question.id()),
            history_limit: self.config.history_fetch_limit.saturating_add(1),
            usage: self.usage_read(&a.actor, a.now),
        }
    }

    fn usage_read(
        &self,
        actor: &Actor,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<(crate::model::UserId, chrono::NaiveDate, chrono::NaiveDate)> {
        let (from, to) = self.quota.as_ref()?.ledger_range(now)?;
        Some((actor.user.clone(), from, to))
    }

    /// The checks every turn makes, in order: the chat is the actor's, its model is
    /// offered, the quota is not spent, no reply is being generated in it.
    fn check_turn<'f>(
        &self,
        actor: &Actor,
        facts: &'f TurnFacts,
        now: chrono::DateTime<chrono::Utc>,
        stale_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<&'f Chat, Refusal> {
        let chat = match &facts.chat {
            Some(chat) if *chat.owner() == actor.user => chat,
            _ => return Err(SendError::NotFound.into()),
        };
        self.check_model(chat)?;
        if let Some(q) = &self.quota {
            if let Some(e) = q.judge_rows(&facts.usage, now) {
                return Err(SendError::QuotaExceeded(e).into());
            }
        }
        // A reply updated before the cut-off that this process is still generating
        // does not block (as before); any other `streaming` reply does, until it is
        // found abandoned and marked failed.
        let blocking: Vec<Message> = facts
            .streaming
            .iter()
            .filter(|m| m.updated_at() >= stale_before || !self.is_running(m.id()))
            .cloned()
            .collect();
        if !blocking.is_empty() {
            return Err(Refusal::Streaming(blocking));
        }
        Ok(chat)
    }

    /// Decides a send over the facts: a replay, a refusal, or the turn to store.
    pub(crate) fn decide_send(
        &self,
        a: &SendAttempt,
        facts: &TurnFacts,
    ) -> Result<Decided, Refusal> {
        if let Some(found) = &facts.replay {
            let rec = &found.record;
            if rec.chat_id != a.cmd.chat_id || rec.fingerprint != fingerprint(&a.cmd) {
                return Err(SendError::IdempotencyMismatch.into());
            }
            return match (&found.message, &found.reply) {
                (Some(m), Some(r)) => Err(Refusal::Replay {
                    message: Box::new(m.clone()),
                    reply: Box::new(r.clone()),
                }),
                _ => Err(SendError::NotFound.into()),
            };
        }
        let chat = self.check_turn(&a.actor, facts, a.now, a.stale_before)?;
        let parent = match a.cmd.parent {
            SendParent::ActiveLeaf => chat.active_leaf_id(),
            SendParent::Root => None,
            SendParent::Message(id) => match facts.history.first() {
                Some(m) if m.id() == id && m.role() == Role::Assistant => Some(id),
                Some(m) if m.id() == id => return Err(SendError::ParentNotAReply.into()),
                _ => return Err(SendError::NotFound.into()),
            },
        };
        let mut siblings = facts.siblings.clone();
        siblings.push(a.message_id);
        let user_message = Message::user(
            chat,
            a.message_id,
            parent,
            Branch::among(&siblings, a.message_id),
            &a.cmd.content,
            a.now,
        );
        let mut reply = self.reply_in(chat, a.reply_id, chat.message_count() + 2, a.now);
        reply.set_parent_id(Some(user_message.id()));
        // The history of the prompt is the branch up to the parent, which is what was
        // read (for a new root: nothing).
        let history: &[Message] = if parent.is_some() {
            &facts.history
        } else {
            &[]
        };
        let request = self.request_for(&a.actor, chat, &user_message, &reply, history);
        let events = vec![
            self.event_of(
                &a.actor,
                chat.id(),
                a.now,
                EventKind::MessageCreated(user_message.clone()),
            ),
            self.event_of(
                &a.actor,
                chat.id(),
                a.now,
                EventKind::MessageCreated(reply.clone()),
            ),
        ];
        Ok(Decided {
            turn: NewTurn {
                chat_id: chat.id(),
                expected_count: chat.message_count(),
                user_message: Some(user_message),
                reply,
                stale_before: a.stale_before,
                now: a.now,
                events,
                idempotency: a.claim.clone(),
            },
            request,
        })
    }

    /// Decides a regenerate of a reply to `question_id` over the facts read with that
    /// question as the parent.
    pub(crate) fn decide_regenerate(
        &self,
        a: &RegenerateAttempt,
        facts: &TurnFacts,
    ) -> Result<Decided, Refusal> {
        let chat = self.check_turn(&a.actor, facts, a.now, a.stale_before)?;
        let Some(question) = facts
            .history
            .first()
            .filter(|q| q.id() == a.question.id() && q.role() == Role::User)
        else {
            return Err(SendError::NotAReply.into());
        };
        let mut siblings = facts.siblings.clone();
        siblings.push(a.reply_id);
        let mut reply = self.reply_in(chat, a.reply_id, chat.message_count() + 1, a.now);
        reply.set_parent_id(Some(question.id()));
        reply.set_branch(Branch::among(&siblings, a.reply_id));
        let request = self.request_for(&a.actor, chat, &a.question, &reply, &facts.history[1..]);
        let events = vec![self.event_of(
            &a.actor,
            chat.id(),
            a.now,
            EventKind::MessageCreated(reply.clone()),
        )];
        Ok(Decided {
            turn: NewTurn {
                chat_id: chat.id(),
                expected_count: chat.message_count(),
                user_message: None,
                reply,
                stale_before: a.stale_before,
                now: a.now,
                events,
                idempotency: None,
            },
            request,
        })
    }

    /// A `streaming` reply placeholder in `chat`.
    fn reply_in(
        &self,
        chat: &Chat,
        id: MessageId,
        seq: u32,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Message {
        Message::reply(chat, id, seq, self.model_name_for(chat), now)
    }

    fn event_of(
        &self,
        actor: &Actor,
        chat_id: ChatId,
        now: chrono::DateTime<chrono::Utc>,
        kind: EventKind,
    ) -> Event {
        let event = Event::new(now, actor.user.clone(), chat_id, kind)
            .with_request_id(actor.request_id.clone());
        self.tag_provider(event)
    }

    /// The provider request of a turn: the system prompt, the history (newest first)
    /// within the model's budget, then the message answered.
    pub(crate) fn request_for(
        &self,
        actor: &Actor,
        chat: &Chat,
        message: &Message,
        reply: &Message,
        history: &[Message],
    ) -> LlmRequest {
        let model = reply
            .model()
            .map(str::to_owned)
            .unwrap_or_else(|| self.model_name_for(chat));
        let budget = self.config.history.for_model(&model);
        let max_tokens = self.max_tokens_for(&model, chat.settings().max_tokens.map(|m| m.value()));
        LlmRequest {
            messages: build_prompt(
                chat.settings().system_prompt.as_ref().map(|s| s.as_str()),
                history,
                message.content(),
                budget,
            ),
            model,
            temperature: chat.settings().temperature.map(|t| t.value()),
            max_tokens,
            request_id: actor.request_id.clone(),
        }
    }
}

/// One attempt at a regenerate.
#[derive(Debug, Clone)]
pub(crate) struct RegenerateAttempt {
    pub(crate) actor: Actor,
    /// The user message answered again, with its `branch`.
    pub(crate) question: Message,
    pub(crate) reply_id: MessageId,
    pub(crate) now: chrono::DateTime<chrono::Utc>,
    pub(crate) stale_before: chrono::DateTime<chrono::Utc>,
}

/// What an idempotency record of a send covers.
pub(crate) fn fingerprint(cmd: &SendMessage) -> String {
    IdempotentSend::fingerprint(
        cmd.chat_id,
        &cmd.parent.fingerprint_text(cmd.content.as_str()),
    )
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
