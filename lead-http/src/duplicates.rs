//! Duplicate review and merges (`/api/duplicates…`, `/api/merges…`): the
//! pairs a scan kept for a person, their decisions, merging any two leads,
//! and undoing a merge. Reads need the `read` scope, changes `write`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use lead_core::dedup::review::MAX_PAIR_PAGE;
use lead_core::usecase::{self, MergeOutcome, PairDecision, ScanReport};
use lead_core::{Error, Lead, LeadExtId, LeadFields, PairQuery, ReviewPair, ReviewStatus, Stage};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::{ReadAccess, WriteAccess};
use crate::docs::{ReadErrors, WriteErrors};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::leads::{Problems, number};
use crate::state::AppState;
use crate::view::LeadDetail;

/// `GET /api/duplicates` query parameters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PairParams {
    status: Option<String>,
    lead: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl PairParams {
    fn query(&self) -> ApiResult<PairQuery> {
        let mut p = Problems::default();
        let mut query = PairQuery {
            status: Some(ReviewStatus::Open),
            ..PairQuery::default()
        };
        match self.status.as_deref() {
            None => {}
            Some("all") => query.status = None,
            Some(raw) => {
                let status = ReviewStatus::parse(raw).ok_or_else(|| {
                    Error::invalid(
                        "status",
                        "invalid_status",
                        "status must be open, merged, dismissed or all",
                    )
                });
                query.status = p.take(status, "status");
            }
        }
        if let Some(s) = &self.lead {
            query.lead = p.take(LeadExtId::parse(s), "lead");
        }
        if let Some(s) = &self.limit {
            query.limit = p.take(number(s, "limit", MAX_PAIR_PAGE), "limit");
        }
        if let Some(s) = &self.cursor {
            query.after = p.take(PairQuery::parse_cursor(s), "cursor");
        }
        p.finish()?;
        Ok(query)
    }
}

/// One lead of a pair, as a reviewer compares it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PairLead {
    /// The lead id.
    #[schema(value_type = String)]
    pub lead_ext_id: LeadExtId,
    /// Its stage.
    #[schema(value_type = String)]
    pub stage: Stage,
    /// Its score, 0-100.
    pub score: u8,
    /// Its rep.
    #[schema(value_type = Option<String>)]
    pub assigned_to: Option<lead_core::RepId>,
    /// When it was captured.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The lead it was merged into since the pair was found.
    #[schema(value_type = Option<String>)]
    pub merged_into: Option<LeadExtId>,
    /// Its form fields.
    #[schema(value_type = Object)]
    pub fields: LeadFields,
}

impl From<Lead> for PairLead {
    fn from(lead: Lead) -> Self {
        PairLead {
            lead_ext_id: lead.ext_id,
            stage: lead.stage,
            score: lead.score.value(),
            assigned_to: lead.assigned_to,
            created_at: lead.created_at,
            merged_into: lead.merged_into,
            fields: lead.fields,
        }
    }
}

/// A pair with both leads as they are now.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PairView {
    /// The pair.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub pair: ReviewPair,
    /// Its two leads, in the order of `leads` (absent when unknown).
    pub lead_details: Vec<PairLead>,
}

/// A page of pairs.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PairPageView {
    /// The pairs, oldest first.
    pub pairs: Vec<PairView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A merge that just happened.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MergeView {
    /// The merge record's id (`POST /api/merges/{merge_id}/undo` reverses it).
    pub merge_id: Uuid,
    /// The surviving lead, with both leads' data.
    pub survivor: LeadDetail,
    /// The absorbed lead (`merged_into` the survivor).
    pub absorbed: LeadDetail,
    /// The pair, decided `merged`.
    #[schema(value_type = Object)]
    pub pair: ReviewPair,
}

impl From<MergeOutcome> for MergeView {
    fn from(m: MergeOutcome) -> Self {
        MergeView {
            merge_id: m.merge_id,
            survivor: LeadDetail::from(&m.survivor),
            absorbed: LeadDetail::from(&m.absorbed),
            pair: m.pair,
        }
    }
}

async fn view(state: &AppState, pair: ReviewPair) -> ApiResult<PairView> {
    let mut lead_details = Vec::with_capacity(2);
    for id in &pair.leads {
        if let Some(lead) = state.deps().store.get(id).await? {
            lead_details.push(lead.into());
        }
    }
    Ok(PairView { pair, lead_details })
}

