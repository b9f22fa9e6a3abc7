//! Outbox wake-ups: `LISTEN outbox` on a dedicated connection in its own thread,
//! turned into a stream that yields when events were committed.

use crate::store::PgStore;
use diesel::prelude::*;
use futures::channel::mpsc;
use futures::stream::{BoxStream, StreamExt};
use std::time::{Duration, Instant};

/// The channel the outbox trigger notifies on every insert.
pub const OUTBOX_CHANNEL: &str = "outbox";

/// How often the listening thread looks for notifications that arrived. libpq's
/// `PQnotifies` does not block and diesel does not expose the socket to wait on.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// How often the idle listening connection is checked with a query.
const CHECK_EVERY: Duration = Duration::from_secs(30);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl PgStore {
    /// A stream that yields `()` soon after events are committed to the outbox.
    ///
    /// It yields once at start and once after every reconnection (notifications may
    /// have been missed meanwhile), and folds bursts into one item: after each item,
    /// claim until the outbox is empty. Runs on a dedicated connection (outside the
    /// pool) in its own thread, reconnecting with backoff while the database is down;
    /// the thread stops when the stream is dropped. It is a hint: a relay still polls
    /// now and then.
    pub fn outbox_wakeups(&self) -> BoxStream<'static, ()> {
        let url = self.config().connection_url();
        let (tx, rx) = mpsc::channel(1);
        let spawned = std::thread::Builder::new()
            .name("outbox-listen".into())
            .spawn(move || listen_forever(&url, tx));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the outbox listener thread");
        }
        rx.boxed()
    }
}

/// Queues a wake-up; false once nobody listens any more.
fn wake(tx: &mut mpsc::Sender<()>) -> bool {
    match tx.try_send(()) {
        Ok(()) => true,
        Err(e) => e.is_full(),
    }
}

fn listen_forever(url: &str, mut tx: mpsc::Sender<()>) {
    let mut backoff = Duration::from_millis(100);
    while !tx.is_closed() {
        match connect(url) {
            Ok(mut conn) => {
                backoff = Duration::from_millis(100);
                if !wake(&mut tx) {
                    return;
                }
                match listen(&mut conn, &mut tx) {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(error = %e, "outbox listener lost its connection"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "outbox listener cannot connect"),
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn connect(url: &str) -> Result<PgConnection, anyhow::Error> {
    let mut conn = PgConnection::establish(url)?;
    diesel::sql_query(format!("LISTEN {OUTBOX_CHANNEL}")).execute(&mut conn)?;
    Ok(conn)
}

/// Forwards notifications until the receiver is gone (`Ok`) or the connection fails.
fn listen(conn: &mut PgConnection, tx: &mut mpsc::Sender<()>) -> QueryResult<()> {
    let mut checked = Instant::now();
    loop {
        let mut arrived = false;
        for n in conn.notifications_iter() {
            n?;
            arrived = true;
        }
        if (arrived && !wake(tx)) || tx.is_closed() {
            return Ok(());
        }
        if checked.elapsed() >= CHECK_EVERY {
            diesel::sql_query("SELECT 1").execute(conn)?;
            checked = Instant::now();
        }
        std::thread::sleep(POLL_EVERY);
    }
}
