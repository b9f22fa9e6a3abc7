//! Contract cases of idempotent sends on the `MessageRepository` port: the record
//! stored with its turn, its expiry, and the key checked before the busy check.

use super::fixtures::*;
use super::Storage;
use crate::model::*;
use crate::ports::StoreError;
use chrono::Duration;

fn idem(t: &crate::ports::NewTurn, user: &str, key: &str) -> IdempotentSend {
    IdempotentSend {
        user: user_id(user),
        key: IdempotencyKey::parse(key).unwrap(),
        fingerprint: "fp".into(),
        chat_id: t.chat_id,
        message_id: t.user_message.as_ref().unwrap().id(),
        reply_id: t.reply.id(),
        created_at: t.now,
    }
}

fn user_id(name: &str) -> UserId {
    UserId::parse(name).unwrap()
}

/// The record of an idempotent send is stored with its turn, found by user and key
/// while live, and a second turn with a live key is a `Conflict` that stores nothing.
pub async fn idempotency_record_is_stored_with_the_turn(s: &Storage) {
    let c = new_chat(s).await;
    let key = IdempotencyKey::parse("key-1").unwrap();
    let since = now() - Duration::hours(24);
    assert_eq!(
        s.messages
            .find_idempotent(&user_id("alice"), &key, since)
            .await
            .unwrap(),
        None
    );
    let mut t = turn(&c, 0, "once");
    let rec = idem(&t, "alice", "key-1");
    t.idempotency = Some(rec.clone());
    s.messages.start_turn(&t).await.unwrap();
    assert_eq!(
        s.messages
            .find_idempotent(&user_id("alice"), &key, since)
            .await
            .unwrap(),
        Some(rec.clone())
    );
    assert_eq!(
        s.messages
            .find_idempotent(&user_id("bob"), &key, since)
            .await
            .unwrap(),
        None
    );
    // Finish the reply so the chat is not busy, then try the same key again.
    complete(s, &c, &t.reply).await;
    let mut again = turn(&c, 2, "twice");
    again.idempotency = Some(idem(&again, "alice", "key-1"));
    assert!(matches!(
        s.messages.start_turn(&again).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        s.messages
            .list_messages(c.id(), None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    // Another user may use the same key.
    let mut other = turn(&c, 2, "bob's");
    other.idempotency = Some(idem(&other, "bob", "key-1"));
    s.messages.start_turn(&other).await.unwrap();
}

/// Records older than the cut-off are ignored and replaced.
pub async fn expired_idempotency_records_are_replaced(s: &Storage) {
    let c = new_chat(s).await;
    let key = IdempotencyKey::parse("old").unwrap();
    let mut t = turn(&c, 0, "long ago");
    let mut rec = idem(&t, "alice", "old");
    rec.created_at = now() - Duration::hours(25);
    t.idempotency = Some(rec);
    s.messages.start_turn(&t).await.unwrap();
    let since = now() - Duration::hours(24);
    assert_eq!(
        s.messages
            .find_idempotent(&user_id("alice"), &key, since)
            .await
            .unwrap(),
        None
    );
    complete(s, &c, &t.reply).await;
    let mut fresh = turn(&c, 2, "now");
    let rec = idem(&fresh, "alice", "old");
    fresh.idempotency = Some(rec.clone());
    s.messages.start_turn(&fresh).await.unwrap();
    assert_eq!(
        s.messages
            .find_idempotent(&user_id("alice"), &key, since)
            .await
            .unwrap(),
        Some(rec)
    );
}

pub async fn tree_idempotency_key_is_checked_before_the_busy_check(s: &Storage) {
    let c = new_chat(s).await;
    let mut t = turn(&c, 0, "once");
    t.idempotency = Some(idem(&t, "alice", "key-1"));
    s.messages.start_turn(&t).await.unwrap(); // its reply is still streaming
    let stored = s.chats.find_chat(c.id()).await.unwrap().unwrap();
    let mut retry = turn(&stored, 2, "once");
    retry.idempotency = Some(idem(&retry, "alice", "key-1"));
    assert!(
        matches!(
            s.messages.start_turn(&retry).await,
            Err(StoreError::Conflict)
        ),
        "a retry racing its first send re-reads (and finds the record), never 'busy'"
    );
}

/// Stores `reply` as complete, so its chat is no longer busy.
async fn complete(s: &Storage, c: &Chat, reply: &Message) {
    let mut r = reply.clone();
    r.tweak(|p| p.status = MessageStatus::Complete);
    s.messages
        .finish_reply(&r, &event(c, EventKind::MessageFailed(r.clone())), None)
        .await
        .unwrap();
}
