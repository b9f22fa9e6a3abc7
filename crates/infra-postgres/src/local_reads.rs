//! The branch page's read on the request's own thread: tokio-postgres instead of diesel.
//!
//! A diesel query runs on a blocking thread of the pool (`interact`): the request's
//! worker hands it over and is woken when it is done. On the branch page, the hottest
//! read, that hand-over was about a quarter of the service's CPU (futex waits, wakes,
//! `sched_yield`, libpq's poll; bench/analysis.md). Here the query is written and its
//! rows read by the thread that serves the request: each thread that reads keeps one
//! connection of its own, whose connection task runs on that thread's runtime (an actix
//! worker's), and the requests of that thread share it — tokio-postgres pipelines them,
//! so one backend per worker serves every page the worker has in flight.
//!
//! Each connection is opened with the pool's session settings (`statement_timeout`,
//! `application_name`, `jit = off`, see `store::set_session`) given as start-up options,
//! prepares its statements once, and is replaced on the next read once it is closed (a
//! cut connection, a restarted server, or the runtime that ran it gone). Only for
//! `sslmode=disable`: this client has no TLS, and under any other mode the reads stay on
//! the pool, whose libpq does TLS as configured.

use crate::config::{PgConfig, SslMode};
use crate::repo::branches::{BranchedRow, ACTIVE_PAGE_SQL};
use crate::rows::MessageRow;
use domain::model::Message;
use domain::ports::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Row, Statement};

/// Whether the owner owns the chat: the second statement of an empty page.
const OWNS_SQL: &str = "SELECT EXISTS (SELECT 1 FROM chats WHERE id = $1 AND owner = $2)";

/// The per-thread connections of one store.
pub(crate) struct LocalReads {
    config: tokio_postgres::Config,
    /// Bounds the connect and its set-up (the start-up options and two prepares).
    connect_timeout: Duration,
    conns: Mutex<HashMap<ThreadId, Arc<LocalConn>>>,
    /// Held while a connection is opened, so requests arriving together on a thread
    /// with none open one, not one each.
    connecting: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for LocalReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.conns.lock().map_or(0, |c| c.len());
        f.debug_struct("LocalReads")
            .field("connections", &open)
            .finish_non_exhaustive()
    }
}

/// One thread's connection, with its prepared statements.
struct LocalConn {
    client: Client,
    active_page: Statement,
    owns: Statement,
}

impl LocalReads {
    /// The local reads of a store with `config` named `application_name`: `None` when its
    /// effective `sslmode` is not `disable` (this client has no TLS) or when tokio-postgres
    /// does not take its connection string (then the pool serves the reads, as before).
    pub(crate) fn new(config: &PgConfig, application_name: &str) -> Option<Self> {
        let base = config.url.expose();
        let mut pg: tokio_postgres::Config = match base.parse() {
            Ok(c) => c,
            Err(e) => {
                tracing::info!(error = %e, "reads stay on the pool: the database URL is libpq's only");
                return None;
            }
        };
        let has = |key: &str| base.contains(&format!("{key}="));
        let disabled = if has("sslmode") {
            pg.get_ssl_mode() == tokio_postgres::config::SslMode::Disable
        } else {
            config.sslmode == SslMode::Disable
        };
        if !disabled {
            return None;
        }
        pg.ssl_mode(tokio_postgres::config::SslMode::Disable);
        if !has("connect_timeout") {
            pg.connect_timeout(config.connect_timeout.max(Duration::from_secs(2)));
        }
        if !has("keepalives_idle") {
            pg.keepalives(true)
                .keepalives_idle(Duration::from_secs(30))
                .keepalives_interval(Duration::from_secs(10))
                .keepalives_retries(3);
        }
        if !has("tcp_user_timeout") {
            pg.tcp_user_timeout(config.statement_timeout + config.connect_timeout);
        }
        pg.application_name(application_name);
        let statement_ms = config.statement_timeout.as_millis();
        let options = format!("-c statement_timeout={statement_ms} -c jit=off");
        let options = match pg.get_options() {
            Some(given) => format!("{given} {options}"),
            None => options,
        };
        pg.options(&options);
        Some(Self {
            config: pg,
            connect_timeout: config.connect_timeout + Duration::from_secs(1),
            conns: Mutex::default(),
            connecting: tokio::sync::Mutex::new(()),
        })
    }

    /// The open connection of this thread, if any.
    fn open(&self, thread: ThreadId) -> Option<Arc<LocalConn>> {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns
            .get(&thread)
            .filter(|c| !c.client.is_closed())
            .cloned()
    }

