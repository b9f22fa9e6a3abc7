//! Contract cases of `MessageRepository::run_turn`: the facts read in the turn's
//! transaction, the decision's turn stored, and nothing stored (the claim neither)
//! when the decision declines.

use super::fixtures::*;
use super::Storage;
use crate::model::*;
use crate::ports::{NewTurn, TurnFacts, TurnParent, TurnRead, TurnRun};
use chrono::Duration;
use std::sync::{Arc, Mutex};

/// A chat of alice's with one finished turn (question, answer), as stored.
async fn answered(s: &Storage) -> (Chat, Message, Message) {
    let c = new_chat(s).await;
    let t = turn(&c, 0, "q");
    s.messages.start_turn(&t).await.unwrap();
    let mut r = t.reply.clone();
    r.tweak(|p| {
        p.status = MessageStatus::Complete;
        p.content = "a".into();
    });
    s.messages
        .finish_reply(
            &r,
            &event(
                &c,
                EventKind::MessageCompleted {
                    message: r.clone(),
                    latency_ms: 1,
                },
            ),
            None,
        )
        .await
        .unwrap();
    let c = s.chats.find_chat(c.id()).await.unwrap().unwrap();
    (c, t.user_message.unwrap(), r)
}

fn read(chat: &Chat, claim: Option<IdempotentSend>) -> TurnRead {
    TurnRead {
        chat_id: chat.id(),
        claim,
        live_since: now() - Duration::hours(24),
        parent: TurnParent::ActiveLeaf,
        history_limit: 10,
        usage: None,
    }
}

fn claim_of(t: &NewTurn, key: &str) -> IdempotentSend {
    IdempotentSend {
        user: user("alice"),
        key: IdempotencyKey::parse(key).unwrap(),
        fingerprint: "fp".into(),
        chat_id: t.chat_id,
        message_id: t.user_message.as_ref().unwrap().id(),
        reply_id: t.reply.id(),
        created_at: t.now,
    }
}

/// Runs a turn whose decision records the facts it saw and returns `turn`.
async fn run_with(s: &Storage, read: &TurnRead, turn: Option<NewTurn>) -> (TurnRun, TurnFacts) {
    let seen = Arc::new(Mutex::new(None));
    let keep = seen.clone();
    let run = s
        .messages
        .run_turn(
            read,
            Box::new(move |f: &TurnFacts| {
                *keep.lock().unwrap() = Some(f.clone());
                turn
            }),
        )
        .await
        .unwrap();
    let facts = seen
        .lock()
        .unwrap()
        .take()
        .expect("the decision was called");
    (run, facts)
}

/// The facts of a turn following the active leaf: the chat, the branch up to the
/// leaf (newest first), the leaf's children and the streaming replies; the decision's
/// turn is stored like `start_turn`'s (messages, count, active leaf, events).
pub async fn run_turn_reads_the_facts_and_stores_the_decided_turn(s: &Storage) {
    let (c, question, answer) = answered(s).await;
    let t = turn(&c, 2, "next");
    let (run, facts) = run_with(s, &read(&c, None), Some(t.clone())).await;
    assert_eq!(run.facts, facts);
    assert_eq!(run.started.as_ref(), Some(&t));
    assert_eq!(facts.chat.as_ref().map(|c| c.id()), Some(c.id()));
    assert_eq!(facts.parent_id, Some(answer.id()));
    let history: Vec<_> = facts.history.iter().map(|m| m.id()).collect();
    assert_eq!(history, [answer.id(), question.id()]);
    assert!(facts.siblings.is_empty());
    assert!(facts.streaming.is_empty());
    assert_eq!(facts.replay, None);
    let stored = s.chats.find_chat(c.id()).await.unwrap().unwrap();
    assert_eq!(stored.message_count(), 4);
    assert_eq!(stored.active_leaf_id(), Some(t.reply.id()));
    let listed = s.messages.list_messages(c.id(), None, 10).await.unwrap();
    assert_eq!(listed.len(), 4);
    // The new reply streams: the next turn sees it, and the new user message's siblings.
    let mut root = read(&c, None);
    root.parent = TurnParent::Root;
    let (_, facts) = run_with(s, &root, None).await;
    let streaming: Vec<_> = facts.streaming.iter().map(|m| m.id()).collect();
    assert_eq!(streaming, [t.reply.id()]);
    assert_eq!(facts.parent_id, None);
    assert!(facts.history.is_empty());
    assert_eq!(facts.siblings, [question.id()]);
}

/// A declined decision stores nothing, not even the claim; a named parent outside the
/// chat reads no history; a missing chat reads nothing.
pub async fn run_turn_declined_stores_nothing(s: &Storage) {
    let (c, question, _) = answered(s).await;
    let t = turn(&c, 2, "no");
    let mut r = read(&c, Some(claim_of(&t, "k-1")));
    r.parent = TurnParent::Message(MessageId::new());
    let (run, facts) = run_with(s, &r, None).await;
    assert_eq!(run.started, None);
    assert!(facts.history.is_empty());
    assert_eq!(facts.replay, None);
    assert_eq!(
        s.chats
            .find_chat(c.id())
            .await
            .unwrap()
            .unwrap()
            .message_count(),
        2
    );
    let since = now() - Duration::hours(24);
    let key = IdempotencyKey::parse("k-1").unwrap();
    assert_eq!(
        s.messages
            .find_idempotent(&user("alice"), &key, since)
            .await
            .unwrap(),
        None
    );
    // A user message as the parent: read, with its role, for the decision to refuse.
    r.parent = TurnParent::Message(question.id());
    let (_, facts) = run_with(s, &r, None).await;
    assert_eq!(
        facts.history.first().map(|m| (m.id(), m.role())),
        Some((question.id(), Role::User))
    );
    let gone = chat("alice", "gone");
    let (run, facts) = run_with(s, &read(&gone, None), None).await;
    assert_eq!((run.started, facts), (None, TurnFacts::default()));
}

/// The claim is stored with the turn; a later turn with the same live key finds that
/// record (with its messages as stored) instead, and reads nothing else.
pub async fn run_turn_claims_the_key_or_finds_its_record(s: &Storage) {
    let (c, _, _) = answered(s).await;
    let t = turn(&c, 2, "once");
    let rec = claim_of(&t, "k-2");
    let (run1, facts) = run_with(s, &read(&c, Some(rec.clone())), Some(t.clone())).await;
    assert!(run1.started.is_some());
    assert_eq!(facts.replay, None);
    let since = now() - Duration::hours(24);
    assert_eq!(
        s.messages
            .find_idempotent(&user("alice"), &rec.key, since)
            .await
            .unwrap(),
        Some(rec.clone())
    );
    let again = turn(
        &s.chats.find_chat(c.id()).await.unwrap().unwrap(),
        4,
        "twice",
    );
    let (run2, facts) = run_with(s, &read(&c, Some(claim_of(&again, "k-2"))), None).await;
    assert_eq!(run2.started, None);
    let replay = facts.replay.expect("the live record");
    assert_eq!(replay.record, rec);
    assert_eq!(
        replay.message.map(|m| (m.id(), m.branch().count)),
        Some((rec.message_id, 1))
    );
    assert_eq!(replay.reply.map(|m| m.id()), Some(rec.reply_id));
    assert!(facts.streaming.is_empty() && facts.history.is_empty());
    assert_eq!(
        s.chats
            .find_chat(c.id())
            .await
            .unwrap()
            .unwrap()
            .message_count(),
        4
    );
}
