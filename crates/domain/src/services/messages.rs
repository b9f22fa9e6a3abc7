//! The message service: sending (the turn with the LLM), regenerating, cancelling,
//! reading, editing and deleting messages.

use super::generation::{CancelAck, Generation, RunningGuard, Turn};
use super::history::{build_prompt, HistoryBudget};
use super::{Actor, CancelError, MessageError, SendError};
use crate::model::{
    Chat, ChatId, Event, EventKind, Message, MessageContent, MessageCursor, MessageId,
    MessageStatus, Page, PageRequest, Role,
};
use crate::model::{IdempotencyKey, IdempotentSend};
use crate::ports::{
    ChatRepository, Clock, LlmClient, LlmRequest, MessageRepository, ModelCatalog, NewTurn,
    Sleeper, StoreError,
};
use futures::channel::oneshot;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A message to send, built from valid parts only.
#[derive(Debug, Clone, PartialEq)]
pub struct SendMessage {
    /// The chat to send it to.
    pub chat_id: ChatId,
    /// What the user wrote.
    pub content: MessageContent,
}

/// What an idempotent send did. (Returned once per request: its size does not matter.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum SendOutcome {
    /// A new turn: run its generation.
    Started(Turn),
    /// A retry of an earlier send: the turn as stored now.
    Replay {
        /// The user's message.
        message: Message,
        /// The reply (possibly still `streaming`).
        reply: Message,
    },
}

/// Settings of the message service.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageServiceConfig {
    /// Model used when a chat does not set one.
    pub default_model: String,
    /// Prompt token budget per model.
    pub history: HistoryBudget,
    /// Most history messages read for one prompt (before budgeting).
    pub history_fetch_limit: u32,
    /// A `streaming` reply not updated for this long is considered abandoned (its
    /// process died): it no longer blocks the chat and is marked failed.
    pub stale_after: Duration,
}

impl Default for MessageServiceConfig {
    fn default() -> Self {
        Self {
            default_model: "echo".into(),
            history: HistoryBudget::default(),
            history_fetch_limit: 200,
            stale_after: Duration::from_secs(600),
        }
    }
}

/// How many times a send re-reads the chat after losing a race for the next `seq`.
const MAX_SEQ_RETRIES: usize = 16;

pub(crate) struct Inner {
    pub(crate) chats: Arc<dyn ChatRepository>,
    pub(crate) messages: Arc<dyn MessageRepository>,
    pub(crate) llm: Arc<dyn LlmClient>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: MessageServiceConfig,
    pub(crate) sleeper: Option<Arc<dyn Sleeper>>,
    pub(crate) catalog: Option<Arc<dyn ModelCatalog>>,
    pub(crate) observer: Option<Arc<dyn super::ReplyObserver>>,
    running: Mutex<HashMap<MessageId, oneshot::Sender<CancelAck>>>,
}

impl Inner {
    pub(crate) fn unregister(&self, id: MessageId) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    fn take_running(&self, id: MessageId) -> Option<oneshot::Sender<CancelAck>> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
    }
}

