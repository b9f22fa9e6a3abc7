//! Scanning reads take turns for the pool's read permits; writes never wait for them.

use crate::errors::PgError;
use crate::testing::TestDb;
use crate::PgStore;
use domain::ports::StoreError;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanning_read_waits_for_a_permit_and_a_write_does_not() {
    let db = TestDb::new();
    let mut config = db.config();
    config.max_connections = 4;
    config.read_concurrency = Some(1);
    config.wait_timeout = Duration::from_millis(300);
    let store = PgStore::new(&config).unwrap();
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel::<()>();
    let holder = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .run_read(move |_| {
                    let _ = started.send(());
                    let _ = held.recv_timeout(Duration::from_secs(60));
                    Ok::<(), PgError>(())
                })
                .await
        })
    };
    running.await.unwrap(); // the first read holds the only permit
    let second = store.run_read(|_| Ok::<(), PgError>(())).await;
    assert!(
        matches!(second, Err(StoreError::Unavailable(_))),
        "a read waits for a permit, as long as for a connection: {second:?}"
    );
    store
        .run(|_| Ok::<(), PgError>(()))
        .await
        .expect("a write does not wait for read permits");
    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    store
        .run_read(|_| Ok::<(), PgError>(()))
        .await
        .expect("the permit came back");
}
