//! Contract cases of branch reads on branches through many branch points (a reply
//! regenerated and the conversation going on from the new one, as in
//! `bench/seed_tree.sql`): pages from every cursor, with several limits, and the prompt
//! history, against a walk of the plain tree; after subtree deletions (which renumber),
//! after sends that follow them, and in a fork.

use super::fixtures::*;
use super::tree_model::{count, ids, new_chat, regenerate, send, Model};
use super::Storage;
use crate::model::*;
use std::collections::HashMap;

/// `points` branch points on the active branch: at each, a question whose first reply
/// is continued by one more turn (a side branch), then regenerated; the branch goes on
/// from the new reply for `run` turns. Returns the regenerated replies.
async fn grow(s: &Storage, c: &Chat, points: usize, run: usize) -> Vec<MessageId> {
    let mut at = s
        .chats
        .find_chat(c.id())
        .await
        .unwrap()
        .unwrap()
        .active_leaf_id();
    let mut regenerated = vec![];
    for _ in 0..points {
        let (q, a) = send(s, c, at).await;
        send(s, c, Some(a)).await;
        let b = regenerate(s, c, q).await;
        regenerated.push(b);
        at = Some(b);
        for _ in 0..run {
            at = Some(send(s, c, at).await.1);
        }
    }
    regenerated
}

async fn delete(s: &Storage, c: &Chat, id: MessageId) {
    let target = s.messages.find_message(id).await.unwrap().unwrap();
    let e = event(
        c,
        EventKind::MessageDeleted {
            message_id: id,
            seq: target.seq(),
        },
    );
    s.messages
        .delete_message(&target, now() - chrono::Duration::minutes(10), &e)
        .await
        .unwrap();
}

/// For every leaf of the chat: the page after every cursor (0 to past the last `seq`)
/// with limits 1, 2 and 5 is the walk's messages of the branch after the cursor, with
/// their `branch`; the history of every length is the walk reversed. Returns how many
/// leaves were checked.
async fn check_every_cursor(s: &Storage, c: &Chat) -> usize {
    let model = Model::read(s, c).await;
    let by_id: HashMap<MessageId, &Message> = model.all.iter().map(|m| (m.id(), m)).collect();
    let last = model.all.len() as u32;
    let leaves: Vec<MessageId> = model
        .all
        .iter()
        .filter(|m| model.children(Some(m.id())).is_empty())
        .map(|m| m.id())
        .collect();
    for &leaf in &leaves {
        let path = model.path_to(leaf);
        for after in 0..=last + 1 {
            for limit in [1, 2, 5] {
                let want: Vec<MessageId> = path
                    .iter()
                    .copied()
                    .filter(|id| by_id[id].seq() > after)
                    .take(limit)
                    .collect();
                let page = s
                    .messages
                    .list_branch(
                        c.id(),
                        leaf,
                        Some(MessageCursor { seq: after }),
                        limit as u32,
                    )
                    .await
                    .unwrap();
                assert_eq!(
                    ids(&page),
                    want,
                    "leaf seq {}, after {after}, limit {limit}",
                    by_id[&leaf].seq()
                );
                for m in &page {
                    assert_eq!(m.branch(), model.branch(m), "branch of seq {}", m.seq());
                }
            }
        }
        let mut back = path.clone();
        back.reverse();
        for limit in 1..=path.len() + 1 {
            let history = s
                .messages
                .branch_history(c.id(), leaf, limit as u32)
                .await
                .unwrap();
            let want: Vec<MessageId> = back.iter().copied().take(limit).collect();
            assert_eq!(
                ids(&history),
                want,
                "history of leaf seq {}, limit {limit}",
                by_id[&leaf].seq()
            );
        }
    }
    leaves.len()
}

pub async fn tree_lines_pages_from_every_cursor_match_a_walk(s: &Storage) {
    let c = new_chat(s).await;
    grow(s, &c, 8, 1).await;
    // 8 × (side branch 4 + regenerated reply 1 + a turn 2) messages; 8 side leaves and
    // the active one.
    assert_eq!(count(s, &c).await, 56);
    assert_eq!(check_every_cursor(s, &c).await, 9);
    // A second root, and a branch from an old reply of the first one (seq 7, the
    // reply of the first point's turn) growing branch points of its own.
    send(s, &c, None).await;
    let old = Model::read(s, &c).await.all[6].id();
    send(s, &c, Some(old)).await;
    grow(s, &c, 3, 2).await;
    assert_eq!(check_every_cursor(s, &c).await, 9 + 1 + 3 + 1);
}

pub async fn tree_lines_pages_after_deletions_and_in_a_fork_match_a_walk(s: &Storage) {
    let c = new_chat(s).await;
    let regenerated = grow(s, &c, 6, 1).await;
    // A side branch's first reply in the middle: three messages go, the later `seq`s
    // close up, no branch point goes.
    let question = s
        .messages
        .find_message(regenerated[1])
        .await
        .unwrap()
        .unwrap()
        .parent_id();
    let replies = s.messages.children(c.id(), question).await.unwrap();
    assert_eq!(
        replies[1..],
        [regenerated[1]],
        "the first and the regenerated reply"
    );
    delete(s, &c, replies[0]).await;
    assert_eq!(count(s, &c).await, 42 - 3);
    assert_eq!(check_every_cursor(s, &c).await, 6);
    // A regenerated reply with the branch points below it: half the lines go; the
    // active leaf moves to its question's other reply's branch (its side branch).
    delete(s, &c, regenerated[3]).await;
    assert_eq!(check_every_cursor(s, &c).await, 3);
    // New branch points after the renumbering, from that leaf.
    grow(s, &c, 3, 1).await;
    assert_eq!(check_every_cursor(s, &c).await, 2 + 3 + 1);

    // A fork of the active branch: a copy of it as one chain.
    let model = Model::read(s, &c).await;
    let leaf = s
        .chats
        .find_chat(c.id())
        .await
        .unwrap()
        .unwrap()
        .active_leaf_id()
        .unwrap();
    let by_id: HashMap<MessageId, &Message> = model.all.iter().map(|m| (m.id(), m)).collect();
    let mut f = chat("alice", "Fork");
    let mut copies: Vec<Message> = vec![];
    for (i, id) in model.path_to(leaf).iter().enumerate() {
        let src = by_id[id];
        let mut m = message(
            f.id(),
            i as u32 + 1,
            src.role(),
            MessageStatus::Complete,
            "copy",
        );
        m.tweak(|p| p.parent_id = copies.last().map(|p| p.id()));
        copies.push(m);
    }
    f.tweak(|p| {
        p.message_count = copies.len() as u32;
        p.active_leaf_id = copies.last().map(|m| m.id());
    });
    s.messages
        .insert_chat_with_messages(&f, &copies, &[created(&f)])
        .await
        .unwrap();
    assert_eq!(check_every_cursor(s, &f).await, 1);
    // And branch points in the fork.
    grow(s, &f, 2, 1).await;
    assert_eq!(check_every_cursor(s, &f).await, 3);
}
