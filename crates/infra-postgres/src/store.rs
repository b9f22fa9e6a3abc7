//! `PgStore`: the connection pool, built once, and the one way every query reaches it
//! (a small `interact()` closure, failures classified for the caller).

use crate::config::PgConfig;
use crate::errors::{map_pool, PgError};
use crate::local_reads::Local;
use crate::migrations::{self, MigrationStatus};
use deadpool_diesel::postgres::{Hook, HookError, Manager, Object, Pool, Runtime};
use deadpool_diesel::{ManagerConfig, RecyclingMethod};
use diesel::prelude::*;
use diesel::sql_types::Text;
use domain::ports::StoreError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// PostgreSQL storage: implements `ChatRepository`, `MessageRepository` and `Outbox`.
///
/// Cheap to clone (the pool is shared). Build one for requests ([`PgStore::new`]) and
/// one for the outbox relay ([`PgStore::relay`]) so background work cannot starve requests.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    config: Arc<PgConfig>,
    /// The relay's pool: every connection commits without waiting for the WAL flush and
    /// plans without nested loops (see [`PgStore::relay`]).
    relay_session: bool,
    /// Permits of the scanning reads ([`PgStore::run_read`], [`PgConfig::read_limit`]).
    reads: Arc<tokio::sync::Semaphore>,
    /// Scanning reads waiting for a permit now.
    reads_waiting: Arc<std::sync::atomic::AtomicUsize>,
    /// The branch page's and message search's reads on the request's own thread
    /// (`sslmode=disable` only; not the relay's store).
    local: Option<Arc<Local>>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PgStore")
            .field("application_name", &self.config.application_name)
            .field("max_size", &status.max_size)
            .field("size", &status.size)
            .field("available", &status.available)
            .finish_non_exhaustive()
    }
}

/// A pool's occupancy, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Largest number of connections.
    pub max_size: usize,
    /// Connections checked out now.
    pub in_use: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
    /// Scanning reads waiting for a read permit ([`PgStore::run_read`]).
    pub reads_waiting: usize,
}

impl PgStore {
    /// The pool's occupancy now.
    pub fn pool_status(&self) -> PoolStatus {
        let s = self.pool.status();
        PoolStatus {
            max_size: s.max_size,
            in_use: s.size.saturating_sub(s.available),
            waiting: s.waiting,
            reads_waiting: self
                .reads_waiting
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The request store: a pool of up to `config.max_connections`. Connections are
    /// opened on first use, so this does not touch the database.
    pub fn new(config: &PgConfig) -> Result<Self, StoreError> {
        Self::with_pool_size(config, config.max_connections, &config.application_name)
    }

    /// The outbox relay's store: its own pool of `config.relay_max_connections`, with
    /// `application_name` suffixed `-relay`.
    ///
    /// Its connections commit without waiting for the WAL flush, set once when opened
    /// instead of per transaction (`synchronous_commit = off`, see
    /// `repo::outbox::relaxed_commit`: a lease or mark lost in a crash only republishes,
    /// at least once), so a mark, a release or a failure is one statement without a
    /// transaction block. Use it for the outbox only.
    pub fn relay(config: &PgConfig) -> Result<Self, StoreError> {
        let name = format!("{}-relay", config.application_name);
        Self::build(config, config.relay_max_connections, &name, true)
    }

    /// A store with a pool of `max_size` connections named `application_name`.
    pub fn with_pool_size(
        config: &PgConfig,
        max_size: usize,
        application_name: &str,
    ) -> Result<Self, StoreError> {
        Self::build(config, max_size, application_name, false)
    }

    fn build(
        config: &PgConfig,
        max_size: usize,
        application_name: &str,
        relay_session: bool,
    ) -> Result<Self, StoreError> {
        let mut config = config.clone();
        config.application_name = application_name.to_owned();
        let manager = Manager::from_config(
            config.connection_url(),
            Runtime::Tokio1,
            ManagerConfig {
                // No test query per checkout (a round trip each); a connection found
                // broken is dropped instead, with the idle ones (see `run`).
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let statement_ms = config.statement_timeout.as_millis().to_string();
        let app = config.application_name.clone();
        let pool = Pool::builder(manager)
            .max_size(max_size.max(1))
            // The connection returned last is handed out next: at low concurrency a few
            // hot connections serve every request, and each of them settles its prepared
            // statements on their generic plans after five executions (PostgreSQL plans
            // the first five with their values). First-in-first-out rotated a c=1 load
            // over every connection the pool had opened, each planning the recursive
            // branch reads again for its first five (0.5–1.2 ms instead of 0.2 ms).
            .queue_mode(deadpool::managed::QueueMode::Lifo)
            .wait_timeout(Some(config.wait_timeout))
            .create_timeout(Some(config.connect_timeout + Duration::from_secs(1)))
            .recycle_timeout(Some(config.connect_timeout))
            .runtime(Runtime::Tokio1)
            .post_create(Hook::async_fn(move |conn, _| {
                let statement_ms = statement_ms.clone();
                let app = app.clone();
                Box::pin(async move {
                    conn.interact(move |c| set_session(c, &statement_ms, &app, relay_session))
                        .await
                        .map_err(|e| HookError::message(format!("session setup: {e}")))?
                        .map_err(|e| HookError::Backend(deadpool_diesel::Error::Ping(e)))
                })
            }))
            .build()
            .map_err(|e| StoreError::Unknown(anyhow::anyhow!("building the pool: {e}")))?;
        let reads = Arc::new(tokio::sync::Semaphore::new(config.read_limit(max_size)));
        let local = if relay_session {
            None
        } else {
            Local::new(&config, application_name).map(Arc::new)
        };
        Ok(Self {
            pool,
            config: Arc::new(config),
            relay_session,
            reads,
            reads_waiting: Arc::default(),
            local,
        })
    }

    /// Whether this is the relay's store, whose sessions are set up for the outbox
    /// (see [`PgStore::relay`]).
    pub(crate) fn relay_session(&self) -> bool {
        self.relay_session
    }

    /// The reads on the request's own thread, when this store has them.
    pub(crate) fn local_reads(&self) -> Option<&Local> {
        self.local.as_deref()
    }

    /// This store with its reads all on the pool, as under a TLS `sslmode` (for tests
    /// that compare the two ways of reading).
    #[cfg(feature = "testing")]
    pub fn without_local_reads(&self) -> Self {
        Self {
            local: None,
            ..self.clone()
        }
    }

    /// Whether the branch page and message search read on the request's own thread (see
    /// `local_reads`).
    pub fn has_local_reads(&self) -> bool {
        self.local.is_some()
    }

    /// The settings this store was built with.
    pub fn config(&self) -> &PgConfig {
        &self.config
    }

    /// Runs `f` on a pooled connection in a blocking thread. Pool timeout, refused
    /// connection or lost connection → `Unavailable`; a panic in `f` → `Unknown`.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, PgError> + Send + 'static,
        T: Send + 'static,
    {
        let conn = self.pool.get().await.map_err(map_pool)?;
        match conn.interact(f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if e.is_connection_lost() {
                    // This connection is dead, and the idle ones most likely too (the
                    // server restarted or the network was cut): drop them all so the
                    // next callers get fresh connections instead of one failure each.
                    drop(Object::take(conn));
                    self.pool.retain(|_, _| false);
                    tracing::warn!(error = ?e, "database connection lost; pool emptied");
                }
                Err(e.into())
            }
            Err(e) => Err(StoreError::Unknown(anyhow::anyhow!(
                "a database task failed: {e}"
            ))),
        }
    }

    /// [`PgStore::run`] for a read that scans (a chat list, a search, a branch page, an
    /// export page): it waits for one of the pool's read permits first
    /// ([`PgConfig::read_limit`]), at most `wait_timeout` like a wait for a connection
    /// ("unavailable" after it), so such reads run a few at a time in arrival order and
    /// the rest of the pool stays free for writes.
    pub(crate) async fn run_read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, PgError> + Send + 'static,
        T: Send + 'static,
    {
        let wait = self.config.wait_timeout;
        let permit = {
            // Counted while waiting, also when the caller gives up (the future dropped).
            let _waiting = Waiting::enter(&self.reads_waiting);
            tokio::time::timeout(wait, self.reads.acquire()).await
        };
        let permit = permit
            .map_err(|_| {
                StoreError::Unavailable(anyhow::anyhow!(
                    "no database connection: every read permit stayed taken for {wait:?}"
                ))
            })?
            .map_err(|_| StoreError::Unavailable(anyhow::anyhow!("the store is closed")))?;
        let out = self.run(f).await;
        drop(permit);
        out
    }

    /// Checks the database answers (`SELECT 1`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| {
            diesel::sql_query("SELECT 1").execute(c)?;
            Ok(())
        })
        .await
    }

