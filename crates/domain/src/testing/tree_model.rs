//! The helpers of the tree contract cases (`tree.rs`, `tree_lines.rs`): sends and
//! regenerations through the port, and the tree as a plain model read from the flat
//! `seq` listing, to check the branch reads against.

use super::fixtures::*;
use super::Storage;
use crate::model::*;
use std::collections::HashMap;

pub(super) async fn new_chat(s: &Storage) -> Chat {
    let c = chat("alice", "Tree");
    s.chats.insert_chat(&c, &created(&c)).await.unwrap();
    c
}

pub(super) async fn count(s: &Storage, c: &Chat) -> u32 {
    s.chats
        .find_chat(c.id())
        .await
        .unwrap()
        .unwrap()
        .message_count()
}

async fn finish(s: &Storage, c: &Chat, reply: &Message) {
    let mut r = reply.clone();
    r.tweak(|p| {
        p.status = MessageStatus::Complete;
        p.content = format!("answer {}", p.seq);
    });
    let e = event(
        c,
        EventKind::MessageCompleted {
            message: r.clone(),
            latency_ms: 1,
        },
    );
    assert!(s.messages.finish_reply(&r, &e, None).await.unwrap());
}

/// A user message after `parent` and its (finished) reply; returns their ids.
pub(super) async fn send(
    s: &Storage,
    c: &Chat,
    parent: Option<MessageId>,
) -> (MessageId, MessageId) {
    let n = count(s, c).await;
    let mut t = turn(c, n, &format!("question {}", n + 1));
    if let Some(u) = t.user_message.as_mut() {
        u.tweak(|p| p.parent_id = parent);
    }
    s.messages.start_turn(&t).await.unwrap();
    finish(s, c, &t.reply).await;
    (t.user_message.unwrap().id(), t.reply.id())
}

/// Another (finished) reply to `question`; returns its id.
pub(super) async fn regenerate(s: &Storage, c: &Chat, question: MessageId) -> MessageId {
    let n = count(s, c).await;
    let mut t = turn(c, n, "unused");
    t.user_message = None;
    t.reply.tweak(|p| {
        p.seq = n + 1;
        p.parent_id = Some(question);
    });
    t.events.truncate(1);
    s.messages.start_turn(&t).await.unwrap();
    finish(s, c, &t.reply).await;
    t.reply.id()
}

pub(super) fn ids(ms: &[Message]) -> Vec<MessageId> {
    ms.iter().map(|m| m.id()).collect()
}

/// The tree as a plain model, from the flat `seq` listing.
pub(super) struct Model {
    pub(super) all: Vec<Message>,
}

impl Model {
    pub(super) async fn read(s: &Storage, c: &Chat) -> Self {
        let all = s
            .messages
            .list_messages(c.id(), None, 100_000)
            .await
            .unwrap();
        let seqs: Vec<u32> = all.iter().map(|m| m.seq()).collect();
        assert_eq!(
            seqs,
            (1..=all.len() as u32).collect::<Vec<_>>(),
            "seq is 1..n"
        );
        Self { all }
    }
    pub(super) fn by_id(&self) -> HashMap<MessageId, &Message> {
        self.all.iter().map(|m| (m.id(), m)).collect()
    }
    pub(super) fn children(&self, parent: Option<MessageId>) -> Vec<MessageId> {
        self.all
            .iter()
            .filter(|m| m.parent_id() == parent)
            .map(|m| m.id())
            .collect()
    }
    pub(super) fn newest_leaf(&self, mut at: MessageId) -> MessageId {
        while let Some(last) = self.children(Some(at)).last() {
            at = *last;
        }
        at
    }
    pub(super) fn path_to(&self, leaf: MessageId) -> Vec<MessageId> {
        let by_id = self.by_id();
        let mut path = vec![];
        let mut at = Some(leaf);
        while let Some(id) = at {
            path.push(id);
            at = by_id[&id].parent_id();
        }
        path.reverse();
        path
    }
    pub(super) fn branch(&self, m: &Message) -> Branch {
        Branch::among(&self.children(m.parent_id()), m.id())
    }
}
