//! The lead API (`/api/leads…`) and the dashboard API (`/api/dashboard/…`).
//! Reads need a key with the `read` scope, changes one with `write`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use lead_core::usecase::{self, AssignTo, LeadEdit};
use lead_core::{
    ChangeOrigin, Cursor, Error, EventKind, FieldError, LeadEvent, LeadExtId, LeadQuery, Priority,
    RepId, Stage,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::{ReadAccess, WriteAccess};
use crate::docs::{ReadErrors, WriteErrors};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::schema;
use crate::state::AppState;
use crate::view::{LeadDetail, LeadList};

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

/// `GET /api/leads` query parameters, documented.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only
pub(crate) struct ListDoc {
    /// Pipeline stage.
    #[param(schema_with = schema::stage)]
    stage: Option<String>,
    /// `low`, `medium` or `high`.
    #[param(schema_with = schema::priority)]
    priority: Option<String>,
    /// A rep's e-mail.
    #[param(schema_with = schema::email)]
    assigned_to: Option<String>,
    /// Source, case-insensitive.
    #[param(schema_with = schema::text)]
    source: Option<String>,
    /// A segment name (`score:premium`).
    #[param(schema_with = schema::text)]
    segment: Option<String>,
    /// Text in e-mail, names or company.
    #[param(schema_with = schema::text)]
    q: Option<String>,
    /// Date (`2026-11-25`) or RFC 3339 instant, inclusive.
    #[param(schema_with = schema::date_or_instant)]
    created_from: Option<String>,
    /// Date or RFC 3339 instant, exclusive.
    #[param(schema_with = schema::date_or_instant)]
    created_to: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
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

pub(crate) fn instant(raw: &str, field: &str) -> Result<DateTime<Utc>, Error> {
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

/// `GET /api/leads`.
#[utoipa::path(
    get,
    path = "/api/leads",
    operation_id = "list_leads",
    tag = "leads",
    security(("api_key" = [])),
    params(ListDoc),
    responses(
        (status = 200, description = "A page of leads, newest first", body = LeadList),
        ReadErrors,
    ),
)]
pub(crate) async fn list(
    _: ReadAccess,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<LeadList>> {
    let query = params.query()?;
    Ok(Json(state.deps().reads.list(&query).await?.into()))
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
    operation_id = "get_lead",
    tag = "leads",
    security(("api_key" = [])),
    params(("lead_ext_id" = String, Path, description = "The lead id (WEB-XXXXXXXX)")),
    responses(
        (status = 200, description = "The lead with score breakdown, BANT evidence, routing explanation and history", body = LeadDetail),
        (status = 404, description = "No such lead", body = ErrorBody),
        ReadErrors,
    ),
)]
pub(crate) async fn get(
    _: ReadAccess,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<LeadDetail>> {
    let id = ext_id(&id)?;
    state
        .deps()
        .store
        .get(&id)
        .await?
        .map(|lead| Json(LeadDetail::from(&lead)))
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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StageBody {
    /// The new stage.
    #[schema(schema_with = schema::stage)]
    stage: String,
    /// Why (kept in the lead's history).
    #[serde(default)]
    #[schema(schema_with = schema::optional_text)]
    notes: Option<String>,
    /// The version the change is based on (else `If-Match`); a stale one is `409`.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 0)]
    expected_version: Option<u64>,
}

/// `PUT /api/leads/{lead_ext_id}/stage`: moves the lead along the pipeline
/// (transition rules apply; a stale `expected_version` is `409`).
#[utoipa::path(
    put,
    path = "/api/leads/{lead_ext_id}/stage",
    tag = "leads",
    security(("api_key" = [])),
    params(("lead_ext_id" = String, Path, description = "The lead id (WEB-XXXXXXXX)"), ("If-Match" = Option<String>, Header, pattern = r#"^[ \t]*(W/)?"?[0-9]{1,19}"?[ \t]*$"#, description = "The version the change is based on")),
    request_body = StageBody,
    responses(
        (status = 200, description = "The updated lead", body = LeadDetail),
        WriteErrors,
    ),
)]
pub(crate) async fn put_stage(
    _: WriteAccess,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<StageBody>,
) -> ApiResult<Json<LeadDetail>> {
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
    Ok(Json(LeadDetail::from(&lead)))
}

/// `PUT …/assign` body: a rep, or `{"route": true}` to let routing choose.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignIn {
    #[serde(default)]
    assigned_to: Option<String>,
    #[serde(default)]
    route: bool,
    #[serde(default, deserialize_with = "whole_number")]
    expected_version: Option<u64>,
}

crate::schema::named_schema!(
    /// `{assigned_to}` or `{route: true}`, with an optional `expected_version`.
    AssignBody = crate::schema::assign_body
);

/// `PUT /api/leads/{lead_ext_id}/assign`.
#[utoipa::path(
    put,
    path = "/api/leads/{lead_ext_id}/assign",
    tag = "leads",
    security(("api_key" = [])),
    params(("lead_ext_id" = String, Path, description = "The lead id (WEB-XXXXXXXX)"), ("If-Match" = Option<String>, Header, pattern = r#"^[ \t]*(W/)?"?[0-9]{1,19}"?[ \t]*$"#, description = "The version the change is based on")),
    request_body = AssignBody,
    responses(
        (status = 200, description = "The updated lead", body = LeadDetail),
        WriteErrors,
    ),
)]
pub(crate) async fn put_assign(
    _: WriteAccess,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AssignIn>,
) -> ApiResult<Json<LeadDetail>> {
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
    let done = usecase::reassign(
        &id,
        to,
        ChangeOrigin::Local,
        version,
        state.policy(),
        state.deps(),
    )
    .await?;
    if done.lead.assigned_to != done.previous {
        crate::counters::assigned(done.previous.is_some());
    }
    let lead = done.lead;
    Ok(Json(LeadDetail::from(&lead)))
}

/// `POST …/events` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventBody {
    /// What the lead did.
    #[schema(schema_with = schema::event_kind)]
    kind: String,
    /// When (default: now).
    #[serde(default)]
    at: Option<DateTime<Utc>>,
    /// Details (page URL, campaign, ...).
    #[serde(default)]
    #[schema(value_type = Object)]
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
    request_body = EventBody,
    responses(
        (status = 201, description = "The re-scored lead", body = LeadDetail),
        WriteErrors,
    ),
)]
pub(crate) async fn post_event(
    _: WriteAccess,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<EventBody>,
) -> ApiResult<(StatusCode, Json<LeadDetail>)> {
    let id = ext_id(&id)?;
    let kind = EventKind::parse(&body.kind).map_err(ApiError::Core)?;
    let event = LeadEvent {
        kind,
        at: body.at.unwrap_or_else(|| state.deps().clock.now()),
        properties: body.properties,
    };
    let lead = usecase::record_event(&id, event, state.policy(), state.deps()).await?;
    Ok((StatusCode::CREATED, Json(LeadDetail::from(&lead))))
}

