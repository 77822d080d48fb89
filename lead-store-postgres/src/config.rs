//! How to reach the database and how long to wait for it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

pub use lead_store_sql::GroupCommit;
use sqlx::postgres::PgConnectOptions;

use lead_core::{Error, Result};

/// Configuration of a [`PostgresStore`](crate::PostgresStore).
///
/// Deserializes from a config file or the environment with every field
/// optional; build one in code with [`PostgresConfig::from_url`] or
/// [`PostgresConfig::from_env`] and the `with_*` methods.
///
/// The URL usually carries a password, so this type is only
/// `Deserialize` (never serialized back out), and its `Debug` shows the
/// host, port and database only.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use lead_store_postgres::PostgresConfig;
///
/// let config = PostgresConfig::from_url("postgres://leads:s3cret@db.internal:5432/leads")
///     .with_max_connections(32)
///     .with_statement_timeout(Some(Duration::from_secs(10)));
/// let shown = format!("{config:?}");
/// assert!(shown.contains("db.internal"));
/// assert!(!shown.contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database?sslmode=...`, the
    /// `DATABASE_URL` form.
    pub url: String,
    /// Most connections this instance's pool opens. Default 16. With many
    /// instances, keep `instances × max_connections` under the server's
    /// `max_connections`.
    pub max_connections: u32,
    /// How long an operation waits for a pooled connection (including
    /// reconnecting after an outage) before failing with
    /// [`Error::Unavailable`], in milliseconds. Default 5000.
    pub acquire_timeout_ms: u64,
    /// How long [`PostgresStore::connect`](crate::PostgresStore::connect)
    /// waits for the first connection, in milliseconds. Default 10000.
    pub connect_timeout_ms: u64,
    /// PostgreSQL's `statement_timeout` for every connection, in
    /// milliseconds. Default 30 000: one statement stuck on a lock must
    /// not hold the group-commit writer (and every capture queued behind
    /// it) for ever. `None` keeps the server's setting. A statement
    /// cancelled by it fails with [`Error::Unavailable`].
    pub statement_timeout_ms: Option<u64>,
    /// Group commit: concurrent commits of this instance share one
    /// transaction and one durable COMMIT; a batch of new leads is written
    /// with one statement (`docs/perf.md`, "Store writes"). On by default;
    /// `None` runs every commit in a transaction of its own.
    pub group_commit: Option<GroupCommit>,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            url: "postgres://localhost:5432/leads".to_owned(),
            max_connections: 16,
            acquire_timeout_ms: 5_000,
            connect_timeout_ms: 10_000,
            statement_timeout_ms: Some(30_000),
            group_commit: Some(GroupCommit::default()),
        }
    }
}

