//! The data contract suite: message search, export, erasure and retention, run against
//! every storage adapter with [`data_contract_tests!`](crate::data_contract_tests).

use super::fixtures::*;
use crate::model::*;
use crate::ports::*;
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

/// The data ports under test, over one empty store (with its chat and message ports to
/// seed it).
#[derive(Clone)]
pub struct DataStorage {
    pub chats: Arc<dyn ChatRepository>,
    pub messages: Arc<dyn MessageRepository>,
    pub search: Arc<dyn MessageSearchRepository>,
    pub export: Arc<dyn ExportRepository>,
    pub erasure: Arc<dyn ErasureRepository>,
    pub retention: Arc<dyn RetentionRepository>,
}

impl std::fmt::Debug for DataStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataStorage")
    }
}

/// What [`data_contract_tests!`](crate::data_contract_tests) accepts from its factory.
pub trait IntoDataStorage {
    fn data_storage(&self) -> DataStorage;
}

impl IntoDataStorage for DataStorage {
    fn data_storage(&self) -> DataStorage {
        self.clone()
    }
}

impl<G> IntoDataStorage for (DataStorage, G) {
    fn data_storage(&self) -> DataStorage {
        self.0.clone()
    }
}

/// Expands to one `#[tokio::test]` per data contract case; `$make` is an async
/// expression returning a [`DataStorage`] (or `(DataStorage, guard)`) over an empty store.
#[macro_export]
macro_rules! data_contract_tests {
    ($make:expr) => {
        $crate::data_contract_tests!(@cases $make;
            search_matches_whole_words_ignoring_case_and_punctuation,
            search_phrases_alternatives_and_exclusions, search_unicode_words,
            search_ranks_by_occurrences_then_newest_and_paginates,
            search_sees_only_the_owners_messages_or_one_chat,
            search_ranks_only_the_newest_window, export_reads_chats_by_id_and_messages_by_seq,
            export_shows_only_the_owners_chats, erasure_removes_everything_of_the_user_only,
            erasure_goes_in_batches, finishing_without_a_request_changes_nothing,
            stalled_erasures_are_listed, retention_deletes_idle_chats_oldest_first
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let made = $make.await;
                let storage = $crate::testing::IntoDataStorage::data_storage(&made);
                $crate::testing::$case(&storage).await;
            }
        )*
    };
}

/// A chat of `owner` created at `at`.
pub async fn stored_chat(s: &DataStorage, owner: &str, title: &str, at: DateTime<Utc>) -> Chat {
    let c = chat_at(owner, title, at);
    s.chats.insert_chat(&c, &created(&c)).await.unwrap();
    c
}

/// Stores a turn in `chat`: a user message saying `said` at `at` and a complete reply
/// saying `answer` a millisecond later. Returns both (the one place that builds them).
pub async fn stored_turn(
    s: &DataStorage,
    chat: &Chat,
    said: &str,
    answer: &str,
    at: DateTime<Utc>,
) -> (Message, Message) {
    let count = s
        .chats
        .find_chat(chat.id())
        .await
        .unwrap()
        .unwrap()
        .message_count();
    let mut t = turn(chat, count, said);
    let mut user_message = t.user_message.take().unwrap();
    user_message.tweak(|p| {
        p.created_at = at;
        p.updated_at = at;
    });
    let mut reply = t.reply.clone();
    reply.tweak(|p| {
        p.content = answer.to_owned();
        p.status = MessageStatus::Complete;
        p.created_at = at + Duration::milliseconds(1);
        p.updated_at = p.created_at;
    });
    t.user_message = Some(user_message.clone());
    t.reply = reply.clone();
    t.now = reply.created_at();
    t.events = vec![
        event(chat, EventKind::MessageCreated(user_message.clone())),
        event(chat, EventKind::MessageCreated(reply.clone())),
    ];
    s.messages.start_turn(&t).await.unwrap();
    (user_message, reply)
}

fn base() -> DateTime<Utc> {
    now() - Duration::days(1)
}

fn search(owner: &str, q: &str) -> MessageSearch {
    MessageSearch {
        owner: user(owner),
        chat_id: None,
        query: MessageQuery::parse(q).unwrap(),
        after: None,
        limit: 50,
        window: 500,
    }
}

async fn contents(s: &DataStorage, req: MessageSearch) -> Vec<String> {
    s.search
        .search_messages(&req)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.message.content().to_owned())
        .collect()
}

async fn found(s: &DataStorage, owner: &str, q: &str) -> Vec<String> {
    let mut v = contents(s, search(owner, q)).await;
    v.sort();
    v
}

