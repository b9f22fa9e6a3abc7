//! Reading, editing and deleting messages.

use super::*;

impl MessageService {
    /// Reads a message of one of the actor's chats.
    #[tracing::instrument(skip_all, fields(message_id = %id))]
    pub async fn get(&self, actor: &Actor, id: MessageId) -> Result<Message, MessageError> {
        let message = self.owned_message(actor, id).await?.1;
        Ok(self.with_live_text(message).await)
    }

    /// A page of the chat's active branch, root → active leaf (see
    /// [`MessageService::list_branch`]).
    #[tracing::instrument(skip_all, fields(chat_id = %chat_id))]
    pub async fn list(
        &self,
        actor: &Actor,
        chat_id: ChatId,
        page: PageRequest<MessageCursor>,
    ) -> Result<Page<Message, MessageCursor>, MessageError> {
        self.list_branch(actor, chat_id, None, page).await
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
        if message.status() == MessageStatus::Streaming {
            return Err(MessageError::ChatBusy {
                retry_after: crate::services::BUSY_RETRY_AFTER,
            });
        }
        message.edit(content, self.inner.clock.now());
        let event = self.event(
            actor,
            message.chat_id(),
            EventKind::MessageUpdated(message.clone()),
        );
        self.inner.messages.update_message(&message, &event).await?;
        Ok(message)
    }

    /// Deletes a message and its whole subtree (every message below it); later messages
    /// close up their `seq`s, and an active leaf inside the subtree moves to the newest
    /// remaining descendant of the message's parent. Emits one `message.deleted` (for
    /// the message named; its descendants go with it). Refused while a reply is being
    /// generated in the chat.
    #[tracing::instrument(skip_all, fields(message_id = %id))]
    pub async fn delete(&self, actor: &Actor, id: MessageId) -> Result<(), MessageError> {
        let (chat, message) = self.owned_message(actor, id).await?;
        self.reap_stale(actor, chat.id()).await?;
        let event = self.event(
            actor,
            message.chat_id(),
            EventKind::MessageDeleted {
                message_id: message.id(),
                seq: message.seq(),
            },
        );
        self.inner
            .messages
            .delete_message(&message, self.stale_before(), &event)
            .await?;
        Ok(())
    }
}
