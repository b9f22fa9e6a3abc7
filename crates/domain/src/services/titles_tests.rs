//! Unit tests of the automatic title rules, over the ports' mocks.

use super::*;
use crate::model::*;
use crate::ports::*;
use chrono::{TimeZone, Utc};
use futures::executor::block_on;

fn clock() -> Arc<dyn Clock> {
    let mut c = MockClock::new();
    c.expect_now()
        .returning(|| Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap());
    Arc::new(c)
}

fn actor() -> Actor {
    Actor {
        user: UserId::parse("alice").unwrap(),
        request_id: Some("req-1".into()),
    }
}

fn chat(title: &str) -> Chat {
    let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    Chat::restore(crate::model::ChatParts {
        id: ChatId::new(),
        owner: UserId::parse("alice").unwrap(),
        title: ChatTitle::parse(title).unwrap(),
        settings: ChatSettings::default(),
        message_count: 2,
        active_leaf_id: None,
        created_at: t,
        updated_at: t,
    })
}

fn msg(chat: &Chat, seq: u32, role: Role, status: MessageStatus, text: &str) -> Message {
    let mut m = super::super::testing_support::message(chat.id(), seq, role, status);
    m.tweak(|p| p.content = text.into());
    if role == Role::Assistant {
        m.tweak(|p| p.model = Some("main".into()));
    }
    m
}

struct Setup {
    chats: MockChatRepository,
    messages: MockMessageRepository,
    llm: MockLlmClient,
    chat: Chat,
    reply: Message,
}

/// A chat titled `title` whose first reply (seq 2) just completed.
fn setup(title: &str) -> Setup {
    let chat = chat(title);
    let question = msg(
        &chat,
        1,
        Role::User,
        MessageStatus::Complete,
        "Plan a trip to Lisbon",
    );
    let reply = msg(
        &chat,
        2,
        Role::Assistant,
        MessageStatus::Complete,
        "Day one: Alfama.",
    );
    let mut chats = MockChatRepository::new();
    let found = chat.clone();
    chats
        .expect_find_chat()
        .returning(move |_| Ok(Some(found.clone())));
    let mut messages = MockMessageRepository::new();
    messages
        .expect_recent_messages()
        .withf(|_, before, _| *before == 2)
        .returning(move |_, _, _| Ok(vec![question.clone()]));
    Setup {
        chats,
        messages,
        llm: MockLlmClient::new(),
        chat,
        reply,
    }
}

fn answer(text: &'static str) -> impl Fn(LlmRequest) -> Result<LlmReply, LlmError> {
    move |_| {
        Ok(LlmReply {
            content: text.into(),
            model: "main".into(),
            usage: None,
            finish_reason: None,
        })
    }
}

fn service(s: Setup, config: TitleConfig) -> (TitleService, Message) {
    let svc = TitleService::new(
        Arc::new(s.chats),
        Arc::new(s.messages),
        Arc::new(s.llm),
        clock(),
        config,
    );
    (svc, s.reply)
}

