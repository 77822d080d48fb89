//! Follow-up tasks (`/api/followups…`): what each rep has to do and when,
//! and marking a task done or moving it. Reads need the `read` scope,
//! changes `write`.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use lead_core::usecase::{self, FollowUpChange};
use lead_core::{
    Error, FollowUpCursor, FollowUpQuery, FollowUpStatus, FollowUpTask, LeadExtId, RepId,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{ReadAccess, WriteAccess};
use crate::docs::{ReadErrors, WriteErrors};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::leads::{Problems, instant, number};
use crate::schema;
use crate::state::AppState;

/// Largest page of `GET /api/followups`.
const MAX_LIMIT: usize = 200;

/// A follow-up task as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FollowUpView {
    /// Task id.
    pub id: Uuid,
    /// The lead to follow up.
    pub lead_ext_id: String,
    /// The rep who should do it.
    pub assigned_to: Option<String>,
    /// The lead's priority when the task was planned.
    pub priority: String,
    /// When it is due.
    pub due_at: DateTime<Utc>,
    /// Title, as shown in the CRM.
    pub subject: String,
    /// `open`, `done` or `cancelled`.
    pub status: String,
    /// When it was planned.
    pub created_at: DateTime<Utc>,
    /// When it was marked done.
    pub completed_at: Option<DateTime<Utc>>,
    /// What the rep wrote.
    pub notes: Option<String>,
    /// When the follow-up automation marked it overdue (still open past
    /// its due time); `null` otherwise.
    pub overdue_at: Option<DateTime<Utc>>,
}

impl From<&FollowUpTask> for FollowUpView {
    fn from(task: &FollowUpTask) -> Self {
        FollowUpView {
            id: task.id,
            lead_ext_id: task.lead.to_string(),
            assigned_to: task.assigned_to.as_ref().map(|r| r.as_str().to_owned()),
            priority: task.priority.as_str().to_owned(),
            due_at: task.due_at,
            subject: task.subject.clone(),
            status: task.status.as_str().to_owned(),
            created_at: task.created_at,
            completed_at: task.completed_at,
            notes: task.notes.clone(),
            overdue_at: task.overdue_at,
        }
    }
}

/// A page of follow-up tasks, soonest due first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FollowUpList {
    /// Always `true`.
    pub success: bool,
    /// Tasks on this page.
    pub count: usize,
    /// The tasks, soonest due first.
    pub followups: Vec<FollowUpView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// `GET /api/followups` query parameters, documented.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only
pub(crate) struct FollowUpDoc {
    /// A rep's e-mail.
    #[param(schema_with = schema::email)]
    assigned_to: Option<String>,
    /// `open`, `done` or `cancelled`.
    #[param(schema_with = schema::followup_status)]
    status: Option<String>,
    /// A lead id (`WEB-XXXXXXXX`).
    #[param(schema_with = schema::lead_ext_id)]
    lead: Option<String>,
    /// Date (`2026-11-25`) or RFC 3339 instant, inclusive.
    #[param(schema_with = schema::date_or_instant)]
    due_from: Option<String>,
    /// Date or RFC 3339 instant, exclusive.
    #[param(schema_with = schema::date_or_instant)]
    due_to: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// `GET /api/followups` query parameters (all optional).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct FollowUpParams {
    assigned_to: Option<String>,
    status: Option<String>,
    lead: Option<String>,
    due_from: Option<String>,
    due_to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl FollowUpParams {
    fn query(&self) -> ApiResult<FollowUpQuery> {
        let mut p = Problems::default();
        let mut query = FollowUpQuery::default();
        if let Some(s) = &self.assigned_to {
            query.assigned_to = p.take(RepId::parse(s), "assigned_to");
        }
        if let Some(s) = &self.status {
            query.status = p.take(FollowUpStatus::parse(s), "status");
        }
        if let Some(s) = &self.lead {
            query.lead = p.take(LeadExtId::parse(s), "lead");
        }
        if let Some(s) = &self.due_from {
            query.due_from = p.take(instant(s, "due_from"), "due_from");
        }
        if let Some(s) = &self.due_to {
            query.due_to = p.take(instant(s, "due_to"), "due_to");
        }
        if let Some(s) = &self.limit {
            query.limit = p.take(number(s, "limit", MAX_LIMIT), "limit");
        }
        if let Some(s) = &self.cursor {
            query.cursor = p.take(FollowUpCursor::parse(s), "cursor");
        }
        p.finish()?;
        Ok(query)
    }
}

/// `GET /api/followups`: tasks by rep, status, lead and due range.
#[utoipa::path(
    get,
    path = "/api/followups",
    operation_id = "list_followups",
    tag = "followups",
    security(("api_key" = [])),
    params(FollowUpDoc),
    responses(
        (status = 200, description = "A page of tasks, soonest due first", body = FollowUpList),
        ReadErrors,
    ),
)]
pub(crate) async fn list(
    _: ReadAccess,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<FollowUpParams>,
) -> ApiResult<Json<FollowUpList>> {
    let page = state.deps().reads.followups(&params.query()?).await?;
    Ok(Json(FollowUpList {
        success: true,
        count: page.tasks.len(),
        followups: page.tasks.iter().map(FollowUpView::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// `PUT /api/followups/{id}` body: what changes (at least one field).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub(crate) struct FollowUpBody {
    /// `done` completes the task, `cancelled` drops it, `open` reopens it.
    #[serde(default)]
    #[schema(value_type = Option<String>, schema_with = schema::followup_status)]
    status: Option<String>,
    /// A new due time (RFC 3339).
    #[serde(default)]
    due_at: Option<DateTime<Utc>>,
    /// What the rep wrote.
    #[serde(default)]
    #[schema(schema_with = schema::optional_text)]
    notes: Option<String>,
}

/// `PUT /api/followups/{id}`: completes, cancels, reopens or reschedules a
/// task; the change is queued for the CRM.
#[utoipa::path(
    put,
    path = "/api/followups/{id}",
    operation_id = "put_followup",
    tag = "followups",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The task id")),
    request_body = FollowUpBody,
    responses(
        (status = 200, description = "The task after the change", body = FollowUpView),
        (status = 404, description = "No such task", body = ErrorBody),
        WriteErrors,
    ),
)]
pub(crate) async fn put(
    _: WriteAccess,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<FollowUpBody>,
) -> ApiResult<Json<FollowUpView>> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::Core(Error::NotFound(format!("follow-up {id}"))))?;
    let status = body
        .status
        .as_deref()
        .map(FollowUpStatus::parse)
        .transpose()?;
    let change = FollowUpChange {
        status,
        due_at: body.due_at,
        notes: body.notes,
    };
    let task = usecase::update_followup(id, &change, state.deps()).await?;
    Ok(Json(FollowUpView::from(&task)))
}
