//! `run_turn` for `PgStore`: the start of a turn as one pooled connection and one
//! transaction — the chat row locked, the idempotency key claimed, the facts read, the
//! domain's decision called, its turn written, committed. The decision is the
//! domain's; this only reads, translates and writes.

use crate::errors::PgError;
use crate::repo;
use crate::repo::branches::BranchedRow;
use crate::rows::{messages_into_domain, MessageRow, NewOutboxRow};
use crate::store::PgStore;
use diesel::{Connection, PgConnection};
use domain::model::{IdempotencyKey, IdempotentSend, MessageId};
use domain::ports::{
    IdempotentReplay, NewTurn, StoreError, TurnDecision, TurnFacts, TurnParent, TurnRead, TurnRun,
};
use uuid::Uuid;

/// How the turn's transaction ends other than by committing a turn.
enum Abort {
    /// The decision stored nothing: roll back (the claim too) and hand back the facts.
    Declined(Box<TurnFacts>),
    /// A failure.
    Pg(PgError),
}

impl From<diesel::result::Error> for Abort {
    fn from(e: diesel::result::Error) -> Self {
        Abort::Pg(e.into())
    }
}

impl From<PgError> for Abort {
    fn from(e: PgError) -> Self {
        Abort::Pg(e)
    }
}

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

fn idem_of(r: repo::idempotency::IdemRow) -> Result<IdempotentSend, PgError> {
    Ok(IdempotentSend {
        user: domain::model::UserId::parse(&r.user_id).map_err(|e| PgError::Data(e.to_string()))?,
        key: IdempotencyKey::parse(&r.key).map_err(|e| PgError::Data(e.to_string()))?,
        fingerprint: r.fingerprint,
        chat_id: domain::model::ChatId::from_uuid(r.chat_id),
        message_id: MessageId::from_uuid(r.message_id),
        reply_id: MessageId::from_uuid(r.reply_id),
        created_at: r.created_at,
    })
}

fn branched(
    c: &mut PgConnection,
    id: MessageId,
) -> Result<Option<domain::model::Message>, PgError> {
    repo::branches::find(c, id.as_uuid())?
        .map(BranchedRow::into_domain)
        .transpose()
}

/// The turn's inputs, owned, for the blocking closure.
struct Owned {
    chat_id: Uuid,
    claim: Option<repo::idempotency::IdemRow>,
    live_since: chrono::DateTime<chrono::Utc>,
    parent: TurnParent,
    history_limit: i64,
    usage: Option<(String, chrono::NaiveDate, chrono::NaiveDate)>,
}

/// Reads the facts (after the claim); `Err(Declined)` when the claim found a live record.
fn read_facts(c: &mut PgConnection, read: &Owned) -> Result<TurnFacts, Abort> {
    let Some(chat) = repo::turn::lock_chat(c, read.chat_id)? else {
        return Ok(TurnFacts::default());
    };
    let chat = chat.into_domain()?;
    let mut facts = TurnFacts {
        chat: Some(chat),
        ..TurnFacts::default()
    };
    if let Some(row) = &read.claim {
        // The key first: a retry racing the send it repeats waits here for that send's
        // transaction, then finds its record.
        if !repo::idempotency::claim(c, row, read.live_since)? {
            let Some(found) = repo::idempotency::find(c, &row.user_id, &row.key, read.live_since)?
            else {
                return Err(PgError::Conflict.into()); // gone meanwhile: try again
            };
            let record = idem_of(found)?;
            facts.replay = Some(IdempotentReplay {
                message: branched(c, record.message_id)?,
                reply: branched(c, record.reply_id)?,
                record,
            });
            return Ok(facts);
        }
    }
    let chat = facts.chat.as_ref().map(|c| (c.id(), c.active_leaf_id()));
    let (chat_id, active_leaf) = chat.ok_or(PgError::NotFound)?;
    facts.parent_id = match read.parent {
        TurnParent::ActiveLeaf => active_leaf,
        TurnParent::Root => None,
        TurnParent::Message(id) => Some(id),
    };
    let parent = facts.parent_id.map(|p| p.as_uuid());
    if let Some(p) = parent {
        let rows = repo::branches::history(c, chat_id.as_uuid(), p, read.history_limit)?;
        facts.history = messages_into_domain(rows)?;
    }
    let (children, streaming) = repo::turn::children_and_streaming(c, chat_id.as_uuid(), parent)?;
    facts.siblings = children.into_iter().map(MessageId::from_uuid).collect();
    facts.streaming = messages_into_domain(streaming)?;
    if let Some((user, from, to)) = &read.usage {
        facts.usage = repo::usage::range(c, user, *from, *to)?
            .into_iter()
            .map(super::usage::into_domain)
            .collect::<Result<_, _>>()?;
    }
    Ok(facts)
}

/// Writes a decided turn into the locked chat.
fn write_turn(c: &mut PgConnection, facts: &TurnFacts, turn: &NewTurn) -> Result<(), PgError> {
    let chat = facts.chat.as_ref().ok_or(PgError::NotFound)?;
    if facts.replay.is_some() {
        return Err(PgError::Conflict);
    }
    let chat_id = chat.id().as_uuid();
    let mut rows = Vec::with_capacity(2);
    if let Some(m) = &turn.user_message {
        rows.push(MessageRow::from_domain(m)?);
    }
    rows.push(MessageRow::from_domain(&turn.reply)?);
    let mut next = i64::from(chat.message_count());
    for r in &rows {
        next += 1;
        if i64::from(r.seq) != next || r.chat_id != chat_id {
            return Err(PgError::Data(format!(
                "turn message {} has seq {} in chat {}, expected seq {next} in chat {chat_id}",
                r.id, r.seq, r.chat_id
            )));
        }
    }
    let count = i32::try_from(next).map_err(|_| PgError::Data("message_count overflow".into()))?;
    let events = NewOutboxRow::all(&turn.events)?;
    repo::turn::write_turn(
        c,
        &repo::turn::TurnWrites {
            messages: &rows,
            events: &events,
            count,
            at: turn.now,
            leaf: turn.reply.id().as_uuid(),
            chat: chat_id,
        },
    )
}

impl PgStore {
    #[tracing::instrument(skip_all, fields(chat_id = %read.chat_id))]
    pub(crate) async fn turn(
        &self,
        read: &TurnRead,
        decide: TurnDecision,
    ) -> Result<TurnRun, StoreError> {
        let owned = Owned {
            chat_id: read.chat_id.as_uuid(),
            claim: read.claim.as_ref().map(idem_row),
            live_since: read.live_since,
            parent: read.parent,
            history_limit: i64::from(read.history_limit.max(1)),
            usage: read
                .usage
                .as_ref()
                .map(|(u, from, to)| (u.as_str().to_owned(), *from, *to)),
        };
        self.run(move |c| {
            let done = c.transaction::<_, Abort, _>(|c| {
                let facts = read_facts(c, &owned)?;
                match decide(&facts) {
                    None => Err(Abort::Declined(Box::new(facts))),
                    Some(turn) => {
                        write_turn(c, &facts, &turn)?;
                        Ok(TurnRun {
                            facts,
                            started: Some(turn),
                        })
                    }
                }
            });
            match done {
                Ok(run) => Ok(run),
                Err(Abort::Declined(facts)) => Ok(TurnRun {
                    facts: *facts,
                    started: None,
                }),
                Err(Abort::Pg(e)) => Err(e),
            }
        })
        .await
    }
}
