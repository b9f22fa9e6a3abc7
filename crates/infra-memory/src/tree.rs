//! The conversation tree of one chat, over its messages in `seq` order: parents,
//! siblings, branches and subtrees (DESIGN.md §2.1). Plain scans: memory storage is
//! for one process and tests, where chats are small.

use domain::{Branch, Message, MessageCursor, MessageId};
use std::collections::{HashMap, HashSet};

/// The ids of the children of `parent` (the roots for `None`), in `seq` order.
pub(crate) fn children(ms: &[Message], parent: Option<MessageId>) -> Vec<MessageId> {
    ms.iter()
        .filter(|m| m.parent_id() == parent)
        .map(|m| m.id())
        .collect()
}

/// `m` with its place among its siblings.
pub(crate) fn with_branch(ms: &[Message], m: &Message) -> Message {
    let mut m = m.clone();
    m.set_branch(Branch::among(&children(ms, m.parent_id()), m.id()));
    m
}

/// The newest descendant of `below` (of the newest root for `None`): at each step the
/// child with the highest `seq`.
pub(crate) fn newest_leaf(ms: &[Message], below: Option<MessageId>) -> Option<MessageId> {
    let mut newest_child: HashMap<Option<MessageId>, MessageId> = HashMap::new();
    for m in ms {
        newest_child.insert(m.parent_id(), m.id()); // seq order: the last one wins
    }
    let mut at = match below {
        Some(id) => ms.iter().find(|m| m.id() == id)?.id(),
        None => *newest_child.get(&None)?,
    };
    while let Some(next) = newest_child.get(&Some(at)) {
        at = *next;
    }
    Some(at)
}

/// The branch from the root to `leaf`, root first (empty when `leaf` is not there).
pub(crate) fn path_to(ms: &[Message], leaf: MessageId) -> Vec<&Message> {
    let by_id: HashMap<MessageId, &Message> = ms.iter().map(|m| (m.id(), m)).collect();
    let mut path = Vec::new();
    let mut at = by_id.get(&leaf).copied();
    while let Some(m) = at {
        path.push(m);
        at = m.parent_id().and_then(|p| by_id.get(&p).copied());
    }
    path.reverse();
    path
}

/// Up to `limit` messages after `after` of the branch through `through` (its ancestors,
/// itself, its newest descendants), root first, each with its `branch`.
pub(crate) fn page(
    ms: &[Message],
    through: MessageId,
    after: Option<MessageCursor>,
    limit: u32,
) -> Vec<Message> {
    let Some(leaf) = newest_leaf(ms, Some(through)) else {
        return Vec::new();
    };
    let after = after.map_or(0, |c| c.seq);
    path_to(ms, leaf)
        .into_iter()
        .filter(|m| m.seq() > after)
        .take(limit as usize)
        .map(|m| with_branch(ms, m))
        .collect()
}

/// `id` and every message below it.
pub(crate) fn subtree(ms: &[Message], id: MessageId) -> HashSet<MessageId> {
    let mut set = HashSet::from([id]);
    // Children come after their parents in `seq` order, so one pass finds them all.
    for m in ms {
        if m.parent_id().is_some_and(|p| set.contains(&p)) {
            set.insert(m.id());
        }
    }
    set
}
