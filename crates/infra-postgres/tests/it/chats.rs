//! Chats: round trips, keyset pagination, and title search (case, literal wildcards,
//! and the two search plans).

use crate::support::*;
use diesel::prelude::*;
use domain::model::Tweak;
use domain::model::{ChatCursor, ChatSettings, ModelName, SearchQuery, Temperature};
use domain::ports::{ChatRepository, StoreError};

fn cursor(c: &domain::model::Chat) -> Option<ChatCursor> {
    Some(ChatCursor {
        updated_at: c.updated_at(),
        id: c.id(),
    })
}

#[tokio::test]
async fn settings_and_times_round_trip() {
    let (_db, s) = store();
    let mut c = chat("alice", "Settings");
    c.tweak(|p| {
        p.settings = ChatSettings {
            model: Some(ModelName::parse("gpt-4o-mini").unwrap()),
            system_prompt: None,
            temperature: Some(Temperature::new(0.7).unwrap()),
            max_tokens: None,
        }
    });
    s.insert_chat(&c, &created(&c)).await.unwrap();
    assert_eq!(s.find_chat(c.id()).await.unwrap(), Some(c.clone()));
    assert!(matches!(
        s.insert_chat(&c, &created(&c)).await,
        Err(StoreError::Conflict)
    ));
}

#[tokio::test]
async fn list_pages_through_ties_in_updated_at() {
    let (_db, s) = store();
    let at = now();
    let mut all = Vec::new();
    for i in 0..7 {
        // Same instant for all: the id breaks the tie.
        let c = chat_at("bob", &format!("chat {i}"), at);
        s.insert_chat(&c, &created(&c)).await.unwrap();
        all.push(c);
    }
    all.sort_by_key(|c| std::cmp::Reverse((c.updated_at(), c.id())));
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.list_chats(&user("bob"), after, 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = cursor(page.last().unwrap());
        seen.extend(page);
    }
    assert_eq!(seen, all);
}

#[tokio::test]
async fn search_is_case_insensitive_and_literal() {
    let (_db, s) = store();
    let titles = [
        "Trip to LISBON",
        "lisbon food",
        "100% done",
        "1000 ways",
        "snake_case names",
        "snakeXcase",
        "C:\\temp files",
        "C:Xtemp",
        "Élan vital",
    ];
    for t in titles {
        let c = chat("carol", t);
        s.insert_chat(&c, &created(&c)).await.unwrap();
    }
    let other = chat("dave", "Lisbon too");
    s.insert_chat(&other, &created(&other)).await.unwrap();
    let find = |q: &str| {
        let q = SearchQuery::parse(q).unwrap();
        let s = s.clone();
        async move {
            let mut found: Vec<String> = s
                .search_chats(&user("carol"), &q, None, 50)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.title().as_str().to_owned())
                .collect();
            found.sort();
            found
        }
    };
    assert_eq!(find("LisBon").await, ["Trip to LISBON", "lisbon food"]);
    assert_eq!(find("0%").await, ["100% done"]);
    assert_eq!(find("e_c").await, ["snake_case names"]);
    assert_eq!(find(":\\t").await, ["C:\\temp files"]);
    assert_eq!(find("élAN").await, ["Élan vital"]);
    assert!(find("%").await.len() == 1);
    assert!(find("zzz").await.is_empty());
}

/// An owner with more chats than the scans' budget (7,000), the rare matches spread over
/// the newest 2,000 and one far past the budget: every plan runs (the first scan, the
/// scan continued, the trigram index at once and after the budget, the unbounded scan of
/// a query without trigrams), and whole searches and pages match a full scan exactly.
#[tokio::test]
async fn search_across_the_window_matches_a_full_scan() {
    let (db, s) = store();
    let mut conn = db.connect();
    diesel::sql_query(
        "INSERT INTO chats (id, owner, title, settings, message_count, created_at, updated_at) \
         SELECT gen_random_uuid(), 'heavy', \
                CASE WHEN (g % 400 = 7 AND g < 2000) OR g = 6990 THEN 'Needle ' || g \
                     ELSE 'hay ' || g END, \
                '{}', 0, now() - g * interval '1 second', now() - g * interval '1 second' \
         FROM generate_series(1, 7000) g",
    )
    .execute(&mut conn)
    .unwrap();
    let owner = user("heavy");
    // With trigrams (the GIN plan past the scans) and without (index order throughout).
    for q in ["NEEDLE", "ne"] {
        let q = SearchQuery::parse(q).unwrap();
        let mut expected = Vec::new();
        let mut after = None;
        loop {
            let page = s.list_chats(&owner, after, 1000).await.unwrap();
            if page.is_empty() {
                break;
            }
            after = cursor(page.last().unwrap());
            expected.extend(page.into_iter().filter(|c| q.matches(c.title().as_str())));
        }
        assert_eq!(expected.len(), 6);
        let all_at_once = s.search_chats(&owner, &q, None, 50).await.unwrap();
        assert_eq!(all_at_once, expected);
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = s.search_chats(&owner, &q, after, 2).await.unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 2);
            after = cursor(page.last().unwrap());
            paged.extend(page);
        }
        assert_eq!(paged, expected);
    }
}

#[tokio::test]
async fn every_chat_change_writes_its_event() {
    let (db, s) = store();
    let mut c = chat("erin", "Events");
    s.insert_chat(&c, &created(&c)).await.unwrap();
    let before = c.clone();
    c.tweak(|p| p.title = domain::model::ChatTitle::parse("Renamed").unwrap());
    let updated = event(&c, domain::model::EventKind::ChatUpdated(c.clone()));
    s.update_chat(&c, &before, &updated).await.unwrap();
    let deleted = event(
        &c,
        domain::model::EventKind::ChatDeleted { chat_id: c.id() },
    );
    s.delete_chat(c.id(), &deleted).await.unwrap();
    assert!(matches!(
        s.delete_chat(c.id(), &deleted).await,
        Err(StoreError::NotFound)
    ));
    let types: Vec<String> = {
        use infra_postgres_schema::*;
        let mut conn = db.connect();
        diesel::sql_query("SELECT event_type FROM outbox ORDER BY position")
            .load::<EventType>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|r| r.event_type)
            .collect()
    };
    assert_eq!(types, ["chat.created", "chat.updated", "chat.deleted"]);
}

mod infra_postgres_schema {
    use diesel::sql_types::Text;

    #[derive(diesel::QueryableByName)]
    pub struct EventType {
        #[diesel(sql_type = Text)]
        pub event_type: String,
    }
}
