//! The chat service: creating, reading, changing, deleting and listing a user's chats.

use super::{Actor, ChatError};
use crate::model::{
    Chat, ChatCursor, ChatId, ChatSettings, ChatTitle, Event, EventKind, Page, PageRequest,
    SearchQuery,
};
use crate::ports::{ChatRepository, Clock, ModelCatalog, StoreError};
use std::sync::Arc;

/// How many times an update is tried when other writers keep changing the chat first
/// (each conflict means another change was stored: the chat is making progress).
const UPDATE_ATTEMPTS: u32 = 10;

/// A new chat, built from valid parts only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateChat {
    /// Its title; "New chat" when `None`.
    pub title: Option<ChatTitle>,
    /// Its settings; all defaults when `None`.
    pub settings: Option<ChatSettings>,
}

/// A change to a chat: fields left `None` are not changed; `settings` replaces the
/// whole settings object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateChat {
    /// The new title.
    pub title: Option<ChatTitle>,
    /// The new settings.
    pub settings: Option<ChatSettings>,
}

/// Chats of a user. Another user's chat is reported as [`ChatError::NotFound`].
#[derive(Clone)]
pub struct ChatService {
    chats: Arc<dyn ChatRepository>,
    clock: Arc<dyn Clock>,
    catalog: Option<Arc<dyn ModelCatalog>>,
}

impl std::fmt::Debug for ChatService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatService").finish_non_exhaustive()
    }
}

impl ChatService {
    /// A service over a chat repository and a clock.
    pub fn new(chats: Arc<dyn ChatRepository>, clock: Arc<dyn Clock>) -> Self {
        Self {
            chats,
            clock,
            catalog: None,
        }
    }

    /// Checks new settings against the models on offer: the model must be listed and
    /// `maxTokens` within its ceiling ([`ChatError::InvalidSettings`] otherwise).
    pub fn with_models(mut self, catalog: Arc<dyn ModelCatalog>) -> Self {
        self.catalog = Some(catalog);
        self
    }

    fn event(&self, actor: &Actor, chat_id: ChatId, kind: EventKind) -> Event {
        Event::new(self.clock.now(), actor.user.clone(), chat_id, kind)
            .with_request_id(actor.request_id.clone())
    }

    /// Creates a chat owned by the actor; emits `chat.created`.
    #[tracing::instrument(skip_all, fields(user = %actor.user))]
    pub async fn create(&self, actor: &Actor, cmd: CreateChat) -> Result<Chat, ChatError> {
        if let Some(s) = &cmd.settings {
            super::models::check_settings(self.catalog.as_ref(), s)
                .map_err(ChatError::InvalidSettings)?;
        }
        let now = self.clock.now();
        let chat = Chat::new(
            actor.user.clone(),
            cmd.title.unwrap_or_default(),
            cmd.settings.unwrap_or_default(),
            now,
        );
        let event = self.event(actor, chat.id(), EventKind::ChatCreated(chat.clone()));
        self.chats.insert_chat(&chat, &event).await?;
        Ok(chat)
    }

    /// Reads one of the actor's chats.
    #[tracing::instrument(skip_all, fields(chat_id = %id))]
    pub async fn get(&self, actor: &Actor, id: ChatId) -> Result<Chat, ChatError> {
        match self.chats.find_chat(id).await? {
            Some(chat) if *chat.owner() == actor.user => Ok(chat),
            _ => Err(ChatError::NotFound),
        }
    }

    /// Changes one of the actor's chats; emits `chat.updated`.
    #[tracing::instrument(skip_all, fields(chat_id = %id))]
    pub async fn update(
        &self,
        actor: &Actor,
        id: ChatId,
        cmd: UpdateChat,
    ) -> Result<Chat, ChatError> {
        if let Some(s) = &cmd.settings {
            super::models::check_settings(self.catalog.as_ref(), s)
                .map_err(ChatError::InvalidSettings)?;
        }
        // Compare-and-set: a concurrent change of another field (a title beside these
        // settings, an automatic title) makes the write conflict; it is re-read and
        // this change applied on top, so both are kept.
        let mut attempt = 1;
        loop {
            let current = self.get(actor, id).await?;
            let mut chat = current.clone();
            chat.update(
                cmd.title.as_ref(),
                cmd.settings.as_ref(),
                self.clock.now().max(current.updated_at()),
            );
            let event = self.event(actor, chat.id(), EventKind::ChatUpdated(chat.clone()));
            match self.chats.update_chat(&chat, &current, &event).await {
                Ok(()) => return Ok(chat),
                Err(StoreError::Conflict) if attempt < UPDATE_ATTEMPTS => attempt += 1,
                Err(StoreError::Conflict) => {
                    return Err(ChatError::Contended {
                        retry_after: super::BUSY_RETRY_AFTER,
                    })
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Deletes one of the actor's chats with all its messages; emits `chat.deleted`.
    #[tracing::instrument(skip_all, fields(chat_id = %id))]
    pub async fn delete(&self, actor: &Actor, id: ChatId) -> Result<(), ChatError> {
        let chat = self.get(actor, id).await?;
        let event = self.event(
            actor,
            chat.id(),
            EventKind::ChatDeleted { chat_id: chat.id() },
        );
        self.chats.delete_chat(chat.id(), &event).await?;
        Ok(())
    }

    /// The actor's chats, most recent activity first.
    #[tracing::instrument(skip_all, fields(user = %actor.user))]
    pub async fn list(
        &self,
        actor: &Actor,
        page: PageRequest<ChatCursor>,
    ) -> Result<Page<Chat, ChatCursor>, ChatError> {
        let limit = page.limit.get();
        let rows = self
            .chats
            .list_chats(&actor.user, page.after, limit + 1)
            .await?;
        Ok(paginate(rows, limit))
    }

    /// The actor's chats whose title contains `query` (ignoring case), most recent first.
    #[tracing::instrument(skip_all, fields(user = %actor.user))]
    pub async fn search(
        &self,
        actor: &Actor,
        query: &SearchQuery,
        page: PageRequest<ChatCursor>,
    ) -> Result<Page<Chat, ChatCursor>, ChatError> {
        let limit = page.limit.get();
        let rows = self
            .chats
            .search_chats(&actor.user, query, page.after, limit + 1)
            .await?;
        Ok(paginate(rows, limit))
    }
}

fn paginate(mut rows: Vec<Chat>, limit: u32) -> Page<Chat, ChatCursor> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = more
        .then(|| {
            rows.last().map(|c| ChatCursor {
                updated_at: c.updated_at(),
                id: c.id(),
            })
        })
        .flatten();
    Page { items: rows, next }
}
