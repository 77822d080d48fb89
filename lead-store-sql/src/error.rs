//! The SQL stores' own failures and how they map onto [`lead_core::Error`],
//! classified once for both databases; a [`Dialect`] says only what its
//! database's error codes mean.
//!
//! Messages name the store, the category and, at most, an error code,
//! constraint name or id; never SQL text, stored values or the connection
//! URL. The driver's error is kept as the cause (logged, never answered),
//! except for configuration errors, which can quote the URL.

use std::convert::Infallible;
use std::marker::PhantomData;

use lead_core::Error;
use sqlx::error::DatabaseError;

use crate::codec::CodecError;

/// What a database error means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Another writer won or a uniqueness rule holds: the operation may
    /// succeed when retried against fresh data.
    Conflict,
    /// The database cannot serve us right now: try again later.
    Unavailable,
    /// Anything else: a bug or bad data.
    Internal,
}

/// One database's reading of its own errors.
pub trait Dialect: Send + Sync + 'static {
    /// The store's name in messages (`SQLite`, `PostgreSQL`).
    const NAME: &'static str;

    /// The class of an error the database reported, and the words that
    /// identify it in a message (an error code, a constraint name; nothing
    /// the client sent).
    fn database(db: &dyn DatabaseError) -> (Class, String);
}

