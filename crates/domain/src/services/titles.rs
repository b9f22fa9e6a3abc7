//! Automatic titles: after the first complete reply of a chat still titled by
//! default, a short title is asked of a model, cleaned, and stored only if the chat's
//! title is still the default (emitting `chat.updated`). A failure leaves the title
//! as it was and is logged once. The caller runs it detached, after the reply is stored.

use super::title_text::{clean_title, MAX_AUTO_TITLE_CHARS};
use super::Actor;
use crate::model::{Chat, ChatTitle, Event, EventKind, Message, MessageStatus, ModelName, Role};
use crate::ports::{
    ChatRepository, Clock, LlmClient, LlmError, LlmReply, LlmRequest, MessageRepository,
    ModelCatalog, PromptMessage, StoreError, UsageRepository,
};
use std::sync::Arc;

/// Only replies among a chat's first this many messages are considered (a chat's first
/// reply is normally its second message; this leaves room for failed first tries),
/// so later replies cost nothing.
pub const TITLE_WINDOW: u32 = 20;

/// Most characters of the question and of the reply shown to the title model.
const EXCERPT_CHARS: usize = 2_000;

/// Largest title answer asked for (room for a reasoning model's thoughts).
const TITLE_MAX_TOKENS: u32 = 1_024;

/// The instruction sent as the system message of a title request.
pub const TITLE_INSTRUCTION: &str = "Write a title for the conversation below: at most six words, in the \
conversation's language, with no quotes, no final punctuation and no explanation. Answer with the title only.";

/// How titles are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TitleConfig {
    /// Whether titles are made at all (`llm.auto_title`).
    pub enabled: bool,
    /// The model asked; `None` = the model that answered the chat's first reply.
    pub model: Option<ModelName>,
}

impl Default for TitleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            model: None,
        }
    }
}

/// What a title attempt did.
#[derive(Debug, Clone, PartialEq)]
pub enum TitleOutcome {
    /// The chat got this title (and `chat.updated` was emitted).
    Titled(Chat),
    /// Nothing to do: not a first reply, the chat is titled already (perhaps by its
    /// user meanwhile), or it is gone.
    Skipped,
    /// The model or storage failed; the title is left as it was (logged).
    Failed,
}

#[derive(Debug, thiserror::Error)]
enum TitleError {
    #[error("the title model failed: {0}")]
    Llm(#[from] LlmError),
    #[error("the title model's answer holds no usable title")]
    Empty,
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
}

/// Makes automatic titles.
#[derive(Clone)]
pub struct TitleService {
    chats: Arc<dyn ChatRepository>,
    messages: Arc<dyn MessageRepository>,
    llm: Arc<dyn LlmClient>,
    clock: Arc<dyn Clock>,
    catalog: Option<Arc<dyn ModelCatalog>>,
    ledger: Option<Arc<dyn UsageRepository>>,
    config: TitleConfig,
}

impl std::fmt::Debug for TitleService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TitleService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TitleService {
    /// A service over its ports.
    pub fn new(
        chats: Arc<dyn ChatRepository>,
        messages: Arc<dyn MessageRepository>,
        llm: Arc<dyn LlmClient>,
        clock: Arc<dyn Clock>,
        config: TitleConfig,
    ) -> Self {
        Self {
            chats,
            messages,
            llm,
            clock,
            catalog: None,
            ledger: None,
            config,
        }
    }

