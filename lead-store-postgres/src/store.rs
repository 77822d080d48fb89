//! The store handle: a connection pool over one PostgreSQL database,
//! migrated at start-up.

use std::fmt;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

use lead_core::Result;

use crate::config::{PostgresConfig, describe};
use crate::error::StoreError;

/// The schema, embedded at compile time from `migrations/postgres/`.
static MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

/// A [`LeadStore`](lead_core::LeadStore), [`OutboxStore`](lead_core::OutboxStore)
/// and [`SyncState`](lead_core::SyncState) in one PostgreSQL database, shared
/// by any number of server instances.
///
/// Cheap to clone (clones share the pool). Every commit is one transaction;
/// concurrent writers from any instance are arbitrated by the database (row
/// locks, unique indexes, versioned updates) and the loser gets
/// [`Error::Conflict`](lead_core::Error::Conflict), which the use-cases retry.
/// Outbox claims use `FOR UPDATE SKIP LOCKED`, so workers everywhere get
/// disjoint batches.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    database: String,
}

impl PostgresStore {
    /// Connects to the database `config` names and applies any migration it
    /// has not seen yet (sqlx takes an advisory lock, so instances starting
    /// together migrate once).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`](lead_core::Error::Invalid) for a malformed URL or
    /// an empty pool; [`Error::Unavailable`](lead_core::Error::Unavailable)
    /// when no connection is made within the connect timeout (server down,
    /// wrong port, network); [`Error::Internal`](lead_core::Error::Internal)
    /// when the database holds a schema these migrations do not know, or
    /// the credentials are refused.
    pub async fn connect(config: &PostgresConfig) -> Result<PostgresStore> {
        let options = config.connect_options()?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout())
            .connect_lazy_with(options);
        // The first connection proves the settings; it gets its own limit.
        let first = tokio::time::timeout(config.connect_timeout(), pool.acquire()).await;
        match first {
            Ok(conn) => drop(conn.map_err(StoreError::from)?),
            Err(_) => return Err(StoreError::ConnectTimedOut.into()),
        }
        MIGRATOR.run(&pool).await.map_err(StoreError::from)?;
        Ok(PostgresStore {
            pool,
            database: describe(&config.url),
        })
    }

    /// [`connect`](Self::connect) with default settings to `url`
    /// (`postgres://user:password@host:port/database`).
    pub async fn from_url(url: &str) -> Result<PostgresStore> {
        Self::connect(&PostgresConfig::from_url(url)).await
    }

    /// Closes every connection; later calls answer
    /// [`Error::Unavailable`](lead_core::Error::Unavailable). For orderly
    /// shutdown and for tests of outage handling.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.database)
            .field("connections", &self.pool.size())
            .field("closed", &self.pool.is_closed())
            .finish()
    }
}
