//! How PostgreSQL's errors read ([`PostgresDialect`]: SQLSTATEs by
//! meaning); the classification into [`lead_core::Error`] is
//! `lead_store_sql::error`, shared with SQLite.

use lead_store_sql::error::{Class, Dialect};
use sqlx::error::DatabaseError;

/// Everything that can go wrong inside the store.
pub(crate) type StoreError = lead_store_sql::error::StoreError<PostgresDialect>;

/// PostgreSQL's reading of its SQLSTATEs.
#[derive(Debug)]
pub(crate) struct PostgresDialect;

impl Dialect for PostgresDialect {
    const NAME: &'static str = "PostgreSQL";

    fn database(db: &dyn DatabaseError) -> (Class, String) {
        let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
        let class = classify(&code);
        // The constraint names what clashed; the message could quote values.
        let constraint = match class {
            Class::Unavailable => String::new(),
            Class::Conflict | Class::Internal => db
                .constraint()
                .map(|c| format!(" on {c}"))
                .unwrap_or_default(),
        };
        (class, format!("SQLSTATE {code}{constraint}"))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
