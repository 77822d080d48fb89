//! The store handle: a connection pool over one database file, migrated at
//! start-up.

use std::fmt;
use std::path::PathBuf;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqlitePoolOptions;

use lead_core::Result;

use crate::config::SqliteConfig;
use crate::error::StoreError;

/// The schema, embedded at compile time from `migrations/sqlite/`.
static MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

/// A [`LeadStore`](lead_core::LeadStore), [`OutboxStore`](lead_core::OutboxStore)
/// and [`SyncState`](lead_core::SyncState) in one SQLite file.
///
/// Cheap to clone (clones share the pool). Every commit is one
/// `BEGIN IMMEDIATE` transaction: SQLite has a single writer, so concurrent
/// commits wait their turn (up to the busy timeout) instead of failing.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    file: PathBuf,
}

impl SqliteStore {
    /// Opens (creating when missing) the database `config` names, and
    /// applies any migration it has not seen yet.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`](lead_core::Error::Invalid) for a malformed URL;
    /// [`Error::Unavailable`](lead_core::Error::Unavailable) when the file
    /// cannot be opened (missing directory, permissions, disk full, locked);
    /// [`Error::Internal`](lead_core::Error::Internal) when the file holds a
    /// schema these migrations do not know.
    pub async fn connect(config: &SqliteConfig) -> Result<SqliteStore> {
        let options = config.connect_options()?;
        let file = options.get_filename().to_path_buf();
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout())
            .connect_with(options)
            .await
            .map_err(StoreError::from)?;
        MIGRATOR.run(&pool).await.map_err(StoreError::from)?;
        Ok(SqliteStore { pool, file })
    }

    /// [`connect`](Self::connect) with default settings to `url`
    /// (`sqlite://path/to/leads.db` or a plain path).
    pub async fn from_url(url: &str) -> Result<SqliteStore> {
        Self::connect(&SqliteConfig::from_url(url)).await
    }

    /// Closes every connection; later calls answer
    /// [`Error::Unavailable`](lead_core::Error::Unavailable). For tests of
    /// outage handling and for orderly shutdown.
    #[doc(hidden)]
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("file", &self.file)
            .field("connections", &self.pool.size())
            .field("closed", &self.pool.is_closed())
            .finish()
    }
}