/// Messages of a user's chats, and the round trip to the LLM.
#[derive(Clone)]
pub struct MessageService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MessageService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl MessageService {
    /// A service over its ports.
    pub fn new(
        chats: Arc<dyn ChatRepository>,
        messages: Arc<dyn MessageRepository>,
        llm: Arc<dyn LlmClient>,
        clock: Arc<dyn Clock>,
        config: MessageServiceConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                chats,
                messages,
                llm,
                clock,
                config,
                sleeper: None,
                catalog: None,
                observer: None,
                running: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Lets the service wait between retries of the final write of a reply (storing
    /// it when storage is briefly unavailable): without a sleeper it does not retry.
    pub fn with_sleeper(self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.with_inner(|i| i.sleeper = Some(sleeper))
    }

    /// Takes the models on offer from `catalog`: a turn whose chat names an unlisted
    /// model is refused, a chat without a model uses the catalog's default, `maxTokens`
    /// is bounded by the model's ceiling, and reply events name the model's provider.
    /// Without a catalog any model name is passed on.
    pub fn with_models(self, catalog: Arc<dyn ModelCatalog>) -> Self {
        self.with_inner(|i| i.catalog = Some(catalog))
    }

    /// Tells `observer` about every reply once its final state is stored.
    pub fn with_observer(self, observer: Arc<dyn super::ReplyObserver>) -> Self {
        self.with_inner(|i| i.observer = Some(observer))
    }

    fn with_inner(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => Inner {
                chats: shared.chats.clone(),
                messages: shared.messages.clone(),
                llm: shared.llm.clone(),
                clock: shared.clock.clone(),
                config: shared.config.clone(),
                sleeper: shared.sleeper.clone(),
                catalog: shared.catalog.clone(),
                observer: shared.observer.clone(),
                running: Mutex::new(HashMap::new()),
            },
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// How many replies this process is generating now.
    pub fn active_generations(&self) -> usize {
        self.inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    fn event(&self, actor: &Actor, chat_id: ChatId, kind: EventKind) -> Event {
        let event = Event::new(self.inner.clock.now(), actor.user.clone(), chat_id, kind)
            .with_request_id(actor.request_id.clone());
        self.inner.tag_provider(event)
    }

    async fn owned_chat(&self, actor: &Actor, id: ChatId) -> Result<Chat, StoreError> {
        match self.inner.chats.find_chat(id).await? {
            Some(chat) if chat.owner == actor.user => Ok(chat),
            _ => Err(StoreError::NotFound),
        }
    }

    /// A message of one of the actor's chats, with that chat.
    async fn owned_message(
        &self,
        actor: &Actor,
        id: MessageId,
    ) -> Result<(Chat, Message), StoreError> {
        let message = self
            .inner
            .messages
            .find_message(id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let chat = self.owned_chat(actor, message.chat_id).await?;
        Ok((chat, message))
    }

    fn stale_before(&self) -> chrono::DateTime<chrono::Utc> {
        let age = chrono::Duration::from_std(self.inner.config.stale_after)
            .unwrap_or(chrono::Duration::MAX);
        self.inner.clock.now() - age
    }

    /// Marks `streaming` replies abandoned by a dead process as failed, so they stop
    /// blocking the chat.
    async fn reap_stale(&self, actor: &Actor, chat_id: ChatId) -> Result<(), StoreError> {
        let cutoff = self.stale_before();
        for mut m in self.inner.messages.streaming_messages(chat_id).await? {
            if m.updated_at >= cutoff {
                continue;
            }
            tracing::warn!(message_id = %m.id, "marking an abandoned streaming reply as failed");
            m.status = MessageStatus::Failed;
            m.error = Some("generation was interrupted".into());
            m.updated_at = self.inner.clock.now();
            let event = self.event(actor, chat_id, EventKind::MessageFailed(m.clone()));
            self.inner.messages.finish_reply(&m, &event).await?;
        }
        Ok(())
    }

    fn new_reply(&self, chat: &Chat, seq: u32) -> Message {
        let now = self.inner.clock.now();
        Message {
            id: MessageId::new(),
            chat_id: chat.id,
            seq,
            role: Role::Assistant,
            content: String::new(),
            status: MessageStatus::Streaming,
            model: Some(self.model_of(chat)),
            usage: None,
            error: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn model_of(&self, chat: &Chat) -> String {
        self.inner.model_name_for(chat)
    }

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
        if record.chat_id != cmd.chat_id
            || record.fingerprint != IdempotentSend::fingerprint(cmd.chat_id, cmd.content.as_str())
        {
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
            self.reap_stale(actor, chat.id).await?;
            let now = self.inner.clock.now();
            let user_message = Message {
                id: MessageId::new(),
                chat_id: chat.id,
                seq: chat.message_count + 1,
                role: Role::User,
                content: cmd.content.as_str().to_owned(),
                status: MessageStatus::Complete,
                model: None,
                usage: None,
                error: None,
                created_at: now,
                updated_at: now,
            };
            let reply = self.new_reply(&chat, chat.message_count + 2);
            // Read the history before storing the turn: once the turn is stored, its
            // generation must start, so nothing that can fail may stand in between.
            let history = self
                .inner
                .messages
                .recent_messages(
                    chat.id,
                    user_message.seq,
                    self.inner.config.history_fetch_limit,
                )
                .await?;
            let idempotency = key.as_ref().map(|k| IdempotentSend {
                user: actor.user.clone(),
                key: k.clone(),
                fingerprint: IdempotentSend::fingerprint(chat.id, cmd.content.as_str()),
                chat_id: chat.id,
                message_id: user_message.id,
                reply_id: reply.id,
                created_at: now,
            });
            let turn = NewTurn {
                chat_id: chat.id,
                expected_count: chat.message_count,
                user_message: Some(user_message.clone()),
                reply: reply.clone(),
                stale_before: self.stale_before(),
                now,
                events: vec![
                    self.event(
                        actor,
                        chat.id,
                        EventKind::MessageCreated(user_message.clone()),
                    ),
                    self.event(actor, chat.id, EventKind::MessageCreated(reply.clone())),
                ],
                idempotency,
            };
            match self.inner.messages.start_turn(&turn).await {
                Ok(()) => break (chat, user_message, reply, history),
                Err(StoreError::Conflict) if attempt < MAX_SEQ_RETRIES => attempt += 1,
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

    fn turn(
        &self,
        actor: &Actor,
        chat: &Chat,
        message: Message,
        reply: Message,
        history: &[Message],
    ) -> Turn {
        let model = reply.model.clone().unwrap_or_else(|| self.model_of(chat));
        let budget = self.inner.config.history.for_model(&model);
        let max_tokens = self
            .inner
            .max_tokens_for(&model, chat.settings.max_tokens.map(|m| m.value()));
        let request = LlmRequest {
            messages: build_prompt(
                chat.settings.system_prompt.as_ref().map(|s| s.as_str()),
                history,
                &message.content,
                budget,
            ),
            model,
            temperature: chat.settings.temperature.map(|t| t.value()),
            max_tokens,
            request_id: actor.request_id.clone(),
        };
        let (tx, rx) = oneshot::channel();
        self.inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(reply.id, tx);
        let generation = Generation {
            inner: self.inner.clone(),
            actor: actor.clone(),
            reply: reply.clone(),
            request,
            cancel: rx,
            _guard: RunningGuard {
                inner: self.inner.clone(),
                id: reply.id,
            },
        };
        Turn {
            message,
            reply,
            generation,
        }
    }

    /// Starts a new reply to the user message that `reply_id` answered, built from the
    /// history up to that user message. The new reply is appended to the chat (next
    /// `seq`); the old one is kept. Emits `message.created` for the new reply.
    #[tracing::instrument(skip_all, fields(message_id = %reply_id))]
    pub async fn regenerate(&self, actor: &Actor, reply_id: MessageId) -> Result<Turn, SendError> {
        let (_, target) = self.owned_message(actor, reply_id).await?;
        if target.role != Role::Assistant {
            return Err(SendError::NotAReply);
        }
        if target.status == MessageStatus::Streaming {
            return Err(SendError::ChatBusy {
                retry_after: super::BUSY_RETRY_AFTER,
            });
        }
        let limit = self.inner.config.history_fetch_limit;
        let earlier = self
            .inner
            .messages
            .recent_messages(target.chat_id, target.seq, limit + 1)
            .await?;
        let pos = earlier
            .iter()
            .position(|m| m.role == Role::User)
            .ok_or(SendError::NotAReply)?;
        let question = earlier[pos].clone();
        let history = &earlier[pos + 1..];
        let mut attempt = 0;
        loop {
            let chat = self.owned_chat(actor, target.chat_id).await?;
            self.inner.check_model(&chat)?;
            self.reap_stale(actor, chat.id).await?;
            let reply = self.new_reply(&chat, chat.message_count + 1);
            let turn = NewTurn {
                chat_id: chat.id,
                expected_count: chat.message_count,
                user_message: None,
                reply: reply.clone(),
                stale_before: self.stale_before(),
                now: self.inner.clock.now(),
                events: vec![self.event(actor, chat.id, EventKind::MessageCreated(reply.clone()))],
                idempotency: None,
            };
            match self.inner.messages.start_turn(&turn).await {
                Ok(()) => return Ok(self.turn(actor, &chat, question, reply, history)),
                Err(StoreError::Conflict) if attempt < MAX_SEQ_RETRIES => attempt += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

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
        if self.inner.messages.finish_reply(&message, &event).await? {
            return Ok(message);
        }
        match self.inner.messages.find_message(id).await? {
            Some(m) if m.status == MessageStatus::Cancelled => Ok(m),
            Some(_) => Err(CancelError::NotStreaming),
            None => Err(CancelError::NotFound),
        }
    }

    /// Reads a message of one of the actor's chats.
    #[tracing::instrument(skip_all, fields(message_id = %id))]
    pub async fn get(&self, actor: &Actor, id: MessageId) -> Result<Message, MessageError> {
        Ok(self.owned_message(actor, id).await?.1)
    }

    /// A page of a chat's messages in conversation order.
    #[tracing::instrument(skip_all, fields(chat_id = %chat_id))]
    pub async fn list(
        &self,
        actor: &Actor,
        chat_id: ChatId,
        page: PageRequest<MessageCursor>,
    ) -> Result<Page<Message, MessageCursor>, MessageError> {
        let chat = self.owned_chat(actor, chat_id).await?;
        let limit = page.limit.get();
        let mut rows = self
            .inner
            .messages
            .list_messages(chat.id, page.after, limit + 1)
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = more
            .then(|| rows.last().map(|m| MessageCursor { seq: m.seq }))
            .flatten();
        Ok(Page { items: rows, next })
    }

    /// Replaces a message's content; emits `message.updated`. A reply being generated
    /// cannot be edited (the chat is busy).
    #[tracing::instrument(skip_all, fields(message_id = %id))]
    pub async fn edit(
        &self,
        actor: &Actor,
        id: MessageId,
        content: MessageContent,
    ) -> Result<Message, MessageError> {
        let (_, mut message) = self.owned_message(actor, id).await?;
        if message.status == MessageStatus::Streaming {
            return Err(MessageError::ChatBusy {
                retry_after: super::BUSY_RETRY_AFTER,
            });
        }
        message.content = content.into();
        message.updated_at = self.inner.clock.now();
        let event = self.event(
            actor,
            message.chat_id,
            EventKind::MessageUpdated(message.clone()),
        );
        self.inner.messages.update_message(&message, &event).await?;
        Ok(message)
    }

    /// Deletes a message; later messages move up one `seq`. Emits `message.deleted`.
    /// Refused while a reply is being generated in the chat.
    #[tracing::instrument(skip_all, fields(message_id = %id))]
    pub async fn delete(&self, actor: &Actor, id: MessageId) -> Result<(), MessageError> {
        let (chat, message) = self.owned_message(actor, id).await?;
        self.reap_stale(actor, chat.id).await?;
        let event = self.event(
            actor,
            message.chat_id,
            EventKind::MessageDeleted {
                message_id: message.id,
                seq: message.seq,
            },
        );
        self.inner
            .messages
            .delete_message(&message, self.stale_before(), &event)
            .await?;
        Ok(())
    }
}
