//! The export service: everything a user owns as a stream of items (each chat followed
//! by its messages), read page by page so memory stays bounded whatever the size, and
//! read no further once the consumer drops the stream.

use super::{Actor, DataError};
use crate::model::{Chat, ChatId, Message, UserId};
use crate::ports::ExportRepository;
use futures::stream::{self, Stream};
use std::collections::VecDeque;
use std::sync::Arc;

/// Chats read per page.
pub const EXPORT_CHAT_PAGE: u32 = 100;
/// Messages read per page (a page holds at most this many messages in memory).
pub const EXPORT_MESSAGE_PAGE: u32 = 100;

/// One item of an export, in stream order.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportItem {
    /// A chat; its messages follow.
    Chat(Chat),
    /// A message of the last chat.
    Message(Message),
    /// The end of a complete export, with what it held.
    End {
        /// Chats exported.
        chats: u64,
        /// Messages exported.
        messages: u64,
    },
}

/// Streams a user's data.
#[derive(Clone)]
pub struct ExportService {
    export: Arc<dyn ExportRepository>,
    chat_page: u32,
    message_page: u32,
}

impl std::fmt::Debug for ExportService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportService").finish_non_exhaustive()
    }
}

/// Where the reading is.
struct Cursor {
    export: Arc<dyn ExportRepository>,
    owner: UserId,
    chat_page: u32,
    message_page: u32,
    /// The last chat read, and whether more chats may follow.
    after_chat: Option<ChatId>,
    chats_left: bool,
    chats: VecDeque<Chat>,
    /// The chat whose messages are being read, and the last `seq` read.
    current: Option<(ChatId, u32)>,
    messages: VecDeque<Message>,
    counts: (u64, u64),
    finished: bool,
}

impl Cursor {
    /// The next item, reading a page when the buffered ones are used up.
    async fn next(&mut self) -> Result<Option<ExportItem>, DataError> {
        loop {
            if let Some(m) = self.messages.pop_front() {
                self.counts.1 += 1;
                return Ok(Some(ExportItem::Message(m)));
            }
            if let Some((chat, after)) = self.current {
                let page = self
                    .export
                    .export_messages(chat, after, self.message_page)
                    .await?;
                let full = page.len() >= self.message_page as usize;
                self.current = match page.last() {
                    Some(last) if full => Some((chat, last.seq())),
                    _ => None,
                };
                self.messages.extend(page);
                continue;
            }
            if let Some(c) = self.chats.pop_front() {
                self.counts.0 += 1;
                if c.message_count() > 0 {
                    self.current = Some((c.id(), 0));
                }
                return Ok(Some(ExportItem::Chat(c)));
            }
            if !self.chats_left {
                if self.finished {
                    return Ok(None);
                }
                self.finished = true;
                return Ok(Some(ExportItem::End {
                    chats: self.counts.0,
                    messages: self.counts.1,
                }));
            }
            let page = self
                .export
                .export_chats(&self.owner, self.after_chat, self.chat_page)
                .await?;
            self.chats_left = page.len() >= self.chat_page as usize;
            self.after_chat = page.last().map(|c| c.id());
            self.chats.extend(page);
        }
    }
}

impl ExportService {
    /// A service reading pages of [`EXPORT_CHAT_PAGE`] chats and [`EXPORT_MESSAGE_PAGE`]
    /// messages.
    pub fn new(export: Arc<dyn ExportRepository>) -> Self {
        Self {
            export,
            chat_page: EXPORT_CHAT_PAGE,
            message_page: EXPORT_MESSAGE_PAGE,
        }
    }

    /// The same service with other page sizes (at least 1).
    pub fn with_pages(self, chats: u32, messages: u32) -> Self {
        Self {
            chat_page: chats.max(1),
            message_page: messages.max(1),
            ..self
        }
    }

    /// Every chat of the actor (by id) each followed by all its messages (every branch,
    /// by `seq`), then [`ExportItem::End`]. A failure is the last item. Pages are read
    /// as the stream is polled: dropping it stops the reading.
    pub fn export(
        &self,
        actor: &Actor,
    ) -> impl Stream<Item = Result<ExportItem, DataError>> + Send + 'static {
        let cursor = Cursor {
            export: self.export.clone(),
            owner: actor.user.clone(),
            chat_page: self.chat_page,
            message_page: self.message_page,
            after_chat: None,
            chats_left: true,
            chats: VecDeque::new(),
            current: None,
            messages: VecDeque::new(),
            counts: (0, 0),
            finished: false,
        };
        stream::unfold(Some(cursor), |state| async move {
            let mut cursor = state?;
            match cursor.next().await {
                Ok(Some(item)) => Some((Ok(item), Some(cursor))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }
}
