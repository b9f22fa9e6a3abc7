//! Cancelling a reply being generated, wherever it is generated.

use super::*;

impl MessageService {
    /// Stops a reply being generated and stores its partial text as `cancelled`
    /// (emitting `message.cancelled`); returns the stored reply.
    ///
    /// Generated here: the generation stops at once. Elsewhere: the cancel is requested
    /// through the live state and the generating process stores the reply (waited for,
    /// at most `LiveConfig::cancel_wait`); when no process holds the reply's lease (or
    /// the wait ran out) it is cancelled in storage with the text the live state holds.
    /// With shared live state unavailable, a reply generated elsewhere cannot be
    /// stopped: [`CancelError::Unavailable`].
    #[tracing::instrument(skip_all, fields(message_id = %id))]
    pub async fn cancel(&self, actor: &Actor, id: MessageId) -> Result<Message, CancelError> {
        let (_, mut message) = self.owned_message(actor, id).await?;
        if message.status() != MessageStatus::Streaming {
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
        if let Some(m) = self.cancel_through_live(actor, id).await? {
            return self.cancelled_or_done(m);
        }
        // Not generating anywhere that answers: cancel in storage.
        if let Some(live) = &self.inner.live {
            if let Ok(Some(text)) = live.read(id, 0).await {
                message.catch_up(text.text);
            }
        }
        message.cancel();
        message.touch(self.inner.clock.now());
        let event = self.event(
            actor,
            message.chat_id(),
            EventKind::MessageCancelled(message.clone()),
        );
        if self
            .inner
            .messages
            .finish_reply(&message, &event, None)
            .await?
        {
            if let Some(live) = &self.inner.live {
                let _ = live.finish(id, crate::ports::LiveEnd::Cancelled).await;
            }
            return Ok(message);
        }
        match self.inner.messages.find_message(id).await? {
            Some(m) => self.cancelled_or_done(m),
            None => Err(CancelError::NotFound),
        }
    }

    fn cancelled_or_done(&self, m: Message) -> Result<Message, CancelError> {
        match m.status() {
            MessageStatus::Cancelled => Ok(m),
            _ => Err(CancelError::NotStreaming),
        }
    }

    /// Requests the cancel through the live state and waits for the generating process
    /// to store the reply; `None` when no live process holds it (or it did not answer).
    async fn cancel_through_live(
        &self,
        actor: &Actor,
        id: MessageId,
    ) -> Result<Option<Message>, CancelError> {
        let Some(live) = self.inner.live.clone() else {
            return Ok(None);
        };
        let unavailable = CancelError::LiveUnavailable;
        let shared = live.is_shared();
        match live.request_cancel(id).await {
            Ok(()) => {}
            Err(e) if shared => return Err(unavailable(e)),
            Err(_) => return Ok(None),
        }
        let now = self.inner.clock.now();
        let held = match live.lease(id).await {
            Ok(lease) => lease.is_some_and(|l| l.until >= now),
            Err(e) if shared => return Err(unavailable(e)),
            Err(_) => false,
        };
        if !held {
            return Ok(None);
        }
        let within = self.inner.live_config.cancel_wait;
        match self
            .settled(actor, self.owned_message(actor, id).await?.1, within)
            .await
        {
            Ok(m) if m.status() != MessageStatus::Streaming => Ok(Some(m)),
            Ok(_) => Ok(None),
            Err(crate::services::ResumeError::NotFound) => Err(CancelError::NotFound),
            Err(crate::services::ResumeError::Unavailable(e)) => Err(CancelError::Unavailable(e)),
            Err(e) => Err(CancelError::Unknown(anyhow::anyhow!(e.to_string()))),
        }
    }
}
