//! The embedded SQL migrations (top-level `migrations/`), applied under a Postgres
//! advisory lock so replicas starting together do not race, and their status for `/readyz`.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// The migrations compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Key of the session-level advisory lock held while migrating (`'migrate'` in ASCII).
const MIGRATION_LOCK: i64 = 0x006d_6967_7261_7465;

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The database could not be reached or refused a statement.
    #[error("database error while migrating")]
    Database(#[from] diesel::result::Error),
    /// Connecting failed.
    #[error("cannot connect to the database to migrate")]
    Connect(#[from] diesel::ConnectionError),
    /// A migration failed (and was rolled back).
    #[error("migration failed: {0}")]
    Migration(String),
}

/// Which embedded migrations the database has applied, by version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Applied versions (of the embedded ones), oldest first.
    pub applied: Vec<String>,
    /// Versions not applied yet, oldest first; empty when the schema is current.
    pub pending: Vec<String>,
}

impl MigrationStatus {
    /// Whether every embedded migration is applied.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
}

/// Applies the pending migrations on `conn`, holding `pg_advisory_lock` meanwhile (a
/// replica starting at the same time waits, then finds nothing to do). Statements run
/// without `statement_timeout` (building an index on a big table takes a while); the
/// connection's own setting is restored afterwards. Returns the versions applied.
pub fn run_migrations(conn: &mut PgConnection) -> Result<Vec<String>, MigrationError> {
    let saved = diesel::sql_query("SELECT current_setting('statement_timeout') AS value")
        .get_result::<Setting>(conn)?
        .value
        .unwrap_or_else(|| "0".to_owned());
    diesel::sql_query("SET statement_timeout = 0").execute(conn)?;
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(conn)?;
    let result = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
        .map_err(|e| MigrationError::Migration(e.to_string()));
    let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(conn);
    let restored = diesel::sql_query("SELECT set_config('statement_timeout', $1, false)")
        .bind::<Text, _>(saved)
        .execute(conn);
    let applied = result?;
    unlocked?;
    restored?;
    for v in &applied {
        tracing::info!(version = %v, "applied database migration");
    }
    Ok(applied)
}

/// The versions of the embedded migrations, oldest first.
fn embedded_versions() -> Result<Vec<String>, MigrationError> {
    let mut versions =
        diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
            .map_err(|e| MigrationError::Migration(e.to_string()))?
            .iter()
            .map(|m| m.name().version().to_string())
            .collect::<Vec<_>>();
    versions.sort();
    Ok(versions)
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

/// Which embedded migrations `conn`'s database has applied. Read-only: a database never
/// migrated reports every migration pending.
pub fn migration_status(conn: &mut PgConnection) -> Result<MigrationStatus, MigrationError> {
    let table =
        diesel::sql_query("SELECT to_regclass('__diesel_schema_migrations')::text AS value")
            .get_result::<Setting>(conn)?;
    let done: Vec<String> = if table.value.is_some() {
        diesel::sql_query("SELECT version::text AS version FROM __diesel_schema_migrations")
            .load::<Version>(conn)?
            .into_iter()
            .map(|v| v.version)
            .collect()
    } else {
        Vec::new()
    };
    let (applied, pending) = embedded_versions()?
        .into_iter()
        .partition(|v| done.contains(v));
    Ok(MigrationStatus { applied, pending })
}
