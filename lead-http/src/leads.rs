//! The lead API (`/api/leads…`) and the dashboard API (`/api/dashboard/…`).
//! Reads need a key with the `read` scope, changes one with `write`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use lead_core::usecase::{self, AssignTo};
use lead_core::{
    ChangeOrigin, Cursor, Error, EventKind, FieldError, Lead, LeadEvent, LeadExtId, LeadPage,
    LeadQuery, Priority, RepId, Stage,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::{ReadAccess, WriteAccess};
use crate::docs::{ReadErrors, WriteErrors};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// Largest page of `GET /api/leads` and `recent-leads`.
const MAX_LIMIT: usize = 200;
/// Longest look-back of the statistics and dashboard, in days.
const MAX_DAYS: i64 = 3650;

/// `GET /api/leads` query parameters (all optional).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListParams {
    stage: Option<String>,
    priority: Option<String>,
    assigned_to: Option<String>,
    source: Option<String>,
    segment: Option<String>,
    /// Text in e-mail, names or company.
    q: Option<String>,
    created_from: Option<String>,
    created_to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// Collects every bad parameter before answering, so one `422` names them
/// all.
#[derive(Default)]
pub(crate) struct Problems(Vec<FieldError>);

impl Problems {
    pub(crate) fn take<T>(&mut self, result: Result<T, Error>, field: &str) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(Error::Invalid { fields }) => {
                self.0.extend(fields.into_iter().map(|mut f| {
                    f.field = field.to_owned();
                    f
                }));
                None
            }
            Err(other) => {
                self.0
                    .push(FieldError::new(field, "invalid", other.to_string()));
                None
            }
        }
    }

    pub(crate) fn finish(self) -> ApiResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Core(Error::Invalid { fields: self.0 }))
        }
    }
}

fn instant(raw: &str, field: &str) -> Result<DateTime<Utc>, Error> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            Error::invalid(
                field,
                "invalid_date",
                "a date (2026-11-25) or an RFC 3339 instant",
            )
        })
}

pub(crate) fn number(raw: &str, field: &str, max: usize) -> Result<usize, Error> {
    raw.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| Error::invalid(field, "out_of_range", format!("a number from 1 to {max}")))
}

impl ListParams {
    fn query(&self) -> ApiResult<LeadQuery> {
        let mut p = Problems::default();
        let mut query = LeadQuery::default();
        if let Some(s) = &self.stage {
            query.stage = p.take(Stage::parse(s), "stage");
        }
        if let Some(s) = &self.priority {
            query.priority = p.take(Priority::parse(s), "priority");
        }
        if let Some(s) = &self.assigned_to {
            query.assigned_to = p.take(RepId::parse(s), "assigned_to");
        }
        for (field, value) in [
            ("source", &self.source),
            ("segment", &self.segment),
            ("q", &self.q),
        ] {
            if let Some(value) = value {
                p.take(lead_core::check_text(field, value), field);
            }
        }
        query.source = self.source.clone().filter(|s| !s.is_empty());
        query.segment = self.segment.clone().filter(|s| !s.is_empty());
        query.text = self.q.clone().filter(|s| !s.is_empty());
        if let Some(s) = &self.created_from {
            query.created_from = p.take(instant(s, "created_from"), "created_from");
        }
        if let Some(s) = &self.created_to {
            query.created_to = p.take(instant(s, "created_to"), "created_to");
        }
        if let Some(s) = &self.limit {
            query.limit = p.take(number(s, "limit", MAX_LIMIT), "limit");
        }
        if let Some(s) = &self.cursor {
            query.cursor = p.take(Cursor::parse(s), "cursor");
        }
        p.finish()?;
        Ok(query)
    }
}

