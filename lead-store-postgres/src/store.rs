//! The store handle: a connection pool over one PostgreSQL database,
//! migrated at start-up.

use std::fmt;
use std::sync::Arc;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

use lead_core::{CaptureContext, Result};

use crate::config::{PostgresConfig, describe};
use crate::context::{ContextReader, ContextRequest};
use crate::error::StoreError;
use lead_store_sql::{Batcher, Stats};

/// The schema, embedded at compile time from `migrations/postgres/`.
static MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

/// A [`LeadStore`](lead_core::LeadStore), [`OutboxStore`](lead_core::OutboxStore)
/// and [`SyncState`](lead_core::SyncState) in one PostgreSQL database, shared
/// by any number of server instances.
///
/// Cheap to clone (clones share the pool and the writer). With group commit
/// (the default, see [`GroupCommit`](crate::GroupCommit)) one writer task
/// per store gathers this instance's concurrent commits into one
/// transaction, each in its own savepoint, and answers each caller only
/// after the shared COMMIT; without it every commit is one transaction.
/// Concurrent writers from any instance are arbitrated by the database (row
/// locks, unique indexes, versioned updates) and the loser gets
/// [`Error::Conflict`](lead_core::Error::Conflict), which the use-cases retry.
/// Outbox claims use `FOR UPDATE SKIP LOCKED`, so workers everywhere get
/// disjoint batches.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    database: String,
    /// The group-commit writer; `None` when group commit is off.
    pub(crate) batcher: Option<Arc<Batcher>>,
    /// The reader batching captures' reads; `None` when group commit is off.
    pub(crate) reader: Option<Arc<Batcher<ContextRequest, CaptureContext>>>,
    /// Transactions and commits counted by `commit`.
    pub(crate) stats: Arc<Stats>,
    /// Statements and reads counted by the capture reader.
    read_stats: Arc<Stats>,
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
        let stats = Arc::new(Stats::default());
        let batcher = config.group_commit.map(|settings| {
            let pool = pool.clone();
            Arc::new(Batcher::start(settings, stats.clone(), || {
                let writer = crate::commit::BatchWriter::new(pool.clone(), stats.clone());
                move |commits| {
                    let writer = writer.clone();
                    async move { writer.commit_batch(commits).await }
                }
            }))
        });
        // One reader: a batch of reads is one statement, so a second
        // reader would only split batches.
        let read_stats = Arc::new(Stats::default());
        let reader = config.group_commit.map(|settings| {
            let pool = pool.clone();
            Arc::new(Batcher::start(
                settings.with_writers(1),
                read_stats.clone(),
                move || {
                    let reader = ContextReader::new(pool.clone());
                    move |requests| {
                        let reader = reader.clone();
                        async move { reader.read_batch(requests).await }
                    }
                },
            ))
        });
        Ok(PostgresStore {
            pool,
            database: describe(&config.url),
            batcher,
            reader,
            stats,
            read_stats,
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
    /// (`postgres://user:password@host:port/database`).
    pub async fn from_url(url: &str) -> Result<PostgresStore> {
        Self::connect(&PostgresConfig::from_url(url)).await
    }

    /// Closes the store: stops accepting commits, finishes and answers
    /// every commit already handed to the group-commit writer, then closes
    /// every connection. Later calls answer
    /// [`Error::Unavailable`](lead_core::Error::Unavailable). For orderly
    /// shutdown and for tests of outage handling.
    pub async fn close(&self) {
        if let Some(reader) = &self.reader {
            reader.close().await;
        }
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

    /// `(statements, captures)` of the reads before captures
    /// ([`capture_context`](lead_core::LeadStore::capture_context)) batched
    /// so far; under load, fewer statements than captures.
    #[doc(hidden)]
    pub fn capture_read_stats(&self) -> (u64, u64) {
        self.read_stats.get()
    }

    /// Batches of new leads the database refused on the fast path (each
    /// then written commit by commit on the checked path) so far. A rule
    /// broken by one commit (a taken address, a reused idempotency key)
    /// counts here; a steady rise in normal traffic is worth a look.
    pub fn fast_path_refusals(&self) -> u64 {
        self.stats.refused()
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.database)
            .field("connections", &self.pool.size())
            .field("closed", &self.pool.is_closed())
            .field("group_commit", &self.batcher.is_some())
            .finish()
    }
}
