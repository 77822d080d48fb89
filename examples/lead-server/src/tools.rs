//! What the `lead` command line (`examples/lead-cli`) opens: the server's
//! own configuration, start-up files and store, read by the same code, so
//! nothing a command does bypasses what the server applies (validation,
//! duplicates, scoring, routing, the outbox and the consumers it queues
//! for).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

use lead_core::{Deps, Error, Policy, SyncState};

use crate::config::{Files, ServerConfig};
use crate::{Store, describe, load_files};

/// The variables the server reads: the `LEAD_CONFIG` file, then the
/// environment, which wins.
///
/// # Errors
///
/// `LEAD_CONFIG` names a file that cannot be read or is not `NAME=value`
/// lines; the message names the file.
pub fn environment() -> Result<HashMap<String, String>, String> {
    let mut vars: HashMap<String, String> = HashMap::new();
    if let Ok(path) = std::env::var("LEAD_CONFIG") {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        vars.extend(crate::config::file_vars(&text).map_err(|e| format!("{path}: {e}"))?);
    }
    vars.extend(std::env::vars());
    Ok(vars)
}

/// Why a [`Session`] did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// A variable or a file is wrong: a person has to fix it (exit code 2).
    Config(String),
    /// The store did not answer or refused (exit code 1: trying again may
    /// work).
    Store(String),
}

impl OpenError {
    /// The process exit code for this error: 2 for configuration, 1 for
    /// the store.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            OpenError::Config(_) => ExitCode::from(2),
            OpenError::Store(_) => ExitCode::FAILURE,
        }
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Config(message) | OpenError::Store(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for OpenError {}

/// The server's configuration and store, opened for one command: the
/// policy of `LEAD_POLICY` / `LEAD_RULES` (with `LEAD_DEFAULT_REGION` and
/// the notification consumers the configuration names, exactly as the
/// server fills them) and the store of `DATABASE_URL`, migrated.
pub struct Session {
    config: ServerConfig,
    files: Files,
    store: Store,
    deps: Deps,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("store", &self.store_name())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Reads the configuration from `vars` (see [`environment`]) and opens
    /// the store. The reps of `LEAD_REPS` are not written: the server does
    /// that when it starts; a command routes to the reps the store holds.
    ///
    /// # Errors
    ///
    /// [`OpenError::Config`] naming the variable or file;
    /// [`OpenError::Store`] when the store cannot be opened (its URL
    /// without credentials).
    pub async fn open(vars: &HashMap<String, String>) -> Result<Session, OpenError> {
        let config = ServerConfig::from_vars(vars)
            .map_err(|e| OpenError::Config(format!("configuration: {e}")))?;
        let files = load_files(&config).map_err(OpenError::Config)?;
        let store = open_store(&config).await?;
        let deps = Deps::new(store.port());
        Ok(Session {
            config,
            files,
            store,
            deps,
        })
    }

    /// The ports the use-cases work through.
    pub fn deps(&self) -> &Deps {
        &self.deps
    }

    /// The policy the server would use.
    pub fn policy(&self) -> &Policy {
        &self.files.policy
    }

    /// Watermarks and named leases (an import's progress).
    pub fn sync_state(&self) -> Arc<dyn SyncState> {
        self.store.sync_state()
    }

    /// Where the store is, without credentials.
    pub fn store_name(&self) -> String {
        describe(&self.config.database_url)
    }

    /// Answers every queued commit, then closes the store's connections.
    pub async fn close(&self) {
        self.store.close().await;
    }
}

/// The policy the server would use (`LEAD_POLICY`, `LEAD_RULES`,
/// `LEAD_DEFAULT_REGION`), read without opening the store: for commands
/// that work on a file and need no database.
///
/// # Errors
///
/// [`OpenError::Config`] naming the variable or file.
pub fn policy(vars: &HashMap<String, String>) -> Result<Policy, OpenError> {
    let config = ServerConfig::from_vars(vars)
        .map_err(|e| OpenError::Config(format!("configuration: {e}")))?;
    Ok(load_files(&config).map_err(OpenError::Config)?.policy)
}

pub(crate) async fn open_store(config: &ServerConfig) -> Result<Store, OpenError> {
    Store::open(&config.database_url).await.map_err(|e| {
        let message = format!(
            "cannot open the store at {}: {e}",
            describe(&config.database_url)
        );
        // A URL that cannot work is configuration; a store that does not
        // answer is a failure (trying again may work).
        match e {
            Error::Invalid { .. } => OpenError::Config(message),
            _ => OpenError::Store(message),
        }
    })
}

/// Applies the store's and the job queue's migrations (what the server
/// does when it starts) and says where the schema is.
///
/// # Errors
///
/// As [`Session::open`]; a job queue that cannot be migrated is
/// [`OpenError::Store`].
pub async fn migrate(vars: &HashMap<String, String>) -> Result<String, OpenError> {
    let config = ServerConfig::from_vars(vars)
        .map_err(|e| OpenError::Config(format!("configuration: {e}")))?;
    let store = open_store(&config).await?;
    let queue = crate::queue::Queue::open(&config.database_url).await;
    store.close().await;
    queue.map_err(OpenError::Store)?;
    let (version, description) = store.schema_version();
    Ok(format!(
        "{}: schema at migration {version} ({description}); job queue ready",
        describe(&config.database_url)
    ))
}

/// A `jobs` command: the same listing and runner as `lead-server jobs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobsCommand {
    /// Every job: schedule, enabled, next due time, last run (`--json`:
    /// the API's view).
    List {
        /// JSON instead of a table.
        json: bool,
    },
    /// Runs the named job once, now, in this process.
    Run(String),
}

/// Runs a [`JobsCommand`] over the configuration in `vars`: exit 0 when it
/// succeeded, 1 when the job or the store failed, 2 for an unknown job or
/// a configuration error.
pub async fn jobs(vars: &HashMap<String, String>, command: JobsCommand) -> ExitCode {
    match ServerConfig::from_vars(vars) {
        Ok(config) => crate::jobs_command(&config, command).await,
        Err(e) => {
            eprintln!("configuration: {e}");
            ExitCode::from(2)
        }
    }
}
