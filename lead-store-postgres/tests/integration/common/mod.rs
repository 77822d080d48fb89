//! Test harness: a fresh, uniquely named database per test on the real
//! server named by `DATABASE_URL`, created through an admin connection.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use lead_store_postgres::{PostgresConfig, PostgresStore, url_with_database};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

const HOW_TO_RUN: &str = "these tests need a real PostgreSQL server: run them as \
     `.ci/with-postgres cargo test -p lead-store-postgres` (or the whole CI with `.ci/run`)";

/// The admin URL from `DATABASE_URL`; panics (never skips) without it.
pub(crate) fn admin_url() -> String {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!("DATABASE_URL is not set; {HOW_TO_RUN}"),
    }
}

async fn admin_connection(admin: &str) -> PgConnection {
    match PgConnection::connect(admin).await {
        Ok(conn) => conn,
        Err(err) => {
            panic!("cannot reach the PostgreSQL server of DATABASE_URL ({err}); {HOW_TO_RUN}")
        }
    }
}

/// A database of its own for one test (or one conformance check).
#[derive(Debug, Clone)]
pub(crate) struct TestDb {
    /// URL of the new database.
    pub(crate) url: String,
    name: String,
    admin: String,
}

impl TestDb {
    /// Creates `lead_test_<uuid>` on the server of `DATABASE_URL`.
    pub(crate) async fn create() -> TestDb {
        Self::create_on(&admin_url()).await
    }

    /// Creates `lead_test_<uuid>` on the server of `admin`.
    pub(crate) async fn create_on(admin: &str) -> TestDb {
        let name = format!("lead_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin_connection(admin).await;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let _ = conn.close().await;
        TestDb {
            url: url_with_database(admin, &name),
            name,
            admin: admin.to_owned(),
        }
    }

    /// Settings for this database with short waits (tests fail fast).
    pub(crate) fn config(&self) -> PostgresConfig {
        // Group commit is on by default: tests exercise it unless they turn it off.
        PostgresConfig::from_url(self.url.clone())
            .with_acquire_timeout(Duration::from_secs(10))
            .with_connect_timeout(Duration::from_secs(10))
    }

    /// A migrated store on this database.
    pub(crate) async fn store(&self) -> Arc<PostgresStore> {
        Arc::new(
            PostgresStore::connect(&self.config())
                .await
                .expect("connect to the test database"),
        )
    }

    /// A plain connection for inspecting tables.
    pub(crate) async fn inspect(&self) -> PgConnection {
        PgConnection::connect(&self.url)
            .await
            .expect("inspection connection")
    }

    /// Drops the database (best effort: the server is thrown away anyway).
    pub(crate) async fn drop_db(self) {
        if let Ok(mut conn) = PgConnection::connect(&self.admin).await {
            let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            let _ = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await;
            let _ = conn.close().await;
        }
    }
}
