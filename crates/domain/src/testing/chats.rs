//! Contract cases of the `ChatRepository` port.

use super::fixtures::*;
use super::Storage;
use crate::model::*;
use crate::ports::StoreError;
use chrono::Duration;

pub async fn chat_round_trip(s: &Storage) {
    let mut c = chat("alice", "Hello");
    c.tweak(|p| {
        p.settings.temperature = Some(Temperature::new(0.5).unwrap());
        p.settings.system_prompt = Some(SystemPrompt::parse("Be brief.").unwrap());
    });
    s.chats.insert_chat(&c, &created(&c)).await.unwrap();
    assert_eq!(s.chats.find_chat(c.id()).await.unwrap(), Some(c));
}

pub async fn missing_chat_is_none(s: &Storage) {
    assert_eq!(s.chats.find_chat(ChatId::new()).await.unwrap(), None);
}

pub async fn update_chat_replaces_fields(s: &Storage) {
    let mut c = chat("alice", "Before");
    s.chats.insert_chat(&c, &created(&c)).await.unwrap();
    let before = c.clone();
    c.tweak(|p| {
        p.title = ChatTitle::parse("After").unwrap();
        p.settings.model = Some(ModelName::parse("gpt-4o").unwrap());
        p.updated_at += Duration::seconds(5);
    });
    s.chats
        .update_chat(&c, &before, &event(&c, EventKind::ChatUpdated(c.clone())))
        .await
        .unwrap();
    assert_eq!(s.chats.find_chat(c.id()).await.unwrap(), Some(c));
}

