//! Which connection the pool hands out.

use infra_postgres::testing::{backend_pid_held, TestDb};
use std::sync::mpsc;

/// The connection returned last is handed out next (LIFO), so at low load a few hot
/// connections serve every request with their statements already planned; first in,
/// first out would hand out the one returned first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_returned_last_is_handed_out_next() {
    let db = TestDb::new();
    let store = db.store();
    let (release_a, held_a) = mpsc::channel();
    let (release_b, held_b) = mpsc::channel();
    let (sa, sb) = (store.clone(), store.clone());
    // Both held at once: two connections.
    let a = tokio::spawn(async move { backend_pid_held(&sa, held_a).await.unwrap() });
    let b = tokio::spawn(async move { backend_pid_held(&sb, held_b).await.unwrap() });
    release_b.send(()).unwrap();
    let pid_b = b.await.unwrap();
    release_a.send(()).unwrap();
    let pid_a = a.await.unwrap();
    assert_ne!(pid_a, pid_b, "both were held at once");
    let (done, now) = mpsc::channel();
    drop(done);
    let next = backend_pid_held(&store, now).await.unwrap();
    assert_eq!(next, pid_a, "a returned last, b ({pid_b}) first");
}