    /// This thread's connection, opened if it has none (or a closed one).
    async fn conn(&self) -> Result<Arc<LocalConn>, StoreError> {
        let thread = std::thread::current().id();
        if let Some(c) = self.open(thread) {
            return Ok(c);
        }
        // The wait for another thread's connect counts against this one's bound too.
        let opened = tokio::time::timeout(self.connect_timeout, async {
            let _one = self.connecting.lock().await;
            match self.open(thread) {
                Some(c) => Ok(c),
                None => self.connect().await.map(Arc::new),
            }
        });
        let conn = opened.await.map_err(|_| {
            StoreError::Unavailable(anyhow::anyhow!(
                "no database connection: connecting took over {:?}",
                self.connect_timeout
            ))
        })??;
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|_, c| !c.client.is_closed());
        conns.insert(thread, Arc::clone(&conn));
        Ok(conn)
    }

    async fn connect(&self) -> Result<LocalConn, StoreError> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(|e| {
            StoreError::Unavailable(anyhow::Error::new(e).context("no database connection"))
        })?;
        // On the caller's runtime: on an actix worker, its own thread.
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "a read connection ended");
            }
        });
        let active_page = client.prepare(ACTIVE_PAGE_SQL).await.map_err(map_error)?;
        let owns = client.prepare(OWNS_SQL).await.map_err(map_error)?;
        Ok(LocalConn {
            client,
            active_page,
            owns,
        })
    }

    /// [`crate::repo::branches::owned_active_page`] on this thread's connection, with the
    /// ownership check of an empty page: `None` when `owner` does not own the chat.
    pub(crate) async fn owned_active_page(
        &self,
        chat_id: uuid::Uuid,
        owner: &str,
        after: i32,
        limit: i64,
    ) -> Result<Option<Vec<Message>>, StoreError> {
        let c = self.conn().await?;
        let rows = c
            .client
            .query(&c.active_page, &[&chat_id, &owner, &after, &limit])
            .await
            .map_err(map_error)?;
        if rows.is_empty() {
            let owned: bool = c
                .client
                .query_one(&c.owns, &[&chat_id, &owner])
                .await
                .and_then(|r| r.try_get(0))
                .map_err(map_error)?;
            return Ok(owned.then(Vec::new));
        }
        rows.iter()
            .map(|r| {
                branched(r)
                    .map_err(|e| StoreError::Unknown(anyhow::anyhow!("bad stored data: {e}")))?
                    .into_domain()
                    .map_err(StoreError::from)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// A row of [`ACTIVE_PAGE_SQL`] (`b.*` then `branch_count`), by column name.
fn branched(r: &Row) -> Result<BranchedRow, tokio_postgres::Error> {
    Ok(BranchedRow {
        message: MessageRow {
            id: r.try_get("id")?,
            chat_id: r.try_get("chat_id")?,
            seq: r.try_get("seq")?,
            parent_id: r.try_get("parent_id")?,
            role: r.try_get("role")?,
            content: r.try_get("content")?,
            status: r.try_get("status")?,
            model: r.try_get("model")?,
            prompt_tokens: r.try_get("prompt_tokens")?,
            completion_tokens: r.try_get("completion_tokens")?,
            error: r.try_get("error")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        },
        branch_index: r.try_get("branch_index")?,
        branch_count: r.try_get("branch_count")?,
        prev_id: r.try_get("prev_id")?,
        next_id: r.try_get("next_id")?,
    })
}

/// The server's codes that mean "try again later", as the pool's errors classify them
/// (`errors::TRANSIENT`).
const TRANSIENT: [SqlState; 7] = [
    SqlState::QUERY_CANCELED,
    SqlState::LOCK_NOT_AVAILABLE,
    SqlState::T_R_DEADLOCK_DETECTED,
    SqlState::T_R_SERIALIZATION_FAILURE,
    SqlState::ADMIN_SHUTDOWN,
    SqlState::CANNOT_CONNECT_NOW,
    SqlState::TOO_MANY_CONNECTIONS,
];

/// A read's failure, classified as the pool's are: a lost connection or a transient
/// server condition is `Unavailable`, anything else `Unknown`.
fn map_error(e: tokio_postgres::Error) -> StoreError {
    let transient = e.code().is_some_and(|c| TRANSIENT.contains(c));
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    if transient || io || e.is_closed() {
        return StoreError::Unavailable(anyhow::Error::new(e).context("database unavailable"));
    }
    StoreError::Unknown(anyhow::Error::new(e).context("database error"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_for_sslmode_disable() {
        let mut c = PgConfig::new("postgres://u@h/d");
        assert!(LocalReads::new(&c, "a").is_none(), "prefer is the default");
        c.sslmode = SslMode::Disable;
        assert!(LocalReads::new(&c, "a").is_some());
        c.url = crate::DatabaseUrl::new("postgres://u@h/d?sslmode=require");
        assert!(LocalReads::new(&c, "a").is_none(), "the URL's mode wins");
        c.sslmode = SslMode::Require;
        c.url = crate::DatabaseUrl::new("postgres://u@h/d?sslmode=disable");
        assert!(LocalReads::new(&c, "a").is_some());
        c.url = crate::DatabaseUrl::new("postgres://u@h/d?sslmode=disable&keepalives_count=3");
        assert!(
            LocalReads::new(&c, "a").is_none(),
            "a libpq-only key keeps the reads on the pool"
        );
    }

    #[test]
    fn session_settings_are_start_up_options() {
        let mut c = PgConfig::new("postgres://u@h/d?options=-c%20search_path%3Dx");
        c.sslmode = SslMode::Disable;
        c.statement_timeout = Duration::from_millis(1500);
        let r = LocalReads::new(&c, "svc").expect("disable");
        assert_eq!(r.config.get_application_name(), Some("svc"));
        assert_eq!(
            r.config.get_options(),
            Some("-c search_path=x -c statement_timeout=1500 -c jit=off")
        );
    }
}
