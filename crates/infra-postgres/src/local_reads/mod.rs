//! Reads on the request's own thread: tokio-postgres instead of diesel, for the branch
//! page (`page`) and message search (`search`).
//!
//! A diesel query runs on a blocking thread of the pool (`interact`): the request's
//! worker hands it over and is woken when it is done. On the branch page, the hottest
//! read, that hand-over was about a quarter of the service's CPU (futex waits, wakes,
//! `sched_yield`, libpq's poll; bench/analysis.md). Here the query is written and its
//! rows read by the thread that serves the request: each thread that reads keeps one
//! connection of its own per kind of read, whose connection task runs on that thread's
//! runtime (an actix worker's), and the requests of that thread share it — tokio-postgres
//! pipelines them, so one backend per worker serves every read of that kind the worker
//! has in flight. The kinds have their own connections so that a search (milliseconds)
//! never waits behind, nor in front of, a branch page, and each has its own session
//! settings.
//!
//! Each connection is opened with the pool's session settings (`statement_timeout`,
//! `application_name`, `jit = off`, see `store::set_session`) and its kind's own
//! ([`Prepared::OPTIONS`]) given as start-up options, prepares its statements once, and
//! is replaced on the next read once it is closed (a cut connection, a restarted server,
//! or the runtime that ran it gone). A connection is shared by the thread's requests, so
//! it never holds a transaction: each read is statements that stand alone. Only for
//! `sslmode=disable`: this client has no TLS, and under any other mode the reads stay on
//! the pool, whose libpq does TLS as configured.

mod page;
mod search;

pub(crate) use page::Pages;
pub(crate) use search::Searches;

use crate::config::{PgConfig, SslMode};
use crate::rows::MessageRow;
use domain::ports::StoreError;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Row};

/// A kind of read on the request's thread: its statements, prepared once per
/// connection, and its session settings.
pub(crate) trait Prepared: Sized + Send + Sync + 'static {
    /// Start-up options of this kind's connections, after the pool's (each ` -c k=v`).
    const OPTIONS: &'static str;

    /// Prepares this kind's statements on a new connection.
    fn prepare(client: &Client)
        -> impl Future<Output = Result<Self, tokio_postgres::Error>> + Send;
}

/// Both kinds of reads of one store.
#[derive(Debug)]
pub(crate) struct Local {
    /// Branch pages.
    pub pages: LocalReads<Pages>,
    /// Message searches.
    pub searches: LocalReads<Searches>,
}

impl Local {
    /// The local reads of a store with `config` named `application_name`: `None` when its
    /// effective `sslmode` is not `disable` (this client has no TLS) or when tokio-postgres
    /// does not take its connection string (then the pool serves the reads, as before).
    pub(crate) fn new(config: &PgConfig, application_name: &str) -> Option<Self> {
        Some(Self {
            pages: LocalReads::new(config, application_name)?,
            searches: LocalReads::new(config, application_name)?,
        })
    }
}

/// The per-thread connections of one kind of read of one store.
pub(crate) struct LocalReads<S> {
    config: tokio_postgres::Config,
    /// Bounds the connect and its set-up (the start-up options and the prepares).
    connect_timeout: Duration,
    conns: Mutex<HashMap<ThreadId, Arc<LocalConn<S>>>>,
    /// Held while a connection is opened, so requests arriving together on a thread
    /// with none open one, not one each.
    connecting: tokio::sync::Mutex<()>,
}

impl<S> std::fmt::Debug for LocalReads<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.conns.lock().map_or(0, |c| c.len());
        f.debug_struct("LocalReads")
            .field("connections", &open)
            .finish_non_exhaustive()
    }
}

/// One thread's connection, with its prepared statements.
pub(crate) struct LocalConn<S> {
    pub client: Client,
    pub statements: S,
}

impl<S: Prepared> LocalReads<S> {
    /// See [`Local::new`].
    fn new(config: &PgConfig, application_name: &str) -> Option<Self> {
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
        let options = format!(
            "-c statement_timeout={statement_ms} -c jit=off{}",
            S::OPTIONS
        );
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
    fn open(&self, thread: ThreadId) -> Option<Arc<LocalConn<S>>> {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns
            .get(&thread)
            .filter(|c| !c.client.is_closed())
            .cloned()
    }

    /// This thread's connection, opened if it has none (or a closed one).
    pub(crate) async fn conn(&self) -> Result<Arc<LocalConn<S>>, StoreError> {
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

    async fn connect(&self) -> Result<LocalConn<S>, StoreError> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(|e| {
            StoreError::Unavailable(anyhow::Error::new(e).context("no database connection"))
        })?;
        // On the caller's runtime: on an actix worker, its own thread.
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "a read connection ended");
            }
        });
        let statements = S::prepare(&client).await.map_err(map_error)?;
        Ok(LocalConn { client, statements })
    }
}

/// The `messages` columns of a row (`m.*` or the same names), by column name.
fn message_row(r: &Row) -> Result<MessageRow, tokio_postgres::Error> {
    Ok(MessageRow {
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
    })
}

/// A row that does not decode: stored data this code cannot read.
fn bad_row(e: tokio_postgres::Error) -> StoreError {
    StoreError::Unknown(anyhow::anyhow!("bad stored data: {e}"))
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
        assert!(Local::new(&c, "a").is_none(), "prefer is the default");
        c.sslmode = SslMode::Disable;
        assert!(Local::new(&c, "a").is_some());
        c.url = crate::DatabaseUrl::new("postgres://u@h/d?sslmode=require");
        assert!(Local::new(&c, "a").is_none(), "the URL's mode wins");
        c.sslmode = SslMode::Require;
        c.url = crate::DatabaseUrl::new("postgres://u@h/d?sslmode=disable");
        assert!(Local::new(&c, "a").is_some());
        c.url = crate::DatabaseUrl::new("postgres://u@h/d?sslmode=disable&keepalives_count=3");
        assert!(
            Local::new(&c, "a").is_none(),
            "a libpq-only key keeps the reads on the pool"
        );
    }

    #[test]
    fn session_settings_are_start_up_options() {
        let mut c = PgConfig::new("postgres://u@h/d?options=-c%20search_path%3Dx");
        c.sslmode = SslMode::Disable;
        c.statement_timeout = Duration::from_millis(1500);
        let r = Local::new(&c, "svc").expect("disable");
        assert_eq!(r.pages.config.get_application_name(), Some("svc"));
        assert_eq!(r.searches.config.get_application_name(), Some("svc"));
        assert_eq!(
            r.pages.config.get_options(),
            Some("-c search_path=x -c statement_timeout=1500 -c jit=off")
        );
        assert_eq!(
            r.searches.config.get_options(),
            Some(
                "-c search_path=x -c statement_timeout=1500 -c jit=off \
                 -c enable_sort=off -c default_transaction_read_only=on"
            )
        );
    }
}