pub async fn update_or_delete_missing_chat_is_not_found(s: &Storage) {
    let c = chat("alice", "Ghost");
    let e = event(&c, EventKind::ChatUpdated(c.clone()));
    assert!(matches!(
        s.chats.update_chat(&c, &c, &e).await,
        Err(StoreError::NotFound)
    ));
    let e = event(&c, EventKind::ChatDeleted { chat_id: c.id() });
    assert!(matches!(
        s.chats.delete_chat(c.id(), &e).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn delete_chat_takes_its_messages(s: &Storage) {
    let c = chat("alice", "Doomed");
    s.chats.insert_chat(&c, &created(&c)).await.unwrap();
    let t = turn(&c, 0, "hi");
    s.messages.start_turn(&t).await.unwrap();
    s.chats
        .delete_chat(
            c.id(),
            &event(&c, EventKind::ChatDeleted { chat_id: c.id() }),
        )
        .await
        .unwrap();
    assert_eq!(s.chats.find_chat(c.id()).await.unwrap(), None);
    assert_eq!(s.messages.find_message(t.reply.id()).await.unwrap(), None);
    assert!(s
        .messages
        .list_messages(c.id(), None, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn seed(s: &Storage, owner: &str, titles: &[&str]) -> Vec<Chat> {
    let base = now() - Duration::hours(1);
    let mut out = Vec::new();
    for (i, t) in titles.iter().enumerate() {
        let c = chat_at(owner, t, base + Duration::seconds(i as i64));
        s.chats.insert_chat(&c, &created(&c)).await.unwrap();
        out.push(c);
    }
    out
}

pub async fn list_is_newest_activity_first_and_paginates(s: &Storage) {
    let chats = seed(s, "alice", &["a", "b", "c", "d", "e"]).await;
    let owner = user("alice");
    let first = s.chats.list_chats(&owner, None, 2).await.unwrap();
    assert_eq!(
        first.iter().map(|c| c.title().as_str()).collect::<Vec<_>>(),
        ["e", "d"]
    );
    let cur = first.last().map(|c| ChatCursor {
        updated_at: c.updated_at(),
        id: c.id(),
    });
    let second = s.chats.list_chats(&owner, cur, 10).await.unwrap();
    assert_eq!(
        second
            .iter()
            .map(|c| c.title().as_str())
            .collect::<Vec<_>>(),
        ["c", "b", "a"]
    );
    // Same updated_at: ties are broken by id, descending.
    let at = chats[0].updated_at() - Duration::hours(1);
    let (x, y) = (chat_at("alice", "x", at), chat_at("alice", "y", at));
    for c in [&x, &y] {
        s.chats.insert_chat(c, &created(c)).await.unwrap();
    }
    let all = s.chats.list_chats(&owner, None, 100).await.unwrap();
    assert_eq!(all.len(), 7);
    assert_eq!(all[5].id(), x.id().max(y.id()));
    let after_tie = s
        .chats
        .list_chats(
            &owner,
            Some(ChatCursor {
                updated_at: at,
                id: all[5].id(),
            }),
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        after_tie.iter().map(|c| c.id()).collect::<Vec<_>>(),
        [x.id().min(y.id())]
    );
}

pub async fn list_shows_only_the_owners_chats(s: &Storage) {
    seed(s, "alice", &["mine"]).await;
    seed(s, "bob", &["his"]).await;
    let l = s.chats.list_chats(&user("alice"), None, 10).await.unwrap();
    assert_eq!(
        l.iter().map(|c| c.title().as_str()).collect::<Vec<_>>(),
        ["mine"]
    );
    let q = SearchQuery::parse("his").unwrap();
    assert!(s
        .chats
        .search_chats(&user("alice"), &q, None, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn search_ignores_case_and_treats_wildcards_literally(s: &Storage) {
    seed(
        s,
        "alice",
        &[
            "Trip to LISBON",
            "lisbon food",
            "Porto",
            "100% done",
            "1000 things",
            "snake_case",
            "snakeXcase",
            r"back\slash",
        ],
    )
    .await;
    let owner = user("alice");
    let titles = |q: &str| {
        let q = SearchQuery::parse(q).unwrap();
        let s = s.clone();
        let owner = owner.clone();
        async move {
            let mut t: Vec<String> = s
                .chats
                .search_chats(&owner, &q, None, 50)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.title().as_str().to_owned())
                .collect();
            t.sort();
            t
        }
    };
    assert_eq!(titles("Lisbon").await, ["Trip to LISBON", "lisbon food"]);
    assert_eq!(titles("0%").await, ["100% done"]);
    assert_eq!(titles("e_c").await, ["snake_case"]);
    assert_eq!(titles(r"k\s").await, [r"back\slash"]);
    assert!(titles("madrid").await.is_empty());
}

pub async fn search_paginates(s: &Storage) {
    seed(s, "alice", &["note 1", "other", "note 2", "note 3"]).await;
    let q = SearchQuery::parse("NOTE").unwrap();
    let owner = user("alice");
    let first = s.chats.search_chats(&owner, &q, None, 2).await.unwrap();
    assert_eq!(
        first.iter().map(|c| c.title().as_str()).collect::<Vec<_>>(),
        ["note 3", "note 2"]
    );
    let cur = first.last().map(|c| ChatCursor {
        updated_at: c.updated_at(),
        id: c.id(),
    });
    let rest = s.chats.search_chats(&owner, &q, cur, 2).await.unwrap();
    assert_eq!(
        rest.iter().map(|c| c.title().as_str()).collect::<Vec<_>>(),
        ["note 1"]
    );
}

pub async fn times_round_trip_exactly(s: &Storage) {
    let c = chat("alice", "Clock");
    s.chats.insert_chat(&c, &created(&c)).await.unwrap();
    let t = turn(&c, 0, "tick");
    s.messages.start_turn(&t).await.unwrap();
    let back = s
        .messages
        .find_message(t.reply.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.created_at(), t.reply.created_at());
    let chat_back = s.chats.find_chat(c.id()).await.unwrap().unwrap();
    assert_eq!(chat_back.created_at(), c.created_at());
    assert_eq!(chat_back.updated_at(), t.now);
}

pub async fn retitle_changes_only_a_title_still_expected(s: &Storage) {
    let mut c = chat("alice", ChatTitle::DEFAULT);
    c.tweak(|p| p.settings.temperature = Some(Temperature::new(0.3).unwrap()));
    s.chats.insert_chat(&c, &created(&c)).await.unwrap();
    let mut titled = c.clone();
    titled.tweak(|p| {
        p.title = ChatTitle::parse("Trip to Lisbon").unwrap();
        p.updated_at = c.updated_at() + Duration::seconds(3);
    });
    // Settings in the given chat are not written: only the title and the time.
    titled.tweak(|p| p.settings = ChatSettings::default());
    let e = event(&titled, EventKind::ChatUpdated(titled.clone()));
    let changed = s
        .chats
        .retitle_chat(&titled, &ChatTitle::default(), &e)
        .await
        .unwrap();
    assert!(changed);
    let stored = s.chats.find_chat(c.id()).await.unwrap().unwrap();
    assert_eq!(stored.title().as_str(), "Trip to Lisbon");
    assert_eq!(stored.settings(), c.settings());
    assert_eq!(stored.updated_at(), titled.updated_at());

    // The title is no longer the default: a second automatic title changes nothing.
    let mut again = stored.clone();
    again.tweak(|p| p.title = ChatTitle::parse("Other").unwrap());
    let e = event(&again, EventKind::ChatUpdated(again.clone()));
    let changed = s
        .chats
        .retitle_chat(&again, &ChatTitle::default(), &e)
        .await
        .unwrap();
    assert!(!changed);
    let stored = s.chats.find_chat(c.id()).await.unwrap().unwrap();
    assert_eq!(stored.title().as_str(), "Trip to Lisbon");

    // `updated_at` never moves back.
    let mut old = stored.clone();
    old.tweak(|p| {
        p.title = ChatTitle::parse("Older").unwrap();
        p.updated_at = c.updated_at() - Duration::seconds(60);
    });
    let expected = stored.title().clone();
    let e = event(&old, EventKind::ChatUpdated(old.clone()));
    assert!(s.chats.retitle_chat(&old, &expected, &e).await.unwrap());
    let stored = s.chats.find_chat(c.id()).await.unwrap().unwrap();
    assert_eq!(stored.title().as_str(), "Older");
    assert_eq!(stored.updated_at(), titled.updated_at());

    // A chat that is gone: nothing changed, no error.
    let ghost = chat("alice", ChatTitle::DEFAULT);
    let e = event(&ghost, EventKind::ChatUpdated(ghost.clone()));
    assert!(!s
        .chats
        .retitle_chat(&ghost, &ChatTitle::default(), &e)
        .await
        .unwrap());
}

/// `update_chat` writes only over the title and settings it expects: a stale expected
/// chat is a `Conflict` that writes nothing, and `updated_at` never moves back.
pub async fn update_chat_is_a_compare_and_set(s: &Storage) {
    let c = chat("alice", "First");
    s.chats.insert_chat(&c, &created(&c)).await.unwrap();
    let mut renamed = c.clone();
    renamed.tweak(|p| {
        p.title = ChatTitle::parse("Second").unwrap();
        p.updated_at = c.updated_at() + Duration::seconds(10);
    });
    let e = event(&renamed, EventKind::ChatUpdated(renamed.clone()));
    s.chats.update_chat(&renamed, &c, &e).await.unwrap();

    // A writer that read the chat before the rename.
    let mut stale = c.clone();
    stale.tweak(|p| {
        p.settings.temperature = Some(Temperature::new(1.5).unwrap());
        p.updated_at = c.updated_at() + Duration::seconds(20);
    });
    let e = event(&stale, EventKind::ChatUpdated(stale.clone()));
    assert!(matches!(
        s.chats.update_chat(&stale, &c, &e).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        s.chats.find_chat(c.id()).await.unwrap(),
        Some(renamed.clone())
    );

    // A writer with an expected setting that changed meanwhile conflicts too.
    let mut other = renamed.clone();
    other.tweak(|p| p.settings.model = Some(ModelName::parse("gpt-4o").unwrap()));
    let e = event(&other, EventKind::ChatUpdated(other.clone()));
    assert!(matches!(
        s.chats.update_chat(&renamed, &other, &e).await,
        Err(StoreError::Conflict)
    ));

    // An update whose clock is behind keeps the later `updated_at`.
    let mut late = renamed.clone();
    late.tweak(|p| {
        p.settings.temperature = Some(Temperature::new(0.2).unwrap());
        p.updated_at = c.updated_at() - Duration::seconds(60);
    });
    let e = event(&late, EventKind::ChatUpdated(late.clone()));
    s.chats.update_chat(&late, &renamed, &e).await.unwrap();
    let stored = s.chats.find_chat(c.id()).await.unwrap().unwrap();
    assert_eq!(stored.settings(), late.settings());
    assert_eq!(stored.title(), renamed.title());
    assert_eq!(stored.updated_at(), renamed.updated_at());
}

/// Issue 10 item 9: writers race on one chat, one changing the title and one the
/// settings, each as the chat service does (read, change its field, compare-and-set,
/// re-read on `Conflict`). Both start from the same read, so one of them always
/// writes over a stale chat. Every change is kept and `updated_at` never moves back.
pub async fn concurrent_title_and_settings_updates_keep_both(s: &Storage) {
    let c = chat("alice", "Race");
    s.chats.insert_chat(&c, &created(&c)).await.unwrap();
    for round in 0..20 {
        let title = ChatTitle::parse(&format!("title {round}")).unwrap();
        let temperature = Temperature::new(f64::from(round) / 10.0).unwrap();
        let read = s.chats.find_chat(c.id()).await.unwrap().unwrap();
        let id = c.id();
        let write = |change: Box<dyn Fn(&mut Chat) + Send + Sync>| {
            let s = s.clone();
            let mut current = read.clone();
            async move {
                loop {
                    let mut next = current.clone();
                    change(&mut next);
                    next.tweak(|p| p.updated_at = now().max(current.updated_at()));
                    let e = event(&next, EventKind::ChatUpdated(next.clone()));
                    match s.chats.update_chat(&next, &current, &e).await {
                        Ok(()) => return next.updated_at(),
                        Err(StoreError::Conflict) => {
                            current = s.chats.find_chat(id).await.unwrap().unwrap();
                        }
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
            }
        };
        let t = title.clone();
        let (a, b) = futures::join!(
            write(Box::new(
                move |ch: &mut Chat| ch.tweak(|p| p.title = t.clone())
            )),
            write(Box::new(move |ch: &mut Chat| {
                ch.tweak(|p| p.settings.temperature = Some(temperature))
            })),
        );
        let stored = s.chats.find_chat(c.id()).await.unwrap().unwrap();
        assert_eq!(stored.title(), &title, "round {round}: the title was lost");
        assert_eq!(
            stored.settings().temperature,
            Some(temperature),
            "round {round}: the settings were lost"
        );
        assert!(
            stored.updated_at() >= a.max(b),
            "round {round}: updated_at moved back"
        );
        assert!(stored.updated_at() >= read.updated_at());
    }
}