/// A UUID in the path; one that cannot exist is simply not found.
fn path_uuid(raw: &str, what: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::Core(Error::NotFound(format!("{what} {raw}"))))
}

fn pair_id(raw: &str) -> ApiResult<Uuid> {
    path_uuid(raw, "duplicate pair")
}

/// `GET /api/duplicates`: pairs waiting for review (or in another status),
/// with both leads.
#[utoipa::path(
    get,
    path = "/api/duplicates",
    tag = "duplicates",
    security(("api_key" = [])),
    params(
        ("status" = Option<String>, Query, pattern = "^(open|merged|dismissed|all)$", description = "open (default), merged, dismissed or all"),
        ("lead" = Option<String>, Query, pattern = "^[Ww][Ee][Bb]-[A-Za-z0-9]{8}$", description = "Only pairs with this lead (WEB-XXXXXXXX)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, 1 to 200 (default 50)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of duplicate pairs, oldest first", body = PairPageView),
        ReadErrors,
    ),
)]
pub(crate) async fn list_pairs(
    _: ReadAccess,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PairParams>,
) -> ApiResult<Json<PairPageView>> {
    let page = state.deps().reads.review_pairs(&params.query()?).await?;
    let mut pairs = Vec::with_capacity(page.pairs.len());
    for pair in page.pairs {
        pairs.push(view(&state, pair).await?);
    }
    Ok(Json(PairPageView {
        pairs,
        next_cursor: page.next_cursor.map(|id| id.to_string()),
    }))
}

/// `GET /api/duplicates/{pair_id}`: one pair with both leads.
#[utoipa::path(
    get,
    path = "/api/duplicates/{pair_id}",
    tag = "duplicates",
    security(("api_key" = [])),
    params(("pair_id" = String, Path, description = "The pair's id")),
    responses(
        (status = 200, description = "The pair with both leads", body = PairView),
        (status = 404, description = "No such pair", body = ErrorBody),
        ReadErrors,
    ),
)]
pub(crate) async fn get_pair(
    _: ReadAccess,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<PairView>> {
    let id = pair_id(&id)?;
    let pair = state
        .deps()
        .reads
        .get_review_pair(id)
        .await?
        .ok_or_else(|| ApiError::Core(Error::NotFound(format!("duplicate pair {id}"))))?;
    Ok(Json(view(&state, pair).await?))
}

/// `POST /api/duplicates/scan`: finds duplicates among every lead now, by
/// the policy's `dedup` settings (what the `lead_deduplication` job runs).
#[utoipa::path(
    post,
    path = "/api/duplicates/scan",
    tag = "duplicates",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "What the scan compared, merged and marked for review", body = Object),
        WriteErrors,
    ),
)]
pub(crate) async fn scan(
    _: WriteAccess,
    State(state): State<AppState>,
) -> ApiResult<Json<ScanReport>> {
    let report = usecase::scan_duplicates(&state.policy().dedup, state.deps()).await?;
    Ok(Json(report))
}

/// `POST /api/duplicates/{pair_id}/merge`: the two leads are one person.
#[utoipa::path(
    post,
    path = "/api/duplicates/{pair_id}/merge",
    tag = "duplicates",
    security(("api_key" = [])),
    params(("pair_id" = String, Path, description = "The pair's id")),
    responses(
        (status = 200, description = "The merge", body = MergeView),
        (status = 404, description = "No such pair", body = ErrorBody),
        (status = 409, description = "The pair is already decided, or a lead changed meanwhile", body = ErrorBody),
        WriteErrors,
    ),
)]
pub(crate) async fn merge_pair(
    _: WriteAccess,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<MergeView>> {
    let (_, merge) = usecase::decide_pair(pair_id(&id)?, PairDecision::Merge, state.deps()).await?;
    merge
        .map(|m| Json(m.into()))
        .ok_or_else(|| ApiError::Core(Error::internal("a merge decision merged nothing")))
}

/// `POST /api/duplicates/{pair_id}/dismiss`: two different people; the
/// pair is never proposed again.
#[utoipa::path(
    post,
    path = "/api/duplicates/{pair_id}/dismiss",
    tag = "duplicates",
    security(("api_key" = [])),
    params(("pair_id" = String, Path, description = "The pair's id")),
    responses(
        (status = 200, description = "The pair, dismissed", body = Object),
        (status = 404, description = "No such pair", body = ErrorBody),
        (status = 409, description = "The pair is already decided", body = ErrorBody),
        WriteErrors,
    ),
)]
pub(crate) async fn dismiss_pair(
    _: WriteAccess,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ReviewPair>> {
    let (pair, _) =
        usecase::decide_pair(pair_id(&id)?, PairDecision::Dismiss, state.deps()).await?;
    Ok(Json(pair))
}

/// `POST /api/merges` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MergeBody {
    /// The two leads to merge (the older one survives).
    #[schema(schema_with = crate::schema::two_leads)]
    leads: Vec<String>,
}

