//! Unit tests of the turn decisions over facts built by hand (no storage).

use super::*;
use crate::model::{ChatParts, ChatSettings, ChatTitle, Tweak, UsagePurpose, UsageRow, UserId};
use crate::ports::{IdempotentReplay, MockChatRepository, MockLlmClient, MockMessageRepository};
use crate::ports::{SystemClock, TurnFacts};
use crate::services::{Quota, QuotaConfig};
use chrono::{Duration, Utc};

fn service() -> MessageService {
    MessageService::new(
        Arc::new(MockChatRepository::new()),
        Arc::new(MockMessageRepository::new()),
        Arc::new(MockLlmClient::new()),
        Arc::new(SystemClock),
        MessageServiceConfig::default(),
    )
}

fn alice() -> Actor {
    Actor::new(UserId::parse("alice").unwrap())
}

fn chat(count: u32, leaf: Option<MessageId>) -> Chat {
    let t = Utc::now() - Duration::hours(1);
    Chat::restore(ChatParts {
        id: ChatId::new(),
        owner: UserId::parse("alice").unwrap(),
        title: ChatTitle::default(),
        settings: ChatSettings::default(),
        message_count: count,
        active_leaf_id: leaf,
        created_at: t,
        updated_at: t,
    })
}

fn msg(chat: &Chat, seq: u32, role: Role, status: MessageStatus) -> Message {
    crate::services::testing_support::message(chat.id(), seq, role, status)
}

fn attempt(chat: &Chat, parent: SendParent, key: Option<&str>) -> SendAttempt {
    let cmd = SendMessage {
        chat_id: chat.id(),
        content: MessageContent::parse("hi").unwrap(),
        parent,
    };
    let (message_id, reply_id) = (MessageId::new(), MessageId::new());
    let now = Utc::now();
    SendAttempt {
        claim: key.map(|k| IdempotentSend {
            user: alice().user,
            key: IdempotencyKey::parse(k).unwrap(),
            fingerprint: fingerprint(&cmd),
            chat_id: chat.id(),
            message_id,
            reply_id,
            created_at: now,
        }),
        actor: alice(),
        cmd,
        message_id,
        reply_id,
        now,
        stale_before: now - Duration::minutes(10),
    }
}

fn facts(chat: &Chat, history: Vec<Message>) -> TurnFacts {
    TurnFacts {
        chat: Some(chat.clone()),
        parent_id: history.first().map(|m| m.id()),
        history,
        ..TurnFacts::default()
    }
}

fn refusal(r: Result<Decided, Refusal>) -> Refusal {
    match r {
        Ok(d) => panic!("expected a refusal, got {:?}", d.turn),
        Err(r) => r,
    }
}

#[test]
fn a_send_follows_the_active_leaf_with_the_claimed_ids_and_the_branch_as_prompt() {
    let svc = service();
    let mut c = chat(2, None);
    let q = msg(&c, 1, Role::User, MessageStatus::Complete);
    let mut a = msg(&c, 2, Role::Assistant, MessageStatus::Complete);
    a.tweak(|p| p.content = "earlier answer".into());
    c.select_leaf(a.id());
    let at = attempt(&c, SendParent::ActiveLeaf, Some("k"));
    let mut f = facts(&c, vec![a.clone(), q.clone()]);
    f.siblings = vec![MessageId::new()];
    let d = svc.inner.decide_send(&at, &f).unwrap();
    let u = d.turn.user_message.as_ref().unwrap();
    assert_eq!(
        (u.id(), u.seq(), u.parent_id()),
        (at.message_id, 3, Some(a.id()))
    );
    assert_eq!((u.branch().index, u.branch().count), (2, 2));
    assert_eq!((d.turn.reply.id(), d.turn.reply.seq()), (at.reply_id, 4));
    assert_eq!(d.turn.reply.parent_id(), Some(u.id()));
    assert_eq!(d.turn.expected_count, 2);
    assert_eq!(d.turn.idempotency, at.claim);
    assert_eq!(d.turn.events.len(), 2);
    let texts: Vec<_> = d
        .request
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(texts, ["", "earlier answer", "hi"]);
}

#[test]
fn a_new_root_has_no_history() {
    let svc = service();
    let c = chat(2, Some(MessageId::new()));
    let d = svc
        .inner
        .decide_send(&attempt(&c, SendParent::Root, None), &facts(&c, vec![]))
        .unwrap();
    assert_eq!(d.turn.user_message.unwrap().parent_id(), None);
    assert_eq!(d.request.messages.len(), 1);
}

#[test]
fn a_missing_or_foreign_chat_is_not_found() {
    let svc = service();
    let c = chat(0, None);
    let at = attempt(&c, SendParent::ActiveLeaf, None);
    let missing = TurnFacts::default();
    assert!(matches!(
        refusal(svc.inner.decide_send(&at, &missing)),
        Refusal::Error(SendError::NotFound)
    ));
    let mut bobs = c.clone();
    bobs.tweak(|p| p.owner = UserId::parse("bob").unwrap());
    assert!(matches!(
        refusal(svc.inner.decide_send(&at, &facts(&bobs, vec![]))),
        Refusal::Error(SendError::NotFound)
    ));
}

#[test]
fn a_named_parent_must_be_an_assistant_reply_of_the_chat() {
    let svc = service();
    let c = chat(2, None);
    let q = msg(&c, 1, Role::User, MessageStatus::Complete);
    let at = attempt(&c, SendParent::Message(q.id()), None);
    assert!(matches!(
        refusal(svc.inner.decide_send(&at, &facts(&c, vec![q.clone()]))),
        Refusal::Error(SendError::ParentNotAReply)
    ));
    // Not a message of this chat: nothing read.
    let at = attempt(&c, SendParent::Message(MessageId::new()), None);
    assert!(matches!(
        refusal(svc.inner.decide_send(&at, &facts(&c, vec![]))),
        Refusal::Error(SendError::NotFound)
    ));
}

