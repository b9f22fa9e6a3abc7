//! Unit tests of the services' business rules, over the ports' mocks.

use super::turn_mock::{facts_of, run_turn_over};
use super::*;
use crate::model::*;
use crate::ports::*;
use chrono::{TimeZone, Utc};
use futures::executor::block_on;
use std::sync::Arc;

fn clock() -> Arc<dyn Clock> {
    let mut c = MockClock::new();
    c.expect_now()
        .returning(|| Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap());
    Arc::new(c)
}

pub(super) fn actor(name: &str) -> Actor {
    Actor {
        user: UserId::parse(name).unwrap(),
        request_id: Some("req-7".into()),
    }
}

fn stored_chat(owner: &str, count: u32) -> Chat {
    let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    Chat::restore(crate::model::ChatParts {
        id: ChatId::new(),
        owner: UserId::parse(owner).unwrap(),
        title: ChatTitle::default(),
        settings: ChatSettings::default(),
        message_count: count,
        active_leaf_id: (count > 0).then(MessageId::new),
        created_at: t,
        updated_at: t,
    })
}

#[test]
fn create_emits_chat_created_with_the_request_id() {
    let mut repo = MockChatRepository::new();
    repo.expect_insert_chat()
        .withf(|chat, event| {
            chat.owner().as_str() == "alice"
                && chat.title().as_str() == "New chat"
                && event.kind == EventKind::ChatCreated(chat.clone())
                && event.request_id.as_deref() == Some("req-7")
                && event.chat_id == chat.id()
        })
        .times(1)
        .returning(|_, _| Ok(()));
    let svc = ChatService::new(Arc::new(repo), clock());
    let chat = block_on(svc.create(&actor("alice"), CreateChat::default())).unwrap();
    assert_eq!(chat.message_count(), 0);
}

#[test]
fn a_foreign_chat_is_not_found() {
    let chat = stored_chat("alice", 0);
    let id = chat.id();
    let mut repo = MockChatRepository::new();
    repo.expect_find_chat()
        .returning(move |_| Ok(Some(chat.clone())));
    repo.expect_update_chat().never();
    repo.expect_delete_chat().never();
    let svc = ChatService::new(Arc::new(repo), clock());
    assert!(matches!(
        block_on(svc.get(&actor("bob"), id)),
        Err(ChatError::NotFound)
    ));
    assert!(matches!(
        block_on(svc.update(&actor("bob"), id, UpdateChat::default())),
        Err(ChatError::NotFound)
    ));
    assert!(matches!(
        block_on(svc.delete(&actor("bob"), id)),
        Err(ChatError::NotFound)
    ));
}

