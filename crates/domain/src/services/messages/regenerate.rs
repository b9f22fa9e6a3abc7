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
        let limit = self.inner.config.history_fetch_limit;
        let earlier = self
            .inner
            .messages
            .branch_history(target.chat_id(), question_id, limit + 1)
            .await?;
        if !earlier
            .first()
            .is_some_and(|q| q.id() == question_id && q.role() == Role::User)
        {
            return Err(SendError::NotAReply);
        }
        // Read on its own for its `branch` (history rows do not carry it).
        let question = self
            .inner
            .messages
            .find_message(question_id)
            .await?
            .ok_or(SendError::NotFound)?;
        let history = &earlier[1..];
        let mut attempt = 0;
        loop {
            let chat = self.owned_chat(actor, target.chat_id()).await?;
            self.inner.check_model(&chat)?;
            self.inner.check_quota(actor).await?;
            self.reap_stale(actor, chat.id()).await?;
            let mut reply = self.new_reply(&chat, chat.message_count() + 1);
            reply.set_parent_id(Some(question.id()));
            reply.set_branch(
                self.branch_of_new(chat.id(), Some(question.id()), reply.id())
                    .await?,
            );
            let turn = NewTurn {
                chat_id: chat.id(),
                expected_count: chat.message_count(),
                user_message: None,
                reply: reply.clone(),
                stale_before: self.stale_before(),
                now: self.inner.clock.now(),
                events: vec![self.event(
                    actor,
                    chat.id(),
                    EventKind::MessageCreated(reply.clone()),
                )],
                idempotency: None,
            };
            match self.inner.messages.start_turn(&turn).await {
                Ok(()) => {
                    return Ok(self.turn(actor, &chat, question.clone(), reply, history));
                }
                Err(StoreError::Conflict) if attempt < MAX_SEQ_RETRIES => attempt += 1,
                Err(StoreError::ChatBusy) => return Err(self.busy(chat.id()).await),
                Err(e) => return Err(e.into()),
            }
        }
    }
}