/// A version: a whole number, 0 or more, however JSON writes it (`3`,
/// `3.0`); JSON Schema's `integer` admits both.
fn whole_number<'de, D>(d: D) -> Result<Option<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let number: Option<serde_json::Number> = Option::deserialize(d)?;
    number
        .map(|n| {
            n.as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < u64::MAX as f64)
                        .map(|f| f as u64)
                })
                .ok_or_else(|| serde::de::Error::custom("a whole number, 0 or more"))
        })
        .transpose()
}

/// Reads a present-or-null field: absent → `None`, `null` → `Some(None)`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH /api/leads/{lead_ext_id}` body: the editable fields. A field
/// left out stays as it is; `null` clears it.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(clippy::option_option)] // absent and null mean different things here
pub(crate) struct PatchBody {
    /// Given name.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schema::optional_text)]
    first_name: Option<Option<String>>,
    /// Family name.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schema::optional_text)]
    last_name: Option<Option<String>>,
    /// Phone, in any common format (read in the lead's country).
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schema::optional_text)]
    phone: Option<Option<String>>,
    /// Company.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schema::optional_text)]
    company: Option<Option<String>>,
    /// Job title.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schema::optional_text)]
    job_title: Option<Option<String>>,
    /// Company web site.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schema::optional_text)]
    website: Option<Option<String>>,
    /// Country (ISO code or name).
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schema::optional_text)]
    country: Option<Option<String>>,
    /// Industry.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schema::optional_text)]
    industry: Option<Option<String>>,
    /// Expected deal value, not negative (needs a currency).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>, minimum = 0)]
    estimated_value: Option<Option<serde_json::Number>>,
    /// ISO 4217 currency of `estimated_value` (`EUR`).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z]{3}$")]
    currency: Option<Option<String>>,
    /// Marketing consent as the person gave it (`true`, `false`, or `null`
    /// for not stated).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>)]
    consent_marketing: Option<Option<bool>>,
    /// `true` removes the lead's `metadata.pending_changes` (what
    /// unverified submissions sent for it) once they were looked at.
    #[serde(default)]
    dismiss_pending_changes: bool,
    /// The version the change is based on (else `If-Match`); a stale one is `409`.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 0)]
    expected_version: Option<u64>,
}

