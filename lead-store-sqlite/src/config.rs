//! How to reach the database file and how careful to be with it.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use lead_store_sql::GroupCommit;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use lead_core::{Error, Result};

/// How hard SQLite works to make a commit survive a crash
/// (`PRAGMA synchronous`).
///
/// The default, [`Synchronous::Full`], syncs the write-ahead log on every
/// commit: a lead answered with `202` survives a power cut. `Normal` is
/// faster and still never corrupts the file, but the last commits before a
/// power loss (not a process crash) may be rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Synchronous {
    /// No syncing at all: only for throw-away data.
    Off,
    /// Sync at checkpoints only (WAL): the last commits may be lost on power loss.
    Normal,
    /// Sync the log on every commit: durability first (the default).
    #[default]
    Full,
    /// Like `Full`, and also sync the directory after deleting the journal.
    Extra,
}

impl From<Synchronous> for SqliteSynchronous {
    fn from(value: Synchronous) -> Self {
        match value {
            Synchronous::Off => SqliteSynchronous::Off,
            Synchronous::Normal => SqliteSynchronous::Normal,
            Synchronous::Full => SqliteSynchronous::Full,
            Synchronous::Extra => SqliteSynchronous::Extra,
        }
    }
}

/// Configuration of a [`SqliteStore`](crate::SqliteStore).
///
/// Deserializes from a config file or environment with every field
/// optional; build one in code with [`SqliteConfig::from_url`] and the
/// `with_*` methods.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use lead_store_sqlite::{SqliteConfig, Synchronous};
///
/// let config = SqliteConfig::from_url("sqlite://data/leads.db")
///     .with_max_connections(4)
///     .with_busy_timeout(Duration::from_secs(2))
///     .with_synchronous(Synchronous::Normal);
/// assert_eq!(config.url, "sqlite://data/leads.db");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// Where the database lives: a `DATABASE_URL`-style URL
    /// (`sqlite://path/to/leads.db`, `sqlite:///absolute/path.db`,
    /// `sqlite::memory:` for tests) or a plain file path. The file is
    /// created when missing; its directory must exist.
    pub url: String,
    /// Most connections in the pool (readers run in parallel; writers take
    /// turns). Default 8.
    pub max_connections: u32,
    /// How long a writer waits for another writer's transaction before
    /// giving up with [`Error::Unavailable`], in milliseconds. Default 5000.
    pub busy_timeout_ms: u64,
    /// How long a caller waits for a free pooled connection, in
    /// milliseconds. Default 10000.
    pub acquire_timeout_ms: u64,
    /// `PRAGMA synchronous`; default [`Synchronous::Full`] (durability first).
    pub synchronous: Synchronous,
    /// Group commit (on by default): concurrent commits share one
    /// transaction and one sync. `None` runs every commit in a transaction
    /// of its own.
    pub group_commit: Option<GroupCommit>,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://leads.db".to_owned(),
            max_connections: 8,
            busy_timeout_ms: 5_000,
            acquire_timeout_ms: 10_000,
            synchronous: Synchronous::Full,
            group_commit: Some(GroupCommit::default()),
        }
    }
}

impl SqliteConfig {
    /// Defaults, with the database at `url` (a URL or a file path).
    pub fn from_url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Sets the pool size (at least 1).
    pub fn with_max_connections(mut self, max: u32) -> Self {
        self.max_connections = max;
        self
    }

    /// Sets how long a writer waits for the write lock.
    pub fn with_busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Sets how long a caller waits for a pooled connection.
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Sets `PRAGMA synchronous`.
    pub fn with_synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// Sets (or, with `None`, turns off) group commit.
    pub fn with_group_commit(mut self, group_commit: Option<GroupCommit>) -> Self {
        self.group_commit = group_commit;
        self
    }

    /// The busy timeout as a duration.
    pub fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.busy_timeout_ms)
    }

    /// The acquire timeout as a duration.
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }

    /// The sqlx connection options: WAL, foreign keys on, the configured
    /// `synchronous` and busy timeout, file created when missing.
    pub(crate) fn connect_options(&self) -> Result<SqliteConnectOptions> {
        let url = self.url.trim();
        lead_store_sql::config::check_pool("SQLite", url, self.max_connections, self.group_commit)?;
        let options = if url.starts_with("sqlite:") {
            // The URL itself is not repeated: it may carry parameters the
            // operator considers private.
            SqliteConnectOptions::from_str(url).map_err(|_| {
                Error::invalid(
                    "database_url",
                    "invalid_database_url",
                    "not a valid SQLite URL (expected sqlite://path/to/file.db)",
                )
            })?
        } else {
            SqliteConnectOptions::new().filename(url)
        };
        Ok(options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .synchronous(self.synchronous.into())
            .busy_timeout(self.busy_timeout()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_put_durability_first() {
        let config = SqliteConfig::default();
        assert_eq!(config.synchronous, Synchronous::Full);
        assert_eq!(config.busy_timeout(), Duration::from_secs(5));
        assert_eq!(config.group_commit, Some(GroupCommit::default()));
    }

    #[test]
    fn group_commit_can_be_tuned_or_turned_off_in_a_config_file() {
        let off: SqliteConfig =
            serde_json::from_str(r#"{"group_commit": null}"#).expect("valid config");
        assert_eq!(off.group_commit, None);
        let tuned: SqliteConfig =
            serde_json::from_str(r#"{"group_commit": {"max_batch": 8}}"#).expect("valid config");
        assert_eq!(
            tuned.group_commit,
            Some(GroupCommit::new(8, Duration::ZERO))
        );
    }

    #[test]
    fn a_config_file_may_give_only_some_fields() {
        let config: SqliteConfig =
            serde_json::from_str(r#"{"url": "sqlite://x.db", "synchronous": "normal"}"#)
                .expect("valid config");
        assert_eq!(config.url, "sqlite://x.db");
        assert_eq!(config.synchronous, Synchronous::Normal);
        assert_eq!(config.max_connections, 8);
    }

    #[test]
    fn urls_and_plain_paths_are_both_accepted() {
        let url = SqliteConfig::from_url("sqlite://dir/leads.db")
            .connect_options()
            .expect("valid url");
        assert_eq!(url.get_filename(), std::path::Path::new("dir/leads.db"));
        let path = SqliteConfig::from_url("dir/leads.db")
            .connect_options()
            .expect("valid path");
        assert_eq!(path.get_filename(), std::path::Path::new("dir/leads.db"));
    }

    #[test]
    fn an_empty_url_or_an_empty_pool_is_refused() {
        assert!(matches!(
            SqliteConfig::from_url(" ").connect_options(),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            SqliteConfig::default()
                .with_max_connections(0)
                .connect_options(),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            SqliteConfig::default()
                .with_group_commit(Some(GroupCommit::new(0, Duration::ZERO)))
                .connect_options(),
            Err(Error::Invalid { .. })
        ));
    }
}
