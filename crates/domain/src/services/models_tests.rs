//! Unit tests of the model rules in the chat and message services, over mocks.

use super::super::*;
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

fn alice() -> Actor {
    Actor::new(UserId::parse("alice").unwrap())
}

fn catalog() -> Arc<dyn ModelCatalog> {
    let model = |n: &str, p: &str| {
        ModelInfo::new(
            ModelName::parse(n).unwrap(),
            ProviderName::parse(p).unwrap(),
        )
    };
    let list = ModelList::new(
        vec![
            model("small", "local").with_max_output_tokens(MaxTokens::new(500).unwrap()),
            model("big", "cloud"),
        ],
        Some(&ModelName::parse("big").unwrap()),
    )
    .unwrap();
    Arc::new(StaticCatalog::new(list))
}

fn settings(model: Option<&str>, max: Option<u32>) -> ChatSettings {
    ChatSettings {
        model: model.map(|m| ModelName::parse(m).unwrap()),
        max_tokens: max.map(|n| MaxTokens::new(n).unwrap()),
        ..ChatSettings::default()
    }
}

fn chat(settings: ChatSettings) -> Chat {
    let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    Chat::restore(crate::model::ChatParts {
        id: ChatId::new(),
        owner: UserId::parse("alice").unwrap(),
        title: ChatTitle::default(),
        settings,
        message_count: 0,
        active_leaf_id: None,
        created_at: t,
        updated_at: t,
    })
}

#[test]
fn a_chat_cannot_be_created_or_changed_to_an_unlisted_model() {
    let mut repo = MockChatRepository::new();
    repo.expect_insert_chat().never();
    repo.expect_update_chat().never();
    repo.expect_find_chat().never();
    let svc = ChatService::new(Arc::new(repo), clock()).with_models(catalog());
    let create = CreateChat {
        title: None,
        settings: Some(settings(Some("junk"), None)),
    };
    match block_on(svc.create(&alice(), create)) {
        Err(ChatError::InvalidSettings(ModelChoiceError::NotListed { choices, .. })) => {
            assert_eq!(choices, ["small", "big"]);
        }
        other => panic!("{other:?}"),
    }
    let update = UpdateChat {
        title: None,
        settings: Some(settings(Some("small"), Some(501))),
    };
    assert!(matches!(
        block_on(svc.update(&alice(), ChatId::new(), update)),
        Err(ChatError::InvalidSettings(ModelChoiceError::AboveCeiling {
            ceiling: 500,
            ..
        }))
    ));
}

#[test]
fn listed_settings_pass() {
    let mut repo = MockChatRepository::new();
    repo.expect_insert_chat().times(1).returning(|_, _| Ok(()));
    let svc = ChatService::new(Arc::new(repo), clock()).with_models(catalog());
    let create = CreateChat {
        title: None,
        settings: Some(settings(Some("small"), Some(500))),
    };
    assert!(block_on(svc.create(&alice(), create)).is_ok());
}

type Recorded<T> = Arc<Mutex<Vec<T>>>;

/// A message service over `chat`, recording the turn's events and the LLM request.
fn send_with(chat: Chat, turns: usize) -> (MessageService, Recorded<Event>, Recorded<LlmRequest>) {
    let chats = MockChatRepository::new();
    let mut messages = MockMessageRepository::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    super::super::turn_mock::run_turn_over(
        &mut messages,
        None,
        move |_| super::super::turn_mock::facts_of(&chat),
        move |t| {
            assert!(turns > 0, "a refused turn was stored");
            seen.lock().unwrap().extend(t.events.clone());
            Ok(())
        },
    );
    let seen = events.clone();
    messages.expect_finish_reply().returning(move |_, e, _| {
        seen.lock().unwrap().push(e.clone());
        Ok(true)
    });
    let requests = Arc::new(Mutex::new(Vec::new()));
    let asked = requests.clone();
    let mut llm = MockLlmClient::new();
    llm.expect_stream().returning(move |r| {
        asked.lock().unwrap().push(r.clone());
        Ok(Box::pin(futures::stream::iter(vec![Ok(LlmChunk::Delta(
            "ok".into(),
        ))])))
    });
    let svc = MessageService::new(
        Arc::new(chats),
        Arc::new(messages),
        Arc::new(llm),
        clock(),
        MessageServiceConfig::default(),
    )
    .with_models(catalog());
    (svc, events, requests)
}

fn send(svc: &MessageService, chat_id: ChatId) -> Result<Turn, SendError> {
    block_on(svc.send(
        &alice(),
        SendMessage {
            chat_id,
            content: MessageContent::parse("hi").unwrap(),
            parent: Default::default(),
        },
    ))
}

#[test]
fn a_chat_without_a_model_uses_the_catalogs_default_and_events_name_its_provider() {
    let c = chat(ChatSettings::default());
    let (svc, events, requests) = send_with(c.clone(), 1);
    let turn = send(&svc, c.id()).unwrap();
    assert_eq!(turn.reply.model(), Some("big"));
    block_on(turn.generation.run(|_| {})).unwrap();
    assert_eq!(requests.lock().unwrap()[0].model, "big");
    let events = events.lock().unwrap();
    let providers: Vec<_> = events.iter().map(|e| e.provider.as_deref()).collect();
    // The user's message names no provider; the reply's created and completed events do.
    assert_eq!(providers, [None, Some("cloud"), Some("cloud")]);
}

#[test]
fn a_chat_whose_model_is_no_longer_listed_stores_nothing() {
    let c = chat(settings(Some("retired"), None));
    let (svc, _, _) = send_with(c.clone(), 0);
    assert!(matches!(
        send(&svc, c.id()),
        Err(SendError::Model(ModelChoiceError::NotListed { .. }))
    ));
}

#[test]
fn max_tokens_above_a_lowered_ceiling_is_bounded() {
    let c = chat(settings(Some("small"), Some(10_000)));
    let (svc, _, requests) = send_with(c.clone(), 1);
    let turn = send(&svc, c.id()).unwrap();
    block_on(turn.generation.run(|_| {})).unwrap();
    assert_eq!(requests.lock().unwrap()[0].max_tokens, Some(500));
}

#[test]
fn the_observer_hears_of_every_stored_reply() {
    let c = chat(ChatSettings::default());
    let (svc, _, _) = send_with(c.clone(), 1);
    let mut observer = MockReplyObserver::new();
    observer
        .expect_reply_stored()
        .withf(|a, r| a.user.as_str() == "alice" && r.status() == MessageStatus::Complete)
        .times(1)
        .return_const(());
    let svc = svc.with_observer(Arc::new(observer));
    let turn = send(&svc, c.id()).unwrap();
    block_on(turn.generation.run(|_| {})).unwrap();
}

#[test]
fn the_model_service_lists_the_catalog() {
    let svc = ModelService::new(catalog());
    let list = svc.list(&alice());
    assert_eq!(list.choices(), ["small", "big"]);
    assert!(list.is_default("big"));
}
