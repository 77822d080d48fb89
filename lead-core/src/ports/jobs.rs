//! What the scheduled jobs keep in the store: the record of each run, and
//! the housekeeping that stops the store's side tables from growing
//! forever.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Result;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Asked for, not started yet.
    Queued,
    /// A worker is on it.
    Running,
    /// Finished without error.
    Succeeded,
    /// Finished with an error (a retry, if any, is a new attempt of the
    /// same run).
    Failed,
}

impl RunStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }

    /// `true` once the run ended, well or not.
    pub fn is_finished(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed)
    }
}

/// Who asked for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The job's schedule came due.
    Schedule,
    /// Someone asked through the API (`POST /api/jobs/{name}/run`).
    Manual,
    /// The command line (`lead-server jobs run`), e.g. from cron or Airflow.
    Cli,
}

/// Counts a run reports (`leads`, `merged`, `assigned`...), by name.
pub type JobCounts = BTreeMap<String, u64>;

/// One run of a job, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRun {
    /// The run's id.
    pub id: Uuid,
    /// The job's name (`lead_deduplication`).
    pub job: String,
    /// Who asked.
    pub trigger: Trigger,
    /// The schedule's time this run is for (scheduled runs only).
    pub due_at: Option<DateTime<Utc>>,
    /// When it was asked for.
    pub queued_at: DateTime<Utc>,
    /// When the last attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Where it stands.
    pub status: RunStatus,
    /// Attempts started so far (a crashed or failed attempt is retried).
    pub attempts: u32,
    /// What the run did.
    pub counts: JobCounts,
    /// Why it failed.
    pub error: Option<String>,
    /// The instance that ran the last attempt.
    #[serde(default)]
    pub worker: Option<String>,
}

impl JobRun {
    /// A run asked for at `now`, not started.
    pub fn queued(
        id: Uuid,
        job: &str,
        trigger: Trigger,
        due_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> JobRun {
        JobRun {
            id,
            job: job.to_owned(),
            trigger,
            due_at,
            queued_at: now,
            started_at: None,
            finished_at: None,
            status: RunStatus::Queued,
            attempts: 0,
            counts: JobCounts::new(),
            error: None,
            worker: None,
        }
    }

    /// The same run, an attempt started at `now`.
    pub fn started(mut self, now: DateTime<Utc>) -> JobRun {
        self.status = RunStatus::Running;
        self.started_at = Some(now);
        self.finished_at = None;
        self.attempts += 1;
        self.error = None;
        self
    }

    /// The same run, ended at `now` with `outcome`.
    pub fn finished(
        mut self,
        outcome: std::result::Result<JobCounts, String>,
        now: DateTime<Utc>,
    ) -> JobRun {
        self.finished_at = Some(now);
        match outcome {
            Ok(counts) => {
                self.status = RunStatus::Succeeded;
                self.counts = counts;
                self.error = None;
            }
            Err(error) => {
                self.status = RunStatus::Failed;
                self.error = Some(error);
            }
        }
        self
    }
}

/// How long housekeeping keeps what it may delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Delivery marks (the ids of webhook messages and outbound messages
    /// already applied, kept so a redelivery is applied once) older than
    /// this are deleted: a sender that redelivers later than this is not
    /// expected.
    pub delivery_marks: chrono::Duration,
    /// Finished job runs older than this are deleted.
    pub job_runs: chrono::Duration,
}

impl Retention {
    /// `now` minus `keep`, never before 1970 (nothing stored is older,
    /// and a retention of millennia must keep everything, not overflow).
    pub fn before(&self, now: DateTime<Utc>, keep: chrono::Duration) -> DateTime<Utc> {
        now.checked_sub_signed(keep)
            .filter(|t| *t > DateTime::<Utc>::UNIX_EPOCH)
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            delivery_marks: chrono::Duration::days(30),
            job_runs: chrono::Duration::days(90),
        }
    }
}

/// What housekeeping deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Purged {
    /// Idempotency keys past their expiry.
    pub idempotency_keys: u64,
    /// Delivery marks older than their retention.
    pub delivery_marks: u64,
    /// Finished job runs older than their retention.
    pub job_runs: u64,
}

/// What marks a delivery mark in [`SyncState`](crate::ports::SyncState):
/// a watermark whose name holds
/// `.done.` records one delivered message (`salesforce.outbound.done.<id>`,
/// `pipedrive.webhook.done.<id>`) and may be purged after
/// [`Retention::delivery_marks`]; every other watermark is kept.
pub const DELIVERY_MARK: &str = ".done.";

/// Job runs and housekeeping.
///
/// # Contract
///
/// - [`save_run`](JobStore::save_run) inserts or replaces the run with
///   its id; [`runs`](JobStore::runs) lists a job's runs newest first (by
///   [`JobRun::queued_at`]), at most `limit`.
/// - [`purge`](JobStore::purge) deletes idempotency keys that expired at
///   or before `now`, delivery marks ([`DELIVERY_MARK`]) last written
///   before `now - retention.delivery_marks`, and finished runs that
///   ended before `now - retention.job_runs`; nothing else.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Stores `run` (insert or replace by id).
    async fn save_run(&self, run: &JobRun) -> Result<()>;
    /// One run.
    async fn get_run(&self, id: Uuid) -> Result<Option<JobRun>>;
    /// A job's latest runs, newest first.
    async fn runs(&self, job: &str, limit: usize) -> Result<Vec<JobRun>>;
    /// Deletes what has outlived its use (see the contract).
    async fn purge(&self, now: DateTime<Utc>, retention: &Retention) -> Result<Purged>;
}
