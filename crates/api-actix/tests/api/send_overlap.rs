//! The provider call overlapped with the turn's commit (DESIGN.md §6): a commit that
//! fails cancels the provider call and answers as before (503, nothing stored); a
//! duplicate or concurrent send never reaches the provider.

use crate::helpers::{problem, TestApp};
use crate::send_overlap_support::{CommitFails, Hanging};
use diesel::RunQueryDsl;
use infra_postgres::testing::TestDb;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// An app over a `Hanging` provider (in memory, or on a database of its own).
async fn hanging_app(db: Option<&TestDb>) -> (TestApp, Hanging, String) {
    let llm = Hanging::default();
    let mut b = TestApp::builder().llm(llm.clone());
    if let Some(db) = db {
        b = b.database_url(db.url());
    }
    let app = b.spawn().await;
    let id = app.create_chat("alice", "c").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (app, llm, id)
}

fn streamed(app: &TestApp, chat: &str, key: Option<&str>) -> reqwest::RequestBuilder {
    let r = app
        .post(
            "alice",
            &format!("/api/v1/messages?chatId={chat}"),
            json!({ "content": "hello" }),
        )
        .header("accept", "text/event-stream");
    match key {
        Some(k) => r.header("idempotency-key", k),
        None => r,
    }
}

async fn a_failed_commit_cancels_the_provider_call(db: Option<&TestDb>) {
    let llm = Hanging::default();
    let asked = llm.asked.clone();
    let mut b = TestApp::builder()
        .llm(llm.clone())
        .wrap_messages(move |inner| Arc::new(CommitFails { inner, asked }));
    if let Some(db) = db {
        b = b.database_url(db.url());
    }
    let app = b.spawn().await;
    let id = app.create_chat("alice", "c").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for accept in ["application/json", "text/event-stream"] {
        let r = app
            .post(
                "alice",
                &format!("/api/v1/messages?chatId={id}"),
                json!({ "content": "hello" }),
            )
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        // Answered as before the overlap: storage unavailable, as a problem (no stream).
        problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
    }
    // The provider was asked while the commit was under way, and each call was cancelled
    // before the answer went out.
    assert_eq!(llm.started.load(Ordering::SeqCst), 2);
    assert_eq!(llm.dropped.load(Ordering::SeqCst), 2);
    assert!(app.messages("alice", &id).await.is_empty());
}

#[tokio::test]
async fn a_failed_commit_cancels_the_provider_call_in_memory() {
    a_failed_commit_cancels_the_provider_call(None).await;
}

#[tokio::test]
async fn a_failed_commit_cancels_the_provider_call_on_postgres() {
    let db = TestDb::new();
    a_failed_commit_cancels_the_provider_call(Some(&db)).await;
}

/// PostgreSQL itself refuses the commit (a deferred constraint trigger raising a
/// serialization failure at COMMIT): 503, nothing stored, the call cancelled (never
/// finished), and the chat takes the next send.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_refused_by_postgres_cancels_the_provider_call() {
    let db = TestDb::new();
    diesel::sql_query(
        "CREATE FUNCTION sendpath_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.content = 'refuse me' THEN \
           RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'serialization_failure'; \
         END IF; RETURN NULL; END $$",
    )
    .execute(&mut db.connect())
    .unwrap();
    diesel::sql_query(
        "CREATE CONSTRAINT TRIGGER sendpath_refuse AFTER INSERT ON messages \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sendpath_refuse()",
    )
    .execute(&mut db.connect())
    .unwrap();
    let (app, llm, id) = hanging_app(Some(&db)).await;
    let r = app.send("alice", &id, "refuse me").await;
    problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
    // Whether or not the call got under way before the commit failed, none is left.
    assert_eq!(
        llm.started.load(Ordering::SeqCst),
        llm.dropped.load(Ordering::SeqCst)
    );
    assert!(app.messages("alice", &id).await.is_empty());
    let r = streamed(&app, &id, None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(app.messages("alice", &id).await.len(), 2);
}

async fn concurrent_sends_reach_the_provider_once(db: Option<&TestDb>) {
    let (app, llm, id) = hanging_app(db).await;
    let app = Arc::new(app);
    // Eight sends at once to one chat: one turn, seven 409s.
    let sends = (0..8).map(|_| {
        let (app, id) = (app.clone(), id.clone());
        tokio::spawn(async move { streamed(&app, &id, None).send().await.unwrap() })
    });
    let mut statuses = Vec::new();
    let mut open = Vec::new();
    for s in sends {
        let r = s.await.unwrap();
        statuses.push(r.status());
        open.push(r);
    }
    statuses.sort();
    let mut expected = vec![StatusCode::CREATED];
    expected.extend([StatusCode::CONFLICT; 7]);
    assert_eq!(statuses, expected);
    assert_eq!(llm.started.load(Ordering::SeqCst), 1);
    // Eight retries at once of one keyed send, in a second chat: one turn, eight
    // answers of it (the first, and replays following it).
    let other = app.create_chat("alice", "d").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sends = (0..8).map(|_| {
        let (app, other) = (app.clone(), other.clone());
        tokio::spawn(async move { streamed(&app, &other, Some("k-1")).send().await.unwrap() })
    });
    for s in sends {
        let r = s.await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        open.push(r);
    }
    assert_eq!(llm.started.load(Ordering::SeqCst), 2);
    // The same key at once in two idle chats: one turn, one 422.
    let mut chats: Vec<String> = Vec::new();
    for title in ["e", "f"] {
        chats.push(
            app.create_chat("alice", title).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let sends = chats.into_iter().map(|chat| {
        let app = app.clone();
        tokio::spawn(async move { streamed(&app, &chat, Some("k-2")).send().await.unwrap() })
    });
    let mut statuses = Vec::new();
    for s in sends {
        let r = s.await.unwrap();
        statuses.push(r.status());
        open.push(r);
    }
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY]
    );
    assert_eq!(llm.started.load(Ordering::SeqCst), 3);
    drop(open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_and_duplicate_sends_reach_the_provider_once_in_memory() {
    concurrent_sends_reach_the_provider_once(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_and_duplicate_sends_reach_the_provider_once_on_postgres() {
    let db = TestDb::new();
    concurrent_sends_reach_the_provider_once(Some(&db)).await;
}
