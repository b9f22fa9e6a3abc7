//! The start of a turn as one unit of storage work (`MessageRepository::run_turn`): the
//! adapter reads the facts a turn depends on inside one transaction, hands them to the
//! domain's decision, writes what the decision returns and commits. Adapters translate;
//! every decision (ownership, busy, idempotency, quota, the parent) stays in the domain.

use crate::model::{Chat, ChatId, IdempotentSend, Message, MessageId, UsageRow, UserId};
use crate::ports::{NewTurn, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use std::sync::{Arc, Mutex};

/// The message a new turn follows, as the adapter resolves it inside the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnParent {
    /// The chat's active leaf (as stored when the chat row is locked).
    ActiveLeaf,
    /// None: a new root.
    Root,
    /// This message (which the decision checks is one of the chat's, and of which role).
    Message(MessageId),
}

/// What the adapter reads for a turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnRead {
    /// The chat (locked for the whole transaction).
    pub chat_id: ChatId,
    /// For a send with an `Idempotency-Key`: the record to claim, before anything else
    /// is read. If a live record (created at or after `live_since`) holds the same user
    /// and key, nothing is claimed and [`TurnFacts::replay`] is that record.
    pub claim: Option<IdempotentSend>,
    /// Records created before this instant are expired: a claim replaces them.
    pub live_since: DateTime<Utc>,
    /// The message the turn follows.
    pub parent: TurnParent,
    /// Most messages of the parent's branch to read (the prompt's history).
    pub history_limit: u32,
    /// The usage ledger rows of this user from the first day to the second (both
    /// included) to read, when quotas apply.
    pub usage: Option<(UserId, NaiveDate, NaiveDate)>,
}

/// A live idempotency record found instead of claiming the key, with its turn as
/// stored now (each `None` if deleted since).
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotentReplay {
    /// The record.
    pub record: IdempotentSend,
    /// Its user message, with its `branch`.
    pub message: Option<Message>,
    /// Its reply, with its `branch`.
    pub reply: Option<Message>,
}

/// What a turn depends on, read in the turn's transaction with the chat row locked.
/// When the chat is missing or a live idempotency record is found, the other facts
/// are not read (left empty).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TurnFacts {
    /// The chat, whoever owns it; `None` if it does not exist.
    pub chat: Option<Chat>,
    /// A live idempotency record holding the key [`TurnRead::claim`] asked for.
    pub replay: Option<IdempotentReplay>,
    /// The message the turn follows, resolved: the chat's active leaf, none, or the one
    /// named (whether it exists or not).
    pub parent_id: Option<MessageId>,
    /// The branch from the root to `parent_id`, newest first, starting with the parent
    /// itself (so empty when the parent is not a message of this chat), at most
    /// [`TurnRead::history_limit`] messages (at least the parent). `branch` not filled in.
    pub history: Vec<Message>,
    /// The ids of the children of `parent_id` (the chat's roots for `None`), in `seq` order.
    pub siblings: Vec<MessageId>,
    /// The chat's `streaming` messages, in `seq` order.
    pub streaming: Vec<Message>,
    /// The usage ledger rows asked for by [`TurnRead::usage`].
    pub usage: Vec<UsageRow>,
}

/// The domain's decision over the facts: the turn to store, or `None` to store nothing
/// (the transaction is rolled back, the claim included).
pub type TurnDecision = Box<dyn FnOnce(&TurnFacts) -> Option<NewTurn> + Send>;

/// What `run_turn` did: the facts it read and, when the decision started a turn, the
/// turn it stored (committed).
#[derive(Debug, Clone, PartialEq)]
pub struct TurnRun {
    /// The facts the decision saw.
    pub facts: TurnFacts,
    /// The stored turn; `None` when the decision declined (nothing was stored).
    pub started: Option<NewTurn>,
}

/// Runs a typed decision through [`crate::ports::MessageRepository::run_turn`]: `decide`
/// returns the turn to store or a refusal of the caller's own type, which comes back
/// with the facts. (The port itself only needs to know whether to write.)
pub async fn decide_turn<R, F>(
    repo: &dyn crate::ports::MessageRepository,
    read: &TurnRead,
    decide: F,
) -> Result<(TurnFacts, Result<NewTurn, R>), StoreError>
where
    R: Send + 'static,
    F: FnOnce(&TurnFacts) -> Result<NewTurn, R> + Send + 'static,
{
    let refusal: Arc<Mutex<Option<R>>> = Arc::new(Mutex::new(None));
    let slot = refusal.clone();
    let decision: TurnDecision = Box::new(move |facts| match decide(facts) {
        Ok(turn) => Some(turn),
        Err(r) => {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            None
        }
    });
    let run = repo.run_turn(read, decision).await?;
    let refused = refusal.lock().unwrap_or_else(|e| e.into_inner()).take();
    let outcome = match (run.started, refused) {
        (Some(turn), _) => Ok(turn),
        (None, Some(r)) => Err(r),
        (None, None) => {
            return Err(StoreError::Unknown(anyhow::anyhow!(
                "run_turn stored nothing without asking the decision"
            )))
        }
    };
    Ok((run.facts, outcome))
}