#[test]
fn update_keeps_absent_fields_and_emits_chat_updated() {
    let mut chat = stored_chat("alice", 3);
    chat.tweak(|p| p.settings.temperature = Some(Temperature::new(1.0).unwrap()));
    let id = chat.id();
    let mut repo = MockChatRepository::new();
    let found = chat.clone();
    repo.expect_find_chat()
        .returning(move |_| Ok(Some(found.clone())));
    repo.expect_update_chat()
        .withf(|c, expected, e| {
            c.title().as_str() == "Renamed"
                && expected.title().as_str() == "New chat"
                && matches!(&e.kind, EventKind::ChatUpdated(x) if x == c)
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let svc = ChatService::new(Arc::new(repo), clock());
    let cmd = UpdateChat {
        title: Some(ChatTitle::parse("Renamed").unwrap()),
        settings: None,
    };
    let updated = block_on(svc.update(&actor("alice"), id, cmd)).unwrap();
    assert_eq!(updated.settings(), chat.settings());
    assert_eq!(updated.message_count(), 3);
}

#[test]
fn storage_outage_maps_to_unavailable() {
    let mut repo = MockChatRepository::new();
    repo.expect_find_chat()
        .returning(|_| Err(StoreError::Unavailable(anyhow::anyhow!("down"))));
    let svc = ChatService::new(Arc::new(repo), clock());
    assert!(matches!(
        block_on(svc.get(&actor("alice"), ChatId::new())),
        Err(ChatError::Unavailable(_))
    ));
}

#[test]
fn list_asks_for_one_more_row_to_know_if_there_is_a_next_page() {
    let chats: Vec<Chat> = (0..3).map(|_| stored_chat("alice", 0)).collect();
    let rows = chats.clone();
    let mut repo = MockChatRepository::new();
    repo.expect_list_chats()
        .withf(|_, after, limit| after.is_none() && *limit == 3)
        .returning(move |_, _, _| Ok(rows.clone()));
    let svc = ChatService::new(Arc::new(repo), clock());
    let page = block_on(svc.list(
        &actor("alice"),
        PageRequest {
            limit: PageLimit::new(2).unwrap(),
            after: None,
        },
    ))
    .unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(
        page.next,
        Some(ChatCursor {
            updated_at: chats[1].updated_at(),
            id: chats[1].id()
        })
    );
}

/// Mocks of an empty chat of alice's that accepts a turn; the test adds what it checks.
pub(super) fn ready_to_send() -> (ChatId, MockChatRepository, MockMessageRepository) {
    let chat = stored_chat("alice", 0);
    let id = chat.id();
    let chats = MockChatRepository::new();
    let mut messages = MockMessageRepository::new();
    run_turn_over(&mut messages, None, move |_| facts_of(&chat), |_| Ok(()));
    (id, chats, messages)
}

/// Mocks of a chat of alice's with two messages, where every message looked up is
/// one of hers with this position, role and status.
fn chat_with_message(
    seq: u32,
    role: Role,
    status: MessageStatus,
) -> (MockChatRepository, MockMessageRepository) {
    let chat = stored_chat("alice", 2);
    let cid = chat.id();
    let owned = chat.clone();
    let mut chats = MockChatRepository::new();
    chats
        .expect_find_chat()
        .returning(move |_| Ok(Some(chat.clone())));
    let mut messages = MockMessageRepository::new();
    messages.expect_children().returning(|_, _| Ok(vec![]));
    messages.expect_find_message().returning(move |_| {
        Ok(Some(super::testing_support::message(
            cid, seq, role, status,
        )))
    });
    messages
        .expect_find_owned_message()
        .returning(move |owner, _| {
            let m = super::testing_support::message(cid, seq, role, status);
            Ok((owner == owned.owner()).then(|| (owned.clone(), m)))
        });
    (chats, messages)
}

pub(super) fn message_service(
    chats: MockChatRepository,
    messages: MockMessageRepository,
    llm: MockLlmClient,
) -> MessageService {
    MessageService::new(
        Arc::new(chats),
        Arc::new(messages),
        Arc::new(llm),
        clock(),
        MessageServiceConfig::default(),
    )
}

#[test]
fn send_assigns_the_next_two_seqs_and_emits_two_message_created() {
    let chat = stored_chat("alice", 4);
    let id = chat.id();
    let chats = MockChatRepository::new();
    let mut messages = MockMessageRepository::new();
    run_turn_over(
        &mut messages,
        Some(1),
        move |_| facts_of(&chat),
        |t| {
            let u = t.user_message.as_ref().unwrap();
            let ok = t.expected_count == 4
                && u.seq() == 5
                && u.role() == Role::User
                && t.reply.seq() == 6
                && t.reply.status() == MessageStatus::Streaming
                && t.events.len() == 2
                && t.events
                    .iter()
                    .all(|e| e.kind.type_name() == "message.created");
            assert!(ok, "unexpected turn {t:?}");
            Ok(())
        },
    );
    let svc = message_service(chats, messages, MockLlmClient::new());
    let turn = block_on(svc.send(
        &actor("alice"),
        SendMessage {
            chat_id: id,
            content: MessageContent::parse("hi").unwrap(),
            parent: Default::default(),
        },
    ))
    .unwrap();
    assert_eq!(turn.message.seq(), 5);
    assert_eq!(turn.reply.seq(), 6);
    assert_eq!(svc.active_generations(), 1);
    drop(turn);
    assert_eq!(svc.active_generations(), 0);
}

#[test]
fn send_retries_when_another_writer_took_the_seq() {
    let chats = MockChatRepository::new();
    let chat = stored_chat("alice", 0);
    let id = chat.id();
    let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (r, w) = (reads.clone(), reads.clone());
    let mut messages = MockMessageRepository::new();
    run_turn_over(
        &mut messages,
        Some(2),
        move |_| {
            let n = r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut c = chat.clone();
            c.tweak(|p| p.message_count = if n == 0 { 0 } else { 2 });
            facts_of(&c)
        },
        move |t| {
            if w.load(std::sync::atomic::Ordering::SeqCst) == 1 {
                assert_eq!(t.expected_count, 0);
                Err(StoreError::Conflict)
            } else {
                assert_eq!(t.expected_count, 2);
                assert_eq!(t.reply.seq(), 4);
                Ok(())
            }
        },
    );
    let svc = message_service(chats, messages, MockLlmClient::new());
    let turn = block_on(svc.send(
        &actor("alice"),
        SendMessage {
            chat_id: id,
            content: MessageContent::parse("x").unwrap(),
            parent: Default::default(),
        },
    ))
    .unwrap();
    assert_eq!(turn.message.seq(), 3);
}

#[test]
fn a_busy_chat_is_reported_with_retry_after() {
    let chat = stored_chat("alice", 2);
    let id = chat.id();
    let chats = MockChatRepository::new();
    let mut messages = MockMessageRepository::new();
    let generating =
        super::testing_support::message(id, 2, Role::Assistant, MessageStatus::Streaming);
    let busy_id = generating.id();
    run_turn_over(
        &mut messages,
        Some(1),
        move |_| TurnFacts {
            streaming: vec![generating.clone()],
            ..facts_of(&chat)
        },
        |t| panic!("a busy chat stored {t:?}"),
    );
    let svc = message_service(chats, messages, MockLlmClient::new());
    let r = block_on(svc.send(
        &actor("alice"),
        SendMessage {
            chat_id: id,
            content: MessageContent::parse("x").unwrap(),
            parent: Default::default(),
        },
    ));
    assert!(
        matches!(r, Err(SendError::ChatBusy { retry_after, reply_id: Some(b) }) if retry_after == BUSY_RETRY_AFTER && b == busy_id)
    );
}

#[test]
fn an_abandoned_streaming_reply_is_marked_failed_before_sending() {
    let chat = stored_chat("alice", 2);
    let id = chat.id();
    let chats = MockChatRepository::new();
    let mut messages = MockMessageRepository::new();
    let old = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let mut abandoned =
        super::testing_support::message(id, 2, Role::Assistant, MessageStatus::Streaming);
    abandoned.tweak(|p| p.updated_at = old);
    let reads = std::sync::atomic::AtomicUsize::new(0);
    run_turn_over(
        &mut messages,
        Some(2),
        move |_| {
            // Marked failed after the first read: the second finds it no longer streaming.
            let first = reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
            TurnFacts {
                streaming: if first {
                    vec![abandoned.clone()]
                } else {
                    vec![]
                },
                ..facts_of(&chat)
            }
        },
        |_| Ok(()),
    );
    messages
        .expect_finish_reply()
        .withf(|m, e, _| {
            m.status() == MessageStatus::Failed && e.kind.type_name() == "message.failed"
        })
        .times(1)
        .returning(|_, _, _| Ok(true));
    let svc = message_service(chats, messages, MockLlmClient::new());
    block_on(svc.send(
        &actor("alice"),
        SendMessage {
            chat_id: id,
            content: MessageContent::parse("x").unwrap(),
            parent: Default::default(),
        },
    ))
    .unwrap();
}

#[test]
fn generation_stores_the_completed_reply_with_usage() {
    let (id, chats, mut messages) = ready_to_send();
    messages
        .expect_finish_reply()
        .withf(|m, e, _| {
            m.status() == MessageStatus::Complete
                && m.content() == "Hello!"
                && m.usage()
                    == Some(Usage {
                        prompt_tokens: 3,
                        completion_tokens: 2,
                    })
                && matches!(&e.kind, EventKind::MessageCompleted { message, .. } if message == m)
        })
        .times(1)
        .returning(|_, _, _| Ok(true));
    let mut llm = MockLlmClient::new();
    llm.expect_stream()
        .withf(|r| r.messages.len() == 1 && r.model == "echo")
        .returning(|_| {
            let items = vec![
                Ok(LlmChunk::Delta("Hel".into())),
                Ok(LlmChunk::Delta("lo!".into())),
                Ok(LlmChunk::Usage(Usage {
                    prompt_tokens: 3,
                    completion_tokens: 2,
                })),
            ];
            Ok(Box::pin(futures::stream::iter(items)))
        });
    let svc = message_service(chats, messages, llm);
    let turn = block_on(svc.send(
        &actor("alice"),
        SendMessage {
            chat_id: id,
            content: MessageContent::parse("hi").unwrap(),
            parent: Default::default(),
        },
    ))
    .unwrap();
    let mut deltas = Vec::new();
    let reply = block_on(turn.generation.run(|d| deltas.push(d.to_owned()))).unwrap();
    assert_eq!(deltas, ["Hel", "lo!"]);
    assert_eq!(reply.status(), MessageStatus::Complete);
}

#[test]
fn a_stream_that_breaks_stores_a_failed_reply_with_the_partial_text() {
    let (id, chats, mut messages) = ready_to_send();
    messages
        .expect_finish_reply()
        .withf(|m, e, _| {
            m.status() == MessageStatus::Failed
                && m.content() == "par"
                && m.error().is_some()
                && e.kind.type_name() == "message.failed"
        })
        .times(1)
        .returning(|_, _, _| Ok(true));
    let mut llm = MockLlmClient::new();
    llm.expect_stream().returning(|_| {
        let items = vec![
            Ok(LlmChunk::Delta("par".into())),
            Err(LlmError::Stream("cut".into())),
        ];
        Ok(Box::pin(futures::stream::iter(items)))
    });
    let svc = message_service(chats, messages, llm);
    let turn = block_on(svc.send(
        &actor("alice"),
        SendMessage {
            chat_id: id,
            content: MessageContent::parse("hi").unwrap(),
            parent: Default::default(),
        },
    ))
    .unwrap();
    let err = block_on(turn.generation.run(|_| {})).unwrap_err();
    assert!(matches!(
        err,
        SendError::Llm {
            error: LlmError::Stream(_),
            ..
        }
    ));
}

#[test]
fn regenerate_refuses_user_messages() {
    let (chats, mut messages) = chat_with_message(1, Role::User, MessageStatus::Complete);
    messages.expect_run_turn().never();
    let svc = message_service(chats, messages, MockLlmClient::new());
    assert!(matches!(
        block_on(svc.regenerate(&actor("alice"), MessageId::new())),
        Err(SendError::NotAReply)
    ));
}

#[test]
fn cancel_of_a_finished_reply_is_refused() {
    let (chats, mut messages) = chat_with_message(2, Role::Assistant, MessageStatus::Complete);
    messages.expect_finish_reply().never();
    let svc = message_service(chats, messages, MockLlmClient::new());
    assert!(matches!(
        block_on(svc.cancel(&actor("alice"), MessageId::new())),
        Err(CancelError::NotStreaming)
    ));
}

#[test]
fn cancel_without_a_local_generation_cancels_in_storage() {
    let (chats, mut messages) = chat_with_message(2, Role::Assistant, MessageStatus::Streaming);
    messages
        .expect_finish_reply()
        .withf(|m, e, _| {
            m.status() == MessageStatus::Cancelled && e.kind.type_name() == "message.cancelled"
        })
        .times(1)
        .returning(|_, _, _| Ok(true));
    let svc = message_service(chats, messages, MockLlmClient::new());
    let m = block_on(svc.cancel(&actor("alice"), MessageId::new())).unwrap();
    assert_eq!(m.status(), MessageStatus::Cancelled);
}

#[test]
fn a_storage_blip_at_the_end_of_a_reply_is_retried_not_lost() {
    let (id, chats, mut messages) = ready_to_send();
    let mut attempts = 0;
    messages
        .expect_finish_reply()
        .times(3)
        .returning(move |m, _, _| {
            attempts += 1;
            assert_eq!(m.content(), "kept");
            if attempts < 3 {
                Err(StoreError::Unavailable(anyhow::anyhow!(
                    "database restarting"
                )))
            } else {
                Ok(true)
            }
        });
    let mut llm = MockLlmClient::new();
    llm.expect_stream().returning(|_| {
        Ok(Box::pin(futures::stream::iter(vec![Ok(LlmChunk::Delta(
            "kept".into(),
        ))])))
    });
    let mut sleeper = MockSleeper::new();
    sleeper.expect_sleep().times(2).returning(|_| ());
    let svc = message_service(chats, messages, llm).with_sleeper(Arc::new(sleeper));
    let turn = block_on(svc.send(
        &actor("alice"),
        SendMessage {
            chat_id: id,
            content: MessageContent::parse("q").unwrap(),
            parent: Default::default(),
        },
    ))
    .unwrap();
    let reply = block_on(turn.generation.run(|_| {})).unwrap();
    assert_eq!(reply.status(), MessageStatus::Complete);
}

#[test]
fn without_a_sleeper_a_storage_failure_at_the_end_is_reported() {
    let (id, chats, mut messages) = ready_to_send();
    messages
        .expect_finish_reply()
        .times(1)
        .returning(|_, _, _| Err(StoreError::Unavailable(anyhow::anyhow!("down"))));
    let mut llm = MockLlmClient::new();
    llm.expect_stream().returning(|_| {
        Ok(Box::pin(futures::stream::iter(vec![Ok(LlmChunk::Delta(
            "x".into(),
        ))])))
    });
    let svc = message_service(chats, messages, llm);
    let turn = block_on(svc.send(
        &actor("alice"),
        SendMessage {
            chat_id: id,
            content: MessageContent::parse("q").unwrap(),
            parent: Default::default(),
        },
    ))
    .unwrap();
    assert!(matches!(
        block_on(turn.generation.run(|_| {})),
        Err(SendError::Unavailable(_))
    ));
}

#[test]
fn a_failed_read_stores_no_turn_and_calls_no_provider() {
    let chat = stored_chat("alice", 2);
    let id = chat.id();
    let chats = MockChatRepository::new();
    let mut messages = MockMessageRepository::new();
    messages
        .expect_run_turn()
        .times(1)
        .returning(|_, _| Err(StoreError::Unavailable(anyhow::anyhow!("down"))));
    let mut llm = MockLlmClient::new();
    llm.expect_stream().never();
    let svc = message_service(chats, messages, llm);
    let r = block_on(svc.send(
        &actor("alice"),
        SendMessage {
            chat_id: id,
            content: MessageContent::parse("x").unwrap(),
            parent: Default::default(),
        },
    ));
    assert!(matches!(r, Err(SendError::Unavailable(_))));
}
