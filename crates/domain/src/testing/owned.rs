//! Contract cases of the owner-scoped reads of the storage ports (issue 10 item 10).

use super::fixtures::*;
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
