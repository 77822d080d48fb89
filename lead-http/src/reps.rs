//! Sales reps (`/api/reps…`) and routing's dry run
//! (`POST /api/routing/dry-run`): what sales ops change while the team
//! works. Reads need the `read` scope, changes `write`. Reps are never
//! deleted: `active: false` stops routing to them and keeps their leads.

use axum::Json;
use axum::extract::State;
use lead_core::usecase;
use lead_core::{Error, LeadInput, RepId, RepState, RoutingDecision};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::{ReadAccess, WriteAccess};
use crate::docs::{ReadErrors, WriteErrors};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

crate::schema::named_schema!(
    /// A rep's profile (`lead_core::Rep`).
    Rep = crate::schema::rep
);
crate::schema::named_schema!(
    /// The fields of a rep to change.
    RepChange = crate::schema::rep_change
);
crate::schema::named_schema!(
    /// `{"reps": [rep, ...]}`.
    RepsBody = crate::schema::reps_body
);

/// A rep with their current workload.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RepView {
    /// The profile.
    #[schema(value_type = Rep)]
    pub rep: lead_core::Rep,
    /// Open leads, assignments today, last assignment.
    #[schema(value_type = Object)]
    pub load: lead_core::RepLoad,
}

impl From<RepState> for RepView {
    fn from(state: RepState) -> Self {
        RepView {
            rep: state.rep,
            load: state.load,
        }
    }
}

/// Every rep.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RepList {
    /// Always `true`.
    pub success: bool,
    /// How many.
    pub count: usize,
    /// The reps, by id.
    pub reps: Vec<RepView>,
}

async fn all_reps(state: &AppState) -> ApiResult<Vec<RepState>> {
    let mut reps = state.deps().reps.rep_states().await?;
    reps.sort_by(|a, b| a.rep.id.cmp(&b.rep.id));
    Ok(reps)
}

fn rep_id(raw: &str) -> ApiResult<RepId> {
    // A path that is no e-mail names no rep.
    RepId::parse(raw).map_err(|_| ApiError::Core(Error::NotFound(format!("rep {raw}"))))
}

async fn find_rep(state: &AppState, id: &RepId) -> ApiResult<RepState> {
    all_reps(state)
        .await?
        .into_iter()
        .find(|s| &s.rep.id == id)
        .ok_or_else(|| ApiError::Core(Error::NotFound(format!("rep {id}"))))
}

/// `GET /api/reps`: every rep with their workload.
#[utoipa::path(
    get,
    path = "/api/reps",
    operation_id = "list_reps",
    tag = "reps",
    security(("api_key" = [])),
    responses((status = 200, description = "Every rep, by id", body = RepList), ReadErrors),
)]
pub(crate) async fn list(_: ReadAccess, State(state): State<AppState>) -> ApiResult<Json<RepList>> {
    let reps: Vec<RepView> = all_reps(&state)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(RepList {
        success: true,
        count: reps.len(),
        reps,
    }))
}

/// `GET /api/reps/{rep_id}`: one rep with their workload.
#[utoipa::path(
    get,
    path = "/api/reps/{rep_id}",
    operation_id = "get_rep",
    tag = "reps",
    security(("api_key" = [])),
    params(("rep_id" = String, Path, description = "The rep's e-mail")),
    responses(
        (status = 200, description = "The rep", body = RepView),
        (status = 404, description = "No such rep", body = ErrorBody),
        ReadErrors,
    ),
)]
pub(crate) async fn get(
    _: ReadAccess,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<RepView>> {
    Ok(Json(find_rep(&state, &rep_id(&id)?).await?.into()))
}

/// Whole numbers written as floats (`5.0`) as integers: JSON Schema's
/// `integer` admits both, serde's `u32` only the first.
fn whole_numbers(value: Value) -> Value {
    match value {
        Value::Number(n)
            if n.as_f64()
                .is_some_and(|f| f.fract() == 0.0 && f.abs() < 9.0e15) =>
        {
            n.as_f64()
                .map_or(Value::Number(n), |f| Value::from(f as i64))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(whole_numbers).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, whole_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A rep as JSON: `id` and `name` required, the rest defaulted; a value
/// of the wrong type is named by its path (`skills.languages`).
fn rep_of(value: Value, field_prefix: &str) -> ApiResult<lead_core::Rep> {
    crate::extract::deserialize_at(whole_numbers(value), field_prefix)
}

/// `current` with `changes` applied: objects (skills, working hours) are
/// merged key by key, so `{"skills": {"languages": ["es"]}}` leaves the
/// other skills as they are; anything else is replaced.
fn merged(mut current: Map<String, Value>, changes: Map<String, Value>) -> Map<String, Value> {
    for (key, change) in changes {
        match (current.get_mut(&key), change) {
            (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
            (_, change) => {
                current.insert(key, change);
            }
        }
    }
    current
}

/// `PUT /api/reps` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RepsIn {
    /// Reps to add or update (each needs `id` and `name`; what is left out
    /// takes the defaults).
    reps: Vec<Value>,
}

/// `PUT /api/reps`: adds or updates the listed reps (profiles only; their
/// workloads stay). Reps not listed stay as they are.
#[utoipa::path(
    put,
    path = "/api/reps",
    tag = "reps",
    security(("api_key" = [])),
    request_body = RepsBody,
    responses((status = 200, description = "Every rep, after the change", body = RepList), WriteErrors),
)]
pub(crate) async fn put_all(
    _: WriteAccess,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RepsIn>,
) -> ApiResult<Json<RepList>> {
    if body.reps.is_empty() || body.reps.len() > 1000 {
        return Err(ApiError::Core(Error::invalid(
            "reps",
            "batch_size",
            "list 1 to 1000 reps",
        )));
    }
    let reps = body
        .reps
        .into_iter()
        .enumerate()
        .map(|(i, value)| rep_of(value, &format!("reps[{i}].")))
        .collect::<ApiResult<Vec<lead_core::Rep>>>()?;
    usecase::save_reps(&reps, state.deps()).await?;
    list(ReadAccess, State(state)).await
}

/// `PUT /api/reps/{rep_id}`: changes a rep. The body names only what
/// changes (`{"active": false}` deactivates; `{"absences": [...]}` sets
/// the out-of-office periods; `{"skills": {"languages": [...]}}` changes
/// one kind of skill); everything else stays.
#[utoipa::path(
    put,
    path = "/api/reps/{rep_id}",
    tag = "reps",
    security(("api_key" = [])),
    params(("rep_id" = String, Path, description = "The rep's e-mail")),
    request_body = RepChange,
    responses(
        (status = 200, description = "The rep after the change", body = RepView),
        (status = 404, description = "No such rep", body = ErrorBody),
        WriteErrors,
    ),
)]
pub(crate) async fn put_one(
    _: WriteAccess,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(changes): ApiJson<Map<String, Value>>,
) -> ApiResult<Json<RepView>> {
    let id = rep_id(&id)?;
    let current = find_rep(&state, &id).await?;
    if let Some(other) = changes.get("id")
        && other.as_str() != Some(id.as_str())
    {
        return Err(ApiError::Core(Error::invalid(
            "id",
            "immutable",
            "a rep's id is their e-mail and cannot change",
        )));
    }
    let Value::Object(profile) = serde_json::to_value(&current.rep)
        .map_err(|e| ApiError::Core(Error::internal(format!("rep: {e}"))))?
    else {
        return Err(ApiError::Core(Error::internal("a rep is an object")));
    };
    let rep = rep_of(Value::Object(merged(profile, changes)), "")?;
    usecase::check_rep(&rep)?;
    usecase::save_reps(std::slice::from_ref(&rep), state.deps()).await?;
    Ok(Json(find_rep(&state, &id).await?.into()))
}

