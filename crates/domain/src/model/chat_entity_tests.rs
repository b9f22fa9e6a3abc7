use super::*;
use crate::model::{Branch, MessageContent};

fn chat() -> Chat {
    Chat::new(
        UserId::parse("alice").unwrap(),
        ChatTitle::default(),
        ChatSettings::default(),
        Utc::now(),
    )
}

fn said(c: &Chat, text: &str) -> Message {
    let content = MessageContent::parse(text).unwrap();
    Message::user(
        c,
        MessageId::new(),
        None,
        Branch::default(),
        &content,
        Utc::now(),
    )
}

#[test]
fn a_new_chat_has_no_messages_and_a_v7_id() {
    let c = chat();
    assert_eq!(
        (c.message_count(), c.active_leaf_id(), c.next_seq()),
        (0, None, 1)
    );
    assert_eq!(c.id().as_uuid().get_version_num(), 7);
    assert_eq!(c.created_at(), c.updated_at());
    assert!(c.check().is_ok());
}

#[test]
fn holding_counts_the_messages_and_ends_at_the_last() {
    let c = chat();
    let a = said(&c, "a");
    let c = c.holding(std::slice::from_ref(&a));
    let b = said(&c, "b");
    let c = c.holding(&[a, b.clone()]);
    assert_eq!((c.message_count(), c.active_leaf_id()), (2, Some(b.id())));
}

#[test]
fn updates_never_move_time_back() {
    let mut c = chat();
    let before = c.updated_at();
    let title = ChatTitle::parse("Trip").unwrap();
    c.update(Some(&title), None, before - chrono::Duration::seconds(5));
    assert_eq!((c.title(), c.updated_at()), (&title, before));
    c.touch(before + chrono::Duration::seconds(1));
    assert_eq!(c.updated_at(), before + chrono::Duration::seconds(1));
}

#[test]
fn storage_changes_keep_the_count() {
    let mut c = chat();
    let a = said(&c, "a");
    let now = Utc::now();
    c.record_turn(2, a.id(), now);
    assert_eq!((c.message_count(), c.active_leaf_id()), (2, Some(a.id())));
    let gone = a.id();
    c.record_delete(&[], |id| id == gone, None, now);
    assert_eq!((c.message_count(), c.active_leaf_id()), (0, None));
}

#[test]
fn restore_and_into_parts_round_trip() {
    let c = chat();
    assert_eq!(Chat::restore(c.clone().into_parts()), c);
}

#[test]
fn a_document_round_trips_and_old_ones_without_a_leaf_read() {
    let c = chat();
    let v = serde_json::to_value(&c).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "activeLeafId",
            "createdAt",
            "id",
            "messageCount",
            "owner",
            "settings",
            "title",
            "updatedAt"
        ]
    );
    assert_eq!(serde_json::from_value::<Chat>(v.clone()).unwrap(), c);
    let mut old = v;
    old.as_object_mut().unwrap().remove("activeLeafId");
    assert_eq!(serde_json::from_value::<Chat>(old).unwrap(), c);
}

#[test]
fn a_document_breaking_a_rule_is_refused() {
    let bad = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = serde_json::to_value(chat()).unwrap();
        f(&mut v);
        serde_json::from_value::<Chat>(v).is_err()
    };
    assert!(bad(
        &|v| v["id"] = "67e55044-10b1-426f-9247-bb680e5fe0c8".into()
    ));
    assert!(bad(
        &|v| v["activeLeafId"] = MessageId::new().to_string().into()
    ));
    assert!(bad(&|v| v["owner"] = "".into()));
    assert!(bad(&|v| v["title"] = " ".into()));
    assert!(bad(&|v| v["messageCount"] = (-1).into()));
    assert!(!bad(&|_| {}));
    let mut with_leaf = serde_json::to_value(chat()).unwrap();
    with_leaf["messageCount"] = 2.into();
    with_leaf["activeLeafId"] = MessageId::new().to_string().into();
    assert!(serde_json::from_value::<Chat>(with_leaf).is_ok());
}
