//! The store handle: a connection pool over one database file, migrated at
//! start-up.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqlitePoolOptions;

use lead_core::Result;

use crate::config::SqliteConfig;
use crate::error::StoreError;
use lead_store_sql::{Batcher, Stats};

/// The schema, embedded at compile time from `migrations/sqlite/`.
static MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

/// A [`LeadStore`](lead_core::LeadStore), [`OutboxStore`](lead_core::OutboxStore)
/// and [`SyncState`](lead_core::SyncState) in one SQLite file.
///
/// Cheap to clone (clones share the pool and the writer). Commits run in
/// `BEGIN IMMEDIATE` transactions: SQLite has a single writer, so concurrent
/// commits wait their turn (up to the busy timeout) instead of failing.
/// With group commit (the default, see [`GroupCommit`](crate::GroupCommit))
/// one writer task gathers concurrent commits into one transaction, each in
/// its own savepoint, and answers each caller only after the shared COMMIT.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    file: PathBuf,
    /// The group-commit writer; `None` when group commit is off.
    pub(crate) batcher: Option<Arc<Batcher>>,
    /// Transactions and commits counted by `commit`.
    pub(crate) stats: Arc<Stats>,
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
        let stats = Arc::new(Stats::default());
        let batcher = config.group_commit.map(|settings| {
            let pool = pool.clone();
            Arc::new(Batcher::start(settings, stats.clone(), || {
                let (pool, stats) = (pool.clone(), stats.clone());
                move |commits| {
                    let (pool, stats) = (pool.clone(), stats.clone());
                    async move { crate::commit::commit_batch(&pool, &stats, commits).await }
                }
            }))
        });
        Ok(SqliteStore {
            pool,
            file,
            batcher,
            stats,
        })
    }

    /// The newest migration this build knows (version, description): the
    /// schema of every store it has opened is there.
    pub fn schema_version() -> (i64, String) {
        MIGRATOR
            .iter()
            .last()
            .map(|m| (m.version, m.description.to_string()))
            .unwrap_or((0, String::new()))
    }

    /// [`connect`](Self::connect) with default settings to `url`
    /// (`sqlite://path/to/leads.db` or a plain path).
    pub async fn from_url(url: &str) -> Result<SqliteStore> {
        Self::connect(&SqliteConfig::from_url(url)).await
    }

    /// Closes the store: stops accepting commits, finishes and answers
    /// every commit already handed to the group-commit writer, then closes
    /// every connection. Later calls answer
    /// [`Error::Unavailable`](lead_core::Error::Unavailable). For orderly
    /// shutdown and for tests of outage handling.
    #[doc(hidden)]
    pub async fn close(&self) {
        if let Some(batcher) = &self.batcher {
            batcher.close().await;
        }
        self.pool.close().await;
    }

    /// `(transactions, commits)` run by [`commit`](lead_core::LeadStore::commit)
    /// so far; with group commit under load, fewer transactions than commits.
    #[doc(hidden)]
    pub fn group_commit_stats(&self) -> (u64, u64) {
        self.stats.get()
    }

    /// Batches of new leads the database refused on the fast path (each
    /// then written commit by commit on the checked path) so far. A rule
    /// broken by one commit (a taken address, a reused idempotency key)
    /// counts here; a steady rise in normal traffic is worth a look.
    pub fn fast_path_refusals(&self) -> u64 {
        self.stats.refused()
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("file", &self.file)
            .field("connections", &self.pool.size())
            .field("closed", &self.pool.is_closed())
            .field("group_commit", &self.batcher.is_some())
            .finish()
    }
}
