//! Contract cases of the owner-scoped reads of the storage ports (issue 10 item 10).

use super::fixtures::*;
use super::tree_model::{new_chat, regenerate, send};
use super::Storage;
use crate::model::*;

/// A message is found with its chat by its owner only; another user's message and a
/// missing one are both `None`.
pub async fn find_owned_message_sees_only_the_owners(s: &Storage) {
    let c = chat("alice", "Mine");
    s.chats.insert_chat(&c, &created(&c)).await.unwrap();
    let t = turn(&c, 0, "secret");
    s.messages.start_turn(&t).await.unwrap();
    let reply = t.reply.id();
    let (chat, message) = s
        .messages
        .find_owned_message(&user("alice"), reply)
        .await
        .unwrap()
        .expect("the owner finds her message");
    assert_eq!(message.id(), reply);
    assert_eq!(message.chat_id(), c.id());
    assert_eq!(chat.id(), c.id());
    assert_eq!(chat.owner(), &user("alice"));
    assert_eq!(chat.message_count(), 2);
    assert_eq!(
        s.messages
            .find_owned_message(&user("bob"), reply)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.messages
            .find_owned_message(&user("alice"), MessageId::new())
            .await
            .unwrap(),
        None
    );
}

/// A chat's page is its active branch, read with the owner check: the same rows as
/// `list_branch` through the active leaf, after any cursor; `None` for another user and
/// for a missing chat; an empty page for a chat without messages and after its last
/// message.
pub async fn list_owned_active_branch_is_the_owners_active_branch(s: &Storage) {
    let c = new_chat(s).await;
    let owner = user("alice");
    let empty = s
        .messages
        .list_owned_active_branch(&owner, c.id(), None, 10)
        .await
        .unwrap()
        .expect("the owner's chat");
    assert!(empty.is_empty(), "no messages yet");
    let (q1, a1) = send(s, &c, None).await;
    let a1b = regenerate(s, &c, q1).await;
    let (q2, a2) = send(s, &c, Some(a1b)).await;
    let _older = send(s, &c, Some(a1)).await; // now the active branch
    let leaf = s.chats.find_chat(c.id()).await.unwrap().unwrap();
    let leaf = leaf.active_leaf_id().expect("an active leaf");
    for after in [None, Some(1), Some(2), Some(5), Some(9)] {
        let after = after.map(|seq| MessageCursor { seq });
        let page = s
            .messages
            .list_owned_active_branch(&owner, c.id(), after, 2)
            .await
            .unwrap()
            .expect("the owner's chat");
        let expected = s
            .messages
            .list_branch(c.id(), leaf, after, 2)
            .await
            .unwrap();
        assert_eq!(page, expected, "after {after:?}");
    }
    let first = s
        .messages
        .list_owned_active_branch(&owner, c.id(), None, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.len(), 4, "q1, a1 and the send after it");
    assert_eq!(first[0].id(), q1);
    assert_eq!(first[1].id(), a1);
    assert_eq!(first[1].branch().count, 2, "a1 and its regenerated sibling");
    assert!(!first.iter().any(|m| m.id() == q2 || m.id() == a2));
    let past = Some(MessageCursor { seq: 100 });
    assert_eq!(
        s.messages
            .list_owned_active_branch(&owner, c.id(), past, 10)
            .await
            .unwrap(),
        Some(vec![]),
        "past the last message: the owner's chat, an empty page"
    );
    for (who, id) in [(user("bob"), c.id()), (owner, ChatId::new())] {
        for after in [None, past] {
            assert_eq!(
                s.messages
                    .list_owned_active_branch(&who, id, after, 10)
                    .await
                    .unwrap(),
                None
            );
        }
    }
}
