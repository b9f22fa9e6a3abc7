//! `MessageRepository` for `PgStore`: the turn, the conditional finish, edits and
//! deletion, each in one transaction that first locks the chat row.

use super::{as_i64, data_error};
use crate::errors::PgError;
use crate::repo;
use crate::rows::{messages_into_domain, MessageRow, NewOutboxRow};
use crate::store::PgStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::Connection;
use domain::model::{
    Chat, ChatId, Event, IdempotencyKey, IdempotentSend, Message, MessageCursor, MessageId,
    UsageEntry, UserId,
};
use domain::ports::{MessageRepository, NewTurn, StoreError, TurnDecision, TurnRead, TurnRun};

fn idem_row(r: &IdempotentSend) -> repo::idempotency::IdemRow {
    repo::idempotency::IdemRow {
        user_id: r.user.as_str().to_owned(),
        key: r.key.as_str().to_owned(),
        fingerprint: r.fingerprint.clone(),
        chat_id: r.chat_id.as_uuid(),
        message_id: r.message_id.as_uuid(),
        reply_id: r.reply_id.as_uuid(),
        created_at: r.created_at,
    }
}

/// A `u32` position as the `integer` column holds it (beyond the column: the largest).
fn seq_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[async_trait]
impl MessageRepository for PgStore {
    #[tracing::instrument(skip_all, fields(message_id = %id))]
    async fn find_message(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        self.find_branched(id).await
    }

