//! `chat-service outbox list-dead` and `outbox retry-dead` against a real database:
//! dead entries listed as JSON lines, revived all at once or one by event id, and
//! clear errors for a bad id, an unknown one, or no database.

use chrono::Utc;
use domain::model::{ChatId, Event, EventKind, UserId};
use domain::ports::{AfterFailure, FailedAttempt, Outbox, OutboxCounts};
use infra_postgres::testing::{append_to_outbox, TestDb};
use serde_json::Value;
use std::process::{Command, Output};
use std::time::Duration;

fn event() -> Event {
    let chat = ChatId::new();
    Event::new(
        Utc::now(),
        UserId::parse("alice").unwrap(),
        chat,
        EventKind::ChatDeleted { chat_id: chat },
    )
}

fn cli(db: Option<&TestDb>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat-service"));
    cmd.env_clear()
        .env("LOG_LEVEL", "warn")
        .arg("outbox")
        .args(args);
    if let Some(db) = db {
        cmd.env("DATABASE_URL", db.url());
    }
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_entries_are_listed_and_retried_on_demand() {
    let db = TestDb::new();
    let store = db.store();
    let (dead1, dead2, alive) = (event(), event(), event());
    append_to_outbox(&store, &[dead1.clone(), dead2.clone(), alive.clone()])
        .await
        .unwrap();
    let claimed = store
        .claim("r1", 10, Duration::from_secs(60))
        .await
        .unwrap();
    let aside: Vec<FailedAttempt> = claimed[..2]
        .iter()
        .map(|e| FailedAttempt {
            position: e.position,
            error: "message too large".into(),
            then: AfterFailure::SetAside,
        })
        .collect();
    store.record_failures("r1", &aside).await.unwrap();
    store.release("r1", &[claimed[2].position]).await.unwrap();

    let listed = cli(Some(&db), &["list-dead"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let lines: Vec<Value> = String::from_utf8(listed.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["eventId"], dead1.id.to_string());
    assert_eq!(lines[0]["chatId"], dead1.chat_id.to_string());
    assert_eq!(lines[0]["type"], "chat.deleted");
    assert_eq!(lines[0]["attempts"], 1);
    assert_eq!(lines[0]["lastError"], "message too large");
    assert!(lines[0]["deadAt"].as_str().unwrap().ends_with('Z'));
    assert!(stderr(&listed).contains("2 dead entries listed"));

    let one = cli(Some(&db), &["retry-dead", "--event", &dead2.id.to_string()]);
    assert!(one.status.success(), "{}", stderr(&one));
    assert!(stderr(&one).contains("1 dead entry made pending again"));
    assert_eq!(
        store.backlog().await.unwrap(),
        OutboxCounts {
            pending: 2,
            dead: 1
        }
    );

    let unknown = cli(Some(&db), &["retry-dead", "--event", &alive.id.to_string()]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("no dead outbox entry for event"));
    let bad = cli(Some(&db), &["retry-dead", "--event", "not-an-id"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("UUIDv7"), "{}", stderr(&bad));

    let all = cli(Some(&db), &["retry-dead"]);
    assert!(all.status.success(), "{}", stderr(&all));
    assert!(stderr(&all).contains("1 dead entry made pending again"));
    let revived = store
        .claim("r2", 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(revived.len(), 3, "every entry is pending again");
    assert!(revived.iter().all(|e| e.attempts == 0));
}

#[test]
fn the_outbox_commands_need_a_database() {
    let out = cli(None, &["retry-dead"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no database configured"),
        "{}",
        stderr(&out)
    );
}
