//! The store's own failures and how they map onto [`lead_core::Error`].
//!
//! Messages name the category and, at most, ids; never SQL text or stored
//! values.

use lead_core::Error;

/// Everything that can go wrong inside the store.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// A rule of the contract (conflict, unknown lead or rep).
    #[error(transparent)]
    Domain(#[from] Error),
    /// The driver or the database failed.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// Applying the embedded migrations failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored JSON document does not parse (or a value does not serialize).
    #[error("{what} is not valid JSON for its type: {source}")]
    Json {
        what: &'static str,
        source: serde_json::Error,
    },
    /// A stored column holds a value outside its type's range.
    #[error("stored {0} is not valid")]
    Corrupt(&'static str),
}

impl From<lead_store_sql::codec::CodecError> for StoreError {
    fn from(err: lead_store_sql::codec::CodecError) -> Self {
        match err {
            lead_store_sql::codec::CodecError::Json { what, source } => {
                StoreError::Json { what, source }
            }
            lead_store_sql::codec::CodecError::Corrupt(what) => StoreError::Corrupt(what),
        }
    }
}

/// SQLite primary result codes that mean "the database cannot be used right
/// now": BUSY, LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL.
const TEMPORARY_CODES: [u32; 6] = [5, 6, 10, 13, 14, 15];

fn from_sqlx(err: sqlx::Error) -> Error {
    match &err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => Error::Unavailable(format!("SQLite store: {err}")),
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                return Error::Conflict(format!("SQLite store: {}", db.message()));
            }
            let primary = db
                .code()
                .and_then(|code| code.parse::<u32>().ok())
                .map(|code| code & 0xff);
            if primary.is_some_and(|code| TEMPORARY_CODES.contains(&code)) {
                Error::Unavailable(format!("SQLite store: {}", db.message()))
            } else {
                Error::Internal(format!("SQLite store: {}", db.message()))
            }
        }
        _ => Error::Internal(format!("SQLite store: {err}")),
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Domain(err) => err,
            StoreError::Sqlx(err) => from_sqlx(err),
            StoreError::Migrate(
                sqlx::migrate::MigrateError::Execute(err)
                | sqlx::migrate::MigrateError::ExecuteMigration(err, _),
            ) => from_sqlx(err),
            StoreError::Migrate(err) => Error::Internal(format!("SQLite migrations: {err}")),
            err @ (StoreError::Json { .. } | StoreError::Corrupt(_)) => {
                Error::Internal(format!("SQLite store: {err}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_failures_are_temporary() {
        for err in [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed] {
            let mapped = Error::from(StoreError::from(err));
            assert!(mapped.is_temporary(), "{mapped:?}");
        }
    }

    #[test]
    fn bad_stored_json_is_internal() {
        let source = serde_json::from_str::<u8>("x").expect_err("not a number");
        let mapped = Error::from(StoreError::Json {
            what: "lead",
            source,
        });
        assert!(matches!(mapped, Error::Internal(_)), "{mapped:?}");
    }
}
