//! What the job routes (`jobs.rs`) ask the server, and the shapes they
//! answer: kept apart from the routes so the application state can hold a
//! [`JobControl`] without importing the routes.

use chrono::{DateTime, Utc};
use lead_core::ports::JobRun;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A job as the server knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobView {
    /// The job's name (`lead_deduplication`).
    pub name: String,
    /// Five-field cron expression, UTC.
    pub schedule: String,
    /// Whether the scheduler runs it.
    pub enabled: bool,
    /// Why not, when it does not.
    pub disabled_because: Option<String>,
    /// What a run does.
    pub description: String,
    /// Its next due time (enabled jobs).
    pub next_due_at: Option<DateTime<Utc>>,
    /// Its latest run.
    pub last_run: Option<JobRunView>,
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobRunView {
    /// The run's id.
    pub id: Uuid,
    /// The job.
    pub job: String,
    /// `schedule`, `manual` (this API) or `cli`.
    pub trigger: String,
    /// The schedule's time the run is for (scheduled runs).
    pub due_at: Option<DateTime<Utc>>,
    /// When it was asked for.
    pub queued_at: DateTime<Utc>,
    /// When its last attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    /// Attempts started (a crashed attempt is run again).
    pub attempts: u32,
    /// What it did (`leads`, `merged`, `assigned`…).
    #[schema(value_type = Object)]
    pub counts: std::collections::BTreeMap<String, u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The instance that ran its last attempt.
    pub worker: Option<String>,
}

impl From<JobRun> for JobRunView {
    fn from(run: JobRun) -> Self {
        let trigger = serde_json::to_value(run.trigger)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        JobRunView {
            id: run.id,
            job: run.job,
            trigger,
            due_at: run.due_at,
            queued_at: run.queued_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            status: run.status.as_str().to_owned(),
            attempts: run.attempts,
            counts: run.counts,
            error: run.error,
            worker: run.worker,
        }
    }
}

/// What the job routes ask the server.
#[async_trait::async_trait]
pub trait JobControl: Send + Sync + std::fmt::Debug {
    /// Every job, in a stable order.
    async fn jobs(&self) -> lead_core::Result<Vec<JobView>>;
    /// `job`'s latest runs, newest first ([`Error::NotFound`] for an
    /// unknown job).
    async fn runs(&self, job: &str, limit: usize) -> lead_core::Result<Vec<JobRun>>;
    /// Queues a run of `job` now and returns its record
    /// ([`Error::NotFound`] for an unknown job).
    async fn run_now(&self, job: &str) -> lead_core::Result<JobRun>;
}
