//! The message search service: full-text search over the caller's messages (optionally
//! one chat), ranked by relevance then recency, with a plain-text snippet per hit.

use super::{Actor, DataError};
use crate::model::{
    ChatId, MessageQuery, MessageSearchCursor, Page, PageRequest, SearchHit, SearchRow, Snippet,
};
use crate::ports::{ChatRepository, MessageSearch, MessageSearchRepository};
use std::sync::Arc;

/// How many of the newest matches are ranked. Relevance ordering over every match of a
/// common word would read all of them (hundreds of thousands for a heavy user); ranking
/// the newest ones keeps each page bounded. Older matches are reached by a narrower
/// query (more words, a phrase, one chat).
pub const SEARCH_WINDOW: u32 = 100;

/// Searches a user's messages.
#[derive(Clone)]
pub struct SearchService {
    chats: Arc<dyn ChatRepository>,
    search: Arc<dyn MessageSearchRepository>,
    window: u32,
}

impl std::fmt::Debug for SearchService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchService")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// Builds a hit from a stored row (the one place that reads the message for it).
fn hit(row: SearchRow, query: &MessageQuery) -> SearchHit {
    let snippet = Snippet::build(row.message.content(), query);
    SearchHit {
        chat_id: row.message.chat_id(),
        chat_title: row.chat_title,
        relevance: row.relevance,
        snippet,
        message: row.message,
    }
}

impl SearchService {
    /// A service ranking the newest [`SEARCH_WINDOW`] matches.
    pub fn new(chats: Arc<dyn ChatRepository>, search: Arc<dyn MessageSearchRepository>) -> Self {
        Self {
            chats,
            search,
            window: SEARCH_WINDOW,
        }
    }

    /// The same service ranking the newest `window` matches instead.
    pub fn with_window(self, window: u32) -> Self {
        Self {
            window: window.max(1),
            ..self
        }
    }

    /// The actor's messages matching `query` (in `chat_id` only, when given), most
    /// relevant first, then newest. A chat that is not the actor's is `NotFound`.
    #[tracing::instrument(skip_all, fields(user = %actor.user))]
    pub async fn search(
        &self,
        actor: &Actor,
        chat_id: Option<ChatId>,
        query: MessageQuery,
        page: PageRequest<MessageSearchCursor>,
    ) -> Result<Page<SearchHit, MessageSearchCursor>, DataError> {
        if let Some(id) = chat_id {
            match self.chats.find_chat(id).await? {
                Some(c) if *c.owner() == actor.user => {}
                _ => return Err(DataError::NotFound),
            }
        }
        let limit = page.limit.get();
        let request = MessageSearch {
            owner: actor.user.clone(),
            chat_id,
            query,
            after: page.after,
            limit: limit + 1,
            window: self.window,
        };
        let mut rows = self.search.search_messages(&request).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = if more {
            rows.last().map(MessageSearchCursor::after)
        } else {
            None
        };
        Ok(Page {
            items: rows.into_iter().map(|r| hit(r, &request.query)).collect(),
            next,
        })
    }
}
