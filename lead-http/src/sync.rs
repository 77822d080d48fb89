//! The CRM sync for people (`/api/sync/…`): where the worker is (last
//! push and pull, the watermark, the backlog, the credentials check), the
//! entries it gave up on, and another try for one of them once its cause
//! is fixed. Reads need the `read` scope, a retry `write`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use lead_core::sync::{PullConfig, RunRecord};
use lead_core::{DeadLetter, Destination, Error, OutboxStore};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::{ReadAccess, WriteAccess};
use crate::docs::{ReadErrors, WriteErrors};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::leads::number;
use crate::state::{AppState, SyncAccess};

/// Most dead letters one `GET /api/sync/dead-letters` lists.
const MAX_LIMIT: usize = 500;

/// One run of the worker, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunView {
    /// When it ended.
    pub at: DateTime<Utc>,
    /// Whether it ran through (items it could not deliver are counted in
    /// `report`, not a failed run).
    pub ok: bool,
    /// Its counts (claimed, synced, retried, dead-lettered… for a push;
    /// fetched, applied, kept local… for a pull).
    #[schema(value_type = Option<Object>)]
    pub report: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
}

impl<R: Serialize> From<RunRecord<R>> for RunView {
    fn from(run: RunRecord<R>) -> Self {
        RunView {
            at: run.at,
            ok: run.error.is_none(),
            report: run.report.and_then(|r| serde_json::to_value(r).ok()),
            error: run.error,
        }
    }
}

/// The last credentials check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuthView {
    /// When.
    pub at: DateTime<Utc>,
    /// Whether the CRM gave us a session.
    pub ok: bool,
    /// The CRM's reason when it did not (never the credentials).
    pub error: Option<String>,
}

/// `GET /api/sync/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncStatusView {
    /// Always `true`.
    pub success: bool,
    /// The configured CRM (`salesforce`), `null` when none is: changes
    /// then wait in the queue for one.
    pub crm: Option<String>,
    /// Changes waiting for the CRM (due now or retrying later).
    pub backlog: u64,
    /// Changes given up on (`GET /api/sync/dead-letters`).
    pub dead_letters: u64,
    /// Where the next pull starts (the CRM's own position).
    pub watermark: Option<String>,
    /// This instance's last push run.
    pub last_push: Option<RunView>,
    /// This instance's last push run that had something to do.
    pub last_busy_push: Option<RunView>,
    /// This instance's last pull run.
    pub last_pull: Option<RunView>,
    /// This instance's last credentials check.
    pub auth: Option<AuthView>,
}

/// A change given up on, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetterView {
    /// Its id (`POST /api/sync/dead-letters/{id}/retry`).
    pub id: Uuid,
    /// Its consumer (`crm`).
    pub destination: String,
    /// The lead it is about.
    pub lead_ext_id: String,
    /// What changed (`lead_created`, `follow_up_created`, …).
    pub kind: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last error: the CRM's reason, or why it was never sent.
    pub error: String,
    /// When the change was made.
    pub created_at: DateTime<Utc>,
    /// When it was given up on.
    pub parked_at: DateTime<Utc>,
    /// The change's details.
    #[schema(value_type = Object)]
    pub payload: Value,
}

impl From<DeadLetter> for DeadLetterView {
    fn from(dead: DeadLetter) -> Self {
        let kind = serde_json::to_value(dead.entry.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        DeadLetterView {
            id: dead.entry.id,
            destination: dead.entry.destination.as_str().to_owned(),
            lead_ext_id: dead.entry.lead.to_string(),
            kind,
            attempts: dead.attempts,
            error: dead.error,
            created_at: dead.entry.created_at,
            parked_at: dead.parked_at,
            payload: dead.entry.payload,
        }
    }
}

/// `GET /api/sync/dead-letters`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetterList {
    /// Always `true`.
    pub success: bool,
    /// Dead letters in this answer.
    pub count: usize,
    /// All there are (the list shows the oldest `limit`).
    pub total: u64,
    /// Oldest first.
    pub dead_letters: Vec<DeadLetterView>,
}

/// `POST /api/sync/dead-letters/{id}/retry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Requeued {
    /// Always `true`.
    pub success: bool,
    /// The change, queued again.
    pub id: Uuid,
    /// What happens next.
    pub message: String,
}

/// `?limit=100`, documented.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only
pub(crate) struct DeadLetterDoc {
    /// At most this many, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// `?limit=100`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DeadLetterParams {
    limit: Option<String>,
}

impl DeadLetterParams {
    /// The `limit` as given.
    pub(crate) fn limit(&self) -> Option<&str> {
        self.limit.as_deref()
    }
}

fn access(state: &AppState) -> ApiResult<&SyncAccess> {
    state.sync().ok_or_else(|| {
        ApiError::Core(Error::NotFound(
            "the CRM sync is not part of this server".into(),
        ))
    })
}