/// One page of leads.
#[derive(Debug, Serialize)]
pub(crate) struct Page {
    leads: Vec<Lead>,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

impl From<LeadPage> for Page {
    fn from(page: LeadPage) -> Self {
        Page {
            leads: page.leads,
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }
    }
}

/// `GET /api/leads`.
#[utoipa::path(
    get,
    path = "/api/leads",
    tag = "leads",
    security(("api_key" = [])),
    params(
        ("stage" = Option<String>, Query, description = "new, contacted, qualified, proposal, negotiation, won, lost, unqualified"),
        ("priority" = Option<String>, Query, description = "low, medium, high"),
        ("assigned_to" = Option<String>, Query, description = "A rep's e-mail"),
        ("source" = Option<String>, Query, description = "Source, case-insensitive"),
        ("segment" = Option<String>, Query, description = "A segment name"),
        ("q" = Option<String>, Query, description = "Text in e-mail, names or company"),
        ("created_from" = Option<String>, Query, description = "Date or RFC 3339 instant, inclusive"),
        ("created_to" = Option<String>, Query, description = "Date or RFC 3339 instant, exclusive"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 200 (default 50)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of leads, newest first", body = Object),
        ReadErrors,
    ),
)]
pub(crate) async fn list(
    _: ReadAccess,
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Page>> {
    let query = params.query()?;
    Ok(Json(state.deps().store.list(&query).await?.into()))
}

fn ext_id(raw: &str) -> ApiResult<LeadExtId> {
    // An id that cannot exist is simply not found.
    LeadExtId::parse(raw).map_err(|_| ApiError::Core(Error::NotFound(format!("lead {raw}"))))
}

/// `GET /api/leads/{lead_ext_id}`: the lead with its score breakdown,
/// BANT evidence, routing explanation and history.
#[utoipa::path(
    get,
    path = "/api/leads/{lead_ext_id}",
    tag = "leads",
    security(("api_key" = [])),
    params(("lead_ext_id" = String, Path, description = "The lead id (WEB-XXXXXXXX)")),
    responses(
        (status = 200, description = "The lead with score breakdown, BANT evidence, routing explanation and history", body = Object),
        (status = 404, description = "No such lead", body = ErrorBody),
        ReadErrors,
    ),
)]
pub(crate) async fn get(
    _: ReadAccess,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Lead>> {
    let id = ext_id(&id)?;
    state
        .deps()
        .store
        .get(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::Core(Error::NotFound(format!("lead {id}"))))
}

/// The version a change is conditional on: `expected_version` in the body,
/// else an `If-Match` header (`"3"` or `3`).
fn expected_version(body: Option<u64>, headers: &HeaderMap) -> ApiResult<Option<u64>> {
    if body.is_some() {
        return Ok(body);
    }
    let Some(value) = headers.get(http::header::IF_MATCH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|v| v.parse().ok())
        .map(Some)
        .ok_or_else(|| ApiError::Malformed("If-Match must hold the lead's version".into()))
}

/// `PUT …/stage` body.
#[derive(Debug, Deserialize)]
pub(crate) struct StageBody {
    stage: String,
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    expected_version: Option<u64>,
}

/// A JSON body whose rejections answer in the error shape (`415` without
/// a JSON content type, `400` when it does not parse as `T`).
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S, T> axum::extract::FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(axum::extract::rejection::JsonRejection::MissingJsonContentType(_)) => {
                Err(ApiError::UnsupportedMediaType)
            }
            Err(rejection) => Err(ApiError::Malformed(rejection.body_text())),
        }
    }
}

/// `PUT /api/leads/{lead_ext_id}/stage`: moves the lead along the pipeline
/// (transition rules apply; a stale `expected_version` is `409`).
#[utoipa::path(
    put,
    path = "/api/leads/{lead_ext_id}/stage",
    tag = "leads",
    security(("api_key" = [])),
    params(("lead_ext_id" = String, Path, description = "The lead id (WEB-XXXXXXXX)"), ("If-Match" = Option<String>, Header, description = "The version the change is based on")),
    request_body(description = "{stage, notes?, expected_version?}", content((serde_json::Value = "application/json"))),
    responses(
        (status = 200, description = "The updated lead", body = Object),
        WriteErrors,
    ),
)]
pub(crate) async fn put_stage(
    _: WriteAccess,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<StageBody>,
) -> ApiResult<Json<Lead>> {
    let id = ext_id(&id)?;
    let stage = Stage::parse(&body.stage).map_err(ApiError::Core)?;
    let version = expected_version(body.expected_version, &headers)?;
    let lead = usecase::change_stage(
        &id,
        stage,
        body.notes,
        ChangeOrigin::Local,
        version,
        state.policy(),
        state.deps(),
    )
    .await?;
    Ok(Json(lead))
}

/// `PUT …/assign` body: a rep, or `{"route": true}` to let routing choose.
#[derive(Debug, Deserialize)]
pub(crate) struct AssignBody {
    #[serde(default)]
    assigned_to: Option<String>,
    #[serde(default)]
    route: bool,
    #[serde(default)]
    expected_version: Option<u64>,
}

