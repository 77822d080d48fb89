//! The scheduled jobs for people (`/api/jobs…`): every job with its
//! schedule and last run, a job's recent runs, and a run asked for now.
//! Reads need the `read` scope, a run `write`. The jobs themselves live in
//! the server ([`JobControl`] is how these routes reach them).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lead_core::Error;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{ReadAccess, WriteAccess};
use crate::docs::{ReadErrors, WriteErrors};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
pub use crate::job_control::{JobControl, JobRunView, JobView};
use crate::state::AppState;

/// Most runs one `GET /api/jobs/{name}/runs` lists.
const MAX_LIMIT: usize = 200;

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