/// `GET /api/sync/status`: the last push and pull of this instance, the
/// shared queue's backlog and dead letters, the pull's watermark.
#[utoipa::path(
    get,
    path = "/api/sync/status",
    operation_id = "sync_status",
    tag = "sync",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Where the sync is", body = SyncStatusView),
        (status = 404, description = "No CRM sync on this server", body = ErrorBody),
        ReadErrors,
    ),
)]
pub(crate) async fn status(
    _: ReadAccess,
    State(state): State<AppState>,
) -> ApiResult<Json<SyncStatusView>> {
    let sync = access(&state)?;
    let backlog = sync.outbox.pending_count(&Destination::CRM).await?;
    let dead_letters = sync.outbox.dead_count(&Destination::CRM).await?;
    let watermark = sync
        .state
        .watermark(&PullConfig::default().watermark)
        .await?;
    let seen = sync.monitor.seen();
    Ok(Json(SyncStatusView {
        success: true,
        crm: sync.monitor.crm().map(str::to_owned),
        backlog,
        dead_letters,
        watermark,
        last_push: seen.last_push.map(RunView::from),
        last_busy_push: seen.last_busy_push.map(RunView::from),
        last_pull: seen.last_pull.map(RunView::from),
        auth: seen.auth.map(|a| AuthView {
            at: a.at,
            ok: a.ok,
            error: a.error,
        }),
    }))
}

/// `GET /api/sync/dead-letters`: the CRM's changes given up on, oldest
/// first, each with the last error.
#[utoipa::path(
    get,
    path = "/api/sync/dead-letters",
    operation_id = "list_dead_letters",
    tag = "sync",
    security(("api_key" = [])),
    params(DeadLetterDoc),
    responses(
        (status = 200, description = "Dead letters, oldest first", body = DeadLetterList),
        (status = 404, description = "No CRM sync on this server", body = ErrorBody),
        ReadErrors,
    ),
)]
pub(crate) async fn dead_letters(
    _: ReadAccess,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<DeadLetterParams>,
) -> ApiResult<Json<DeadLetterList>> {
    let limit = limit_of(&params)?;
    let sync = access(&state)?;
    Ok(Json(
        list_dead_letters(&*sync.outbox, &[Destination::CRM], limit).await?,
    ))
}

/// The `?limit=` of a dead-letter list: 1 to [`MAX_LIMIT`], default 100.
pub(crate) fn limit_of(params: &DeadLetterParams) -> ApiResult<usize> {
    match params.limit() {
        Some(l) => number(l, "limit", MAX_LIMIT).map_err(ApiError::Core),
        None => Ok(100),
    }
}

/// The dead letters of `destinations` (one consumer's, or several),
/// oldest first, at most `limit`, and how many there are.
pub(crate) async fn list_dead_letters(
    outbox: &dyn OutboxStore,
    destinations: &[Destination],
    limit: usize,
) -> ApiResult<DeadLetterList> {
    let mut dead = Vec::new();
    let mut total = 0;
    for destination in destinations {
        let listed = outbox.dead_letters(destination, limit).await?;
        // Counted after the list: never fewer than it shows, even when a
        // letter was parked in between.
        total += outbox
            .dead_count(destination)
            .await?
            .max(listed.len() as u64);
        dead.extend(listed);
    }
    dead.sort_by_key(|d| d.parked_at);
    dead.truncate(limit);
    Ok(DeadLetterList {
        success: true,
        count: dead.len(),
        total,
        dead_letters: dead.into_iter().map(DeadLetterView::from).collect(),
    })
}

/// Puts the dead letter `id` (as given in the path) of whichever of
/// `destinations` holds it back in its queue; `message` says what happens
/// next.
pub(crate) async fn requeue_dead_letter(
    outbox: &dyn OutboxStore,
    destinations: &[Destination],
    id: &str,
    now: DateTime<Utc>,
    message: &str,
) -> ApiResult<(StatusCode, Json<Requeued>)> {
    let not_found = || ApiError::Core(Error::NotFound(format!("dead letter {id}")));
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    for destination in destinations {
        match outbox.requeue(destination, id, now).await {
            Ok(()) => {
                tracing::info!(%id, %destination, "dead letter queued again");
                return Ok((
                    StatusCode::ACCEPTED,
                    Json(Requeued {
                        success: true,
                        id,
                        message: message.to_owned(),
                    }),
                ));
            }
            Err(Error::NotFound(_)) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(not_found())
}

/// `POST /api/sync/dead-letters/{id}/retry`: the change goes back in the
/// queue with a fresh retry budget; the worker sends the lead or task as
/// it is now.
#[utoipa::path(
    post,
    path = "/api/sync/dead-letters/{id}/retry",
    operation_id = "retry_dead_letter",
    tag = "sync",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The dead letter's id")),
    responses(
        (status = 202, description = "Queued again", body = Requeued),
        WriteErrors,
    ),
)]
pub(crate) async fn retry(
    _: WriteAccess,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<Requeued>)> {
    let sync = access(&state)?;
    let now = state.deps().clock.now();
    requeue_dead_letter(
        &*sync.outbox,
        &[Destination::CRM],
        &id,
        now,
        "queued again: the sync worker sends it at its next run",
    )
    .await
}
