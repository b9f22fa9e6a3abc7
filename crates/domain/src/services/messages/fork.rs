//! Forking a chat: a new chat holding a copy of one branch.

use super::*;
use crate::model::{ChatTitle, ForkOrigin};

/// The suffix of a fork's title.
const FORK_SUFFIX: &str = " (fork)";

/// `"<title> (fork)"`, the original shortened (by characters) to keep within the
/// title limit.
pub(crate) fn fork_title(title: &ChatTitle) -> ChatTitle {
    let room = ChatTitle::MAX_CHARS - FORK_SUFFIX.chars().count();
    let base: String = title.as_str().chars().take(room).collect();
    ChatTitle::parse(&format!("{}{FORK_SUFFIX}", base.trim_end())).unwrap_or_else(|_| title.clone())
}

impl MessageService {
    /// Creates a chat of the actor with the settings of chat `chat_id`, titled
    /// "<title> (fork)", holding a copy of the branch from the root to `message_id`:
    /// new ids, `seq` 1..k, each copy following the previous one; content, role,
    /// status, model, usage, error and times are the originals'. The last copy is the
    /// new chat's active leaf. Emits `chat.created` (with `forkedFrom`) and one
    /// `message.created` per copy. A reply still being generated cannot be forked from
    /// (the chat is busy).
    #[tracing::instrument(skip_all, fields(chat_id = %chat_id, message_id = %message_id))]
    pub async fn fork(
        &self,
        actor: &Actor,
        chat_id: ChatId,
        message_id: MessageId,
    ) -> Result<Chat, MessageError> {
        let source = self.owned_chat(actor, chat_id).await?;
        let target = match self.inner.messages.find_message(message_id).await? {
            Some(m) if m.chat_id() == source.id() => m,
            _ => return Err(MessageError::NotFound),
        };
        if target.status() == MessageStatus::Streaming {
            return Err(MessageError::ChatBusy {
                retry_after: crate::services::BUSY_RETRY_AFTER,
            });
        }
        let mut branch = self
            .inner
            .messages
            .branch_history(source.id(), target.id(), u32::MAX)
            .await?;
        branch.reverse();
        let now = self.inner.clock.now();
        let chat = Chat::new(
            actor.user.clone(),
            fork_title(source.title()),
            source.settings().clone(),
            now,
        );
        let mut copies: Vec<Message> = Vec::with_capacity(branch.len());
        for original in branch {
            let parent_id = copies.last().map(|m| m.id());
            copies.push(original.copied_into(&chat, copies.len(), parent_id));
        }
        let chat = chat.holding(&copies);
        let mut events = Vec::with_capacity(copies.len() + 1);
        events.push(self.event(
            actor,
            chat.id(),
            EventKind::ChatForked {
                chat: chat.clone(),
                forked_from: ForkOrigin {
                    chat_id: source.id(),
                    message_id: target.id(),
                },
            },
        ));
        events.extend(
            copies
                .iter()
                .map(|m| self.event(actor, chat.id(), EventKind::MessageCreated(m.clone()))),
        );
        self.inner
            .messages
            .insert_chat_with_messages(&chat, &copies, &events)
            .await?;
        Ok(chat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_titles_keep_within_the_limit() {
        let short = ChatTitle::parse("Trip").unwrap();
        assert_eq!(fork_title(&short).as_str(), "Trip (fork)");
        let long = ChatTitle::parse(&"é".repeat(ChatTitle::MAX_CHARS)).unwrap();
        let forked = fork_title(&long);
        assert_eq!(forked.as_str().chars().count(), ChatTitle::MAX_CHARS);
        assert!(forked.as_str().ends_with(" (fork)"));
    }
}
