//! How SQLite's errors read ([`SqliteDialect`]); the classification into
//! [`lead_core::Error`] is `lead_store_sql::error`, shared with PostgreSQL.

use lead_store_sql::error::{Class, Dialect};
use sqlx::error::DatabaseError;

/// Everything that can go wrong inside the store.
pub(crate) type StoreError = lead_store_sql::error::StoreError<SqliteDialect>;

/// SQLite primary result codes that mean "the database cannot be used right
/// now": BUSY, LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL.
const TEMPORARY_CODES: [u32; 6] = [5, 6, 10, 13, 14, 15];

/// SQLite's reading of its result codes.
#[derive(Debug)]
pub(crate) struct SqliteDialect;

impl Dialect for SqliteDialect {
    const NAME: &'static str = "SQLite";

    fn database(db: &dyn DatabaseError) -> (Class, String) {
        // SQLite's messages name the constraint's columns, never values.
        let words = db.message().to_owned();
        if db.is_unique_violation() {
            return (Class::Conflict, words);
        }
        let primary = db
            .code()
            .and_then(|code| code.parse::<u32>().ok())
            .map(|code| code & 0xff);
        if primary.is_some_and(|code| TEMPORARY_CODES.contains(&code)) {
            (Class::Unavailable, words)
        } else {
            (Class::Internal, words)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use sqlx::sqlite::SqlitePoolOptions;

    use super::*;

    #[tokio::test]
    async fn a_unique_violation_is_a_conflict_that_quotes_no_value() {
        let pool = SqlitePoolOptions::new()
            .connect("sqlite::memory:")
            .await
            .expect("in-memory database");
        sqlx::query("CREATE TABLE t (email TEXT UNIQUE)")
            .execute(&pool)
            .await
            .expect("table");
        let insert = || sqlx::query("INSERT INTO t (email) VALUES ('ana@acme.com')").execute(&pool);
        insert().await.expect("first insert");
        let err = insert().await.expect_err("the second one clashes");
        let mapped = lead_core::Error::from(StoreError::from(err));
        assert!(
            matches!(mapped, lead_core::Error::Conflict(_)),
            "{mapped:?}"
        );
        assert!(mapped.to_string().contains("SQLite store"), "{mapped}");
        assert!(!mapped.to_string().contains("ana@acme.com"), "{mapped}");
        assert!(mapped.source().is_none(), "a conflict's message says all");
    }

    #[tokio::test]
    async fn a_bad_statement_is_internal_and_keeps_the_driver_error() {
        let pool = SqlitePoolOptions::new()
            .connect("sqlite::memory:")
            .await
            .expect("in-memory database");
        let err = sqlx::query("SELECT * FROM missing_table")
            .execute(&pool)
            .await
            .expect_err("no such table");
        let mapped = lead_core::Error::from(StoreError::from(err));
        assert!(
            matches!(mapped, lead_core::Error::Internal(..)),
            "{mapped:?}"
        );
        assert!(
            mapped.chain().contains("missing_table"),
            "{}",
            mapped.chain()
        );
    }
}
