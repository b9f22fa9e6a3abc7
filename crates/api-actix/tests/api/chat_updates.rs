//! Concurrent `PUT /chats/{id}` (issue 10 item 9), on both storages: one request
//! changing the title and one the settings, sent at once, both stay; `updatedAt` never
//! moves back.

use crate::helpers::TestApp;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_title_and_a_settings_change_sent_together_are_both_kept() {
    for postgres in [false, true] {
        let mut b = TestApp::builder();
        if postgres {
            b = b.postgres();
        }
        let app = b.spawn().await;
        let on = if postgres { "postgres" } else { "memory" };
        let chat = app.create_chat("alice", "start").await;
        let id = chat["id"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/chats/{id}");
        let mut last = chat["updatedAt"].as_str().unwrap().to_owned();
        for round in 0..40 {
            let title = format!("title {round}");
            let prompt = format!("prompt {round}");
            let (a, b) = tokio::join!(
                app.put("alice", &path, json!({ "title": title })).send(),
                app.put(
                    "alice",
                    &path,
                    json!({ "settings": { "systemPrompt": prompt } })
                )
                .send(),
            );
            assert_eq!(a.unwrap().status(), 200, "{on} round {round}");
            assert_eq!(b.unwrap().status(), 200, "{on} round {round}");
            let stored: Value = app
                .get("alice", &path)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(stored["title"], title, "{on} round {round}: {stored}");
            assert_eq!(
                stored["settings"]["systemPrompt"], prompt,
                "{on} round {round}: {stored}"
            );
            let at = stored["updatedAt"].as_str().unwrap().to_owned();
            let (t0, t1): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
                (last.parse().unwrap(), at.parse().unwrap());
            assert!(t1 >= t0, "{on} round {round}: updatedAt moved back");
            last = at;
        }
    }
}
