//! Unit tests of quotas on the send path and of the charge a finished reply carries to storage.

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
        .returning(|| Utc.with_ymd_and_hms(2026, 12, 10, 18, 0, 0).unwrap());
    Arc::new(c)
}

fn actor() -> Actor {
    Actor::new(UserId::parse("alice").unwrap())
}

fn chat() -> Chat {
    let t = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    Chat::restore(crate::model::ChatParts {
        id: ChatId::new(),
        owner: UserId::parse("alice").unwrap(),
        title: ChatTitle::default(),
        settings: ChatSettings::default(),
        message_count: 2,
        active_leaf_id: None,
        created_at: t,
        updated_at: t,
    })
}

fn chats(chat: Chat) -> MockChatRepository {
    let mut chats = MockChatRepository::new();
    chats
        .expect_find_chat()
        .returning(move |_| Ok(Some(chat.clone())));
    chats
}

/// Alice's ledger rows when she spent `today` tokens today and `earlier` earlier this month.
fn rows(today: u64, earlier: u64) -> Vec<UsageRow> {
    let row = |d: u32, tokens: u64| UsageRow {
        day: chrono::NaiveDate::from_ymd_opt(2026, 12, d).unwrap(),
        model: "echo".into(),
        purpose: UsagePurpose::Reply,
        estimated: false,
        prompt_tokens: tokens,
        completion_tokens: 0,
        requests: 1,
    };
    vec![row(3, earlier), row(10, today)]
}

/// The ledger the quota reads outside a turn (a turn reads it in its own transaction).
fn ledger() -> Arc<dyn UsageRepository> {
    Arc::new(MockUsageRepository::new())
}

/// A turn's facts: `chat` (and the branch up to `history`), alice's ledger as `rows`.
/// Checks the turn asks for this month's ledger rows of alice.
fn turn_facts(
    messages: &mut MockMessageRepository,
    chat: Chat,
    history: Vec<Message>,
    rows: Vec<UsageRow>,
    writes: usize,
) {
    run_turn_over(
        messages,
        None,
        move |read| {
            let (user, from, to) = read.usage.clone().expect("the quota's ledger rows");
            assert_eq!(
                (user.as_str(), from.to_string(), to.to_string()),
                ("alice", "2026-12-01".into(), "2026-12-10".into())
            );
            TurnFacts {
                parent_id: history.first().map(|m| m.id()),
                history: history.clone(),
                usage: rows.clone(),
                ..facts_of(&chat)
            }
        },
        move |_| {
            assert!(writes > 0, "a turn over quota was stored");
            Ok(())
        },
    );
}

fn service(
    chats: MockChatRepository,
    messages: MockMessageRepository,
    llm: MockLlmClient,
    quota: QuotaConfig,
    ledger: Arc<dyn UsageRepository>,
) -> MessageService {
    MessageService::new(
        Arc::new(chats),
        Arc::new(messages),
        Arc::new(llm),
        clock(),
        MessageServiceConfig::default(),
    )
    .with_quota(Arc::new(Quota::new(ledger, clock(), quota)))
}

fn send(svc: &MessageService, chat_id: ChatId) -> Result<Turn, SendError> {
    block_on(svc.send(
        &actor(),
        SendMessage {
            chat_id,
            content: MessageContent::parse("hi").unwrap(),
            parent: Default::default(),
        },
    ))
}

const DAY_100: QuotaConfig = QuotaConfig {
    tokens_per_day: Some(100),
    tokens_per_month: Some(1_000),
};

