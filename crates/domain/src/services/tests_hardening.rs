//! Unit tests of issue 10's service rules: a foreign message costs one read, and a chat
//! update written over a stale read is re-read and applied again.

use super::*;
use crate::model::*;
use crate::ports::*;
use chrono::{TimeZone, Utc};
use futures::executor::block_on;
use std::sync::{Arc, Mutex};

fn clock() -> Arc<dyn Clock> {
    let mut c = MockClock::new();
    c.expect_now()
        .returning(|| Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap());
    Arc::new(c)
}

fn actor(name: &str) -> Actor {
    Actor {
        user: UserId::parse(name).unwrap(),
        request_id: None,
    }
}

fn stored_chat(owner: &str, at: chrono::DateTime<Utc>) -> Chat {
    Chat::restore(crate::model::ChatParts {
        id: ChatId::new(),
        owner: UserId::parse(owner).unwrap(),
        title: ChatTitle::default(),
        settings: ChatSettings::default(),
        message_count: 2,
        active_leaf_id: None,
        created_at: at,
        updated_at: at,
    })
}

/// Reading, editing, deleting, regenerating or cancelling another user's message makes
/// exactly the one storage read a missing message makes, and nothing else.
#[test]
fn a_foreign_message_costs_the_one_read_of_a_missing_one() {
    let mut messages = MockMessageRepository::new();
    messages
        .expect_find_owned_message()
        .withf(|owner, _| owner.as_str() == "bob")
        .times(5)
        .returning(|_, _| Ok(None));
    messages.expect_find_message().never();
    let mut chats = MockChatRepository::new();
    chats.expect_find_chat().never();
    let svc = MessageService::new(
        Arc::new(chats),
        Arc::new(messages),
        Arc::new(MockLlmClient::new()),
        clock(),
        MessageServiceConfig::default(),
    );
    let bob = actor("bob");
    let id = MessageId::new();
    assert!(matches!(
        block_on(svc.get(&bob, id)),
        Err(MessageError::NotFound)
    ));
    let content = MessageContent::parse("x").unwrap();
    assert!(matches!(
        block_on(svc.edit(&bob, id, content)),
        Err(MessageError::NotFound)
    ));
    assert!(matches!(
        block_on(svc.delete(&bob, id)),
        Err(MessageError::NotFound)
    ));
    assert!(matches!(
        block_on(svc.regenerate(&bob, id)),
        Err(SendError::NotFound)
    ));
    assert!(matches!(
        block_on(svc.cancel(&bob, id)),
        Err(CancelError::NotFound)
    ));
}

/// A title update that meets a settings change stored since its read re-reads the chat
/// and keeps both; `updated_at` does not move back behind the stored one.
#[test]
fn an_update_over_a_stale_read_is_retried_and_keeps_the_other_change() {
    let later = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let original = stored_chat("alice", later);
    let id = original.id();
    let mut changed = original.clone();
    changed.tweak(|p| p.settings.temperature = Some(Temperature::new(0.7).unwrap()));
    let reads = Arc::new(Mutex::new(vec![changed.clone(), original.clone()]));
    let mut chats = MockChatRepository::new();
    chats
        .expect_find_chat()
        .times(2)
        .returning(move |_| Ok(reads.lock().unwrap().pop()));
    let mut seq = mockall::Sequence::new();
    chats
        .expect_update_chat()
        .withf(|_, expected, _| expected.settings().temperature.is_none())
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Err(StoreError::Conflict));
    chats
        .expect_update_chat()
        .withf(|c, expected, e| {
            expected.settings().temperature.is_some()
                && c.settings() == expected.settings()
                && matches!(&e.kind, EventKind::ChatUpdated(x) if x == c)
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    let svc = ChatService::new(Arc::new(chats), clock());
    let cmd = UpdateChat {
        title: Some(ChatTitle::parse("Renamed").unwrap()),
        settings: None,
    };
    let chat = block_on(svc.update(&actor("alice"), id, cmd)).unwrap();
    assert_eq!(chat.title().as_str(), "Renamed");
    assert_eq!(chat.settings(), changed.settings());
    assert_eq!(
        chat.updated_at(),
        later,
        "the clock is behind the stored time"
    );
}

/// An update whose compare-and-set keeps losing gives up with a typed contention error
/// (a 409 with `Retry-After` at the API), never an unknown failure.
#[test]
fn an_update_that_keeps_losing_the_compare_and_set_is_contended() {
    let original = stored_chat("alice", Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap());
    let id = original.id();
    let mut chats = MockChatRepository::new();
    chats
        .expect_find_chat()
        .returning(move |_| Ok(Some(original.clone())));
    chats
        .expect_update_chat()
        .times(10)
        .returning(|_, _, _| Err(StoreError::Conflict));
    let svc = ChatService::new(Arc::new(chats), clock());
    let cmd = UpdateChat {
        title: Some(ChatTitle::parse("Renamed").unwrap()),
        settings: None,
    };
    assert!(matches!(
        block_on(svc.update(&actor("alice"), id, cmd)),
        Err(ChatError::Contended { retry_after }) if retry_after == crate::services::BUSY_RETRY_AFTER
    ));
}