    /// For `/readyz`: the database answers and reports which embedded migrations it has
    /// applied. Ready when this is `Ok` and [`MigrationStatus::is_current`].
    pub async fn readiness(&self) -> Result<MigrationStatus, StoreError> {
        self.run(|c| migrations::migration_status(c).map_err(migration_to_pg))
            .await
    }

    /// Applies pending migrations on a dedicated connection (not the pool's), under the
    /// advisory lock; returns the versions applied. Call once at start-up, before
    /// serving (`chat-service migrate` calls only this).
    pub async fn run_migrations(&self) -> Result<Vec<String>, StoreError> {
        let url = self.config.connection_url();
        tokio::task::spawn_blocking(move || {
            let mut conn = PgConnection::establish(&url).map_err(|e| {
                StoreError::Unavailable(anyhow::Error::new(e).context("connecting to migrate"))
            })?;
            migrations::run_migrations(&mut conn).map_err(|e| match e {
                migrations::MigrationError::Database(d) => PgError::Db(d).into(),
                other => StoreError::Unknown(anyhow::Error::new(other)),
            })
        })
        .await
        .map_err(|e| StoreError::Unknown(anyhow::anyhow!("migration task failed: {e}")))?
    }
}

fn migration_to_pg(e: migrations::MigrationError) -> PgError {
    match e {
        migrations::MigrationError::Database(d) => PgError::Db(d),
        other => PgError::Data(other.to_string()),
    }
}

/// Per-connection settings, applied once when the pool opens a connection (one
/// statement; the relay's settings too for its pool). `jit` is off: every statement
/// here is a short indexed read or write, and a plan whose cost an `enable_*` setting
/// inflates (the search's `enable_sort = off`, the claim's `enable_nestloop = off`)
/// would otherwise pass `jit_above_cost` and compile at every execution — 150–260 ms
/// measured for a rare word's search on the bench's seed, against 3 ms without.
fn set_session(
    conn: &mut PgConnection,
    statement_ms: &str,
    app: &str,
    relay: bool,
) -> QueryResult<()> {
    let relaxed = if relay { "off" } else { "" };
    diesel::sql_query(
        "SELECT set_config('statement_timeout', $1, false), \
                set_config('application_name', $2, false), set_config('jit', 'off', false), \
                CASE WHEN $3 <> '' THEN set_config('synchronous_commit', $3, false) END",
    )
    .bind::<Text, _>(statement_ms)
    .bind::<Text, _>(app)
    .bind::<Text, _>(relaxed)
    .execute(conn)?;
    Ok(())
}

/// One caller counted in a waiting count for as long as it lives.
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(all(test, feature = "testing"))]
mod read_tests;
