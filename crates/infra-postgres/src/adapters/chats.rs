//! `ChatRepository` for `PgStore`.

use super::as_i64;
use crate::repo;
use crate::rows::{chats_into_domain, ChatRow, NewOutboxRow};
use crate::store::PgStore;
use async_trait::async_trait;
use diesel::Connection;
use domain::model::{Chat, ChatCursor, ChatId, ChatTitle, Event, SearchQuery, UserId};
use domain::ports::{ChatRepository, StoreError};

fn cursor(after: Option<ChatCursor>) -> Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)> {
    after.map(|c| (c.updated_at, c.id.as_uuid()))
}

#[async_trait]
impl ChatRepository for PgStore {
    #[tracing::instrument(skip_all, fields(chat_id = %chat.id()))]
    async fn insert_chat(&self, chat: &Chat, event: &Event) -> Result<(), StoreError> {
        let row = ChatRow::from_domain(chat)?;
        let events = NewOutboxRow::all(std::slice::from_ref(event))?;
        self.run(move |c| {
            c.transaction(|c| {
                repo::chats::insert(c, &row)?;
                repo::outbox::append(c, &events)
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(chat_id = %id))]
    async fn find_chat(&self, id: ChatId) -> Result<Option<Chat>, StoreError> {
        let id = id.as_uuid();
        self.run(move |c| {
            repo::chats::find(c, id)?
                .map(ChatRow::into_domain)
                .transpose()
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(chat_id = %chat.id()))]
    async fn update_chat(
        &self,
        chat: &Chat,
        expected: &Chat,
        event: &Event,
    ) -> Result<(), StoreError> {
        let row = ChatRow::from_domain(chat)?;
        let expected = ChatRow::from_domain(expected)?;
        let events = NewOutboxRow::all(std::slice::from_ref(event))?;
        self.run(move |c| {
            c.transaction(|c| {
                repo::chats::update(c, &row, &expected)?;
                repo::outbox::append(c, &events)
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(chat_id = %chat.id()))]
    async fn retitle_chat(
        &self,
        chat: &Chat,
        expected: &ChatTitle,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let id = chat.id().as_uuid();
        let title = chat.title().as_str().to_owned();
        let expected = expected.as_str().to_owned();
        let at = chat.updated_at();
        let events = NewOutboxRow::all(std::slice::from_ref(event))?;
        self.run(move |c| {
            c.transaction(|c| {
                let changed = repo::chats::retitle(c, id, &expected, &title, at)?;
                if changed {
                    repo::outbox::append(c, &events)?;
                }
                Ok(changed)
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(chat_id = %id))]
    async fn delete_chat(&self, id: ChatId, event: &Event) -> Result<(), StoreError> {
        let id = id.as_uuid();
        let events = NewOutboxRow::all(std::slice::from_ref(event))?;
        self.run(move |c| {
            c.transaction(|c| {
                repo::chats::delete(c, id)?;
                repo::outbox::append(c, &events)
            })
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn list_chats(
        &self,
        owner: &UserId,
        after: Option<ChatCursor>,
        limit: u32,
    ) -> Result<Vec<Chat>, StoreError> {
        let owner = owner.as_str().to_owned();
        let after = cursor(after);
        self.run_read(move |c| {
            chats_into_domain(repo::chats::list(c, &owner, after, as_i64(limit))?)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn search_chats(
        &self,
        owner: &UserId,
        query: &SearchQuery,
        after: Option<ChatCursor>,
        limit: u32,
    ) -> Result<Vec<Chat>, StoreError> {
        let owner = owner.as_str().to_owned();
        let query = query.as_str().to_owned();
        let after = cursor(after);
        self.run_read(move |c| {
            // Up to three statements: one snapshot for all of them.
            let rows = c
                .build_transaction()
                .read_only()
                .repeatable_read()
                .run(|c| repo::title_search::search(c, &owner, &query, after, as_i64(limit)))?;
            chats_into_domain(rows)
        })
        .await
    }
}