/// Seeds one chat of alice with one user message per text (replies say "ok").
async fn said(s: &DataStorage, texts: &[&str]) -> Chat {
    let c = stored_chat(s, "alice", "Notes", base()).await;
    for (i, t) in texts.iter().enumerate() {
        stored_turn(s, &c, t, "ok", base() + Duration::seconds(i as i64)).await;
    }
    c
}

pub async fn search_matches_whole_words_ignoring_case_and_punctuation(s: &DataStorage) {
    said(
        s,
        &[
            "The SQL you gave me",
            "sqlite is not it",
            "snake_case and foo-bar",
            "mail bob@example.com now",
            "Version 3.14 of abc123",
        ],
    )
    .await;
    assert_eq!(found(s, "alice", "sql").await, ["The SQL you gave me"]);
    assert_eq!(
        found(s, "alice", "GAVE   you").await,
        ["The SQL you gave me"]
    );
    assert_eq!(found(s, "alice", "case").await, ["snake_case and foo-bar"]);
    assert_eq!(found(s, "alice", "bar").await, ["snake_case and foo-bar"]);
    assert_eq!(
        found(s, "alice", "example").await,
        ["mail bob@example.com now"]
    );
    assert_eq!(found(s, "alice", "14").await, ["Version 3.14 of abc123"]);
    assert_eq!(
        found(s, "alice", "ABC123").await,
        ["Version 3.14 of abc123"]
    );
    assert!(
        found(s, "alice", "abc").await.is_empty(),
        "whole words only"
    );
    assert!(found(s, "alice", "nothing").await.is_empty());
}

