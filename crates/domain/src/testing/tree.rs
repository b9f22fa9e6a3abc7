//! Contract cases of the conversation tree (DESIGN.md §2.1) on the `MessageRepository`
//! port: parents and siblings, branch reads, the newest-descendant walk, subtree
//! deletion, branch selection, forks, and concurrent sends on two branches.

use super::fixtures::*;
use super::tree_model::{count, ids, new_chat, regenerate, send, Model};
use super::Storage;
use crate::model::*;
use crate::ports::StoreError;

/// Checks every read of the tree against the plain model: for each message, the branch
/// through it (whole, and in pages of 3), its `branch`, its children, its newest leaf
/// and the prompt history ending at it.
async fn check_against_model(s: &Storage, c: &Chat) {
    let model = Model::read(s, c).await;
    for m in &model.all {
        let leaf = model.newest_leaf(m.id());
        let path = model.path_to(leaf);
        let whole = s
            .messages
            .list_branch(c.id(), m.id(), None, 1_000)
            .await
            .unwrap();
        assert_eq!(ids(&whole), path, "branch through seq {}", m.seq());
        for b in &whole {
            assert_eq!(b.branch(), model.branch(b), "branch of seq {}", b.seq());
        }
        let mut paged = vec![];
        let mut after = None;
        loop {
            let page = s
                .messages
                .list_branch(c.id(), m.id(), after, 3)
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().map(|x| MessageCursor { seq: x.seq() });
            paged.extend(ids(&page));
        }
        assert_eq!(paged, path, "paged branch through seq {}", m.seq());
        let found = s.messages.find_message(m.id()).await.unwrap().unwrap();
        assert_eq!(found.branch(), model.branch(m));
        assert_eq!(found.parent_id(), m.parent_id());
        assert_eq!(
            s.messages.children(c.id(), Some(m.id())).await.unwrap(),
            model.children(Some(m.id()))
        );
        assert_eq!(
            s.messages.newest_leaf(c.id(), Some(m.id())).await.unwrap(),
            Some(leaf)
        );
        let mut to_here = model.path_to(m.id());
        to_here.reverse();
        let history = s.messages.branch_history(c.id(), m.id(), 4).await.unwrap();
        assert_eq!(
            ids(&history),
            to_here.into_iter().take(4).collect::<Vec<_>>()
        );
    }
    assert_eq!(
        s.messages.children(c.id(), None).await.unwrap(),
        model.children(None)
    );
}

pub async fn tree_regenerated_replies_are_siblings(s: &Storage) {
    let c = new_chat(s).await;
    let (q, a) = send(s, &c, None).await;
    let b = regenerate(s, &c, q).await;
    let third = regenerate(s, &c, q).await;
    assert_eq!(
        s.messages.children(c.id(), Some(q)).await.unwrap(),
        [a, b, third]
    );
    let mid = s.messages.find_message(b).await.unwrap().unwrap();
    assert_eq!(mid.parent_id(), Some(q));
    assert_eq!(
        mid.branch(),
        Branch {
            index: 2,
            count: 3,
            prev_id: Some(a),
            next_id: Some(third)
        }
    );
    let stored = s.chats.find_chat(c.id()).await.unwrap().unwrap();
    assert_eq!(
        stored.active_leaf_id(),
        Some(third),
        "the newest reply is active"
    );
    check_against_model(s, &c).await;
}

pub async fn tree_branch_reads_follow_the_path(s: &Storage) {
    let c = new_chat(s).await;
    let (q1, a1) = send(s, &c, None).await;
    let a1b = regenerate(s, &c, q1).await;
    let (q2, a2) = send(s, &c, Some(a1b)).await;
    let (q2x, a2x) = send(s, &c, Some(a1)).await; // from the older reply
    let through_a1 = s.messages.list_branch(c.id(), a1, None, 10).await.unwrap();
    assert_eq!(ids(&through_a1), [q1, a1, q2x, a2x]);
    let through_q1 = s.messages.list_branch(c.id(), q1, None, 10).await.unwrap();
    assert_eq!(
        ids(&through_q1),
        [q1, a1b, q2, a2],
        "newest child at each step"
    );
    let page = s
        .messages
        .list_branch(c.id(), a2, Some(MessageCursor { seq: 1 }), 2)
        .await
        .unwrap();
    assert_eq!(ids(&page), [a1b, q2]);
    let history = s.messages.branch_history(c.id(), a2x, 10).await.unwrap();
    assert_eq!(
        ids(&history),
        [a2x, q2x, a1, q1],
        "newest first, that branch only"
    );
    assert_eq!(
        s.messages.newest_leaf(c.id(), None).await.unwrap(),
        Some(a2)
    );
    assert!(s
        .messages
        .list_branch(ChatId::new(), a1, None, 10)
        .await
        .unwrap()
        .is_empty());
    check_against_model(s, &c).await;
}