/// Everything that can go wrong inside a SQL store of dialect `D`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError<D: Dialect> {
    /// A rule of the contract (conflict, unknown lead or rep).
    #[error(transparent)]
    Domain(#[from] Error),
    /// The driver or the database failed.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// Applying the embedded migrations failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value does not read back (or a value does not serialize).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A stored column holds a value outside its type's range.
    #[error("stored {0} is not valid")]
    Corrupt(&'static str),
    /// The first connection was not made within the connect timeout.
    #[error("no connection within the connect timeout")]
    ConnectTimedOut,
    /// Never built: carries the dialect.
    #[doc(hidden)]
    #[error("unreachable")]
    Dialect(Infallible, PhantomData<fn() -> D>),
}

impl<D: Dialect> From<StoreError<D>> for Error {
    fn from(err: StoreError<D>) -> Self {
        let name = D::NAME;
        match err {
            StoreError::Domain(err) => err,
            StoreError::Sqlx(err) => from_sqlx::<D>(err),
            StoreError::Migrate(
                sqlx::migrate::MigrateError::Execute(err)
                | sqlx::migrate::MigrateError::ExecuteMigration(err, _),
            ) => from_sqlx::<D>(err),
            StoreError::Migrate(err) => {
                Error::internal(format!("{name} migrations failed")).caused_by(err)
            }
            StoreError::ConnectTimedOut => Error::unavailable(format!(
                "{name} store: no connection within the connect timeout"
            )),
            StoreError::Codec(err) => {
                Error::internal(format!("{name} store: {err}")).caused_by(err)
            }
            StoreError::Corrupt(what) => {
                Error::internal(format!("{name} store: stored {what} is not valid"))
            }
            StoreError::Dialect(never, _) => match never {},
        }
    }
}

/// A driver error as a domain error, the driver's error kept as the cause.
pub fn from_sqlx<D: Dialect>(err: sqlx::Error) -> Error {
    let name = D::NAME;
    let mapped = match &err {
        sqlx::Error::PoolTimedOut => {
            Error::unavailable(format!("{name} store: no connection available in time"))
        }
        sqlx::Error::PoolClosed => Error::unavailable(format!("{name} store: the pool is closed")),
        sqlx::Error::Io(io) => {
            Error::unavailable(format!("{name} store: connection failed ({:?})", io.kind()))
        }
        sqlx::Error::Tls(_) => Error::unavailable(format!("{name} store: TLS failure")),
        sqlx::Error::WorkerCrashed | sqlx::Error::BeginFailed => {
            Error::unavailable(format!("{name} store: the connection broke"))
        }
        sqlx::Error::Database(db) => {
            let (class, words) = D::database(db.as_ref());
            match class {
                // A conflict is the caller's to resolve; its message says all.
                Class::Conflict => return Error::Conflict(format!("{name} store: {words}")),
                Class::Unavailable => Error::unavailable(format!("{name} store: {words}")),
                Class::Internal => Error::internal(format!("{name} store: {words}")),
            }
        }
        // The settings may quote the URL (and its password): no cause.
        sqlx::Error::Configuration(_) => {
            return Error::invalid(
                "database_url",
                "invalid_database_url",
                format!("the {name} connection settings are not valid"),
            );
        }
        sqlx::Error::Protocol(_) => {
            Error::unavailable(format!("{name} store: unexpected answer on the connection"))
        }
        _ => Error::internal(format!("{name} store: driver error ({})", kind(&err))),
    };
    mapped.caused_by(err)
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

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[derive(Debug)]
    struct Test;

    impl Dialect for Test {
        const NAME: &'static str = "Test";
        fn database(_: &dyn DatabaseError) -> (Class, String) {
            (Class::Internal, "code 1".into())
        }
    }

    fn core_of(err: impl Into<StoreError<Test>>) -> Error {
        Error::from(err.into())
    }

    #[test]
    fn pool_failures_are_temporary() {
        for err in [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed] {
            let mapped = core_of(err);
            assert!(mapped.is_temporary(), "{mapped:?}");
        }
    }

    #[test]
    fn io_errors_are_unavailable_name_no_address_and_keep_the_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused by db:5432");
        let mapped = core_of(sqlx::Error::Io(io));
        assert!(matches!(mapped, Error::Unavailable(..)), "{mapped:?}");
        assert!(!mapped.to_string().contains("db:5432"), "{mapped}");
        let cause = mapped.source().expect("the driver error is kept");
        assert!(mapped.chain().contains("refused by db:5432"), "{cause}");
    }

    #[test]
    fn configuration_errors_name_the_setting_and_keep_no_cause() {
        let mapped = core_of(sqlx::Error::Configuration(
            "postgres://user:secret@db/x is not valid".into(),
        ));
        assert!(matches!(mapped, Error::Invalid { .. }), "{mapped:?}");
        assert!(!mapped.chain().contains("secret"), "{}", mapped.chain());
    }

    /// A database error of a given kind, as a driver reports one.
    #[derive(Debug)]
    struct Reported {
        unique: bool,
    }

    impl std::fmt::Display for Reported {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("duplicate key value (email)=(ana@acme.com)")
        }
    }

    impl std::error::Error for Reported {}

    impl DatabaseError for Reported {
        fn message(&self) -> &str {
            "duplicate key value (email)=(ana@acme.com)"
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            if self.unique {
                sqlx::error::ErrorKind::UniqueViolation
            } else {
                sqlx::error::ErrorKind::Other
            }
        }
    }

    /// Classes by kind: a unique violation conflicts, anything else is internal.
    #[derive(Debug)]
    struct ByKind;

    impl Dialect for ByKind {
        const NAME: &'static str = "Kind";
        fn database(db: &dyn DatabaseError) -> (Class, String) {
            let class = if db.is_unique_violation() {
                Class::Conflict
            } else {
                Class::Unavailable
            };
            (class, "code 23505".into())
        }
    }

    #[test]
    fn database_errors_take_the_dialects_class_and_words_only() {
        let report = |unique| sqlx::Error::Database(Box::new(Reported { unique }));
        let conflict = from_sqlx::<ByKind>(report(true));
        assert!(matches!(conflict, Error::Conflict(_)), "{conflict:?}");
        assert_eq!(conflict.to_string(), "conflict: Kind store: code 23505");
        let down = from_sqlx::<ByKind>(report(false));
        assert!(down.is_temporary(), "{down:?}");
        assert!(!down.to_string().contains("ana@acme.com"), "{down}");
        assert!(
            down.chain().contains("ana@acme.com"),
            "the log has the cause"
        );
    }

    #[test]
    fn bad_stored_data_is_internal() {
        let source = serde_json::from_str::<u8>("x").expect_err("not a number");
        let mapped = core_of(CodecError::Json {
            what: "lead",
            source,
        });
        assert!(matches!(mapped, Error::Internal(..)), "{mapped:?}");
        assert!(mapped.source().is_some(), "the parser's complaint is kept");
        let mapped = core_of(StoreError::<Test>::Corrupt("rep id"));
        assert!(matches!(mapped, Error::Internal(..)), "{mapped:?}");
    }
}