impl PostgresConfig {
    /// Defaults, with the database at `url`.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Defaults, with the database at `$DATABASE_URL`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] when `DATABASE_URL` is not set.
    pub fn from_env() -> Result<Self> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => Ok(Self::from_url(url)),
            _ => Err(Error::invalid(
                "DATABASE_URL",
                "missing_database_url",
                "DATABASE_URL is not set",
            )),
        }
    }

    /// Sets the pool size (at least 1).
    pub fn with_max_connections(mut self, max: u32) -> Self {
        self.max_connections = max;
        self
    }

    /// Sets how long an operation waits for a pooled connection.
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout_ms = millis(timeout);
        self
    }

    /// Sets how long `connect` waits for the first connection.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout_ms = millis(timeout);
        self
    }

    /// Sets (or clears) the per-statement time limit.
    pub fn with_statement_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.statement_timeout_ms = timeout.map(millis);
        self
    }

    /// Sets (or, with `None`, turns off) group commit.
    pub fn with_group_commit(mut self, group_commit: Option<GroupCommit>) -> Self {
        self.group_commit = group_commit;
        self
    }

    /// The acquire timeout as a duration.
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }

    /// The connect timeout as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// The statement timeout as a duration, when set.
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.statement_timeout_ms.map(Duration::from_millis)
    }

    /// The sqlx connection options, with the statement timeout and an
    /// application name (visible in `pg_stat_activity`).
    pub(crate) fn connect_options(&self) -> Result<PgConnectOptions> {
        let url = self.url.trim();
        lead_store_sql::config::check_pool(
            "PostgreSQL",
            url,
            self.max_connections,
            self.group_commit,
        )?;
        // Each group-commit writer, and the reader that batches the reads
        // before captures, may hold a connection while busy: leave at least
        // one for everything else.
        if self
            .group_commit
            .is_some_and(|g| g.writers.max(1) + 1 >= self.max_connections as usize)
        {
            return Err(Error::invalid(
                "group_commit.writers",
                "invalid_group_commit",
                "group-commit writers plus the capture reader need fewer connections than max_connections",
            ));
        }
        // The URL itself is never repeated: it carries the password.
        let invalid = || {
            Error::invalid(
                "database_url",
                "invalid_database_url",
                "not a valid PostgreSQL URL (expected postgres://user:password@host:port/database)",
            )
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid());
        }
        let options = PgConnectOptions::from_str(url).map_err(|_| invalid())?;
        // Every statement is prepared once per connection and its plan does
        // not depend on the values: a generic plan spares re-planning the
        // batch insert (seven inserts over arrays) on every execution.
        let options = options
            .application_name("lead-store-postgres")
            .options([("plan_cache_mode", "force_generic_plan")]);
        Ok(match self.statement_timeout_ms {
            Some(ms) => options.options([("statement_timeout", ms.to_string())]),
            None => options,
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `url` pointing at database `name` on the same server instead: same
/// user, password, host, port and query parameters. For tools and tests
/// that create a database of their own beside the one `DATABASE_URL`
/// names.
///
/// ```
/// use lead_store_postgres::url_with_database;
///
/// assert_eq!(
///     url_with_database("postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable", "bench_1"),
///     "postgres://u:p@127.0.0.1:5432/bench_1?sslmode=disable"
/// );
/// assert_eq!(url_with_database("postgres://db:5432", "x"), "postgres://db:5432/x");
/// assert_eq!(
///     url_with_database("postgres://h:5?sslmode=disable", "x"),
///     "postgres://h:5/x?sslmode=disable"
/// );
/// ```
pub fn url_with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[host_start..].find('/') {
        Some(i) => &base[..host_start + i],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{name}?{query}"),
        None => format!("{root}/{name}"),
    }
}

/// Where a URL points, without user or password: `host:port/database`.
pub(crate) fn describe(url: &str) -> String {
    match PgConnectOptions::from_str(url.trim()) {
        Ok(o) => format!(
            "{}:{}/{}",
            o.get_host(),
            o.get_port(),
            o.get_database().unwrap_or("")
        ),
        Err(_) => "<invalid URL>".to_owned(),
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("database", &describe(&self.url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .field("group_commit", &self.group_commit)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password_or_user() {
        let config = PostgresConfig::from_url("postgres://leads:hunter2@db.example:6432/crm");
        let shown = format!("{config:?}");
        assert!(shown.contains("db.example:6432/crm"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("leads:"), "{shown}");
    }

    #[test]
    fn a_config_file_may_give_only_some_fields() {
        let config: PostgresConfig =
            serde_json::from_str(r#"{"url": "postgres://db/leads", "statement_timeout_ms": 2500}"#)
                .expect("valid config");
        assert_eq!(config.url, "postgres://db/leads");
        assert_eq!(
            config.statement_timeout(),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(config.max_connections, 16);
        assert_eq!(
            config.group_commit,
            Some(GroupCommit::default()),
            "group commit is on by default"
        );
    }

    #[test]
    fn group_commit_can_be_tuned_or_turned_off_in_a_config_file() {
        let off: PostgresConfig =
            serde_json::from_str(r#"{"group_commit": null}"#).expect("valid config");
        assert_eq!(off.group_commit, None);
        let tuned: PostgresConfig =
            serde_json::from_str(r#"{"group_commit": {"max_batch": 8}}"#).expect("valid config");
        assert_eq!(
            tuned.group_commit,
            Some(GroupCommit::new(8, Duration::ZERO))
        );
        let err = PostgresConfig::default()
            .with_group_commit(Some(GroupCommit::new(0, Duration::ZERO)))
            .connect_options()
            .expect_err("an empty batch");
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    }

    #[test]
    fn bad_urls_are_refused_without_repeating_them() {
        for url in [
            "",
            "mysql://user:hunter2@x/y",
            "postgres://user:hunter2@x:notaport/db",
        ] {
            // (PgConnectOptions' own Debug would show the password.)
            let Err(err) = PostgresConfig::from_url(url).connect_options() else {
                panic!("not a PostgreSQL URL, yet accepted");
            };
            assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn group_commit_writers_leave_a_connection_for_everything_else() {
        let config = PostgresConfig::default()
            .with_max_connections(3)
            .with_group_commit(Some(GroupCommit::default().with_writers(2)));
        let err = config.connect_options().expect_err("no connection left");
        assert!(
            matches!(&err, Error::Invalid { fields } if fields[0].field == "group_commit.writers"),
            "{err:?}"
        );
        assert!(
            config
                .with_group_commit(Some(GroupCommit::default().with_writers(1)))
                .connect_options()
                .is_ok()
        );
    }

    #[test]
    fn an_empty_pool_is_refused() {
        let err = PostgresConfig::default()
            .with_max_connections(0)
            .connect_options()
            .expect_err("no connections");
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    }
}
