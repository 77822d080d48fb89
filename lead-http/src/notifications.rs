//! Notifications for people (`/api/notifications/…`): the consumers'
//! backlog, the notifications given up on (a Slack webhook removed, a
//! subscriber gone), and another try for one of them once its cause is
//! fixed (only the channels that had not taken it get it). Reads need the
//! `read` scope, a retry `write`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lead_core::Error;
use serde::{Deserialize, Serialize};

use crate::auth::{ReadAccess, WriteAccess};
use crate::docs::{ReadErrors, WriteErrors};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::{AppState, NotifyAccess};
use crate::sync::{
    DeadLetterDoc, DeadLetterList, DeadLetterParams, Requeued, limit_of, list_dead_letters,
    requeue_dead_letter,
};

/// One consumer's queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotifyQueueView {
    /// `notify` (Slack, e-mail) or `webhooks`.
    pub destination: String,
    /// Notifications waiting (new or to be retried).
    pub backlog: u64,
    /// Notifications given up on.
    pub dead_letters: u64,
}

/// `GET /api/notifications/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotifyStatusView {
    /// Always `true`.
    pub success: bool,
    /// The configured channels (`slack`, `email`, `webhook:<name>`).
    pub channels: Vec<String>,
    /// Each consumer's queue.
    pub queues: Vec<NotifyQueueView>,
}

fn access(state: &AppState) -> ApiResult<&NotifyAccess> {
    state.notifications().ok_or_else(|| {
        ApiError::Core(Error::NotFound(
            "no notification channel is configured on this server".into(),
        ))
    })
}

/// `GET /api/notifications/status`: the channels and each consumer's
/// backlog and dead letters.
#[utoipa::path(
    get,
    path = "/api/notifications/status",
    operation_id = "notification_status",
    tag = "notifications",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Channels and queues", body = NotifyStatusView),
        (status = 404, description = "No notification channel on this server", body = ErrorBody),
        ReadErrors,
    ),
)]
pub(crate) async fn status(
    _: ReadAccess,
    State(state): State<AppState>,
) -> ApiResult<Json<NotifyStatusView>> {
    let notify = access(&state)?;
    let mut queues = Vec::new();
    for destination in &notify.destinations {
        queues.push(NotifyQueueView {
            destination: destination.as_str().to_owned(),
            backlog: notify.outbox.pending_count(destination).await?,
            dead_letters: notify.outbox.dead_count(destination).await?,
        });
    }
    Ok(Json(NotifyStatusView {
        success: true,
        channels: notify.channels.clone(),
        queues,
    }))
}

/// `GET /api/notifications/dead-letters`: notifications given up on, of
/// every consumer, oldest first, each with the channels' last errors.
#[utoipa::path(
    get,
    path = "/api/notifications/dead-letters",
    operation_id = "list_notification_dead_letters",
    tag = "notifications",
    security(("api_key" = [])),
    params(DeadLetterDoc),
    responses(
        (status = 200, description = "Dead letters, oldest first", body = DeadLetterList),
        (status = 404, description = "No notification channel on this server", body = ErrorBody),
        ReadErrors,
    ),
)]
pub(crate) async fn dead_letters(
    _: ReadAccess,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<DeadLetterParams>,
) -> ApiResult<Json<DeadLetterList>> {
    let limit = limit_of(&params)?;
    let notify = access(&state)?;
    Ok(Json(
        list_dead_letters(&*notify.outbox, &notify.destinations, limit).await?,
    ))
}

/// `POST /api/notifications/dead-letters/{id}/retry`: the notification
/// goes back in its queue with a fresh retry budget; channels that took
/// it before do not get it again.
#[utoipa::path(
    post,
    path = "/api/notifications/dead-letters/{id}/retry",
    operation_id = "retry_notification_dead_letter",
    tag = "notifications",
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
    let notify = access(&state)?;
    let now = state.deps().clock.now();
    requeue_dead_letter(
        &*notify.outbox,
        &notify.destinations,
        &id,
        now,
        "queued again: its consumer sends it at its next run, to the channels that did not take it",
    )
    .await
}
