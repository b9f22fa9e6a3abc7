//! The tree part of `MessageRepository` for `PgStore` (called from `messages.rs`, which
//! holds the trait impl): branch reads, the newest-descendant walk, children, branch
//! selection, forks, and the subtree deletion inside `delete_message`.

use super::as_i64;
use crate::errors::PgError;
use crate::repo;
use crate::repo::branches::BranchedRow;
use crate::rows::{messages_into_domain, to_u32, ChatRow, MessageRow, NewOutboxRow};
use crate::store::PgStore;
use diesel::{Connection, PgConnection};
use domain::model::{Branch, Chat, ChatId, Event, Message, MessageCursor, MessageId, UserId};
use domain::ports::StoreError;
use uuid::Uuid;

/// Rows per insert statement: PostgreSQL takes at most 65,535 bound parameters.
const INSERT_CHUNK: usize = 1_000;

impl BranchedRow {
    pub(crate) fn into_domain(self) -> Result<Message, PgError> {
        let mut m = self.message.into_domain()?;
        m.set_branch(Branch {
            index: to_u32(self.branch_index, "branch_index")?,
            count: to_u32(self.branch_count, "branch_count")?,
            prev_id: self.prev_id.map(MessageId::from_uuid),
            next_id: self.next_id.map(MessageId::from_uuid),
        });
        Ok(m)
    }
}

/// Deletes the subtree of `id` in a locked chat, closes up the `seq`s, moves an active
/// leaf that was inside it; returns how many messages went.
pub(crate) fn delete_subtree(
    c: &mut PgConnection,
    chat_id: Uuid,
    id: Uuid,
    seq: i32,
) -> Result<i32, PgError> {
    let parent = repo::messages::find(c, id)?.and_then(|m| m.parent_id);
    let gone = repo::branches::delete_subtree(c, chat_id, id)?;
    if gone.is_empty() {
        return Err(PgError::NotFound);
    }
    repo::branches::close_up(c, chat_id, seq - 1)?;
    repo::branches::renumber_siblings(c, chat_id, parent)?;
    if repo::branches::active_leaf(c, chat_id)?.is_some_and(|l| gone.contains(&l)) {
        let leaf = match repo::branches::newest_leaf(c, chat_id, parent)? {
            Some(l) => Some(l),
            None => repo::branches::newest_leaf(c, chat_id, None)?,
        };
        repo::branches::set_active_leaf(c, chat_id, leaf)?;
    }
    repo::branches::refresh_active_lines(c, chat_id)?;
    i32::try_from(gone.len()).map_err(|_| PgError::Data("subtree too large".into()))
}

impl PgStore {
    pub(crate) async fn find_branched(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        let id = id.as_uuid();
        self.run(move |c| {
            repo::branches::find(c, id)?
                .map(BranchedRow::into_domain)
                .transpose()
        })
        .await
    }

    pub(crate) async fn branch_page(
        &self,
        chat_id: ChatId,
        through: MessageId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let (chat_id, through) = (chat_id.as_uuid(), through.as_uuid());
        let after = i32::try_from(after.map_or(0, |c| c.seq)).unwrap_or(i32::MAX);
        self.run_read(move |c| {
            repo::branches::page(c, chat_id, through, after, as_i64(limit))?
                .into_iter()
                .map(BranchedRow::into_domain)
                .collect()
        })
        .await
    }

    /// A page of the active branch of the owner's chat: one statement with the owner
    /// check; only an empty page takes a second one, to tell the owner's chat with no
    /// rows there from another user's chat or none. On the request's own thread when the
    /// store has local reads (`local_reads`), else on the pool.
    pub(crate) async fn owned_active_page(
        &self,
        owner: &UserId,
        chat_id: ChatId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Option<Vec<Message>>, StoreError> {
        let chat_id = chat_id.as_uuid();
        let after = i32::try_from(after.map_or(0, |c| c.seq)).unwrap_or(i32::MAX);
        if let Some(local) = self.local_reads() {
            let limit = as_i64(limit);
            return local
                .pages
                .owned_active_page(chat_id, owner.as_str(), after, limit)
                .await;
        }
        let owner = owner.as_str().to_owned();
        self.run_read(move |c| {
            let page = repo::branches::owned_active_page(c, chat_id, &owner, after, as_i64(limit))?;
            if page.is_empty() {
                let owned = repo::chats::find(c, chat_id)?.is_some_and(|r| r.owner == owner);
                return Ok(owned.then(Vec::new));
            }
            page.into_iter()
                .map(BranchedRow::into_domain)
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        })
        .await
    }

    pub(crate) async fn history(
        &self,
        chat_id: ChatId,
        leaf: MessageId,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let (chat_id, leaf) = (chat_id.as_uuid(), leaf.as_uuid());
        self.run(move |c| {
            messages_into_domain(repo::branches::history(c, chat_id, leaf, as_i64(limit))?)
        })
        .await
    }

    pub(crate) async fn newest(
        &self,
        chat_id: ChatId,
        below: Option<MessageId>,
    ) -> Result<Option<MessageId>, StoreError> {
        let (chat_id, below) = (chat_id.as_uuid(), below.map(|b| b.as_uuid()));
        self.run(move |c| {
            Ok(repo::branches::newest_leaf(c, chat_id, below)?.map(MessageId::from_uuid))
        })
        .await
    }

    pub(crate) async fn child_ids(
        &self,
        chat_id: ChatId,
        parent: Option<MessageId>,
    ) -> Result<Vec<MessageId>, StoreError> {
        let (chat_id, parent) = (chat_id.as_uuid(), parent.map(|p| p.as_uuid()));
        self.run(move |c| {
            Ok(repo::branches::children(c, chat_id, parent)?
                .into_iter()
                .map(MessageId::from_uuid)
                .collect())
        })
        .await
    }

    pub(crate) async fn store_active_leaf(
        &self,
        chat: &Chat,
        event: &Event,
    ) -> Result<(), StoreError> {
        let chat_id = chat.id().as_uuid();
        let leaf = chat.active_leaf_id().ok_or(StoreError::NotFound)?.as_uuid();
        let events = NewOutboxRow::all(std::slice::from_ref(event))?;
        self.run(move |c| {
            c.transaction(|c| {
                repo::chats::lock(c, chat_id)?.ok_or(PgError::NotFound)?;
                repo::messages::seq_of(c, chat_id, leaf)?.ok_or(PgError::NotFound)?;
                repo::branches::set_active_leaf(c, chat_id, Some(leaf))?;
                repo::outbox::append(c, &events)
            })
        })
        .await
    }

    pub(crate) async fn insert_with_messages(
        &self,
        chat: &Chat,
        messages: &[Message],
        events: &[Event],
    ) -> Result<(), StoreError> {
        let chat_row = ChatRow::from_domain(chat)?;
        let rows = messages
            .iter()
            .map(MessageRow::from_domain)
            .collect::<Result<Vec<_>, _>>()?;
        let events = NewOutboxRow::all(events)?;
        self.run(move |c| {
            c.transaction(|c| {
                repo::chats::insert(c, &chat_row)?;
                // In `seq` order, so each parent is stored before its child.
                for chunk in rows.chunks(INSERT_CHUNK) {
                    repo::messages::insert(c, chunk)?;
                }
                for chunk in events.chunks(INSERT_CHUNK) {
                    repo::outbox::append(c, chunk)?;
                }
                Ok(())
            })
        })
        .await
    }
}
