//! Regenerating a reply.

use super::*;

impl MessageService {
    /// Starts a new reply to the user message that `reply_id` answered, built from the
    /// branch up to that user message. The new reply is a sibling of the old one (same
    /// parent, next `seq`) and becomes the chat's active leaf; the old one is kept.
    /// Emits `message.created` for the new reply.
    #[tracing::instrument(skip_all, fields(message_id = %reply_id))]
    pub async fn regenerate(&self, actor: &Actor, reply_id: MessageId) -> Result<Turn, SendError> {
        let (_, target) = self.owned_message(actor, reply_id).await?;
        if target.role() != Role::Assistant {
            return Err(SendError::NotAReply);
        }
        if target.status() == MessageStatus::Streaming {
            return Err(SendError::ChatBusy {
                retry_after: crate::services::BUSY_RETRY_AFTER,
                reply_id: Some(target.id()),
            });
        }
        let question_id = target.parent_id().ok_or(SendError::NotAReply)?;
        // Read on its own for its `branch` (the turn's history rows do not carry it).
        let question = self
            .inner
            .messages
            .find_message(question_id)
            .await?
            .ok_or(SendError::NotFound)?;
        let mut attempt = 0;
        loop {
            let now = self.inner.clock.now();
            let a = decide::RegenerateAttempt {
                actor: actor.clone(),
                question: question.clone(),
                reply_id: MessageId::new(),
                now,
                stale_before: self.stale_before(),
            };
            let read = self.inner.regenerate_read(&a, target.chat_id());
            let (starter, early) = early::early_call(self.inner.llm.clone());
            let inner = self.inner.clone();
            let decision = move |facts: &crate::ports::TurnFacts| {
                let decided = inner.decide_regenerate(&a, facts)?;
                starter.start(decided.request);
                Ok(decided.turn)
            };
            let stored = crate::ports::decide_turn(&*self.inner.messages, &read, decision);
            let (stored, early) = early::overlap(stored, early).await;
            match self.settle(actor, stored, early, &mut attempt).await? {
                Settled::Started(turn, request, call) => {
                    return Ok(self.turn(actor, question, turn.reply, request, Some(call)));
                }
                Settled::Replay { .. } => {
                    return Err(SendError::Unknown(anyhow::anyhow!(
                        "a regenerate has no idempotency record to replay"
                    )))
                }
                Settled::Again => {}
            }
        }
    }
}
