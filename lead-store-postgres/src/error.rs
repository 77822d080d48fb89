//! The store's own failures and how they map onto [`lead_core::Error`].
//!
//! Classified once, here. Messages name the category, the SQLSTATE and, at
//! most, ids or constraint names; never SQL text, stored values or the
//! connection URL.

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
    /// The first connection was not made within the connect timeout.
    #[error("no connection within the connect timeout")]
    ConnectTimedOut,
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

/// What a SQLSTATE means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Another writer won: retrying the operation may succeed.
    Conflict,
    /// The database cannot serve us right now.
    Unavailable,
    /// Anything else: a bug or bad data.
    Internal,
}

/// Classifies a SQLSTATE (<https://www.postgresql.org/docs/current/errcodes-appendix.html>).
fn classify(code: &str) -> Class {
    match code {
        // unique_violation, serialization_failure, deadlock_detected
        "23505" | "40001" | "40P01" => Class::Conflict,
        // admin_shutdown, crash_shutdown, cannot_connect_now,
        // query_canceled (statement timeout), database_dropped,
        // idle_in_transaction_session_timeout
        "57P01" | "57P02" | "57P03" | "57P04" | "57014" | "25P03" => Class::Unavailable,
        // connection_exception (08***), insufficient_resources (53***:
        // disk full, out of memory, too many connections),
        // operator_intervention is handled above, system errors (58***)
        _ if code.starts_with("08") || code.starts_with("53") || code.starts_with("58") => {
            Class::Unavailable
        }
        _ => Class::Internal,
    }
}

fn from_sqlx(err: sqlx::Error) -> Error {
    match &err {
        sqlx::Error::PoolTimedOut => {
            Error::Unavailable("PostgreSQL store: no connection available in time".into())
        }
        sqlx::Error::PoolClosed => {
            Error::Unavailable("PostgreSQL store: the pool is closed".into())
        }
        sqlx::Error::Io(io) => Error::Unavailable(format!(
            "PostgreSQL store: connection failed ({:?})",
            io.kind()
        )),
        sqlx::Error::Tls(_) => Error::Unavailable("PostgreSQL store: TLS failure".into()),
        sqlx::Error::WorkerCrashed | sqlx::Error::BeginFailed => {
            Error::Unavailable("PostgreSQL store: the connection broke".into())
        }
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let constraint = db
                .constraint()
                .map(|c| format!(" on {c}"))
                .unwrap_or_default();
            match classify(&code) {
                Class::Conflict => {
                    Error::Conflict(format!("PostgreSQL store: SQLSTATE {code}{constraint}"))
                }
                Class::Unavailable => {
                    Error::Unavailable(format!("PostgreSQL store: SQLSTATE {code}"))
                }
                Class::Internal => {
                    Error::Internal(format!("PostgreSQL store: SQLSTATE {code}{constraint}"))
                }
            }
        }
        sqlx::Error::Configuration(_) => Error::invalid(
            "database_url",
            "invalid_database_url",
            "the PostgreSQL connection settings are not valid",
        ),
        sqlx::Error::Protocol(_) => {
            Error::Unavailable("PostgreSQL store: unexpected answer on the connection".into())
        }
        _ => Error::Internal(format!("PostgreSQL store: driver error ({})", kind(&err))),
    }
}

/// A short name for a driver error that carries no data.
fn kind(err: &sqlx::Error) -> &'static str {
    match err {
        sqlx::Error::RowNotFound => "row not found",
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => "decode",
        sqlx::Error::Encode(_) => "encode",
        sqlx::Error::TypeNotFound { .. } => "type not found",
        sqlx::Error::ColumnNotFound(_) | sqlx::Error::ColumnIndexOutOfBounds { .. } => "column",
        _ => "other",
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
            StoreError::Migrate(err) => Error::Internal(format!("PostgreSQL migrations: {err}")),
            StoreError::ConnectTimedOut => Error::Unavailable(format!("PostgreSQL store: {err}")),
            err @ (StoreError::Json { .. } | StoreError::Corrupt(_)) => {
                Error::Internal(format!("PostgreSQL store: {err}"))
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
    fn sqlstates_are_classified_by_meaning() {
        for code in ["23505", "40001", "40P01"] {
            assert_eq!(classify(code), Class::Conflict, "{code}");
        }
        for code in ["57P01", "08006", "08001", "53300", "57014"] {
            assert_eq!(classify(code), Class::Unavailable, "{code}");
        }
        for code in ["42P01", "22P02", "23503", ""] {
            assert_eq!(classify(code), Class::Internal, "{code}");
        }
    }

    #[test]
    fn io_errors_are_unavailable_and_say_nothing_about_the_address() {
        let io = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "postgres://user:secret@db:5432/x",
        );
        let mapped = Error::from(StoreError::from(sqlx::Error::Io(io)));
        assert!(matches!(mapped, Error::Unavailable(_)), "{mapped:?}");
        assert!(!mapped.to_string().contains("secret"), "{mapped}");
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
