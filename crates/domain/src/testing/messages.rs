//! Contract cases of the `MessageRepository` port.

use super::fixtures::*;
use super::Storage;
use crate::model::*;
use crate::ports::StoreError;
use chrono::Duration;

/// Runs `n` complete turns (each reply finished), returning the chat as stored.
async fn with_turns(s: &Storage, n: u32) -> Chat {
    let c = new_chat(s).await;
    for i in 0..n {
        let t = turn(&c, i * 2, &format!("q{i}"));
        s.messages.start_turn(&t).await.unwrap();
        let mut r = t.reply.clone();
        r.tweak(|p| {
            p.status = MessageStatus::Complete;
            p.content = format!("a{i}");
        });
        s.messages
            .finish_reply(&r, &event(&c, EventKind::MessageFailed(r.clone())), None)
            .await
            .unwrap();
    }
    s.chats.find_chat(c.id()).await.unwrap().unwrap()
}

fn seqs(ms: &[Message]) -> Vec<u32> {
    ms.iter().map(|m| m.seq()).collect()
}

pub async fn start_turn_stores_both_messages_and_counts(s: &Storage) {
    let c = new_chat(s).await;
    let t = turn(&c, 0, "hello");
    s.messages.start_turn(&t).await.unwrap();
    let u = t.user_message.clone().unwrap();
    assert_eq!(s.messages.find_message(u.id()).await.unwrap(), Some(u));
    assert_eq!(
        s.messages.find_message(t.reply.id()).await.unwrap(),
        Some(t.reply.clone())
    );
    let stored = s.chats.find_chat(c.id()).await.unwrap().unwrap();
    assert_eq!(stored.message_count(), 2);
    assert_eq!(stored.updated_at(), t.now);
}

pub async fn start_turn_without_user_message(s: &Storage) {
    let c = with_turns(s, 1).await;
    let question = s.messages.list_messages(c.id(), None, 1).await.unwrap()[0].id();
    let mut t = turn(&c, 2, "unused");
    t.user_message = None;
    t.reply.tweak(|p| {
        p.seq = 3;
        p.parent_id = Some(question);
    });
    s.messages.start_turn(&t).await.unwrap();
    assert_eq!(
        s.chats
            .find_chat(c.id())
            .await
            .unwrap()
            .unwrap()
            .message_count(),
        3
    );
    assert_eq!(
        seqs(&s.messages.list_messages(c.id(), None, 10).await.unwrap()),
        [1, 2, 3]
    );
}