/// `POST /api/merges`: merges any two leads a person knows are one.
#[utoipa::path(
    post,
    path = "/api/merges",
    tag = "duplicates",
    security(("api_key" = [])),
    request_body = MergeBody,
    responses(
        (status = 201, description = "The merge; Location names its record", body = MergeView),
        (status = 404, description = "A lead is unknown or already merged away", body = ErrorBody),
        (status = 409, description = "A lead changed meanwhile", body = ErrorBody),
        WriteErrors,
    ),
)]
pub(crate) async fn create_merge(
    _: WriteAccess,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<MergeBody>,
) -> ApiResult<(StatusCode, HeaderMap, Json<MergeView>)> {
    let [a, b] = body.leads.as_slice() else {
        return Err(
            Error::invalid("leads", "two_leads", "leads must name exactly two leads").into(),
        );
    };
    let parse = |raw: &str| {
        LeadExtId::parse(raw).map_err(|_| {
            ApiError::from(Error::invalid(
                "leads",
                "invalid_lead_ext_id",
                "each lead must be WEB- followed by 8 letters or digits",
            ))
        })
    };
    let merged = usecase::merge_leads(&parse(a)?, &parse(b)?, state.deps()).await?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/merges/{}", merged.merge_id)) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, Json(merged.into())))
}

/// `GET /api/merges/{merge_id}`: a merge record (both leads before, the
/// survivor after), the audit trail of a merge.
#[utoipa::path(
    get,
    path = "/api/merges/{merge_id}",
    tag = "duplicates",
    security(("api_key" = [])),
    params(("merge_id" = String, Path, description = "The merge record's id")),
    responses(
        (status = 200, description = "The merge record", body = Object),
        (status = 404, description = "No such merge", body = ErrorBody),
        ReadErrors,
    ),
)]
pub(crate) async fn get_merge(
    _: ReadAccess,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let merge_id = path_uuid(&id, "merge")?;
    let record = state
        .deps()
        .store
        .get_merge(merge_id)
        .await?
        .ok_or_else(|| ApiError::Core(Error::NotFound(format!("merge {id}"))))?;
    serde_json::to_value(record)
        .map(Json)
        .map_err(|e| ApiError::Core(Error::internal(format!("merge record: {e}"))))
}

/// `POST /api/merges/{merge_id}/undo`: restores both leads of a merge (the
/// unmerge); their pair is dismissed so no scan merges them again.
#[utoipa::path(
    post,
    path = "/api/merges/{merge_id}/undo",
    tag = "duplicates",
    security(("api_key" = [])),
    params(("merge_id" = String, Path, description = "The merge record's id")),
    responses(
        (status = 200, description = "Both leads as restored", body = UndoView),
        (status = 404, description = "No such merge", body = ErrorBody),
        (status = 409, description = "The survivor changed since the merge (undo would lose that change)", body = ErrorBody),
        WriteErrors,
    ),
)]
pub(crate) async fn undo_merge(
    _: WriteAccess,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<UndoView>> {
    let id = path_uuid(&id, "merge")?;
    let (survivor, restored) = usecase::undo_merge(id, state.deps()).await?;
    Ok(Json(UndoView {
        survivor: LeadDetail::from(&survivor),
        restored: restored.as_ref().map(LeadDetail::from),
    }))
}

/// Both leads of an undone merge.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UndoView {
    /// The survivor, as it was before the merge.
    pub survivor: LeadDetail,
    /// The absorbed lead, back on its own; `null` when it was a submission
    /// merged at capture (never a lead of its own).
    pub restored: Option<LeadDetail>,
}
