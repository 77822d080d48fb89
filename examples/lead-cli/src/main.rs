//! `lead`: the command line for the people who run the system. It opens
//! the server's own configuration and store (`DATABASE_URL`, the same
//! defaults, the `LEAD_CONFIG` file) through [`lead_server::tools`], so an
//! import is validated, scored, deduplicated, routed and queued for the CRM
//! and the notifications exactly as a capture over HTTP is.
//!
//! Exit codes: 0 success, 1 some rows refused (or the store failed), 2 a
//! usage or configuration error. See `examples/lead-cli/README.md`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod dedup;
mod export;
mod import;
mod keys;
mod progress;
mod score;
mod table;

// An export streams a million leads through short-lived pages: mimalloc
// gives their memory back, so RSS stays flat (docs/perf.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The `lead` command line.
#[derive(Debug, Parser)]
#[command(
    name = "lead",
    version,
    about = "Import, export and de-duplicate leads, create API keys, migrate, run jobs",
    long_about = "Import, export and de-duplicate leads, create API keys, migrate the store and run the scheduled jobs.\n\nThe store and the rules are the server's: DATABASE_URL (a local leads.db SQLite file when unset), LEAD_POLICY, LEAD_RULES, LEAD_DEFAULT_REGION and the rest, from the environment or the LEAD_CONFIG file.\n\nExit codes: 0 success, 1 some rows refused or the store failed, 2 usage or configuration error.",
    after_help = "Examples:\n  lead import trade-show.csv --dry-run\n  lead export --stage qualified --output qualified.xlsx\n  lead api-key create --scopes read,write"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import leads from a CSV, JSON lines or XLSX file, as captures.
    Import(import::ImportArgs),
    /// Export leads to CSV, JSON lines or XLSX.
    Export(export::ExportArgs),
    /// Find duplicate leads in a file (no database) or in the store.
    Dedup(dedup::DedupArgs),
    /// API keys for the lead and dashboard APIs.
    #[command(name = "api-key", subcommand)]
    ApiKey(keys::KeyCommand),
    /// Apply the store's and the job queue's migrations.
    #[command(after_help = "Example:\n  DATABASE_URL=postgres://lead@db/leads lead migrate")]
    Migrate,
    /// The scheduled jobs: list them, or run one now.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Score a file of leads with a rule set and report how the rules behave.
    Score(score::ScoreArgs),
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// Every job: schedule, enabled, next due time, last run.
    #[command(after_help = "Example:\n  lead jobs list --json")]
    List {
        /// The API's JSON view instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run one job now, in this process (exit 0 when it succeeded, 1 when it failed).
    #[command(after_help = "Example:\n  lead jobs run lead_deduplication")]
    Run {
        /// The job's name (`lead jobs list` shows them).
        name: String,
    },
}

/// A command's failure: what to print and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// Usage or configuration (exit code 2).
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    /// The store or the file system failed (exit code 1).
    pub(crate) fn failed(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

impl From<lead_server::tools::OpenError> for Failure {
    fn from(e: lead_server::tools::OpenError) -> Failure {
        match e {
            lead_server::tools::OpenError::Config(message) => Failure::usage(message),
            lead_server::tools::OpenError::Store(message) => Failure::failed(message),
        }
    }
}

/// What a command that finished reports: success, or some rows refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Done {
    /// Everything went in (exit 0).
    Clean,
    /// Some rows were refused and written to the error file (exit 1).
    SomeRefused,
}

/// The server's variables, or a usage failure naming `LEAD_CONFIG`.
pub(crate) fn environment() -> Result<std::collections::HashMap<String, String>, Failure> {
    lead_server::tools::environment().map_err(|e| Failure::usage(format!("LEAD_CONFIG: {e}")))
}

#[tokio::main]
async fn main() -> ExitCode {
    // `lead export | head` and the like: a closed pipe ends the process as
    // it ends any Unix tool, instead of a panic in `println!`.
    #[cfg(unix)]
    // SAFETY: at start-up, before any thread of ours writes; SIG_DFL is a
    // valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    // Warnings and errors only: the progress bar and the summary are the
    // output. RUST_LOG chooses otherwise.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Import(args) => import::run(args).await,
        Command::Export(args) => export::run(args).await.map(|()| Done::Clean),
        Command::Dedup(args) => dedup::run(args).await.map(|()| Done::Clean),
        Command::ApiKey(command) => keys::run(command).map(|()| Done::Clean),
        Command::Migrate => migrate().await.map(|()| Done::Clean),
        Command::Jobs(command) => return jobs(command).await,
        Command::Score(args) => score::run(args).map(|()| Done::Clean),
    };
    match result {
        Ok(Done::Clean) => ExitCode::SUCCESS,
        Ok(Done::SomeRefused) => ExitCode::FAILURE,
        Err(failure) => {
            eprintln!("lead: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

async fn migrate() -> Result<(), Failure> {
    let vars = environment()?;
    let report = lead_server::tools::migrate(&vars).await?;
    println!("{report}");
    Ok(())
}

async fn jobs(command: JobsCommand) -> ExitCode {
    let vars = match environment() {
        Ok(vars) => vars,
        Err(failure) => {
            eprintln!("lead: {}", failure.message);
            return ExitCode::from(failure.code);
        }
    };
    let command = match command {
        JobsCommand::List { json } => lead_server::tools::JobsCommand::List { json },
        JobsCommand::Run { name } => lead_server::tools::JobsCommand::Run(name),
    };
    lead_server::tools::jobs(&vars, command).await
}