pub async fn start_turn_conflicts_on_stale_count(s: &Storage) {
    let c = with_turns(s, 1).await;
    let t = turn(&c, 0, "late");
    assert!(matches!(
        s.messages.start_turn(&t).await,
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
}

pub async fn start_turn_refuses_busy_chat(s: &Storage) {
    let c = new_chat(s).await;
    s.messages.start_turn(&turn(&c, 0, "first")).await.unwrap();
    let second = turn(&c, 2, "second");
    assert!(matches!(
        s.messages.start_turn(&second).await,
        Err(StoreError::ChatBusy)
    ));
    assert_eq!(
        s.messages.find_message(second.reply.id()).await.unwrap(),
        None
    );
    assert_eq!(
        s.chats
            .find_chat(c.id())
            .await
            .unwrap()
            .unwrap()
            .message_count(),
        2
    );
}

pub async fn stale_streaming_reply_does_not_block(s: &Storage) {
    let c = new_chat(s).await;
    s.messages.start_turn(&turn(&c, 0, "first")).await.unwrap();
    let mut second = turn(&c, 2, "second");
    second.stale_before = now() + Duration::seconds(1);
    s.messages.start_turn(&second).await.unwrap();
    assert_eq!(
        s.chats
            .find_chat(c.id())
            .await
            .unwrap()
            .unwrap()
            .message_count(),
        4
    );
}

pub async fn start_turn_on_missing_chat_is_not_found(s: &Storage) {
    let c = chat("alice", "Never stored");
    assert!(matches!(
        s.messages.start_turn(&turn(&c, 0, "x")).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn finish_reply_only_while_streaming(s: &Storage) {
    let c = new_chat(s).await;
    let t = turn(&c, 0, "q");
    s.messages.start_turn(&t).await.unwrap();
    let mut r = t.reply.clone();
    r.tweak(|p| {
        p.status = MessageStatus::Complete;
        p.content = "answer".into();
    });
    r.tweak(|p| {
        p.usage = Some(Usage {
            prompt_tokens: 3,
            completion_tokens: 1,
        })
    });
    r.tweak(|p| {
        p.model = Some("gpt-x".into());
        p.updated_at = now() + Duration::seconds(1);
    });
    let e = event(
        &c,
        EventKind::MessageCompleted {
            message: r.clone(),
            latency_ms: 5,
        },
    );
    assert!(s.messages.finish_reply(&r, &e, None).await.unwrap());
    assert_eq!(
        s.messages.find_message(r.id()).await.unwrap(),
        Some(r.clone())
    );
    assert_eq!(
        s.chats
            .find_chat(c.id())
            .await
            .unwrap()
            .unwrap()
            .updated_at(),
        r.updated_at()
    );
    let mut again = r.clone();
    again.tweak(|p| {
        p.status = MessageStatus::Failed;
        p.error = Some("late".into());
    });
    assert!(!s.messages.finish_reply(&again, &e, None).await.unwrap());
    assert_eq!(s.messages.find_message(r.id()).await.unwrap(), Some(r));
    let mut ghost = t.reply.clone();
    ghost.tweak(|p| p.id = MessageId::new());
    assert!(!s.messages.finish_reply(&ghost, &e, None).await.unwrap());
}

pub async fn list_messages_in_order_with_cursor(s: &Storage) {
    let c = with_turns(s, 3).await;
    let first = s.messages.list_messages(c.id(), None, 4).await.unwrap();
    assert_eq!(seqs(&first), [1, 2, 3, 4]);
    assert_eq!(first[0].role(), Role::User);
    assert_eq!(first[1].content(), "a0");
    let rest = s
        .messages
        .list_messages(c.id(), Some(MessageCursor { seq: 4 }), 4)
        .await
        .unwrap();
    assert_eq!(seqs(&rest), [5, 6]);
    assert!(s
        .messages
        .list_messages(ChatId::new(), None, 4)
        .await
        .unwrap()
        .is_empty());
}

pub async fn recent_messages_newest_first_before_seq(s: &Storage) {
    let c = with_turns(s, 3).await;
    assert_eq!(
        seqs(&s.messages.recent_messages(c.id(), 5, 3).await.unwrap()),
        [4, 3, 2]
    );
    assert_eq!(
        seqs(&s.messages.recent_messages(c.id(), 100, 100).await.unwrap()),
        [6, 5, 4, 3, 2, 1]
    );
}

pub async fn update_message_changes_content(s: &Storage) {
    let c = with_turns(s, 1).await;
    let mut m = s
        .messages
        .list_messages(c.id(), None, 1)
        .await
        .unwrap()
        .remove(0);
    m.tweak(|p| {
        p.content = "edited".into();
        p.updated_at = now() + Duration::seconds(2);
    });
    s.messages
        .update_message(&m, &event(&c, EventKind::MessageUpdated(m.clone())))
        .await
        .unwrap();
    assert_eq!(
        s.messages.find_message(m.id()).await.unwrap(),
        Some(m.clone())
    );
    let mut ghost = m.clone();
    ghost.tweak(|p| p.id = MessageId::new());
    let e = event(&c, EventKind::MessageUpdated(ghost.clone()));
    assert!(matches!(
        s.messages.update_message(&ghost, &e).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn delete_message_renumbers_later_ones(s: &Storage) {
    let c = with_turns(s, 3).await;
    let all = s.messages.list_messages(c.id(), None, 10).await.unwrap();
    let victim = all[1].clone();
    let e = event(
        &c,
        EventKind::MessageDeleted {
            message_id: victim.id(),
            seq: victim.seq(),
        },
    );
    s.messages
        .delete_message(&victim, now() - Duration::minutes(10), &e)
        .await
        .unwrap();
    let left = s.messages.list_messages(c.id(), None, 10).await.unwrap();
    assert_eq!(seqs(&left), [1, 2, 3, 4, 5]);
    assert_eq!(
        left.iter().map(|m| m.id()).collect::<Vec<_>>(),
        [
            all[0].id(),
            all[2].id(),
            all[3].id(),
            all[4].id(),
            all[5].id()
        ]
    );
    assert_eq!(
        s.chats
            .find_chat(c.id())
            .await
            .unwrap()
            .unwrap()
            .message_count(),
        5
    );
    assert_eq!(s.messages.find_message(victim.id()).await.unwrap(), None);
    assert!(matches!(
        s.messages
            .delete_message(&victim, now() - Duration::minutes(10), &e)
            .await,
        Err(StoreError::NotFound)
    ));
    // The next turn continues the sequence.
    s.messages.start_turn(&turn(&c, 5, "next")).await.unwrap();
    assert_eq!(
        seqs(&s.messages.list_messages(c.id(), None, 10).await.unwrap()),
        [1, 2, 3, 4, 5, 6, 7]
    );
}

pub async fn delete_message_refused_while_busy(s: &Storage) {
    let c = with_turns(s, 1).await;
    s.messages
        .start_turn(&turn(&c, 2, "pending"))
        .await
        .unwrap();
    let first = s
        .messages
        .list_messages(c.id(), None, 1)
        .await
        .unwrap()
        .remove(0);
    let e = event(
        &c,
        EventKind::MessageDeleted {
            message_id: first.id(),
            seq: 1,
        },
    );
    assert!(matches!(
        s.messages
            .delete_message(&first, now() - Duration::minutes(10), &e)
            .await,
        Err(StoreError::ChatBusy)
    ));
    assert_eq!(
        s.messages
            .list_messages(c.id(), None, 10)
            .await
            .unwrap()
            .len(),
        4
    );
}

pub async fn streaming_messages_lists_only_streaming(s: &Storage) {
    let c = with_turns(s, 1).await;
    assert!(s
        .messages
        .streaming_messages(c.id())
        .await
        .unwrap()
        .is_empty());
    let t = turn(&c, 2, "more");
    s.messages.start_turn(&t).await.unwrap();
    let st = s.messages.streaming_messages(c.id()).await.unwrap();
    assert_eq!(
        st.iter().map(|m| m.id()).collect::<Vec<_>>(),
        [t.reply.id()]
    );
}

/// Many writers race for the next `seq` of one chat; every acknowledged turn is stored
/// and the sequence is 1..n with no gaps or duplicates.
pub async fn concurrent_turns_leave_a_gapless_sequence(s: &Storage) {
    let c = new_chat(s).await;
    let writers = 16;
    let per_writer = 5;
    let tasks = (0..writers).map(|w| {
        let s = s.clone();
        let c = c.clone();
        async move {
            let mut acked = Vec::new();
            for i in 0..per_writer {
                loop {
                    let current = s.chats.find_chat(c.id()).await.unwrap().unwrap();
                    let mut t = turn(&current, current.message_count(), &format!("w{w} m{i}"));
                    t.stale_before = now() + Duration::hours(1); // replies never block here
                    match s.messages.start_turn(&t).await {
                        Ok(()) => {
                            acked.push(t.user_message.unwrap().id());
                            acked.push(t.reply.id());
                            break;
                        }
                        Err(StoreError::Conflict) => continue,
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
            }
            acked
        }
    });
    let acked: Vec<MessageId> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
        .collect();
    let stored = s.messages.list_messages(c.id(), None, 1000).await.unwrap();
    let n = (writers * per_writer * 2) as u32;
    assert_eq!(seqs(&stored), (1..=n).collect::<Vec<_>>());
    let mut ids: Vec<_> = stored.iter().map(|m| m.id()).collect();
    ids.sort();
    let mut acked = acked;
    acked.sort();
    assert_eq!(ids, acked);
    assert_eq!(
        s.chats
            .find_chat(c.id())
            .await
            .unwrap()
            .unwrap()
            .message_count(),
        n
    );
}