#[test]
fn the_first_reply_of_a_default_titled_chat_gets_a_clean_title() {
    let mut s = setup(ChatTitle::DEFAULT);
    s.llm
        .expect_complete()
        .withf(|r| {
            r.model == "main"
                && r.messages[0].role == Role::System
                && r.messages[1].content.contains("Plan a trip to Lisbon")
                && r.messages[1].content.contains("Day one: Alfama.")
                && r.request_id.as_deref() == Some("req-1")
        })
        .times(1)
        .returning(answer(
            "<think>They want travel.</think>\n\"Trip to Lisbon\"",
        ));
    let id = s.chat.id();
    s.chats
        .expect_retitle_chat()
        .withf(move |c, expected, e| {
            c.id() == id
                && c.title().as_str() == "Trip to Lisbon"
                && expected.as_str() == ChatTitle::DEFAULT
                && matches!(&e.kind, EventKind::ChatUpdated(x) if x == c)
                && e.request_id.as_deref() == Some("req-1")
        })
        .times(1)
        .returning(|_, _, _| Ok(true));
    let (svc, reply) = service(s, TitleConfig::default());
    match block_on(svc.after_reply(&actor(), &reply)) {
        TitleOutcome::Titled(c) => assert_eq!(c.title().as_str(), "Trip to Lisbon"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_chat_with_a_title_is_left_alone() {
    let mut s = setup("My own title");
    s.llm.expect_complete().never();
    s.chats.expect_retitle_chat().never();
    let (svc, reply) = service(s, TitleConfig::default());
    assert_eq!(
        block_on(svc.after_reply(&actor(), &reply)),
        TitleOutcome::Skipped
    );
}

#[test]
fn a_later_reply_is_not_the_first() {
    let chat = chat(ChatTitle::DEFAULT);
    let earlier = vec![
        msg(&chat, 3, Role::User, MessageStatus::Complete, "more"),
        msg(
            &chat,
            2,
            Role::Assistant,
            MessageStatus::Complete,
            "first answer",
        ),
        msg(&chat, 1, Role::User, MessageStatus::Complete, "hi"),
    ];
    let reply = msg(&chat, 4, Role::Assistant, MessageStatus::Complete, "second");
    let mut chats = MockChatRepository::new();
    chats
        .expect_find_chat()
        .returning(move |_| Ok(Some(chat.clone())));
    chats.expect_retitle_chat().never();
    let mut messages = MockMessageRepository::new();
    messages
        .expect_recent_messages()
        .returning(move |_, _, _| Ok(earlier.clone()));
    let mut llm = MockLlmClient::new();
    llm.expect_complete().never();
    let svc = TitleService::new(
        Arc::new(chats),
        Arc::new(messages),
        Arc::new(llm),
        clock(),
        TitleConfig::default(),
    );
    assert_eq!(
        block_on(svc.after_reply(&actor(), &reply)),
        TitleOutcome::Skipped
    );
}

#[test]
fn a_failed_first_try_does_not_count_as_the_first_reply() {
    let chat = chat(ChatTitle::DEFAULT);
    let earlier = vec![
        msg(&chat, 2, Role::Assistant, MessageStatus::Failed, ""),
        msg(
            &chat,
            1,
            Role::User,
            MessageStatus::Complete,
            "Sourdough help",
        ),
    ];
    let reply = msg(
        &chat,
        3,
        Role::Assistant,
        MessageStatus::Complete,
        "Feed it daily.",
    );
    let mut chats = MockChatRepository::new();
    chats
        .expect_find_chat()
        .returning(move |_| Ok(Some(chat.clone())));
    chats
        .expect_retitle_chat()
        .times(1)
        .returning(|_, _, _| Ok(true));
    let mut messages = MockMessageRepository::new();
    messages
        .expect_recent_messages()
        .returning(move |_, _, _| Ok(earlier.clone()));
    let mut llm = MockLlmClient::new();
    llm.expect_complete()
        .withf(|r| r.messages[1].content.contains("Sourdough help"))
        .returning(answer("Sourdough starter care"));
    let svc = TitleService::new(
        Arc::new(chats),
        Arc::new(messages),
        Arc::new(llm),
        clock(),
        TitleConfig::default(),
    );
    assert!(matches!(
        block_on(svc.after_reply(&actor(), &reply)),
        TitleOutcome::Titled(_)
    ));
}

#[test]
fn a_failing_or_empty_answer_leaves_the_title() {
    for outcome in [
        Err(LlmError::Upstream { status: Some(500) }),
        Ok("<think>nothing but thoughts</think>"),
    ] {
        let mut s = setup(ChatTitle::DEFAULT);
        s.llm
            .expect_complete()
            .times(1)
            .returning(move |_| match &outcome {
                Err(e) => Err(e.clone()),
                Ok(text) => answer(text)(LlmRequest {
                    model: String::new(),
                    messages: vec![],
                    temperature: None,
                    max_tokens: None,
                    request_id: None,
                }),
            });
        s.chats.expect_retitle_chat().never();
        let (svc, reply) = service(s, TitleConfig::default());
        assert_eq!(
            block_on(svc.after_reply(&actor(), &reply)),
            TitleOutcome::Failed
        );
    }
}

#[test]
fn a_title_the_user_set_meanwhile_is_kept() {
    let mut s = setup(ChatTitle::DEFAULT);
    s.llm.expect_complete().returning(answer("Trip to Lisbon"));
    // Storage refuses: the stored title is no longer the default.
    s.chats
        .expect_retitle_chat()
        .times(1)
        .returning(|_, _, _| Ok(false));
    let (svc, reply) = service(s, TitleConfig::default());
    assert_eq!(
        block_on(svc.after_reply(&actor(), &reply)),
        TitleOutcome::Skipped
    );
}

#[test]
fn the_configured_title_model_is_asked_when_listed() {
    let mut s = setup(ChatTitle::DEFAULT);
    s.llm
        .expect_complete()
        .withf(|r| r.model == "small" && r.max_tokens == Some(40))
        .times(1)
        .returning(answer("Lisbon"));
    s.chats.expect_retitle_chat().returning(|_, _, _| Ok(true));
    let small = ModelInfo::new(
        ModelName::parse("small").unwrap(),
        ProviderName::parse("p").unwrap(),
    )
    .with_max_output_tokens(MaxTokens::new(40).unwrap());
    let list = ModelList::new(vec![small], None).unwrap();
    let config = TitleConfig {
        enabled: true,
        model: Some(ModelName::parse("small").unwrap()),
    };
    let (svc, reply) = service(s, config);
    let svc = svc.with_models(Arc::new(StaticCatalog::new(list)));
    assert!(matches!(
        block_on(svc.after_reply(&actor(), &reply)),
        TitleOutcome::Titled(_)
    ));
}

#[test]
fn an_unlisted_title_model_is_not_called() {
    let mut s = setup(ChatTitle::DEFAULT);
    s.llm.expect_complete().never();
    let config = TitleConfig {
        enabled: true,
        model: Some(ModelName::parse("gone").unwrap()),
    };
    let (svc, reply) = service(s, config);
    let svc = svc.with_models(Arc::new(StaticCatalog::default()));
    assert_eq!(
        block_on(svc.after_reply(&actor(), &reply)),
        TitleOutcome::Failed
    );
}

#[test]
fn only_complete_early_replies_are_wanted_and_titles_can_be_off() {
    let s = setup(ChatTitle::DEFAULT);
    let chat = s.chat.clone();
    let (svc, reply) = service(s, TitleConfig::default());
    assert!(svc.wants(&reply));
    let failed = msg(&chat, 2, Role::Assistant, MessageStatus::Failed, "");
    assert!(!svc.wants(&failed));
    let user = msg(&chat, 1, Role::User, MessageStatus::Complete, "x");
    assert!(!svc.wants(&user));
    let late = msg(
        &chat,
        TITLE_WINDOW + 1,
        Role::Assistant,
        MessageStatus::Complete,
        "x",
    );
    assert!(!svc.wants(&late));

    let off = TitleConfig {
        enabled: false,
        model: None,
    };
    let (svc, reply) = service(setup(ChatTitle::DEFAULT), off);
    assert!(!svc.wants(&reply));
    assert_eq!(
        block_on(svc.after_reply(&actor(), &reply)),
        TitleOutcome::Skipped
    );
}
