//! Sending a message: the turn that stores the user's message and a reply placeholder.

use super::*;

impl MessageService {
    /// Stores the user's message and a `streaming` reply placeholder (emitting two
    /// `message.created`), and returns them with the [`Generation`] that will produce
    /// the reply. Nothing is stored when the chat is busy.
    #[tracing::instrument(skip_all, fields(chat_id = %cmd.chat_id))]
    pub async fn send(&self, actor: &Actor, cmd: SendMessage) -> Result<Turn, SendError> {
        match self.send_inner(actor, cmd, None).await? {
            SendOutcome::Started(turn) => Ok(turn),
            SendOutcome::Replay { .. } => {
                Err(SendError::Unknown(anyhow::anyhow!("replay without a key")))
            }
        }
    }

    /// Like [`MessageService::send`], with an idempotency key: the first send with the key
    /// starts a turn and records it (in the same transaction); a later send with the same
    /// key and request, within 24 hours, starts nothing and gets that turn back as it is
    /// stored now (the reply may still be generating). The same key with another
    /// request is [`SendError::IdempotencyMismatch`].
    #[tracing::instrument(skip_all, fields(chat_id = %cmd.chat_id))]
    pub async fn send_idempotent(
        &self,
        actor: &Actor,
        cmd: SendMessage,
        key: IdempotencyKey,
    ) -> Result<SendOutcome, SendError> {
        self.send_inner(actor, cmd, Some(key)).await
    }

    async fn replay(
        &self,
        actor: &Actor,
        cmd: &SendMessage,
        key: &IdempotencyKey,
    ) -> Result<Option<SendOutcome>, SendError> {
        let since = self.inner.clock.now() - chrono::Duration::hours(IdempotentSend::TTL_HOURS);
        let Some(record) = self
            .inner
            .messages
            .find_idempotent(&actor.user, key, since)
            .await?
        else {
            return Ok(None);
        };
        if record.chat_id != cmd.chat_id || record.fingerprint != Self::fingerprint(cmd) {
            return Err(SendError::IdempotencyMismatch);
        }
        let message = self
            .inner
            .messages
            .find_message(record.message_id)
            .await?
            .ok_or(SendError::NotFound)?;
        let reply = self
            .inner
            .messages
            .find_message(record.reply_id)
            .await?
            .ok_or(SendError::NotFound)?;
        Ok(Some(SendOutcome::Replay { message, reply }))
    }

    fn fingerprint(cmd: &SendMessage) -> String {
        IdempotentSend::fingerprint(
            cmd.chat_id,
            &cmd.parent.fingerprint_text(cmd.content.as_str()),
        )
    }

    async fn send_inner(
        &self,
        actor: &Actor,
        cmd: SendMessage,
        key: Option<IdempotencyKey>,
    ) -> Result<SendOutcome, SendError> {
        let mut attempt = 0;
        let (chat, user_message, reply, history) = loop {
            if let Some(key) = &key {
                if let Some(replay) = self.replay(actor, &cmd, key).await? {
                    return Ok(replay);
                }
            }
            let chat = self.owned_chat(actor, cmd.chat_id).await?;
            self.inner.check_model(&chat)?;
            self.inner.check_quota(actor).await?;
            self.reap_stale(actor, chat.id()).await?;
            let parent = self.resolve_parent(&chat, cmd.parent).await?;
            let now = self.inner.clock.now();
            let id = MessageId::new();
            let user_message = Message::user(
                &chat,
                id,
                parent,
                self.branch_of_new(chat.id(), parent, id).await?,
                &cmd.content,
                now,
            );
            let mut reply = self.new_reply(&chat, chat.message_count() + 2);
            reply.set_parent_id(Some(user_message.id()));
            // Read the history before storing the turn: once the turn is stored, its
            // generation must start, so nothing that can fail may stand in between.
            let history = self
                .history_to(chat.id(), parent, self.inner.config.history_fetch_limit)
                .await?;
            let idempotency = key.as_ref().map(|k| IdempotentSend {
                user: actor.user.clone(),
                key: k.clone(),
                fingerprint: Self::fingerprint(&cmd),
                chat_id: chat.id(),
                message_id: user_message.id(),
                reply_id: reply.id(),
                created_at: now,
            });
            let turn = NewTurn {
                chat_id: chat.id(),
                expected_count: chat.message_count(),
                user_message: Some(user_message.clone()),
                reply: reply.clone(),
                stale_before: self.stale_before(),
                now,
                events: vec![
                    self.event(
                        actor,
                        chat.id(),
                        EventKind::MessageCreated(user_message.clone()),
                    ),
                    self.event(actor, chat.id(), EventKind::MessageCreated(reply.clone())),
                ],
                idempotency,
            };
            match self.inner.messages.start_turn(&turn).await {
                Ok(()) => break (chat, user_message, reply, history),
                Err(StoreError::Conflict) if attempt < MAX_SEQ_RETRIES => attempt += 1,
                Err(StoreError::ChatBusy) => return Err(self.busy(chat.id()).await),
                Err(e) => return Err(e.into()),
            }
        };
        Ok(SendOutcome::Started(self.turn(
            actor,
            &chat,
            user_message,
            reply,
            &history,
        )))
    }

    pub(super) fn turn(
        &self,
        actor: &Actor,
        chat: &Chat,
        message: Message,
        reply: Message,
        history: &[Message],
    ) -> Turn {
        let model = reply
            .model()
            .map(str::to_owned)
            .unwrap_or_else(|| self.model_of(chat));
        let budget = self.inner.config.history.for_model(&model);
        let max_tokens = self
            .inner
            .max_tokens_for(&model, chat.settings().max_tokens.map(|m| m.value()));
        let request = LlmRequest {
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
        };
        let (tx, rx) = oneshot::channel();
        self.inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(reply.id(), tx);
        let generation = Generation {
            inner: self.inner.clone(),
            actor: actor.clone(),
            reply: reply.clone(),
            request,
            cancel: rx,
            _guard: RunningGuard {
                inner: self.inner.clone(),
                id: reply.id(),
            },
        };
        Turn {
            message,
            reply,
            generation,
        }
    }
}