/// What a dry run is asked about: a stored lead, or a form's fields.
enum DryRunIn {
    Stored(String),
    Preview(Map<String, Value>),
}

impl DryRunIn {
    /// Reads `{"lead_ext_id": "WEB-…"}` or `{"lead": {...}}`: exactly one
    /// of them, of its type, and nothing else.
    fn read(body: Map<String, Value>) -> ApiResult<Self> {
        let invalid = |field: &str, message: &str| {
            ApiError::Core(Error::invalid(field, "invalid", message.to_owned()))
        };
        if let Some(unknown) = body.keys().find(|k| *k != "lead_ext_id" && *k != "lead") {
            return Err(invalid(unknown, "unknown field: give lead_ext_id or lead"));
        }
        let mut entries = body.into_iter();
        match (entries.next(), entries.next()) {
            (Some((key, Value::String(id))), None) if key == "lead_ext_id" => {
                Ok(DryRunIn::Stored(id))
            }
            (Some((key, Value::Object(fields))), None) if key == "lead" => {
                Ok(DryRunIn::Preview(fields))
            }
            (Some((key, _)), None) if key == "lead" => {
                Err(invalid("lead", "lead is an object of capture fields"))
            }
            (Some((key, _)), None) => Err(invalid(&key, "lead_ext_id is a lead id (WEB-XXXXXXXX)")),
            _ => Err(invalid(
                "lead_ext_id",
                "give lead_ext_id (a stored lead) or lead (a form's fields), exactly one",
            )),
        }
    }
}

crate::schema::named_schema!(
    /// `{"lead_ext_id": "WEB-…"}` or `{"lead": {capture fields}}`.
    DryRunBody = crate::schema::dry_run_body
);

/// Who would get a lead, and why.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DryRun {
    /// Always `true`.
    pub success: bool,
    /// The rep routing picks now; `null` when nobody can take the lead.
    pub assigned_to: Option<String>,
    /// One sentence for people.
    pub summary: String,
    /// Every rep's verdict, the deciding rule, account matching.
    #[schema(value_type = Object)]
    pub explanation: Value,
}

impl From<RoutingDecision> for DryRun {
    fn from(decision: RoutingDecision) -> Self {
        DryRun {
            success: true,
            assigned_to: decision.assigned.map(|r| r.as_str().to_owned()),
            summary: decision.explanation.summary.clone(),
            explanation: serde_json::to_value(&decision.explanation).unwrap_or(Value::Null),
        }
    }
}

/// `POST /api/routing/dry-run`: who routing would pick now, and why,
/// without assigning anything.
#[utoipa::path(
    post,
    path = "/api/routing/dry-run",
    tag = "reps",
    security(("api_key" = [])),
    request_body = DryRunBody,
    responses(
        (status = 200, description = "The decision routing would make now", body = DryRun),
        (status = 404, description = "No such lead", body = ErrorBody),
        ReadErrors,
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    ),
)]
pub(crate) async fn dry_run(
    _: ReadAccess,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Json<DryRun>> {
    let decision = match DryRunIn::read(body)? {
        DryRunIn::Stored(id) => {
            let id = lead_core::LeadExtId::parse(&id)
                .map_err(|_| ApiError::Core(Error::NotFound(format!("lead {id}"))))?;
            usecase::route_dry_run(&id, state.policy(), state.deps()).await?
        }
        DryRunIn::Preview(fields) => {
            let input = LeadInput::from_fields(fields, state.field_map());
            usecase::route_preview(&input, state.policy(), state.deps()).await?
        }
    };
    Ok(Json(decision.into()))
}
