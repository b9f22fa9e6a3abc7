use super::*;
use crate::model::{ChatSettings, ChatTitle, UserId};

fn chat() -> Chat {
    Chat::new(
        UserId::parse("alice").unwrap(),
        ChatTitle::default(),
        ChatSettings::default(),
        Utc::now(),
    )
}

fn content(s: &str) -> MessageContent {
    MessageContent::parse(s).unwrap()
}

#[test]
fn a_user_message_takes_the_next_seq_of_its_chat() {
    let c = chat();
    let now = Utc::now();
    let m = Message::user(
        &c,
        MessageId::new(),
        None,
        Branch::default(),
        &content("hi"),
        now,
    );
    assert_eq!(m.seq(), 1);
    assert_eq!(m.chat_id(), c.id());
    assert_eq!(m.role(), Role::User);
    assert_eq!(m.status(), MessageStatus::Complete);
    assert_eq!(m.content(), "hi");
    assert_eq!(m.id().as_uuid().get_version_num(), 7);
    assert!(m.check().is_ok());
    let c = c.holding(std::slice::from_ref(&m));
    let next = Message::user(
        &c,
        MessageId::new(),
        Some(m.id()),
        Branch::default(),
        &content("b"),
        now,
    );
    assert_eq!(next.seq(), 2);
    assert_eq!(next.parent_id(), Some(m.id()));
}

#[test]
fn a_reply_placeholder_is_streaming_empty_and_never_at_seq_0() {
    let c = chat();
    let r = Message::reply(&c, MessageId::new(), 2, "echo".into(), Utc::now());
    assert_eq!(
        (r.seq(), r.role(), r.status()),
        (2, Role::Assistant, MessageStatus::Streaming)
    );
    assert_eq!((r.content(), r.model()), ("", Some("echo")));
    assert_eq!(
        Message::reply(&c, MessageId::new(), 0, "echo".into(), Utc::now()).seq(),
        1
    );
}

#[test]
fn a_message_cannot_become_its_own_parent() {
    let mut r = Message::reply(&chat(), MessageId::new(), 1, "echo".into(), Utc::now());
    r.set_parent_id(Some(r.id()));
    assert_eq!(r.parent_id(), None);
}

#[test]
fn finishing_a_reply_records_its_outcome() {
    let mut r = Message::reply(&chat(), MessageId::new(), 2, "echo".into(), Utc::now());
    r.catch_up("par".into());
    r.catch_up("p".into());
    assert_eq!(r.content(), "par");
    let later = r.updated_at() + chrono::Duration::seconds(1);
    r.record_output("partial".into(), "gpt".into(), None, later);
    r.fail("boom".into());
    assert_eq!(
        (r.status(), r.error(), r.model()),
        (MessageStatus::Failed, Some("boom"), Some("gpt"))
    );
    assert_eq!(r.updated_at(), later);
    r.drop_content();
    assert_eq!(r.content(), "");
    let mut c = Message::reply(&chat(), MessageId::new(), 2, "echo".into(), Utc::now());
    c.cancel();
    assert_eq!(c.status(), MessageStatus::Cancelled);
    c.complete();
    assert_eq!(c.status(), MessageStatus::Complete);
}

#[test]
fn a_user_message_stays_complete_and_keeps_its_text() {
    let mut m = Message::user(
        &chat(),
        MessageId::new(),
        None,
        Branch::default(),
        &content("q"),
        Utc::now(),
    );
    m.fail("no".into());
    m.cancel();
    m.drop_content();
    assert_eq!(
        (m.status(), m.error(), m.content()),
        (MessageStatus::Complete, None, "q")
    );
    m.edit(content("edited"), Utc::now());
    assert_eq!(m.content(), "edited");
}

#[test]
fn storage_renumbering_never_gives_seq_0() {
    let mut r = Message::reply(&chat(), MessageId::new(), 5, "echo".into(), Utc::now());
    r.renumber(0);
    assert_eq!(r.seq(), 1);
    r.renumber(3);
    assert_eq!(r.seq(), 4);
}

#[test]
fn restore_and_into_parts_round_trip() {
    let r = Message::reply(&chat(), MessageId::new(), 3, "echo".into(), Utc::now());
    assert_eq!(Message::restore(r.clone().into_parts()), r);
}

fn document() -> serde_json::Value {
    let m = Message::user(
        &chat(),
        MessageId::new(),
        None,
        Branch::default(),
        &content("hi"),
        Utc::now(),
    );
    serde_json::to_value(&m).unwrap()
}

#[test]
fn a_document_round_trips_with_the_same_shape() {
    let c = chat();
    let mut r = Message::reply(&c, MessageId::new(), 2, "echo".into(), Utc::now());
    r.set_parent_id(Some(MessageId::new()));
    r.set_branch(Branch {
        index: 2,
        count: 2,
        prev_id: Some(MessageId::new()),
        next_id: None,
    });
    let v = serde_json::to_value(&r).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = vec![
        "id",
        "chatId",
        "seq",
        "parentId",
        "role",
        "content",
        "status",
        "model",
        "usage",
        "error",
        "createdAt",
        "updatedAt",
    ];
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected);
    let back: Message = serde_json::from_value(v).unwrap();
    assert_eq!(back.branch(), Branch::default());
    r.set_branch(Branch::default());
    assert_eq!(back, r);
}

#[test]
fn a_document_without_parent_still_reads() {
    let mut v = document();
    v.as_object_mut().unwrap().remove("parentId");
    let m: Message = serde_json::from_value(v).unwrap();
    assert_eq!(m.parent_id(), None);
}

#[test]
fn a_document_breaking_a_rule_is_refused() {
    let bad = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = document();
        f(&mut v);
        serde_json::from_value::<Message>(v).is_err()
    };
    assert!(bad(&|v| v["seq"] = 0.into()));
    assert!(bad(&|v| v["seq"] = (-1).into()));
    assert!(bad(
        &|v| v["id"] = "67e55044-10b1-426f-9247-bb680e5fe0c8".into()
    ));
    assert!(bad(&|v| v["chatId"] = "nope".into()));
    assert!(bad(&|v| v["parentId"] = v["id"].clone()));
    assert!(bad(&|v| v["status"] = "streaming".into()));
    assert!(bad(&|v| v["content"] = " ".into()));
    assert!(bad(&|v| v["content"] = "a\u{0}b".into()));
    assert!(bad(&|v| v["role"] = "robot".into()));
    assert!(!bad(&|_| {}));
    let mut reply = document();
    reply["role"] = "assistant".into();
    reply["status"] = "failed".into();
    reply["content"] = "".into();
    assert!(serde_json::from_value::<Message>(reply).is_ok());
}