/// `PUT /api/leads/{lead_ext_id}/assign`.
#[utoipa::path(
    put,
    path = "/api/leads/{lead_ext_id}/assign",
    tag = "leads",
    security(("api_key" = [])),
    params(("lead_ext_id" = String, Path, description = "The lead id (WEB-XXXXXXXX)"), ("If-Match" = Option<String>, Header, description = "The version the change is based on")),
    request_body(description = "{assigned_to: rep e-mail} or {route: true}, optional expected_version", content((serde_json::Value = "application/json"))),
    responses(
        (status = 200, description = "The updated lead", body = Object),
        WriteErrors,
    ),
)]
pub(crate) async fn put_assign(
    _: WriteAccess,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AssignBody>,
) -> ApiResult<Json<Lead>> {
    let id = ext_id(&id)?;
    let to = match (&body.assigned_to, body.route) {
        (Some(rep), false) => AssignTo::Rep(RepId::parse(rep).map_err(|e| {
            ApiError::Core(match e {
                Error::Invalid { .. } => Error::invalid(
                    "assigned_to",
                    "invalid_rep",
                    "a rep is named by e-mail address",
                ),
                other => other,
            })
        })?),
        (None, true) => AssignTo::Route,
        _ => {
            return Err(ApiError::Core(Error::invalid(
                "assigned_to",
                "required",
                "give assigned_to (a rep's e-mail) or route: true",
            )));
        }
    };
    let version = expected_version(body.expected_version, &headers)?;
    let lead = usecase::assign(
        &id,
        to,
        ChangeOrigin::Local,
        version,
        state.policy(),
        state.deps(),
    )
    .await?;
    Ok(Json(lead))
}

/// `POST …/events` body.
#[derive(Debug, Deserialize)]
pub(crate) struct EventBody {
    kind: String,
    #[serde(default)]
    at: Option<DateTime<Utc>>,
    #[serde(default)]
    properties: Map<String, Value>,
}

/// `POST /api/leads/{lead_ext_id}/events`: records a behavioral event and
/// re-scores the lead.
#[utoipa::path(
    post,
    path = "/api/leads/{lead_ext_id}/events",
    tag = "leads",
    security(("api_key" = [])),
    params(("lead_ext_id" = String, Path, description = "The lead id (WEB-XXXXXXXX)")),
    request_body(description = "{kind, at?, properties?}; kinds demo_request, webinar_register, form_submit, pricing_view, download, email_click, page_visit", content((serde_json::Value = "application/json"))),
    responses(
        (status = 201, description = "The re-scored lead", body = Object),
        WriteErrors,
    ),
)]
pub(crate) async fn post_event(
    _: WriteAccess,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EventBody>,
) -> ApiResult<(StatusCode, Json<Lead>)> {
    let id = ext_id(&id)?;
    let kind = EventKind::parse(&body.kind).map_err(ApiError::Core)?;
    let event = LeadEvent {
        kind,
        at: body.at.unwrap_or_else(|| state.deps().clock.now()),
        properties: body.properties,
    };
    let lead = usecase::record_event(&id, event, state.policy(), state.deps()).await?;
    Ok((StatusCode::CREATED, Json(lead)))
}

/// `?days=30&limit=20` of the statistics and dashboard routes.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WindowParams {
    days: Option<String>,
    limit: Option<String>,
}

impl WindowParams {
    fn since(&self, state: &AppState) -> ApiResult<DateTime<Utc>> {
        let days = match &self.days {
            Some(d) => number(d, "days", MAX_DAYS as usize).map_err(ApiError::Core)? as i64,
            None => 30,
        };
        Ok(state.deps().clock.now() - chrono::Duration::days(days))
    }

    fn limit(&self) -> ApiResult<usize> {
        match &self.limit {
            Some(l) => number(l, "limit", MAX_LIMIT).map_err(ApiError::Core),
            None => Ok(20),
        }
    }
}

/// `GET /api/leads/statistics` and `GET /api/dashboard/summary`: pipeline
/// counts by stage, priority and source over the last `days`.
#[utoipa::path(
    get,
    path = "/api/leads/statistics",
    tag = "leads",
    security(("api_key" = [])),
    params(("days" = Option<u32>, Query, description = "Look back this many days (default 30)"), ("limit" = Option<u32>, Query, description = "At most this many rows (default 20)")),
    responses(
        (status = 200, description = "Counts by stage, priority and source; average score", body = Object),
        ReadErrors,
    ),
)]
pub(crate) async fn statistics(
    _: ReadAccess,
    State(state): State<AppState>,
    Query(params): Query<WindowParams>,
) -> ApiResult<Json<lead_core::ports::PipelineStats>> {
    let since = params.since(&state)?;
    Ok(Json(state.deps().store.dashboard(since, 0).await?.stats))
}