/// A tree grown by a fixed pseudo-random mix of sends (from the active leaf, from an
/// older reply, new roots) and regenerations, deep enough for many branch points.
pub async fn tree_reads_match_a_plain_model_of_a_grown_tree(s: &Storage) {
    let c = new_chat(s).await;
    let mut replies: Vec<(MessageId, MessageId)> = vec![]; // (question, reply)
    let mut active: Option<MessageId> = None;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for step in 0..40 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let pick = (x % 100) as usize;
        if replies.is_empty() || pick < 50 {
            let (q, a) = send(s, &c, active).await;
            replies.push((q, a));
            active = Some(a);
        } else if pick < 75 {
            let (q, _) = replies[(x as usize / 100) % replies.len()];
            let a = regenerate(s, &c, q).await;
            replies.push((q, a));
            active = Some(a);
        } else if pick < 95 {
            let (_, from) = replies[(x as usize / 100) % replies.len()];
            let (q, a) = send(s, &c, Some(from)).await;
            replies.push((q, a));
            active = Some(a);
        } else {
            let (q, a) = send(s, &c, None).await;
            replies.push((q, a));
            active = Some(a);
        }
        let stored = s.chats.find_chat(c.id()).await.unwrap().unwrap();
        assert_eq!(stored.active_leaf_id(), active, "step {step}");
    }
    check_against_model(s, &c).await;
}

