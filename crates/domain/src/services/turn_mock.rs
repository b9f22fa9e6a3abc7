//! Test support: `MessageRepository::run_turn` over a mock, standing in for a store.

use crate::model::Chat;
use crate::ports::*;

/// Makes each `run_turn` read `facts(read)`, call the decision with them and hand the
/// turn it returns to `write` (whose error is the call's), `times` times if given.
pub(super) fn run_turn_over(
    messages: &mut MockMessageRepository,
    times: Option<usize>,
    facts: impl Fn(&TurnRead) -> TurnFacts + Send + 'static,
    write: impl Fn(&NewTurn) -> Result<(), StoreError> + Send + 'static,
) {
    let e = messages.expect_run_turn();
    let e = match times {
        Some(n) => e.times(n),
        None => e,
    };
    e.returning(move |read, decide| {
        let facts = facts(read);
        let started = decide(&facts);
        if let Some(turn) = &started {
            write(turn)?;
        }
        Ok(TurnRun { facts, started })
    });
}

/// The facts of `chat` holding nothing that stops a turn.
pub(super) fn facts_of(chat: &Chat) -> TurnFacts {
    TurnFacts {
        chat: Some(chat.clone()),
        parent_id: chat.active_leaf_id(),
        ..TurnFacts::default()
    }
}
