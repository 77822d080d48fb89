//! The scheduled jobs for people (`/api/jobs…`): every job with its
//! schedule and last run, a job's recent runs, and a run asked for now.
//! Reads need the `read` scope, a run `write`. The jobs themselves live in
//! the server ([`JobControl`] is how these routes reach them).

use std::sync::Arc;

use async_trait::async_trait;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use lead_core::Error;
use lead_core::ports::JobRun;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{ReadAccess, WriteAccess};
use crate::docs::{ReadErrors, WriteErrors};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

/// Most runs one `GET /api/jobs/{name}/runs` lists.
const MAX_LIMIT: usize = 200;

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
#[async_trait]
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

/// `GET /api/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobList {
    /// Always `true`.
    pub success: bool,
    /// The jobs.
    pub jobs: Vec<JobView>,
}

/// `GET /api/jobs/{name}/runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobRunList {
    /// Always `true`.
    pub success: bool,
    /// Newest first.
    pub runs: Vec<JobRunView>,
}

/// `POST /api/jobs/{name}/run`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobQueued {
    /// Always `true`.
    pub success: bool,
    /// The run's id (find it in `GET /api/jobs/{name}/runs`).
    pub run_id: Uuid,
    /// The job.
    pub job: String,
    /// `queued`.
    pub status: String,
}

/// `?limit=` of the runs listing.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RunsQuery {
    /// Most runs to list (1-200, default 20).
    pub(crate) limit: Option<usize>,
}

fn control(state: &AppState) -> Result<&Arc<dyn JobControl>, ApiError> {
    state.jobs().ok_or_else(|| {
        ApiError::Core(Error::NotFound(
            "the scheduled jobs are not part of this server".into(),
        ))
    })
}

/// `GET /api/jobs`: every job, its schedule, whether it runs here, its
/// next due time and last run.
#[utoipa::path(
    get,
    path = "/api/jobs",
    operation_id = "list_jobs",
    tag = "jobs",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The jobs", body = JobList),
        (status = 404, description = "No scheduled jobs on this server", body = ErrorBody),
        ReadErrors,
    ),
)]
pub(crate) async fn list(_: ReadAccess, State(state): State<AppState>) -> ApiResult<Json<JobList>> {
    let jobs = control(&state)?.jobs().await?;
    Ok(Json(JobList {
        success: true,
        jobs,
    }))
}

/// `GET /api/jobs/{name}/runs`: the job's latest runs, newest first.
#[utoipa::path(
    get,
    path = "/api/jobs/{name}/runs",
    operation_id = "list_job_runs",
    tag = "jobs",
    security(("api_key" = [])),
    params(("name" = String, Path, description = "The job's name"), RunsQuery),
    responses(
        (status = 200, description = "Runs, newest first", body = JobRunList),
        (status = 404, description = "No such job", body = ErrorBody),
        ReadErrors,
    ),
)]
pub(crate) async fn runs(
    _: ReadAccess,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> ApiResult<Json<JobRunList>> {
    let limit = query.limit.unwrap_or(20).clamp(1, MAX_LIMIT);
    let runs = control(&state)?.runs(&name, limit).await?;
    Ok(Json(JobRunList {
        success: true,
        runs: runs.into_iter().map(JobRunView::from).collect(),
    }))
}

/// `POST /api/jobs/{name}/run`: queues a run now; a worker of any
/// instance takes it. Follow it in `GET /api/jobs/{name}/runs`.
#[utoipa::path(
    post,
    path = "/api/jobs/{name}/run",
    operation_id = "run_job",
    tag = "jobs",
    security(("api_key" = [])),
    params(("name" = String, Path, description = "The job's name")),
    responses(
        (status = 202, description = "Queued", body = JobQueued),
        (status = 404, description = "No such job", body = ErrorBody),
        WriteErrors,
    ),
)]
pub(crate) async fn run_now(
    _: WriteAccess,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<JobQueued>)> {
    let run = control(&state)?.run_now(&name).await?;
    tracing::info!(job = %name, run = %run.id, "job run asked for");
    Ok((
        StatusCode::ACCEPTED,
        Json(JobQueued {
            success: true,
            run_id: run.id,
            job: run.job,
            status: run.status.as_str().to_owned(),
        }),
    ))
}
