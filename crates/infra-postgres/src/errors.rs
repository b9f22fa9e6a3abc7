//! The adapter's error type and its mapping onto the domain's `StoreError`, classified
//! by what the caller does next: not found, conflict, busy, retry later, or a bug.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use domain::ports::StoreError;

/// How a repository function failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PgError {
    /// The row the operation needs is not there.
    #[error("not found")]
    NotFound,
    /// A concurrent writer got there first.
    #[error("conflicting concurrent change")]
    Conflict,
    /// A reply is being generated in the chat.
    #[error("chat busy")]
    ChatBusy,
    /// The database said no.
    #[error("database error")]
    Db(#[from] DieselError),
    /// A value could not be converted between the domain and its columns.
    #[error("bad data: {0}")]
    Data(String),
}

impl PgError {
    /// Whether the connection itself is gone (so it must not go back to the pool).
    pub(crate) fn is_connection_lost(&self) -> bool {
        matches!(self, PgError::Db(e) if connection_lost(e))
    }
}

/// Fragments of libpq/server messages that mean "the connection is gone".
const LOST_CONNECTION: [&str; 8] = [
    "server closed the connection",
    "terminating connection",
    "could not receive data",
    "could not send data",
    "no connection to the server",
    "connection to server",
    "broken pipe",
    "connection reset",
];

/// Fragments of server messages that mean "try again later".
const TRANSIENT: [&str; 5] = [
    "statement timeout",
    "lock timeout",
    "deadlock detected",
    "the database system is",
    "too many clients",
];

fn message_has(e: &DieselError, fragments: &[&str]) -> bool {
    let text = match e {
        DieselError::DatabaseError(_, info) => info.message().to_lowercase(),
        other => other.to_string().to_lowercase(),
    };
    fragments.iter().any(|f| text.contains(f))
}

fn connection_lost(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        )
        | DieselError::BrokenTransactionManager => true,
        DieselError::DatabaseError(..) => message_has(e, &LOST_CONNECTION),
        _ => false,
    }
}

/// Maps a diesel error onto the domain's classification.
pub(crate) fn map_diesel(e: DieselError) -> StoreError {
    match &e {
        DieselError::NotFound => StoreError::NotFound,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StoreError::Conflict,
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
            StoreError::Unavailable(anyhow::Error::new(e).context("serialization failure"))
        }
        _ if connection_lost(&e) => {
            StoreError::Unavailable(anyhow::Error::new(e).context("database connection lost"))
        }
        _ if message_has(&e, &TRANSIENT) => {
            StoreError::Unavailable(anyhow::Error::new(e).context("database busy"))
        }
        _ => StoreError::Unknown(anyhow::Error::new(e).context("database error")),
    }
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::NotFound => StoreError::NotFound,
            PgError::Conflict => StoreError::Conflict,
            PgError::ChatBusy => StoreError::ChatBusy,
            PgError::Db(e) => map_diesel(e),
            PgError::Data(msg) => StoreError::Unknown(anyhow::anyhow!("bad stored data: {msg}")),
        }
    }
}

/// Maps a pool failure (timeout, connection refused, closed pool) to "unavailable".
pub(crate) fn map_pool(e: deadpool_diesel::PoolError) -> StoreError {
    StoreError::Unavailable(anyhow::Error::msg(e.to_string()).context("no database connection"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Info(&'static str);
    impl diesel::result::DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn db(kind: DatabaseErrorKind, msg: &'static str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(Info(msg)))
    }

    #[test]
    fn classification() {
        assert!(matches!(
            map_diesel(DieselError::NotFound),
            StoreError::NotFound
        ));
        assert!(matches!(
            map_diesel(db(DatabaseErrorKind::UniqueViolation, "dup")),
            StoreError::Conflict
        ));
        assert!(matches!(
            map_diesel(db(
                DatabaseErrorKind::Unknown,
                "canceling statement due to statement timeout"
            )),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map_diesel(db(
                DatabaseErrorKind::Unknown,
                "server closed the connection unexpectedly"
            )),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map_diesel(db(DatabaseErrorKind::CheckViolation, "check")),
            StoreError::Unknown(_)
        ));
        assert!(PgError::Db(db(DatabaseErrorKind::ClosedConnection, "x")).is_connection_lost());
        assert!(!PgError::NotFound.is_connection_lost());
    }
}