pub async fn tree_start_turn_refuses_a_parent_outside_the_chat(s: &Storage) {
    let c = new_chat(s).await;
    let other = new_chat(s).await;
    let (_, foreign) = send(s, &other, None).await;
    let mut t = turn(&c, 0, "hi");
    if let Some(u) = t.user_message.as_mut() {
        u.tweak(|p| p.parent_id = Some(foreign));
    }
    assert!(matches!(
        s.messages.start_turn(&t).await,
        Err(StoreError::Conflict)
    ));
    if let Some(u) = t.user_message.as_mut() {
        u.tweak(|p| p.parent_id = Some(MessageId::new()));
    }
    assert!(matches!(
        s.messages.start_turn(&t).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(count(s, &c).await, 0);
}

pub async fn tree_delete_takes_the_subtree_and_moves_the_active_leaf(s: &Storage) {
    let c = new_chat(s).await;
    let (q1, a1) = send(s, &c, None).await;
    let (q2, a2) = send(s, &c, Some(a1)).await;
    send(s, &c, Some(a2)).await; // seq 5, 6
    let a1b = regenerate(s, &c, q1).await; // seq 7
    let (_, a3x) = send(s, &c, Some(a1)).await; // seq 8, 9: active
    let target = s.messages.find_message(a2).await.unwrap().unwrap();
    let e = event(
        &c,
        EventKind::MessageDeleted {
            message_id: a2,
            seq: target.seq(),
        },
    );
    s.messages
        .delete_message(&target, now() - chrono::Duration::minutes(10), &e)
        .await
        .unwrap();
    // a2 (seq 4) with seq 5 and 6 below it went; a1b and the later branch close up.
    assert_eq!(count(s, &c).await, 6);
    assert_eq!(s.messages.find_message(a2).await.unwrap(), None);
    assert_eq!(
        s.messages.find_message(a1b).await.unwrap().unwrap().seq(),
        4
    );
    check_against_model(s, &c).await;
    let stored = s.chats.find_chat(c.id()).await.unwrap().unwrap();
    assert_eq!(
        stored.active_leaf_id(),
        Some(a3x),
        "outside the subtree: kept"
    );

    // Deleting the branch holding the active leaf moves it to the newest remaining
    // descendant of the deleted message's parent: a1's children are q2 (whose reply
    // went) and q3x.
    let q3x = s
        .messages
        .find_message(a3x)
        .await
        .unwrap()
        .unwrap()
        .parent_id()
        .unwrap();
    let target = s.messages.find_message(q3x).await.unwrap().unwrap();
    let e = event(
        &c,
        EventKind::MessageDeleted {
            message_id: q3x,
            seq: target.seq(),
        },
    );
    s.messages
        .delete_message(&target, now() - chrono::Duration::minutes(10), &e)
        .await
        .unwrap();
    let stored = s.chats.find_chat(c.id()).await.unwrap().unwrap();
    assert_eq!(stored.active_leaf_id(), Some(q2));
    assert_eq!(stored.message_count(), 4);
    check_against_model(s, &c).await;

    // Deleting the only root empties the chat.
    let root = s.messages.find_message(q1).await.unwrap().unwrap();
    let e = event(
        &c,
        EventKind::MessageDeleted {
            message_id: q1,
            seq: 1,
        },
    );
    s.messages
        .delete_message(&root, now() - chrono::Duration::minutes(10), &e)
        .await
        .unwrap();
    let stored = s.chats.find_chat(c.id()).await.unwrap().unwrap();
    assert_eq!((stored.message_count(), stored.active_leaf_id()), (0, None));
}

pub async fn tree_select_branch_stores_only_the_active_leaf(s: &Storage) {
    let c = new_chat(s).await;
    let (q, a) = send(s, &c, None).await;
    regenerate(s, &c, q).await;
    let mut chosen = s.chats.find_chat(c.id()).await.unwrap().unwrap();
    chosen.tweak(|p| p.active_leaf_id = Some(a));
    let e = event(&chosen, EventKind::ChatUpdated(chosen.clone()));
    s.messages.select_branch(&chosen, &e).await.unwrap();
    let stored = s.chats.find_chat(c.id()).await.unwrap().unwrap();
    assert_eq!(stored, chosen);
    let other = new_chat(s).await;
    let (_, foreign) = send(s, &other, None).await;
    chosen.tweak(|p| p.active_leaf_id = Some(foreign));
    assert!(matches!(
        s.messages.select_branch(&chosen, &e).await,
        Err(StoreError::NotFound)
    ));
    let mut gone = chat("alice", "Gone");
    gone.tweak(|p| p.active_leaf_id = Some(a));
    assert!(matches!(
        s.messages.select_branch(&gone, &e).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn tree_insert_chat_with_messages_stores_a_chain(s: &Storage) {
    let mut c = chat("alice", "Fork");
    let mut copies: Vec<Message> = vec![];
    for i in 0..5u32 {
        let role = if i % 2 == 0 {
            Role::User
        } else {
            Role::Assistant
        };
        let mut m = message(c.id(), i + 1, role, MessageStatus::Complete, "copied");
        m.tweak(|p| p.parent_id = copies.last().map(|p| p.id()));
        copies.push(m);
    }
    c.tweak(|p| {
        p.message_count = 5;
        p.active_leaf_id = copies.last().map(|m| m.id());
    });
    let mut events = vec![created(&c)];
    events.extend(
        copies
            .iter()
            .map(|m| event(&c, EventKind::MessageCreated(m.clone()))),
    );
    s.messages
        .insert_chat_with_messages(&c, &copies, &events)
        .await
        .unwrap();
    assert_eq!(s.chats.find_chat(c.id()).await.unwrap(), Some(c.clone()));
    let leaf = copies[4].id();
    let listed = s
        .messages
        .list_branch(c.id(), leaf, None, 10)
        .await
        .unwrap();
    assert_eq!(listed, copies);
    check_against_model(s, &c).await;
}

pub async fn tree_concurrent_sends_on_two_branches_keep_seq_gapless(s: &Storage) {
    let c = new_chat(s).await;
    let (q, left) = send(s, &c, None).await;
    let right = regenerate(s, &c, q).await;
    let tasks = [(0, left), (1, right)].map(|(w, start)| {
        let s = s.clone();
        let c = c.clone();
        async move {
            let mut at = start;
            for i in 0..8 {
                loop {
                    let n = count(&s, &c).await;
                    let mut t = turn(&c, n, &format!("w{w} m{i}"));
                    if let Some(u) = t.user_message.as_mut() {
                        u.tweak(|p| p.parent_id = Some(at));
                    }
                    t.stale_before = now() + chrono::Duration::hours(1); // replies never block
                    match s.messages.start_turn(&t).await {
                        Ok(()) => {
                            at = t.reply.id();
                            break;
                        }
                        Err(StoreError::Conflict) => continue,
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
            }
            at
        }
    });
    let leaves = futures::future::join_all(tasks).await;
    assert_eq!(count(s, &c).await, 3 + 32);
    let model = Model::read(s, &c).await;
    for (leaf, start) in leaves.iter().zip([left, right]) {
        let path = model.path_to(*leaf);
        assert_eq!(path.len(), 2 + 16);
        assert_eq!(path[1], start, "each writer stayed on its branch");
        let listed = s
            .messages
            .list_branch(c.id(), *leaf, None, 100)
            .await
            .unwrap();
        assert_eq!(ids(&listed), path);
    }
}