#[test]
fn a_send_over_quota_stores_nothing_and_calls_no_provider() {
    let c = chat();
    let id = c.id();
    let mut messages = MockMessageRepository::new();
    turn_facts(&mut messages, c.clone(), vec![], rows(100, 0), 0);
    let mut llm = MockLlmClient::new();
    llm.expect_stream().never();
    let svc = service(chats(c), messages, llm, DAY_100, ledger());
    match send(&svc, id) {
        Err(SendError::QuotaExceeded(e)) => {
            assert_eq!((e.period, e.limit, e.used), (QuotaPeriod::Day, 100, 100));
            assert_eq!(e.retry_after, std::time::Duration::from_secs(6 * 3600));
        }
        other => panic!("expected a quota refusal, got {other:?}"),
    }
    // The month's quota, reached over earlier days, refuses until next month.
    let c = chat();
    let id = c.id();
    let mut messages = MockMessageRepository::new();
    turn_facts(&mut messages, c.clone(), vec![], rows(10, 990), 0);
    let svc = service(chats(c), messages, MockLlmClient::new(), DAY_100, ledger());
    match send(&svc, id) {
        Err(SendError::QuotaExceeded(e)) => {
            assert_eq!(e.period, QuotaPeriod::Month);
            assert_eq!(e.resets_at.to_rfc3339(), "2027-01-01T00:00:00+00:00");
        }
        other => panic!("expected a quota refusal, got {other:?}"),
    }
}

#[test]
fn a_regenerate_over_quota_stores_nothing() {
    let c = chat();
    let cid = c.id();
    let mut messages = MockMessageRepository::new();
    let mut reply =
        super::testing_support::message(cid, 2, Role::Assistant, MessageStatus::Complete);
    reply.tweak(|p| p.model = Some("echo".into()));
    let question = super::testing_support::message(cid, 1, Role::User, MessageStatus::Complete);
    reply.tweak(|p| p.parent_id = Some(question.id()));
    let (owned, r) = (c.clone(), reply.clone());
    messages
        .expect_find_owned_message()
        .returning(move |_, _| Ok(Some((owned.clone(), r.clone()))));
    turn_facts(
        &mut messages,
        c.clone(),
        vec![question.clone()],
        rows(150, 0),
        0,
    );
    messages
        .expect_find_message()
        .returning(move |_| Ok(Some(question.clone())));
    let svc = service(chats(c), messages, MockLlmClient::new(), DAY_100, ledger());
    assert!(matches!(
        block_on(svc.regenerate(&actor(), reply.id())),
        Err(SendError::QuotaExceeded(_))
    ));
}

/// A turn under quota whose finished reply (from `chunks`) is checked by `charge`.
fn finish_with(chunks: Vec<LlmChunk>, charge: fn(Option<&UsageEntry>) -> bool) {
    let c = chat();
    let id = c.id();
    let mut messages = MockMessageRepository::new();
    turn_facts(&mut messages, c.clone(), vec![], rows(99, 0), 1);
    messages
        .expect_finish_reply()
        .withf(move |_, _, u| charge(*u))
        .times(1)
        .returning(|_, _, _| Ok(true));
    let mut llm = MockLlmClient::new();
    llm.expect_stream().returning(move |_| {
        Ok(Box::pin(futures::stream::iter(
            chunks.clone().into_iter().map(Ok),
        )))
    });
    let svc = service(chats(c), messages, llm, DAY_100, ledger());
    let turn = send(&svc, id).unwrap();
    block_on(turn.generation.run(|_| {})).unwrap();
}

#[test]
fn a_finished_reply_carries_its_reported_usage_to_storage() {
    finish_with(
        vec![
            LlmChunk::Model("m1".into()),
            LlmChunk::Delta("Hello".into()),
            LlmChunk::Usage(Usage {
                prompt_tokens: 9,
                completion_tokens: 2,
            }),
        ],
        |u| {
            u.is_some_and(|u| {
                u.user.as_str() == "alice"
                    && u.model == "m1"
                    && u.purpose == UsagePurpose::Reply
                    && !u.estimated
                    && u.usage.prompt_tokens == 9
                    && u.usage.completion_tokens == 2
                    && u.day.to_string() == "2026-12-10"
            })
        },
    );
}

#[test]
fn a_finished_reply_without_usage_carries_an_estimate() {
    // The prompt is "hi" (one token); the reply "Hello" is two.
    finish_with(vec![LlmChunk::Delta("Hello".into())], |u| {
        u.is_some_and(|u| {
            u.estimated && u.usage.prompt_tokens == 1 && u.usage.completion_tokens == 2
        })
    });
}