/// A JSON number as a decimal (`50000.00`, `5e4`). The body's number was
/// read as an `f64` (JSON numbers are), so about 15 significant digits
/// survive, plenty for a deal value; sums are then exact decimals.
fn decimal(number: &serde_json::Number) -> Result<rust_decimal::Decimal, Error> {
    use std::str::FromStr;
    let text = number.to_string();
    rust_decimal::Decimal::from_str(&text)
        .or_else(|_| rust_decimal::Decimal::from_scientific(&text))
        .map_err(|_| {
            Error::invalid(
                "estimated_value",
                "out_of_range",
                "estimated_value is not an amount this server can hold",
            )
        })
}

/// `PATCH /api/leads/{lead_ext_id}`: changes contact fields, consent and
/// the deal value, or dismisses pending changes; the lead is re-scored and
/// the change queued for the CRM.
#[utoipa::path(
    patch,
    path = "/api/leads/{lead_ext_id}",
    operation_id = "patch_lead",
    tag = "leads",
    security(("api_key" = [])),
    params(("lead_ext_id" = String, Path, description = "The lead id (WEB-XXXXXXXX)"), ("If-Match" = Option<String>, Header, pattern = r#"^[ \t]*(W/)?"?[0-9]{1,19}"?[ \t]*$"#, description = "The version the change is based on")),
    request_body = PatchBody,
    responses(
        (status = 200, description = "The updated lead", body = LeadDetail),
        WriteErrors,
    ),
)]
pub(crate) async fn patch(
    _: WriteAccess,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PatchBody>,
) -> ApiResult<Json<LeadDetail>> {
    let id = ext_id(&id)?;
    let version = expected_version(body.expected_version, &headers)?;
    let estimated_value = match &body.estimated_value {
        Some(Some(n)) => Some(Some(decimal(n)?)),
        Some(None) => Some(None),
        None => None,
    };
    let edit = LeadEdit {
        first_name: body.first_name,
        last_name: body.last_name,
        phone: body.phone,
        company: body.company,
        job_title: body.job_title,
        website: body.website,
        country: body.country,
        industry: body.industry,
        estimated_value,
        currency: body.currency,
        consent_marketing: body.consent_marketing,
        dismiss_pending_changes: body.dismiss_pending_changes,
    };
    let lead = usecase::edit_lead(&id, &edit, version, state.policy(), state.deps()).await?;
    Ok(Json(LeadDetail::from(&lead)))
}

/// `?days=30`, documented (the look-back of every statistics and
/// dashboard route).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only
pub(crate) struct DaysDoc {
    /// Look back this many days, 1 to 3650 (default 30).
    #[param(minimum = 1, maximum = 3650)]
    days: Option<u32>,
}

/// `?days=30&limit=20`, documented (routes that list rows).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only
pub(crate) struct WindowDoc {
    /// Look back this many days, 1 to 3650 (default 30).
    #[param(minimum = 1, maximum = 3650)]
    days: Option<u32>,
    /// At most this many rows, 1 to 200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// `?days=30&limit=20` of the statistics and dashboard routes.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WindowParams {
    days: Option<String>,
    limit: Option<String>,
}

impl WindowParams {
    fn days_or_default(&self) -> ApiResult<u32> {
        match &self.days {
            Some(d) => Ok(number(d, "days", MAX_DAYS as usize).map_err(ApiError::Core)? as u32),
            None => Ok(30),
        }
    }

    fn since(&self, state: &AppState) -> ApiResult<DateTime<Utc>> {
        let days = i64::from(self.days_or_default()?);
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
    params(DaysDoc),
    responses(
        (status = 200, description = "Counts by stage, priority and source; average score; pipeline value", body = Statistics),
        ReadErrors,
    ),
)]
pub(crate) async fn statistics(
    _: ReadAccess,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<WindowParams>,
) -> ApiResult<Json<Statistics>> {
    let since = params.since(&state)?;
    let stats = state.deps().reads.dashboard(since, 0).await?.stats;
    Ok(Json(Statistics {
        success: true,
        days: params.days_or_default()?,
        stats,
    }))
}

