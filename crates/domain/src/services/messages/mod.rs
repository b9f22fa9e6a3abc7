//! The message service: sending (the turn with the LLM), regenerating, cancelling,
//! reading, editing and deleting messages, one use case per file.

mod branches;
mod cancel;
mod decide;
mod early;
mod fork;
mod read;
mod regenerate;
mod send;

use send::Settled;

pub use branches::SendParent;
pub(crate) use early::EarlyCall;

use super::generation::{CancelAck, Generation, RunningGuard, Turn};
use super::history::{build_prompt, HistoryBudget};
use super::live_replies::LiveConfig;
use super::{Actor, CancelError, MessageError, SendError};
use crate::model::{
    Chat, ChatId, Event, EventKind, Message, MessageContent, MessageCursor, MessageId,
    MessageStatus, Page, PageRequest, Role,
};
use crate::model::{IdempotencyKey, IdempotentSend};
use crate::ports::{
    ChatRepository, Clock, LiveReplies, LlmClient, LlmRequest, MessageRepository, ModelCatalog,
    NewTurn, Sleeper, StoreError,
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
    /// The message it follows.
    pub parent: SendParent,
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
    pub(crate) quota: Option<Arc<super::Quota>>,
    pub(crate) live: Option<Arc<dyn LiveReplies>>,
    pub(crate) live_config: LiveConfig,
    /// This process's name as a lease holder.
    pub(crate) instance: String,
    running: Mutex<HashMap<MessageId, oneshot::Sender<CancelAck>>>,
}

impl Inner {
    pub(crate) fn unregister(&self, id: MessageId) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub(crate) fn is_running(&self, id: MessageId) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&id)
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
    pub(crate) inner: Arc<Inner>,
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
                quota: None,
                live: None,
                live_config: LiveConfig::default(),
                instance: uuid::Uuid::now_v7().to_string(),
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

    /// Refuses a send or regenerate of a user whose token quota is spent (see
    /// [`super::Quota`]), before anything is stored or the provider is called.
    pub fn with_quota(self, quota: Arc<super::Quota>) -> Self {
        self.with_inner(|i| i.quota = Some(quota))
    }

    /// Publishes replies being generated to `live` (their text, lease and cancel
    /// signal), so they can be followed, read and cancelled from any process sharing
    /// it. Without it, a reply can only be cancelled by this process and its text is
    /// seen once stored.
    pub fn with_live(self, live: Arc<dyn LiveReplies>, config: LiveConfig) -> Self {
        self.with_inner(|i| {
            i.live = Some(live);
            i.live_config = config;
        })
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
                quota: shared.quota.clone(),
                live: shared.live.clone(),
                live_config: shared.live_config.clone(),
                instance: shared.instance.clone(),
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

    pub(crate) fn event(&self, actor: &Actor, chat_id: ChatId, kind: EventKind) -> Event {
        let event = Event::new(self.inner.clock.now(), actor.user.clone(), chat_id, kind)
            .with_request_id(actor.request_id.clone());
        self.inner.tag_provider(event)
    }

    pub(crate) async fn owned_chat(&self, actor: &Actor, id: ChatId) -> Result<Chat, StoreError> {
        match self.inner.chats.find_chat(id).await? {
            Some(chat) if *chat.owner() == actor.user => Ok(chat),
            _ => Err(StoreError::NotFound),
        }
    }

    /// A message of one of the actor's chats, with that chat: one storage read, the
    /// same whether the message is missing or another user's.
    pub(crate) async fn owned_message(
        &self,
        actor: &Actor,
        id: MessageId,
    ) -> Result<(Chat, Message), StoreError> {
        self.inner
            .messages
            .find_owned_message(&actor.user, id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub(crate) fn stale_before(&self) -> chrono::DateTime<chrono::Utc> {
        let age = chrono::Duration::from_std(self.inner.config.stale_after)
            .unwrap_or(chrono::Duration::MAX);
        self.inner.clock.now() - age
    }

    /// Marks `streaming` replies abandoned by a dead process as failed, so they stop
    /// blocking the chat (see `live_reaper`).
    async fn reap_stale(&self, actor: &Actor, chat_id: ChatId) -> Result<(), StoreError> {
        self.reap_chat(actor, chat_id).await
    }
}
