//! Cancelling a reply being generated.

use super::*;

impl MessageService {
    /// Stops a reply being generated and stores its partial text as `cancelled`
    /// (emitting `message.cancelled`); returns the stored reply.
    #[tracing::instrument(skip_all, fields(message_id = %id))]
    pub async fn cancel(&self, actor: &Actor, id: MessageId) -> Result<Message, CancelError> {
        let (_, mut message) = self.owned_message(actor, id).await?;
        if message.status != MessageStatus::Streaming {
            return Err(CancelError::NotStreaming);
        }
        if let Some(tx) = self.inner.take_running(id) {
            let (ack_tx, ack_rx) = oneshot::channel();
            if tx.send(ack_tx).is_ok() {
                if let Ok(m) = ack_rx.await {
                    return Ok(m);
                }
            }
        }
        // Not generating here (another replica, or a dead process): cancel in storage.
        message.status = MessageStatus::Cancelled;
        message.updated_at = self.inner.clock.now();
        let event = self.event(
            actor,
            message.chat_id,
            EventKind::MessageCancelled(message.clone()),
        );
        if self
            .inner
            .messages
            .finish_reply(&message, &event, None)
            .await?
        {
            return Ok(message);
        }
        match self.inner.messages.find_message(id).await? {
            Some(m) if m.status == MessageStatus::Cancelled => Ok(m),
            Some(_) => Err(CancelError::NotStreaming),
            None => Err(CancelError::NotFound),
        }
    }
}