    #[tracing::instrument(skip_all, fields(message_id = %id))]
    async fn find_owned_message(
        &self,
        owner: &UserId,
        id: MessageId,
    ) -> Result<Option<(Chat, Message)>, StoreError> {
        let id = id.as_uuid();
        let owner = owner.as_str().to_owned();
        self.run(move |c| {
            repo::messages::find_owned(c, &owner, id)?
                .map(|(chat, m)| Ok::<_, PgError>((chat.into_domain()?, m.into_domain()?)))
                .transpose()
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(chat_id = %chat_id))]
    async fn list_messages(
        &self,
        chat_id: ChatId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let chat_id = chat_id.as_uuid();
        let after = seq_i32(after.map_or(0, |c| c.seq));
        self.run_read(move |c| {
            messages_into_domain(repo::messages::list(c, chat_id, after, as_i64(limit))?)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(chat_id = %chat_id))]
    async fn recent_messages(
        &self,
        chat_id: ChatId,
        before_seq: u32,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let chat_id = chat_id.as_uuid();
        self.run(move |c| {
            let rows = repo::messages::recent(c, chat_id, as_i64(before_seq), as_i64(limit))?;
            messages_into_domain(rows)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn find_idempotent(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        since: DateTime<Utc>,
    ) -> Result<Option<IdempotentSend>, StoreError> {
        let (user, key) = (user.as_str().to_owned(), key.as_str().to_owned());
        self.run(move |c| {
            repo::idempotency::find(c, &user, &key, since)?
                .map(|r| {
                    Ok(IdempotentSend {
                        user: UserId::parse(&r.user_id)
                            .map_err(|e| PgError::Data(e.to_string()))?,
                        key: IdempotencyKey::parse(&r.key)
                            .map_err(|e| PgError::Data(e.to_string()))?,
                        fingerprint: r.fingerprint,
                        chat_id: ChatId::from_uuid(r.chat_id),
                        message_id: MessageId::from_uuid(r.message_id),
                        reply_id: MessageId::from_uuid(r.reply_id),
                        created_at: r.created_at,
                    })
                })
                .transpose()
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(chat_id = %chat_id))]
    async fn streaming_messages(&self, chat_id: ChatId) -> Result<Vec<Message>, StoreError> {
        let chat_id = chat_id.as_uuid();
        self.run(move |c| messages_into_domain(repo::messages::streaming(c, chat_id)?))
            .await
    }

    #[tracing::instrument(skip_all, fields(chat_id = %turn.chat_id))]
    async fn start_turn(&self, turn: &NewTurn) -> Result<(), StoreError> {
        let chat_id = turn.chat_id.as_uuid();
        let expected = i32::try_from(turn.expected_count)
            .map_err(|_| data_error("expected_count does not fit a column"))?;
        let mut rows = Vec::with_capacity(2);
        if let Some(m) = &turn.user_message {
            rows.push(MessageRow::from_domain(m)?);
        }
        rows.push(MessageRow::from_domain(&turn.reply)?);
        // The messages take the places right after the count this turn expects.
        let mut next = i64::from(expected);
        for r in &rows {
            next += 1;
            if i64::from(r.seq) != next || r.chat_id != chat_id {
                return Err(data_error(format!(
                    "turn message {} has seq {} in chat {}, expected seq {next} in chat {chat_id}",
                    r.id, r.seq, r.chat_id
                )));
            }
        }
        let new_count = i32::try_from(next).map_err(|_| data_error("message_count overflow"))?;
        let events = NewOutboxRow::all(&turn.events)?;
        let (stale_before, now) = (turn.stale_before, turn.now);
        let idem = turn.idempotency.as_ref().map(idem_row);
        let live_since = now - chrono::Duration::hours(IdempotentSend::TTL_HOURS);
        let parent = rows.first().and_then(|r| r.parent_id);
        let leaf = turn.reply.id().as_uuid();
        self.run(move |c| {
            c.transaction(|c| {
                let count = repo::chats::lock(c, chat_id)?.ok_or(PgError::NotFound)?;
                // The key first: a retry racing the send it repeats waits here for that
                // send's transaction, then re-reads and finds its record (a Conflict),
                // instead of seeing that send's reply and answering "busy".
                if let Some(row) = &idem {
                    if !repo::idempotency::claim(c, row, live_since)? {
                        return Err(PgError::Conflict);
                    }
                }
                if repo::messages::is_busy(c, chat_id, stale_before)? {
                    return Err(PgError::ChatBusy);
                }
                if count != expected {
                    return Err(PgError::Conflict);
                }
                if let Some(p) = parent {
                    if repo::messages::seq_of(c, chat_id, p)?.is_none() {
                        return Err(PgError::Conflict); // deleted meanwhile: re-read
                    }
                }
                repo::messages::insert(c, &rows)?;
                repo::chats::set_count(c, chat_id, new_count, now)?;
                repo::branches::set_active_leaf(c, chat_id, Some(leaf))?;
                repo::outbox::append(c, &events)
            })
        })
        .await
    }

    async fn run_turn(&self, read: &TurnRead, decide: TurnDecision) -> Result<TurnRun, StoreError> {
        self.turn(read, decide).await
    }

    #[tracing::instrument(skip_all, fields(message_id = %reply.id()))]
    async fn finish_reply<'u>(
        &self,
        reply: &Message,
        event: &Event,
        usage: Option<&'u UsageEntry>,
    ) -> Result<bool, StoreError> {
        let row = MessageRow::from_domain(reply)?;
        let event = NewOutboxRow::from_domain(event)?;
        let charge = usage.map(super::usage::charge_row);
        // One statement, its own transaction (repo::finish): the chat's lock first, as
        // every change takes it; nothing is written if the reply is no longer streaming
        // or is gone.
        self.run(move |c| repo::finish::finish(c, &row, &event, charge.as_ref()))
            .await
    }

    #[tracing::instrument(skip_all, fields(message_id = %message.id()))]
    async fn update_message(&self, message: &Message, event: &Event) -> Result<(), StoreError> {
        let row = MessageRow::from_domain(message)?;
        let events = NewOutboxRow::all(std::slice::from_ref(event))?;
        self.run(move |c| {
            c.transaction(|c| {
                repo::chats::lock(c, row.chat_id)?.ok_or(PgError::NotFound)?;
                repo::messages::update_content(c, &row)?;
                repo::chats::touch(c, row.chat_id, row.updated_at)?;
                repo::outbox::append(c, &events)
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(message_id = %message.id()))]
    async fn delete_message(
        &self,
        message: &Message,
        stale_before: DateTime<Utc>,
        event: &Event,
    ) -> Result<(), StoreError> {
        let (chat_id, id) = (message.chat_id().as_uuid(), message.id().as_uuid());
        let events = NewOutboxRow::all(std::slice::from_ref(event))?;
        let at = event.time;
        self.run(move |c| {
            c.transaction(|c| {
                let count = repo::chats::lock(c, chat_id)?.ok_or(PgError::NotFound)?;
                // The stored position: the message may have moved since it was read.
                let seq = repo::messages::seq_of(c, chat_id, id)?.ok_or(PgError::NotFound)?;
                if repo::messages::is_busy(c, chat_id, stale_before)? {
                    return Err(PgError::ChatBusy);
                }
                let gone = super::branches::delete_subtree(c, chat_id, id, seq)?;
                repo::chats::set_count(c, chat_id, count - gone, at)?;
                repo::outbox::append(c, &events)
            })
        })
        .await
    }

    async fn list_branch(
        &self,
        chat_id: ChatId,
        through: MessageId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.branch_page(chat_id, through, after, limit).await
    }

    async fn list_owned_active_branch(
        &self,
        owner: &UserId,
        chat_id: ChatId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Option<Vec<Message>>, StoreError> {
        self.owned_active_page(owner, chat_id, after, limit).await
    }

    async fn branch_history(
        &self,
        chat_id: ChatId,
        leaf: MessageId,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.history(chat_id, leaf, limit).await
    }

    async fn newest_leaf(
        &self,
        chat_id: ChatId,
        below: Option<MessageId>,
    ) -> Result<Option<MessageId>, StoreError> {
        self.newest(chat_id, below).await
    }

    async fn children(
        &self,
        chat_id: ChatId,
        parent: Option<MessageId>,
    ) -> Result<Vec<MessageId>, StoreError> {
        self.child_ids(chat_id, parent).await
    }

    async fn select_branch(&self, chat: &Chat, event: &Event) -> Result<(), StoreError> {
        self.store_active_leaf(chat, event).await
    }

    async fn insert_chat_with_messages(
        &self,
        chat: &Chat,
        messages: &[Message],
        events: &[Event],
    ) -> Result<(), StoreError> {
        self.insert_with_messages(chat, messages, events).await
    }
}
