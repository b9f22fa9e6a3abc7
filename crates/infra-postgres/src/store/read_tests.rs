//! Scanning reads take turns for the pool's read permits; writes never wait for them.

use crate::errors::PgError;
use crate::testing::TestDb;
use crate::PgStore;
use domain::ports::StoreError;
use std::time::Duration;

type Holder = tokio::task::JoinHandle<Result<(), StoreError>>;

/// A read that holds a permit until `release` is sent (or a minute has passed); returns
/// once it holds it.
async fn hold_a_read_permit(
    store: &PgStore,
) -> Result<(std::sync::mpsc::Sender<()>, Holder), tokio::sync::oneshot::error::RecvError> {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel::<()>();
    let store = store.clone();
    let holder = tokio::spawn(async move {
        store
            .run_read(move |_| {
                let _ = started.send(());
                let _ = held.recv_timeout(Duration::from_secs(60));
                Ok::<(), PgError>(())
            })
            .await
    });
    running.await?;
    Ok((release, holder))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanning_read_waits_for_a_permit_and_a_write_does_not() {
    let db = TestDb::new();
    let mut config = db.config();
    config.max_connections = 4;
    config.read_concurrency = Some(1);
    config.wait_timeout = Duration::from_millis(300);
    let store = PgStore::new(&config).unwrap();
    let (release, holder) = hold_a_read_permit(&store).await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_status_counts_the_reads_waiting_for_a_permit() {
    let db = TestDb::new();
    let mut config = db.config();
    config.read_concurrency = Some(1);
    config.wait_timeout = Duration::from_secs(60);
    let store = PgStore::new(&config).unwrap();
    let (release, holder) = hold_a_read_permit(&store).await.unwrap();
    assert_eq!(store.pool_status().reads_waiting, 0);
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move { store.run_read(|_| Ok::<(), PgError>(())).await })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.pool_status().reads_waiting == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the waiting read is never counted"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(store.pool_status().reads_waiting, 1);
    let gave_up = {
        let store = store.clone();
        tokio::spawn(async move { store.run_read(|_| Ok::<(), PgError>(())).await })
    };
    while store.pool_status().reads_waiting < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the second waiter");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gave_up.abort(); // a caller that goes away while waiting
    let _ = gave_up.await;
    assert_eq!(store.pool_status().reads_waiting, 1, "no longer counted");
    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    waiter.await.unwrap().unwrap();
    assert_eq!(store.pool_status().reads_waiting, 0);
}