/// Pipeline statistics over a window, with the original system's `success`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Statistics {
    /// Always `true`.
    success: bool,
    /// The window, in days.
    days: u32,
    /// `total`, `by_stage`, `by_priority`, `by_source`, `average_score`,
    /// `unassigned`, and per currency (decimal strings) `pipeline_value`,
    /// `weighted_pipeline_value`, `won_value`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    stats: lead_core::query::PipelineStats,
}

/// `GET /api/dashboard/summary`: the same figures as the statistics.
#[utoipa::path(
    get,
    path = "/api/dashboard/summary",
    tag = "dashboard",
    security(("api_key" = [])),
    params(DaysDoc),
    responses(
        (status = 200, description = "Counts by stage, priority and source; average score; pipeline value", body = Statistics),
        ReadErrors,
    ),
)]
pub(crate) async fn summary(
    access: ReadAccess,
    state: State<AppState>,
    params: ApiQuery<WindowParams>,
) -> ApiResult<Json<Statistics>> {
    statistics(access, state, params).await
}

/// `GET /api/dashboard/funnel`: how many leads reached each open stage.
#[utoipa::path(
    get,
    path = "/api/dashboard/funnel",
    tag = "dashboard",
    security(("api_key" = [])),
    params(DaysDoc),
    responses(
        (status = 200, description = "Leads that reached each open stage", body = Object),
        ReadErrors,
    ),
)]
pub(crate) async fn funnel(
    _: ReadAccess,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<WindowParams>,
) -> ApiResult<Json<Value>> {
    let since = params.since(&state)?;
    let dashboard = state.deps().reads.dashboard(since, 0).await?;
    let steps: Vec<Value> = dashboard
        .funnel
        .iter()
        .map(|(stage, count)| serde_json::json!({"stage": stage.as_str(), "count": count}))
        .collect();
    Ok(Json(
        serde_json::json!({ "success": true, "funnel": steps }),
    ))
}

/// `GET /api/dashboard/recent-leads`: the newest `limit` leads created in
/// the last `days`.
#[utoipa::path(
    get,
    path = "/api/dashboard/recent-leads",
    tag = "dashboard",
    security(("api_key" = [])),
    params(WindowDoc),
    responses(
        (status = 200, description = "The newest leads", body = LeadList),
        ReadErrors,
    ),
)]
pub(crate) async fn recent_leads(
    _: ReadAccess,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<WindowParams>,
) -> ApiResult<Json<LeadList>> {
    let query = LeadQuery {
        limit: Some(params.limit()?),
        created_from: Some(params.since(&state)?),
        ..LeadQuery::default()
    };
    Ok(Json(state.deps().reads.list(&query).await?.into()))
}

/// `GET /api/dashboard/top-performers`: reps by won leads.
#[utoipa::path(
    get,
    path = "/api/dashboard/top-performers",
    tag = "dashboard",
    security(("api_key" = [])),
    params(WindowDoc),
    responses(
        (status = 200, description = "Reps by won leads", body = Object),
        ReadErrors,
    ),
)]
pub(crate) async fn top_performers(
    _: ReadAccess,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<WindowParams>,
) -> ApiResult<Json<Value>> {
    let since = params.since(&state)?;
    let dashboard = state.deps().reads.dashboard(since, params.limit()?).await?;
    Ok(Json(
        serde_json::json!({ "success": true, "top_performers": dashboard.top_performers }),
    ))
}

/// `GET /api/dashboard/source-performance`: leads, score and wins by source.
#[utoipa::path(
    get,
    path = "/api/dashboard/source-performance",
    tag = "dashboard",
    security(("api_key" = [])),
    params(DaysDoc),
    responses(
        (status = 200, description = "Leads, score and wins by source", body = Object),
        ReadErrors,
    ),
)]
pub(crate) async fn source_performance(
    _: ReadAccess,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<WindowParams>,
) -> ApiResult<Json<Value>> {
    let since = params.since(&state)?;
    let dashboard = state.deps().reads.dashboard(since, 0).await?;
    Ok(Json(
        serde_json::json!({ "success": true, "source_performance": dashboard.source_performance }),
    ))
}