/// `GET /api/dashboard/summary`: the same figures as the statistics.
#[utoipa::path(
    get,
    path = "/api/dashboard/summary",
    tag = "dashboard",
    security(("api_key" = [])),
    params(("days" = Option<u32>, Query, description = "Look back this many days (default 30)"), ("limit" = Option<u32>, Query, description = "At most this many rows (default 20)")),
    responses(
        (status = 200, description = "Counts by stage, priority and source; average score", body = Object),
        ReadErrors,
    ),
)]
pub(crate) async fn summary(
    access: ReadAccess,
    state: State<AppState>,
    params: Query<WindowParams>,
) -> ApiResult<Json<lead_core::ports::PipelineStats>> {
    statistics(access, state, params).await
}

/// `GET /api/dashboard/funnel`: how many leads reached each open stage.
#[utoipa::path(
    get,
    path = "/api/dashboard/funnel",
    tag = "dashboard",
    security(("api_key" = [])),
    params(("days" = Option<u32>, Query, description = "Look back this many days (default 30)"), ("limit" = Option<u32>, Query, description = "At most this many rows (default 20)")),
    responses(
        (status = 200, description = "Leads that reached each open stage", body = Object),
        ReadErrors,
    ),
)]
pub(crate) async fn funnel(
    _: ReadAccess,
    State(state): State<AppState>,
    Query(params): Query<WindowParams>,
) -> ApiResult<Json<Value>> {
    let since = params.since(&state)?;
    let dashboard = state.deps().store.dashboard(since, 0).await?;
    let steps: Vec<Value> = dashboard
        .funnel
        .iter()
        .map(|(stage, count)| serde_json::json!({"stage": stage.as_str(), "count": count}))
        .collect();
    Ok(Json(serde_json::json!({ "funnel": steps })))
}

/// `GET /api/dashboard/recent-leads`: the newest `limit` leads.
#[utoipa::path(
    get,
    path = "/api/dashboard/recent-leads",
    tag = "dashboard",
    security(("api_key" = [])),
    params(("days" = Option<u32>, Query, description = "Look back this many days (default 30)"), ("limit" = Option<u32>, Query, description = "At most this many rows (default 20)")),
    responses(
        (status = 200, description = "The newest leads", body = Object),
        ReadErrors,
    ),
)]
pub(crate) async fn recent_leads(
    _: ReadAccess,
    State(state): State<AppState>,
    Query(params): Query<WindowParams>,
) -> ApiResult<Json<Page>> {
    let query = LeadQuery {
        limit: Some(params.limit()?),
        ..LeadQuery::default()
    };
    Ok(Json(state.deps().store.list(&query).await?.into()))
}

/// `GET /api/dashboard/top-performers`: reps by won leads.
#[utoipa::path(
    get,
    path = "/api/dashboard/top-performers",
    tag = "dashboard",
    security(("api_key" = [])),
    params(("days" = Option<u32>, Query, description = "Look back this many days (default 30)"), ("limit" = Option<u32>, Query, description = "At most this many rows (default 20)")),
    responses(
        (status = 200, description = "Reps by won leads", body = Object),
        ReadErrors,
    ),
)]
pub(crate) async fn top_performers(
    _: ReadAccess,
    State(state): State<AppState>,
    Query(params): Query<WindowParams>,
) -> ApiResult<Json<Value>> {
    let since = params.since(&state)?;
    let dashboard = state.deps().store.dashboard(since, params.limit()?).await?;
    Ok(Json(
        serde_json::json!({ "top_performers": dashboard.top_performers }),
    ))
}

/// `GET /api/dashboard/source-performance`: leads, score and wins by source.
#[utoipa::path(
    get,
    path = "/api/dashboard/source-performance",
    tag = "dashboard",
    security(("api_key" = [])),
    params(("days" = Option<u32>, Query, description = "Look back this many days (default 30)"), ("limit" = Option<u32>, Query, description = "At most this many rows (default 20)")),
    responses(
        (status = 200, description = "Leads, score and wins by source", body = Object),
        ReadErrors,
    ),
)]
pub(crate) async fn source_performance(
    _: ReadAccess,
    State(state): State<AppState>,
    Query(params): Query<WindowParams>,
) -> ApiResult<Json<Value>> {
    let since = params.since(&state)?;
    let dashboard = state.deps().store.dashboard(since, 0).await?;
    Ok(Json(
        serde_json::json!({ "source_performance": dashboard.source_performance }),
    ))
}