    /// Asks only listed models: a title model that is not listed (any more) makes the
    /// attempt fail, logged, instead of calling the provider.
    pub fn with_models(mut self, catalog: Arc<dyn ModelCatalog>) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Charges every title request to `ledger`, under the purpose `title` (its reported
    /// usage, or an estimate marked as such), whether or not the title is then stored.
    pub fn with_usage(mut self, ledger: Arc<dyn UsageRepository>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// Whether this stored reply may lead to a title: titles are on and it is a
    /// complete reply among the chat's first [`TITLE_WINDOW`] messages. Cheap (no I/O),
    /// so the caller can decide whether to start [`TitleService::after_reply`].
    pub fn wants(&self, reply: &Message) -> bool {
        self.config.enabled
            && reply.role() == Role::Assistant
            && reply.status() == MessageStatus::Complete
            && reply.seq() <= TITLE_WINDOW
    }

    /// Titles the reply's chat if this is its first complete reply and its title is
    /// still the default. Never fails: a failure is logged (once, here) and leaves
    /// the title as it was.
    #[tracing::instrument(skip_all, fields(chat_id = %reply.chat_id()))]
    pub async fn after_reply(&self, actor: &Actor, reply: &Message) -> TitleOutcome {
        if !self.wants(reply) {
            return TitleOutcome::Skipped;
        }
        match self.title(actor, reply).await {
            Ok(Some(chat)) => {
                tracing::info!(title = chat.title().as_str(), "chat titled automatically");
                TitleOutcome::Titled(chat)
            }
            Ok(None) => TitleOutcome::Skipped,
            Err(error) => {
                tracing::warn!(%error, "automatic title failed; the title is left as it was");
                TitleOutcome::Failed
            }
        }
    }

    async fn title(&self, actor: &Actor, reply: &Message) -> Result<Option<Chat>, TitleError> {
        let Some(chat) = self.chats.find_chat(reply.chat_id()).await? else {
            return Ok(None);
        };
        if *chat.owner() != actor.user || chat.title().as_str() != ChatTitle::DEFAULT {
            return Ok(None);
        }
        let earlier = self
            .messages
            .recent_messages(chat.id(), reply.seq(), TITLE_WINDOW)
            .await?;
        if earlier
            .iter()
            .any(|m| m.role() == Role::Assistant && m.status() == MessageStatus::Complete)
        {
            return Ok(None);
        }
        let Some(question) = earlier.iter().find(|m| m.role() == Role::User) else {
            return Ok(None);
        };
        let request = self.request(actor, reply, question)?;
        let (model, prompt_estimate) = (request.model.clone(), super::estimate_prompt(&request));
        let answer = self.llm.complete(request).await?;
        self.charge(actor, &model, prompt_estimate, &answer).await;
        let title = clean_title(&answer.content).ok_or(TitleError::Empty)?;
        let mut titled = chat.clone();
        titled.update(Some(&title), None, self.clock.now().max(chat.updated_at()));
        let event = Event::new(
            self.clock.now(),
            actor.user.clone(),
            chat.id(),
            EventKind::ChatUpdated(titled.clone()),
        )
        .with_request_id(actor.request_id.clone());
        let expected = ChatTitle::default();
        if self.chats.retitle_chat(&titled, &expected, &event).await? {
            Ok(Some(titled))
        } else {
            Ok(None)
        }
    }

    /// Records what a title request cost; a failure is logged and changes nothing else.
    async fn charge(&self, actor: &Actor, model: &str, prompt_estimate: u32, answer: &LlmReply) {
        let Some(ledger) = &self.ledger else { return };
        let model = if answer.model.is_empty() {
            model
        } else {
            &answer.model
        };
        let entry = super::title_entry(
            &actor.user,
            model,
            self.clock.now(),
            answer.usage,
            prompt_estimate,
            &answer.content,
        );
        if let Err(error) = ledger.record_usage(&entry).await {
            tracing::warn!(%error, "could not record the usage of a title request");
        }
    }

    fn request(
        &self,
        actor: &Actor,
        reply: &Message,
        question: &Message,
    ) -> Result<LlmRequest, TitleError> {
        let model = match (&self.config.model, reply.model()) {
            (Some(m), _) => m.as_str().to_owned(),
            (None, Some(m)) => m.to_owned(),
            (None, None) => return Err(TitleError::Llm(LlmError::BadRequest("no model".into()))),
        };
        let mut max_tokens = TITLE_MAX_TOKENS;
        if let Some(c) = &self.catalog {
            let list = c.models();
            let Some(info) = list.find(&model) else {
                return Err(TitleError::Llm(LlmError::BadRequest(format!(
                    "the title model {model:?} is not offered"
                ))));
            };
            max_tokens = max_tokens.min(info.max_output_tokens());
        }
        let excerpt = |s: &str| s.chars().take(EXCERPT_CHARS).collect::<String>();
        let conversation = format!(
            "User: {}\n\nAssistant: {}",
            excerpt(question.content()),
            excerpt(reply.content())
        );
        Ok(LlmRequest {
            model,
            messages: vec![
                PromptMessage {
                    role: Role::System,
                    content: format!(
                        "{TITLE_INSTRUCTION} (At most {MAX_AUTO_TITLE_CHARS} characters.)"
                    ),
                },
                PromptMessage {
                    role: Role::User,
                    content: conversation,
                },
            ],
            temperature: Some(0.2),
            max_tokens: Some(max_tokens),
            request_id: actor.request_id.clone(),
        })
    }
}

#[cfg(test)]
#[path = "titles_tests.rs"]
mod tests;
