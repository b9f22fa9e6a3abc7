//! Test support: a fresh database per test, cloned from a template migrated once.
//!
//! The server is `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! the user must be allowed to create databases. The template is named after a hash of
//! the migration files, so a schema change builds a new one; it is built under an
//! advisory lock, so test processes running at once share it safely. Each [`TestDb`]
//! drops its database when dropped (`DROP DATABASE … WITH (FORCE)`). If no server
//! answers, [`TestDb::new`] panics at once saying how to start one: tests are never skipped.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

pub mod proxy;
mod store;

pub use store::{append_to_outbox, backend_pid_held, session_setting, TestStore};

use crate::config::PgConfig;
use crate::store::PgStore;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The server tests use when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Key of the advisory lock held while a template is checked or built (`'tpl'`).
const TEMPLATE_LOCK: i64 = 0x0074_706c;

/// The server URL tests run against.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned())
}

/// `url` with its database name replaced by `db` (URL form only).
pub fn with_database(url: &str, db: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{db}{query}", &base[..host_end])
}

/// `url` without its password, for messages.
fn redacted(url: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    match (url[scheme_end..].find(':'), url[scheme_end..].find('@')) {
        (Some(c), Some(a)) if c < a => {
            format!("{}:***{}", &url[..scheme_end + c], &url[scheme_end + a..])
        }
        _ => url.to_owned(),
    }
}

fn admin_connection(url: &str) -> PgConnection {
    let with_timeout = if url.contains("connect_timeout=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&connect_timeout=3")
    } else {
        format!("{url}?connect_timeout=3")
    };
    PgConnection::establish(&with_timeout).unwrap_or_else(|e| {
        panic!(
            "cannot reach the PostgreSQL test server at {} ({e}).\n\
             Start it (for example `pg_ctlcluster --skip-systemctl-redirect 15 main start`) \
             or point TEST_DATABASE_URL at one whose user may create databases.",
            redacted(url)
        )
    })
}

fn migrations_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations")
}

/// A hash of every migration file's path and content.
fn schema_hash() -> String {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let root = migrations_dir();
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut h = Sha256::new();
    for f in files {
        h.update(
            f.strip_prefix(&root)
                .unwrap_or(&f)
                .to_string_lossy()
                .as_bytes(),
        );
        h.update(std::fs::read(&f).unwrap_or_default());
    }
    hex::encode(&h.finalize()[..6])
}

#[derive(QueryableByName)]
struct IsTemplate {
    #[diesel(sql_type = Bool)]
    datistemplate: bool,
}

/// Makes sure the migrated template exists; returns its name. Once per process.
fn template(server: &str) -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let name = format!("chat_tpl_{}", schema_hash());
        let mut admin = admin_connection(server);
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<BigInt, _>(TEMPLATE_LOCK)
            .execute(&mut admin)
            .expect("locking the template");
        let state = diesel::sql_query("SELECT datistemplate FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(&name)
            .get_result::<IsTemplate>(&mut admin)
            .optional()
            .expect("looking for the template");
        if !state.as_ref().is_some_and(|s| s.datistemplate) {
            if state.is_some() {
                // Left half-built by a process that died: start again.
                drop_database(&mut admin, &name);
            }
            diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
                .execute(&mut admin)
                .expect("creating the template");
            {
                let mut conn = admin_connection(&with_database(server, &name));
                crate::migrations::run_migrations(&mut conn).expect("migrating the template");
            }
            diesel::sql_query(format!("ALTER DATABASE \"{name}\" IS_TEMPLATE true"))
                .execute(&mut admin)
                .expect("marking the template");
        }
        diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<BigInt, _>(TEMPLATE_LOCK)
            .execute(&mut admin)
            .expect("unlocking the template");
        name
    })
}

fn drop_database(admin: &mut PgConnection, name: &str) {
    diesel::sql_query(format!("ALTER DATABASE \"{name}\" IS_TEMPLATE false"))
        .execute(admin)
        .ok();
    diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(admin)
        .expect("dropping a database");
}

/// A database of its own for one test, migrated, dropped when this is dropped.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    url: String,
    server: String,
}

impl TestDb {
    /// Creates the database from the migrated template (building that first if needed).
    /// Panics with instructions if no server answers.
    pub fn new() -> Self {
        let server = server_url();
        let template = template(&server);
        let name = format!("chat_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = admin_connection(&server);
        let sql = format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"");
        let mut attempt = 0;
        loop {
            match diesel::sql_query(&sql).execute(&mut admin) {
                Ok(_) => break,
                // Another session is briefly connected to the template: try again.
                Err(e) if attempt < 50 && e.to_string().contains("being accessed") => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("creating test database {name}: {e}"),
            }
        }
        let url = with_database(&server, &name);
        Self { name, url, server }
    }

    /// An empty database (not migrated), for migration tests.
    pub fn empty() -> Self {
        let server = server_url();
        let name = format!("chat_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = admin_connection(&server);
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
        let url = with_database(&server, &name);
        Self { name, url, server }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Adapter settings for it: a small pool, short timeouts.
    pub fn config(&self) -> PgConfig {
        let mut c = PgConfig::new(self.url.clone());
        c.max_connections = 4;
        c.wait_timeout = Duration::from_secs(5);
        c.statement_timeout = Duration::from_secs(10);
        c.application_name = "chat-service-test".into();
        // Local PostgreSQL without TLS, as the bench runs it: the branch page reads on
        // the request's own thread (`local_reads`); `ssl.rs` sets its modes itself.
        c.sslmode = crate::SslMode::Disable;
        c
    }

    /// A store on it with [`TestDb::config`].
    pub fn store(&self) -> PgStore {
        PgStore::new(&self.config()).expect("building the test store")
    }

    /// A plain connection to it, for checks the ports do not offer.
    pub fn connect(&self) -> PgConnection {
        admin_connection(&self.url)
    }
}

impl Default for TestDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let result = PgConnection::establish(&self.server).and_then(|mut admin| {
            diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
        });
        if let Err(e) = result {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(redacted("postgres://u:secret@h/d"), "postgres://u:***@h/d");
    }
}
