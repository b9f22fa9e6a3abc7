//! Unit tests of the live side of generation: provider text with U+0000, a final write
//! refused for another reason than unavailability, replay failure kinds.

use super::tests::{actor, message_service, ready_to_send};
use super::*;
use crate::model::*;
use crate::ports::*;
use futures::executor::block_on;

fn chunks(parts: &[&str]) -> MockLlmClient {
    let parts: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
    let mut llm = MockLlmClient::new();
    llm.expect_stream().returning(move |_| {
        let items: Vec<Result<LlmChunk, LlmError>> = parts
            .iter()
            .cloned()
            .map(|p| Ok(LlmChunk::Delta(p)))
            .collect();
        Ok(Box::pin(futures::stream::iter(items)))
    });
    llm
}

fn send(svc: &MessageService, chat: ChatId) -> Turn {
    block_on(svc.send(
        &actor("alice"),
        SendMessage {
            chat_id: chat,
            content: MessageContent::parse("q").unwrap(),
            parent: Default::default(),
        },
    ))
    .unwrap()
}

#[test]
fn nul_is_removed_before_streaming_and_storing() {
    let (id, chats, mut messages) = ready_to_send();
    messages
        .expect_finish_reply()
        .withf(|m, _, _| m.content() == "ab c" && m.status() == MessageStatus::Complete)
        .times(1)
        .returning(|_, _, _| Ok(true));
    let svc = message_service(chats, messages, chunks(&["a\0b", "\0", " c\0"]));
    let turn = send(&svc, id);
    let mut streamed = String::new();
    let reply = block_on(turn.generation.run(|d| streamed.push_str(d))).unwrap();
    assert_eq!(streamed, "ab c");
    assert_eq!(reply.content(), streamed);
}

#[test]
fn a_final_write_refused_otherwise_than_unavailable_is_stored_failed() {
    let (id, chats, mut messages) = ready_to_send();
    let mut calls = 0;
    messages
        .expect_finish_reply()
        .times(2)
        .returning(move |m, e, _| {
            calls += 1;
            if calls == 1 {
                assert_eq!(m.status(), MessageStatus::Complete);
                Err(StoreError::Unknown(anyhow::anyhow!(
                    "refused by the database"
                )))
            } else {
                assert_eq!(m.status(), MessageStatus::Failed);
                assert_eq!(m.content(), "text", "the text is kept");
                assert_eq!(e.kind.type_name(), "message.failed");
                Ok(true)
            }
        });
    let svc = message_service(chats, messages, chunks(&["te", "xt"]));
    let reply = block_on(send(&svc, id).generation.run(|_| {})).unwrap();
    assert_eq!(reply.status(), MessageStatus::Failed);
    assert_eq!(ReplyFailure::of(&reply), ReplyFailure::Interrupted);
}

#[test]
fn stored_failures_are_told_apart_by_kind() {
    let mut m = crate::services::testing_support::message(
        ChatId::new(),
        2,
        Role::Assistant,
        MessageStatus::Failed,
    );
    for (error, kind) in [
        (
            LlmError::Timeout(TimeoutKind::Total).to_string(),
            ReplyFailure::Timeout,
        ),
        (
            LlmError::Timeout(TimeoutKind::Connect).to_string(),
            ReplyFailure::Timeout,
        ),
        (
            LlmError::Upstream { status: Some(500) }.to_string(),
            ReplyFailure::Provider,
        ),
        (
            "generation was interrupted".to_owned(),
            ReplyFailure::Interrupted,
        ),
        (
            "the reply stream broke: timed out reading".to_owned(),
            ReplyFailure::Provider,
        ),
    ] {
        m.tweak(|p| p.error = Some(error.clone()));
        assert_eq!(ReplyFailure::of(&m), kind, "{error}");
    }
}