#[test]
fn a_live_record_replays_or_mismatches() {
    let svc = service();
    let c = chat(2, None);
    let at = attempt(&c, SendParent::ActiveLeaf, Some("k"));
    let record = at.claim.clone().unwrap();
    let (m, r) = (
        msg(&c, 1, Role::User, MessageStatus::Complete),
        msg(&c, 2, Role::Assistant, MessageStatus::Streaming),
    );
    let found = |record: IdempotentSend| TurnFacts {
        replay: Some(IdempotentReplay {
            record,
            message: Some(m.clone()),
            reply: Some(r.clone()),
        }),
        ..facts(&c, vec![])
    };
    match refusal(svc.inner.decide_send(&at, &found(record.clone()))) {
        Refusal::Replay { message, reply } => {
            assert_eq!((message.id(), reply.id()), (m.id(), r.id()))
        }
        other => panic!("expected a replay, got {other:?}"),
    }
    let mut other = record.clone();
    other.fingerprint = "another request".into();
    assert!(matches!(
        refusal(svc.inner.decide_send(&at, &found(other))),
        Refusal::Error(SendError::IdempotencyMismatch)
    ));
    let mut elsewhere = record;
    elsewhere.chat_id = ChatId::new();
    assert!(matches!(
        refusal(svc.inner.decide_send(&at, &found(elsewhere))),
        Refusal::Error(SendError::IdempotencyMismatch)
    ));
}

#[test]
fn streaming_replies_stop_a_turn_unless_stale_and_generated_here() {
    let svc = service();
    let c = chat(2, None);
    let at = attempt(&c, SendParent::Root, None);
    let fresh = msg(&c, 2, Role::Assistant, MessageStatus::Streaming);
    let mut old = fresh.clone();
    old.tweak(|p| p.updated_at = at.stale_before - Duration::seconds(1));
    let with = |m: &Message| TurnFacts {
        streaming: vec![m.clone()],
        ..facts(&c, vec![])
    };
    // Being generated (by anyone): busy.
    assert!(
        matches!(refusal(svc.inner.decide_send(&at, &with(&fresh))), Refusal::Streaming(s) if s.len() == 1)
    );
    // Stale and nobody here generating it: to be marked failed first.
    assert!(matches!(
        refusal(svc.inner.decide_send(&at, &with(&old))),
        Refusal::Streaming(_)
    ));
    // Stale but still generated by this process: it does not block (as before).
    let (tx, _rx) = futures::channel::oneshot::channel();
    svc.inner.running.lock().unwrap().insert(old.id(), tx);
    assert!(svc.inner.decide_send(&at, &with(&old)).is_ok());
}

#[test]
fn a_spent_quota_refuses_from_the_rows_read_in_the_turn() {
    let ledger = Arc::new(crate::ports::MockUsageRepository::new());
    let config = QuotaConfig {
        tokens_per_day: Some(100),
        tokens_per_month: None,
    };
    let svc = service().with_quota(Arc::new(Quota::new(ledger, Arc::new(SystemClock), config)));
    let c = chat(0, None);
    let at = attempt(&c, SendParent::Root, None);
    let read = svc.inner.send_read(&at);
    let (user, from, to) = read.usage.clone().unwrap();
    assert_eq!((user, to), (alice().user, at.now.date_naive()));
    assert!(from <= to);
    let row = |tokens| UsageRow {
        day: at.now.date_naive(),
        model: "echo".into(),
        purpose: UsagePurpose::Reply,
        estimated: false,
        prompt_tokens: tokens,
        completion_tokens: 0,
        requests: 1,
    };
    let spent = TurnFacts {
        usage: vec![row(100)],
        ..facts(&c, vec![])
    };
    assert!(matches!(
        refusal(svc.inner.decide_send(&at, &spent)),
        Refusal::Error(SendError::QuotaExceeded(_))
    ));
    let left = TurnFacts {
        usage: vec![row(99)],
        ..facts(&c, vec![])
    };
    assert!(svc.inner.decide_send(&at, &left).is_ok());
}

#[test]
fn a_regenerate_answers_the_question_again_as_its_newest_sibling() {
    let svc = service();
    let c = chat(2, None);
    let q = msg(&c, 1, Role::User, MessageStatus::Complete);
    let old = msg(&c, 2, Role::Assistant, MessageStatus::Complete);
    let at = RegenerateAttempt {
        actor: alice(),
        question: q.clone(),
        reply_id: MessageId::new(),
        now: Utc::now(),
        stale_before: Utc::now() - Duration::minutes(10),
    };
    let mut f = facts(&c, vec![q.clone()]);
    f.siblings = vec![old.id()];
    let d = svc.inner.decide_regenerate(&at, &f).unwrap();
    assert!(d.turn.user_message.is_none());
    let r = &d.turn.reply;
    assert_eq!(
        (r.id(), r.seq(), r.parent_id()),
        (at.reply_id, 3, Some(q.id()))
    );
    assert_eq!(
        (r.branch().index, r.branch().count, r.branch().prev_id),
        (2, 2, Some(old.id()))
    );
    // A question that is not (any more) a user message of the chat.
    assert!(matches!(
        refusal(svc.inner.decide_regenerate(&at, &facts(&c, vec![]))),
        Refusal::Error(SendError::NotAReply)
    ));
}
