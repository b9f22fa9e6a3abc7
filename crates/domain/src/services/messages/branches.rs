//! Conversation trees (DESIGN.md §2.1): which message a send follows, reading a
//! branch, and selecting the branch a chat shows.

use super::*;

/// The message a new user message follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SendParent {
    /// The chat's active leaf (`parentId` absent).
    #[default]
    ActiveLeaf,
    /// None: a new root (`parentId: null`).
    Root,
    /// An assistant reply of the chat (edit-and-resend, or continuing an older branch).
    Message(MessageId),
}

impl SendParent {
    /// What an idempotency fingerprint covers besides the chat: the content and, when
    /// named, the parent. (Content never holds a NUL, so the forms cannot collide; the
    /// default form is the content alone, as before trees.)
    pub(crate) fn fingerprint_text(&self, content: &str) -> String {
        match self {
            SendParent::ActiveLeaf => content.to_owned(),
            SendParent::Root => format!("{content}\0root"),
            SendParent::Message(id) => format!("{content}\0parent={id}"),
        }
    }
}

impl MessageService {
    /// A page of a branch of the chat, root → leaf: the branch through `through`
    /// (its ancestors, itself, then its newest descendants), or the active branch.
    #[tracing::instrument(skip_all, fields(chat_id = %chat_id))]
    pub async fn list_branch(
        &self,
        actor: &Actor,
        chat_id: ChatId,
        through: Option<MessageId>,
        page: PageRequest<MessageCursor>,
    ) -> Result<Page<Message, MessageCursor>, MessageError> {
        let limit = page.limit.get();
        let mut rows = match through {
            // The chat's own page: the owner check and the page in one read.
            None => self
                .inner
                .messages
                .list_owned_active_branch(&actor.user, chat_id, page.after, limit + 1)
                .await?
                .ok_or(MessageError::NotFound)?,
            Some(id) => {
                let chat = self.owned_chat(actor, chat_id).await?;
                match self.inner.messages.find_message(id).await? {
                    Some(m) if m.chat_id() == chat.id() => {}
                    _ => return Err(MessageError::NotFound),
                }
                self.inner
                    .messages
                    .list_branch(chat.id(), id, page.after, limit + 1)
                    .await?
            }
        };
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        for m in rows.iter_mut() {
            if m.status() == MessageStatus::Streaming {
                // The text generated so far, from the live state.
                *m = self.with_live_text(m.clone()).await;
            }
        }
        let next = more
            .then(|| rows.last().map(|m| MessageCursor { seq: m.seq() }))
            .flatten();
        Ok(Page { items: rows, next })
    }

    /// Makes the chat show the branch through `message`: its active leaf becomes the
    /// newest descendant of `message` (at each step the child with the highest `seq`).
    /// Emits `chat.updated`. Selecting a branch is navigation, not activity: the chat's
    /// `updatedAt` (and so its place in the chat list) does not change.
    #[tracing::instrument(skip_all, fields(chat_id = %chat_id, message_id = %message))]
    pub async fn select_branch(
        &self,
        actor: &Actor,
        chat_id: ChatId,
        message: MessageId,
    ) -> Result<Chat, MessageError> {
        let mut chat = self.owned_chat(actor, chat_id).await?;
        match self.inner.messages.find_message(message).await? {
            Some(m) if m.chat_id() == chat.id() => {}
            _ => return Err(MessageError::NotFound),
        }
        let leaf = self
            .inner
            .messages
            .newest_leaf(chat.id(), Some(message))
            .await?
            .ok_or(MessageError::NotFound)?;
        chat.select_leaf(leaf);
        let event = self.event(actor, chat.id(), EventKind::ChatUpdated(chat.clone()));
        self.inner.messages.select_branch(&chat, &event).await?;
        Ok(chat)
    }
}
