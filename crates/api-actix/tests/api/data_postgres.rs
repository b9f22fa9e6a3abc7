//! A user's own data on PostgreSQL: erasure leaves nothing of the user in any table
//! (202 and batches when large), `chat-service erase-user`, retention's background job.

use crate::helpers::TestApp;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
}

/// Rows of every table of the schema whose text mentions any of `needles`, per table.
fn mentions(conn: &mut PgConnection, needles: &[String]) -> Vec<(String, i64)> {
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT table_name::text AS name FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' \
           AND table_name NOT LIKE '\\_\\_diesel%' ORDER BY 1",
    )
    .load(conn)
    .unwrap();
    assert!(tables.len() >= 5, "the schema's tables are found");
    let cond = needles
        .iter()
        .map(|n| format!("x::text LIKE '%{n}%'"))
        .collect::<Vec<_>>()
        .join(" OR ");
    tables
        .into_iter()
        .map(|t| {
            let n = count(
                conn,
                &format!("SELECT count(*) AS n FROM \"{}\" x WHERE {cond}", t.name),
            );
            (t.name, n)
        })
        .collect()
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < Duration::from_secs(60), "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_large_erasure_is_202_and_leaves_nothing_of_the_user_in_any_table() {
    let app = TestApp::builder().postgres().spawn().await;
    let user = format!("erase-me-{}", uuid::Uuid::now_v7().simple());
    let mut needles = vec![user.clone(), "my-secret-words".to_owned()];
    // More chats than one batch holds: the erasure continues in the background.
    for i in 0..60 {
        let c = app.create_chat(&user, &format!("chat {i}")).await;
        needles.push(c["id"].as_str().unwrap().to_owned());
    }
    let chat = needles[2].clone();
    let r = app
        .post(
            &user,
            &format!("/api/v1/messages?chatId={chat}"),
            json!({"content": "my-secret-words"}),
        )
        .header("idempotency-key", "erase-key-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let turn: Value = r.json().await.unwrap();
    let reply = turn["reply"]["id"].as_str().unwrap();
    app.put(
        &user,
        &format!("/api/v1/messages/{reply}"),
        json!({"content": "edited my-secret-words"}),
    )
    .send()
    .await
    .unwrap();
    let bob = app.create_chat("bob", "Bob keeps his").await;
    let mut conn = app._db.as_ref().unwrap().connect();
    assert!(mentions(&mut conn, &needles)
        .iter()
        .any(|(t, n)| t == "outbox" && *n > 0));

    let r = app.delete(&user, "/api/v1/me").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually("the background erasure", || {
        count(&mut conn, "SELECT count(*) AS n FROM erasure_requests") == 0
    })
    .await;

    for (table, n) in mentions(&mut conn, &needles) {
        let expected = if table == "outbox" { 1 } else { 0 };
        assert_eq!(n, expected, "{table} still holds {n} row(s) of the user");
    }
    let left = count(
        &mut conn,
        &format!(
            "SELECT count(*) AS n FROM outbox WHERE payload ->> 'userId' = '{user}' \
             AND event_type = 'user.erased' AND payload::text NOT LIKE '%my-secret-words%'"
        ),
    );
    assert_eq!(left, 1, "exactly one user.erased event, without content");
    let r = app
        .get(
            "bob",
            &format!("/api/v1/chats/{}", bob["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Asking again: nothing to erase, done at once.
    let r = app.delete(&user, "/api/v1/me").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_erase_user_command_erases_a_user() {
    let app = TestApp::builder().postgres().spawn().await;
    let c = app.create_chat("carol", "To go").await;
    let id = c["id"].as_str().unwrap();
    app.send("carol", id, "bye").await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chat-service"))
        .env_clear()
        .env("DATABASE_URL", app._db.as_ref().unwrap().url())
        .args(["erase-user", "--sub", "carol"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("1 chats, 2 messages"), "{stderr}");
    let r = app
        .get("carol", &format!("/api/v1/chats/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn retention_deletes_idle_chats_with_their_event_and_counts_them() {
    let app = TestApp::builder()
        .postgres()
        .env("RETENTION_CHAT_IDLE_DAYS", "1")
        .env("RETENTION_SWEEP_INTERVAL_SECS", "1")
        .spawn()
        .await;
    let old = app.create_chat("alice", "Old").await;
    let fresh = app.create_chat("alice", "Fresh").await;
    let (old, fresh) = (old["id"].as_str().unwrap(), fresh["id"].as_str().unwrap());
    app.send("alice", old, "long ago").await;
    let mut conn = app._db.as_ref().unwrap().connect();
    diesel::sql_query(format!(
        "UPDATE chats SET updated_at = now() - interval '2 days' WHERE id = '{old}'"
    ))
    .execute(&mut conn)
    .unwrap();
    eventually("the idle chat to be deleted", || {
        count(
            &mut conn,
            &format!("SELECT count(*) AS n FROM chats WHERE id = '{old}'"),
        ) == 0
    })
    .await;
    assert_eq!(
        count(
            &mut conn,
            &format!("SELECT count(*) AS n FROM messages WHERE chat_id = '{old}'")
        ),
        0
    );
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "SELECT count(*) AS n FROM outbox WHERE event_type = 'chat.deleted' AND chat_id = '{old}'"
            )
        ),
        1
    );
    let r = app
        .get("alice", &format!("/api/v1/chats/{fresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("retention_chats_deleted_total 1"),
        "{metrics}"
    );
}
