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

    async fn send_inner(
        &self,
        actor: &Actor,
        cmd: SendMessage,
        key: Option<IdempotencyKey>,
    ) -> Result<SendOutcome, SendError> {
        let mut attempt = 0;
        loop {
            let now = self.inner.clock.now();
            let (message_id, reply_id) = (MessageId::new(), MessageId::new());
            let claim = key.as_ref().map(|k| IdempotentSend {
                user: actor.user.clone(),
                key: k.clone(),
                fingerprint: decide::fingerprint(&cmd),
                chat_id: cmd.chat_id,
                message_id,
                reply_id,
                created_at: now,
            });
            let a = decide::SendAttempt {
                actor: actor.clone(),
                cmd: cmd.clone(),
                message_id,
                reply_id,
                now,
                stale_before: self.stale_before(),
                claim,
            };
            let read = self.inner.send_read(&a);
            let (starter, early) = early::early_call(self.inner.llm.clone());
            let inner = self.inner.clone();
            let decision = move |facts: &crate::ports::TurnFacts| {
                let decided = inner.decide_send(&a, facts)?;
                starter.start(decided.request);
                Ok(decided.turn)
            };
            let stored = crate::ports::decide_turn(&*self.inner.messages, &read, decision);
            let (stored, early) = early::overlap(stored, early).await;
            match self.settle(actor, stored, early, &mut attempt).await? {
                Settled::Started(turn, request, call) => {
                    let message = turn.user_message.ok_or_else(|| {
                        SendError::Unknown(anyhow::anyhow!("a send stored no user message"))
                    })?;
                    let turn = self.turn(actor, message, turn.reply, request, Some(call));
                    return Ok(SendOutcome::Started(turn));
                }
                Settled::Replay { message, reply } => {
                    return Ok(SendOutcome::Replay { message, reply })
                }
                Settled::Again => {}
            }
        }
    }

    /// What a turn's storage step came to: a started turn (with its early provider
    /// call), a replay, an answer, or another attempt (after a lost race or once
    /// abandoned replies are marked failed). A failed step drops the early call.
    pub(super) async fn settle(
        &self,
        actor: &Actor,
        stored: Result<(crate::ports::TurnFacts, Result<NewTurn, decide::Refusal>), StoreError>,
        early: early::Early,
        attempt: &mut usize,
    ) -> Result<Settled, SendError> {
        let again = |attempt: &mut usize, e: SendError| {
            if *attempt < MAX_SEQ_RETRIES {
                *attempt += 1;
                Ok(Settled::Again)
            } else {
                Err(e)
            }
        };
        let (_, outcome) = match stored {
            Ok(done) => done,
            Err(StoreError::Conflict) => {
                drop(early);
                return again(attempt, StoreError::Conflict.into());
            }
            Err(e) => return Err(e.into()),
        };
        match outcome {
            Ok(turn) => match early.request() {
                Some(request) => Ok(Settled::Started(turn, request, early.call)),
                None => Err(SendError::Unknown(anyhow::anyhow!(
                    "a turn was stored without its prompt"
                ))),
            },
            Err(decide::Refusal::Error(e)) => Err(e),
            Err(decide::Refusal::Replay { message, reply }) => Ok(Settled::Replay {
                message: *message,
                reply: *reply,
            }),
            Err(decide::Refusal::Streaming(streaming)) => {
                match self.reap_listed(actor, streaming).await? {
                    Some(busy) => Err(SendError::ChatBusy {
                        retry_after: crate::services::BUSY_RETRY_AFTER,
                        reply_id: Some(busy),
                    }),
                    None => again(attempt, StoreError::Conflict.into()),
                }
            }
        }
    }

    pub(super) fn turn(
        &self,
        actor: &Actor,
        message: Message,
        reply: Message,
        request: LlmRequest,
        early: Option<early::EarlyCall>,
    ) -> Turn {
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
            early,
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

/// See [`MessageService::settle`].
#[allow(clippy::large_enum_variant)]
pub(super) enum Settled {
    /// Stored: the turn, its prompt, and the provider call started with it.
    Started(NewTurn, LlmRequest, early::EarlyCall),
    Replay {
        message: Message,
        reply: Message,
    },
    Again,
}