pub async fn search_phrases_alternatives_and_exclusions(s: &DataStorage) {
    said(
        s,
        &[
            "quick brown fox",
            "brown quick dog",
            "a fox or a dog",
            "lazy cat",
        ],
    )
    .await;
    assert_eq!(
        found(s, "alice", r#""quick brown""#).await,
        ["quick brown fox"]
    );
    assert_eq!(found(s, "alice", "quick-brown").await, ["quick brown fox"]);
    assert_eq!(
        found(s, "alice", "quick brown").await,
        ["brown quick dog", "quick brown fox"]
    );
    assert_eq!(found(s, "alice", "fox -quick").await, ["a fox or a dog"]);
    assert_eq!(
        found(s, "alice", "cat or fox quick").await,
        ["lazy cat", "quick brown fox"]
    );
    assert_eq!(found(s, "alice", r#"dog "or""#).await, ["a fox or a dog"]);
    assert_eq!(
        found(s, "alice", r#"dog -"brown quick""#).await,
        ["a fox or a dog"]
    );
}

pub async fn search_unicode_words(s: &DataStorage) {
    said(
        s,
        &[
            "Die Größe zählt",
            "ÉCOLE normale",
            "Ёлка и снег",
            "中文 字符",
        ],
    )
    .await;
    assert_eq!(found(s, "alice", "GRÖSSE").await, Vec::<String>::new());
    assert_eq!(found(s, "alice", "größe").await, ["Die Größe zählt"]);
    assert_eq!(found(s, "alice", "école").await, ["ÉCOLE normale"]);
    assert_eq!(found(s, "alice", "ЁЛКА").await, ["Ёлка и снег"]);
    assert_eq!(found(s, "alice", "字符").await, ["中文 字符"]);
}

pub async fn search_ranks_by_occurrences_then_newest_and_paginates(s: &DataStorage) {
    said(
        s,
        &[
            "lisbon once",
            "lisbon lisbon lisbon",
            "lisbon and lisbon",
            "lisbon again",
            "porto",
        ],
    )
    .await;
    let all = contents(s, search("alice", "lisbon")).await;
    assert_eq!(
        all,
        [
            "lisbon lisbon lisbon",
            "lisbon and lisbon",
            "lisbon again",
            "lisbon once"
        ]
    );
    let rows = s
        .search
        .search_messages(&MessageSearch {
            limit: 2,
            ..search("alice", "lisbon")
        })
        .await
        .unwrap();
    assert_eq!(rows.iter().map(|r| r.relevance).collect::<Vec<_>>(), [3, 2]);
    assert_eq!(rows[0].chat_title.as_str(), "Notes");
    let rest = contents(
        s,
        MessageSearch {
            after: Some(MessageSearchCursor::after(&rows[1])),
            ..search("alice", "lisbon")
        },
    )
    .await;
    assert_eq!(rest, ["lisbon again", "lisbon once"]);
}

pub async fn search_sees_only_the_owners_messages_or_one_chat(s: &DataStorage) {
    let a = stored_chat(s, "alice", "A", base()).await;
    let b = stored_chat(s, "alice", "B", base()).await;
    let bob = stored_chat(s, "bob", "Bob's", base()).await;
    stored_turn(s, &a, "secret plan alpha", "ok", base()).await;
    stored_turn(
        s,
        &b,
        "secret plan beta",
        "ok",
        base() + Duration::seconds(1),
    )
    .await;
    stored_turn(s, &bob, "secret plan of bob", "secret too", base()).await;
    assert_eq!(
        found(s, "alice", "secret").await,
        ["secret plan alpha", "secret plan beta"]
    );
    let only_b = contents(
        s,
        MessageSearch {
            chat_id: Some(b.id()),
            ..search("alice", "secret")
        },
    )
    .await;
    assert_eq!(only_b, ["secret plan beta"]);
    assert_eq!(
        found(s, "bob", "secret").await,
        ["secret plan of bob", "secret too"]
    );
}

pub async fn search_ranks_only_the_newest_window(s: &DataStorage) {
    let c = said(
        s,
        &[
            "term term term oldest",
            "term second",
            "term third",
            "term newest",
        ],
    )
    .await;
    let window = |chat_id| MessageSearch {
        window: 3,
        chat_id,
        ..search("alice", "term")
    };
    // The oldest (and most relevant) match is outside the newest three.
    let ranked = contents(s, window(None)).await;
    assert_eq!(ranked, ["term newest", "term third", "term second"]);
    assert_eq!(contents(s, window(Some(c.id()))).await, ranked);
}

pub async fn export_reads_chats_by_id_and_messages_by_seq(s: &DataStorage) {
    let owner = user("alice");
    let mut chats = Vec::new();
    for i in 0..3 {
        // Activity order differs from id order: export is by id.
        let c = stored_chat(s, "alice", &format!("c{i}"), base() - Duration::hours(i)).await;
        chats.push(c);
    }
    for i in 0..3 {
        stored_turn(s, &chats[0], &format!("q{i}"), &format!("a{i}"), base()).await;
    }
    let first = s.export.export_chats(&owner, None, 2).await.unwrap();
    let ids: Vec<ChatId> = first.iter().map(|c| c.id()).collect();
    assert_eq!(ids, [chats[0].id(), chats[1].id()]);
    assert_eq!(first[0].message_count(), 6);
    let rest = s
        .export
        .export_chats(&owner, Some(chats[1].id()), 2)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|c| c.id()).collect::<Vec<_>>(),
        [chats[2].id()]
    );
    let page = s.export.export_messages(chats[0].id(), 0, 4).await.unwrap();
    assert_eq!(
        page.iter().map(|m| m.seq()).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(page[1].content(), "a0");
    let tail = s.export.export_messages(chats[0].id(), 4, 4).await.unwrap();
    assert_eq!(tail.iter().map(|m| m.seq()).collect::<Vec<_>>(), [5, 6]);
    assert!(s
        .export
        .export_messages(chats[1].id(), 0, 4)
        .await
        .unwrap()
        .is_empty());
}

pub async fn export_shows_only_the_owners_chats(s: &DataStorage) {
    stored_chat(s, "alice", "mine", base()).await;
    stored_chat(s, "bob", "his", base()).await;
    let mine = s
        .export
        .export_chats(&user("alice"), None, 10)
        .await
        .unwrap();
    assert_eq!(
        mine.iter().map(|c| c.title().as_str()).collect::<Vec<_>>(),
        ["mine"]
    );
}

/// Seeds `chats` chats of `owner`, each with one turn; the first turn is idempotent.
async fn seeded_user(s: &DataStorage, owner: &str, chats: usize) -> Vec<(Chat, Message)> {
    let mut out = Vec::new();
    for i in 0..chats {
        let c = stored_chat(s, owner, &format!("{owner} {i}"), base()).await;
        let (m, _) = stored_turn(s, &c, &format!("{owner} says {i}"), "ok", base()).await;
        out.push((c, m));
    }
    out
}

pub async fn erasure_removes_everything_of_the_user_only(s: &DataStorage) {
    let gone = seeded_user(s, "erased", 3).await;
    let kept = seeded_user(s, "kept", 1).await;
    // An idempotency record of the erased user, with its turn.
    let c = &gone[0].0;
    let mut t = turn(c, 2, "idempotent");
    let key = IdempotencyKey::parse("k-1").unwrap();
    t.idempotency = Some(IdempotentSend {
        user: user("erased"),
        key: key.clone(),
        fingerprint: "f".into(),
        chat_id: c.id(),
        message_id: t.user_message.as_ref().unwrap().id(),
        reply_id: t.reply.id(),
        created_at: t.now,
    });
    s.messages.start_turn(&t).await.unwrap();
    let who = user("erased");
    s.erasure.request_erasure(&who, now()).await.unwrap();
    let batch = s.erasure.erase_chats(&who, 10, now()).await.unwrap();
    assert_eq!(
        batch,
        ErasedBatch {
            chats: 3,
            messages: 8,
            more: false
        }
    );
    let e = Event::user_erased(now(), who.clone());
    assert!(s.erasure.finish_erasure(&who, &e).await.unwrap());
    for (c, m) in &gone {
        assert_eq!(s.chats.find_chat(c.id()).await.unwrap(), None);
        assert_eq!(s.messages.find_message(m.id()).await.unwrap(), None);
    }
    let since = now() - Duration::hours(1);
    assert_eq!(
        s.messages.find_idempotent(&who, &key, since).await.unwrap(),
        None
    );
    assert!(s
        .export
        .export_chats(&who, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(contents(s, search("erased", "says")).await.is_empty());
    assert!(s
        .erasure
        .stalled_erasures(now() + Duration::hours(1), 10)
        .await
        .unwrap()
        .is_empty());
    let (kc, km) = &kept[0];
    assert!(s.chats.find_chat(kc.id()).await.unwrap().is_some());
    assert!(s.messages.find_message(km.id()).await.unwrap().is_some());
}

pub async fn erasure_goes_in_batches(s: &DataStorage) {
    seeded_user(s, "big", 5).await;
    let who = user("big");
    s.erasure.request_erasure(&who, now()).await.unwrap();
    let first = s.erasure.erase_chats(&who, 2, now()).await.unwrap();
    assert_eq!((first.chats, first.messages, first.more), (2, 4, true));
    let second = s.erasure.erase_chats(&who, 2, now()).await.unwrap();
    assert_eq!((second.chats, second.more), (2, true));
    let last = s.erasure.erase_chats(&who, 2, now()).await.unwrap();
    assert_eq!((last.chats, last.more), (1, false));
    let none = s.erasure.erase_chats(&who, 2, now()).await.unwrap();
    assert_eq!(none, ErasedBatch::default());
}

pub async fn finishing_without_a_request_changes_nothing(s: &DataStorage) {
    let chats = seeded_user(s, "alice", 1).await;
    let who = user("alice");
    let e = Event::user_erased(now(), who.clone());
    assert!(!s.erasure.finish_erasure(&who, &e).await.unwrap());
    assert!(s.chats.find_chat(chats[0].0.id()).await.unwrap().is_some());
    // Requested: finishing deletes even chats no batch got to, once.
    s.erasure.request_erasure(&who, now()).await.unwrap();
    assert!(s.erasure.finish_erasure(&who, &e).await.unwrap());
    assert!(s.chats.find_chat(chats[0].0.id()).await.unwrap().is_none());
    assert!(!s.erasure.finish_erasure(&who, &e).await.unwrap());
}

pub async fn stalled_erasures_are_listed(s: &DataStorage) {
    let t0 = now() - Duration::minutes(10);
    s.erasure.request_erasure(&user("old"), t0).await.unwrap();
    s.erasure
        .request_erasure(&user("fresh"), now())
        .await
        .unwrap();
    let stalled = s
        .erasure
        .stalled_erasures(now() - Duration::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(stalled, [user("old")]);
    // A batch renews the request.
    s.erasure
        .erase_chats(&user("old"), 10, now())
        .await
        .unwrap();
    assert!(s
        .erasure
        .stalled_erasures(now() - Duration::minutes(1), 10)
        .await
        .unwrap()
        .is_empty());
}

fn deleted(c: &Chat, at: DateTime<Utc>) -> Event {
    Event::new(
        at,
        c.owner().clone(),
        c.id(),
        EventKind::ChatDeleted { chat_id: c.id() },
    )
}

pub async fn retention_deletes_idle_chats_oldest_first(s: &DataStorage) {
    let old = now() - Duration::days(40);
    let a = stored_chat(s, "alice", "oldest", old).await;
    let b = stored_chat(s, "bob", "old", old + Duration::days(1)).await;
    let (m, _) = stored_turn(s, &b, "hi", "ok", old + Duration::days(1)).await;
    let c = stored_chat(s, "alice", "older but active", old).await;
    stored_turn(s, &c, "still here", "ok", now()).await;
    let fresh = stored_chat(s, "alice", "fresh", now()).await;
    let before = now() - Duration::days(30);
    let first = s
        .retention
        .delete_idle_chats(before, 1, now(), deleted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.iter().map(|c| c.id()).collect::<Vec<_>>(), [a.id()]);
    let second = s
        .retention
        .delete_idle_chats(before, 10, now(), deleted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.iter().map(|c| c.id()).collect::<Vec<_>>(), [b.id()]);
    assert_eq!(s.messages.find_message(m.id()).await.unwrap(), None);
    assert!(s
        .retention
        .delete_idle_chats(before, 10, now(), deleted)
        .await
        .unwrap()
        .unwrap()
        .is_empty());
    for kept in [&c, &fresh] {
        assert!(s.chats.find_chat(kept.id()).await.unwrap().is_some());
    }
}
