//! `POST /webhook/lead` and `POST /webhook/lead/batch`: the capture
//! webhooks.
//!
//! Order of work, for every request: the raw body is read within its size
//! limit, the signature is checked over those bytes, only then is the body
//! parsed (JSON object or url-encoded form), mapped onto our field names
//! and captured. `202` is answered only after the store committed the
//! lead; a store that is down answers `503` and nothing is half-stored.
//!
//! Double submits never make a second lead: the `Idempotency-Key` header,
//! else the Standard Webhooks `webhook-id`, else a hash of the submitted
//! fields (for a short window) is the capture's idempotency key, and a
//! repeat answers with the first lead.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lead_core::usecase::{self, CaptureOutcome, Idempotency, Provenance};
use lead_core::{Error, LeadInput};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::docs::CaptureHeaders;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::page::{self, Lang};
use crate::signature::Verified;
use crate::state::AppState;
use crate::view::WarningView;

/// The longest `Idempotency-Key` accepted.
const MAX_KEY_LEN: usize = 255;

/// A form field naming where a browser goes after a successful post.
const REDIRECT_FIELD: &str = "_redirect";
/// A form field naming where a browser goes when the post is refused
/// (`?error=<code>&fields=<names>` is added to it).
const ERROR_REDIRECT_FIELD: &str = "_error_redirect";

crate::schema::named_schema!(
    /// One lead as a form or webhook sends it.
    CaptureLead = crate::schema::capture_lead
);
crate::schema::named_schema!(
    /// `{"leads": [lead, ...]}`.
    CaptureBatch = crate::schema::capture_batch
);
crate::schema::named_schema!(
    /// `Accepted`, or `FormReceived` for an unverified caller.
    CaptureAnswer = crate::schema::capture_answer
);
crate::schema::named_schema!(
    /// A batch that stored nothing: the per-item answer, or one error for
    /// the whole request.
    BatchRefusal = crate::schema::batch_refusal
);

/// The answer to a stored capture.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// Always `true` (the original system's field).
    pub success: bool,
    /// For people, in the language of `Accept-Language` (Spanish or English).
    pub message: String,
    /// The e-mail the lead was stored under (normalized).
    pub lead_email: String,
    /// The stored lead's id.
    pub lead_ext_id: String,
    /// Its score, 0–100.
    pub score: u8,
    /// Its priority.
    pub priority: String,
    /// Its stage.
    pub stage: String,
    /// The rep it was assigned to, if any.
    pub assigned_to: Option<String>,
    /// `created`, `merged` (the e-mail was known: merged into that lead) or
    /// `replayed` (a repeat of an earlier request: nothing new stored).
    pub status: &'static str,
    /// Values of this submission kept as written but not usable (a phone
    /// that is no number, a URL that does not parse); the lead was stored.
    pub warnings: Vec<WarningView>,
}

/// The answer's `message`.
fn received(lang: Lang) -> &'static str {
    match lang {
        Lang::Es => "Lead recibido y en proceso",
        Lang::En => "Lead received and being processed",
    }
}

/// What every unverified caller (an unsigned post, a public form) is told:
/// that the lead was taken, and what of its own input was kept unread,
/// nothing about the lead (the full answer would tell whether an address
/// is already a lead, and that lead's id, score and rep).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FormReceived {
    /// Always `true`.
    pub success: bool,
    /// For people.
    pub message: String,
    /// Values of this submission kept as written but not usable.
    pub warnings: Vec<WarningView>,
}

impl Accepted {
    fn of(outcome: &CaptureOutcome, lang: Lang) -> Self {
        let lead = &outcome.lead;
        Accepted {
            success: true,
            message: received(lang).to_owned(),
            lead_email: lead.fields.email.as_str().to_owned(),
            lead_ext_id: lead.ext_id.to_string(),
            score: lead.score.value(),
            priority: lead.priority.as_str().to_owned(),
            stage: lead.stage.as_str().to_owned(),
            assigned_to: lead.assigned_to.as_ref().map(|r| r.as_str().to_owned()),
            status: status_of(outcome),
            warnings: outcome.warnings.iter().map(WarningView::from).collect(),
        }
    }
}

fn status_of(outcome: &CaptureOutcome) -> &'static str {
    if outcome.replayed {
        "replayed"
    } else if outcome.pending {
        "pending"
    } else if outcome.merged.is_some() {
        "merged"
    } else {
        "created"
    }
}

/// The body as read within the route's limit.
fn body_of(body: Result<Bytes, BytesRejection>, limit: usize) -> ApiResult<Bytes> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge { limit }
        } else {
            ApiError::Malformed("the body could not be read".into())
        }
    })
}

/// What kind of body the request says it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Form,
}

fn kind_of(headers: &HeaderMap) -> ApiResult<Kind> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => Ok(Kind::Json),
        "application/x-www-form-urlencoded" => Ok(Kind::Form),
        _ if mime.ends_with("+json") => Ok(Kind::Json),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

/// Checks the signature (or a write-scoped API key), or lets an unsigned
/// post from a public form through.
///
/// Only what a browser form sends (one url-encoded lead, `form_post`) may
/// use the public-form exemption: JSON and batches must be signed.
fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    form_post: bool,
) -> ApiResult<Verified> {
    if crate::auth::capture_key(headers, state)? {
        let key = crate::auth::presented_key(headers).unwrap_or_default();
        let sender = hex::encode(&Sha256::digest(key.as_bytes())[..8]);
        return Ok(Verified::ApiKey { sender });
    }
    let now = state.deps().clock.now();
    match state.inner.webhook_keys.verify(headers, body, now) {
        Ok(verified) => Ok(verified),
        Err(crate::signature::SignatureError::Missing)
            if form_post && from_public_form(state, headers) =>
        {
            Ok(Verified::PublicForm)
        }
        Err(err) => Err(err.into()),
    }
}

/// True when `text` starts with `origin` (ASCII case-insensitive) followed
/// by the end or one of `next`. Never slices inside a character.
fn on_origin(text: &str, origin: &str, next: &[char]) -> bool {
    text.get(..origin.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(origin))
        && text[origin.len()..]
            .chars()
            .next()
            .is_none_or(|c| next.contains(&c))
}

/// True when the browser says the post comes from a configured public form
/// origin (`Origin`, else `Referer`).
fn from_public_form(state: &AppState, headers: &HeaderMap) -> bool {
    let origins = &state.settings().public_form_origins;
    if origins.is_empty() {
        return false;
    }
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &http::HeaderValue| v.to_str().ok())
    };
    if let Some(origin) = header(header::ORIGIN) {
        return origins.iter().any(|o| o.eq_ignore_ascii_case(origin));
    }
    header(header::REFERER).is_some_and(|referer| {
        origins
            .iter()
            .any(|o| referer.len() > o.len() && on_origin(referer, o, &['/']))
    })
}

/// One submission's fields as name/value pairs, in body order.
fn fields_of_json(value: Value) -> ApiResult<Vec<(String, Value)>> {
    match value {
        Value::Object(map) => Ok(map.into_iter().collect()),
        _ => Err(ApiError::Malformed("a lead must be a JSON object".into())),
    }
}

fn parse_fields(kind: Kind, body: &[u8]) -> ApiResult<Vec<(String, Value)>> {
    match kind {
        Kind::Json => {
            let value: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::Malformed(format!("the body is not valid JSON: {e}")))?;
            fields_of_json(value)
        }
        Kind::Form => {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(body).map_err(|_| {
                    ApiError::Malformed("the form body is not valid url-encoding".into())
                })?;
            Ok(pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect())
        }
    }
}

/// Where a browser goes after a form post, as the form asked.
#[derive(Debug, Default)]
struct Redirects {
    /// After a stored lead (`_redirect`).
    success: Option<String>,
    /// After a refused one (`_error_redirect`).
    error: Option<String>,
}

/// Takes the honeypot and redirect fields out of a submission; true when
/// the honeypot was filled (a bot: the caller decides what to answer).
fn take_control_fields(
    state: &AppState,
    fields: &mut Vec<(String, Value)>,
    redirects: &mut Redirects,
) -> bool {
    let honeypot = &state.settings().honeypot_field;
    let mut filled = false;
    fields.retain(|(name, value)| {
        if name == honeypot {
            filled |= match value {
                Value::String(s) => !s.trim().is_empty(),
                Value::Null => false,
                _ => true,
            };
            false
        } else if name == REDIRECT_FIELD {
            redirects.success = value.as_str().map(str::to_owned);
            false
        } else if name == ERROR_REDIRECT_FIELD {
            redirects.error = value.as_str().map(str::to_owned);
            false
        } else {
            true
        }
    });
    filled
}

/// The client's `Idempotency-Key`, checked: 1 to 255 visible characters.
fn client_key(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
        .map(Some)
        .ok_or_else(|| {
            ApiError::Malformed(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible characters"
            ))
        })
}

/// The idempotency key of one submission (`suffix` tells batch items apart).
///
/// A signed Standard Webhooks `webhook-id` wins over `Idempotency-Key`
/// (which no signature covers), and keys are namespaced by who sent them:
/// `std:` for Standard Webhooks ids, `legacy:` for the `Idempotency-Key` of
/// a request signed with `X-Webhook-Signature`, `key-<id>:` for a request
/// with a write-scoped API key, `anon:` for unsigned and public-form
/// requests; so an anonymous key never meets a signed
/// sender's. Without a key, the key is a hash of the submission. Every key
/// carries the SHA-256 of the normalized input, so the same key with
/// another payload is refused (`key_reused`) instead of replayed.
fn idempotency_of(
    state: &AppState,
    headers: &HeaderMap,
    verified: &Verified,
    input: &LeadInput,
    suffix: Option<usize>,
) -> ApiResult<Idempotency> {
    let settings = state.settings();
    let item = |key: String| match suffix {
        Some(i) => format!("{key}#{i}"),
        None => key,
    };
    // A bad header is refused even when a signed id takes its place.
    let client = client_key(headers)?;
    let submitted = serde_json::to_vec(input).map_err(|e| Error::internal(e.to_string()))?;
    let hash = hex::encode(Sha256::digest(&submitted));
    let keyed = |key: String| Idempotency {
        key: item(key),
        window: settings.idempotency_window,
        request_hash: Some(hash.clone()),
    };
    if let Verified::Standard { id } = verified {
        return Ok(keyed(format!("std:{id}")));
    }
    if let Some(key) = client {
        let namespace = match verified {
            Verified::Legacy => "legacy".to_owned(),
            Verified::ApiKey { sender } => format!("key-{sender}"),
            Verified::Standard { .. } | Verified::Unsigned | Verified::PublicForm => {
                "anon".to_owned()
            }
        };
        return Ok(keyed(format!("{namespace}:{key}")));
    }
    Ok(Idempotency {
        key: format!("submission:{hash}"),
        window: settings.resubmit_window,
        request_hash: Some(hash),
    })
}

/// Only redirects to a public form origin (never an open redirect), and
/// only to a URL that is a valid `Location` value.
fn allowed_redirect(state: &AppState, target: &str) -> Option<http::HeaderValue> {
    let origins = &state.settings().public_form_origins;
    if !origins.iter().any(|o| on_origin(target, o, &['/', '?'])) {
        return None;
    }
    // A URL with spaces, control or non-ASCII characters is not followed.
    http::HeaderValue::from_str(target)
        .ok()
        .filter(|_| target.bytes().all(|b| b.is_ascii_graphic()))
}

fn record(outcome: &str, started: Instant) {
    metrics::counter!("lead_captures_total", "outcome" => outcome.to_owned()).increment(1);
    metrics::histogram!("lead_capture_duration_seconds").record(started.elapsed().as_secs_f64());
}

async fn capture(
    state: &AppState,
    input: &LeadInput,
    verified: &Verified,
    idempotency: &Idempotency,
) -> Result<CaptureOutcome, Error> {
    let started = Instant::now();
    let provenance = if verified.is_verified() {
        Provenance::Verified
    } else {
        Provenance::Unverified
    };
    let mut result = usecase::capture_from(
        input,
        provenance,
        Some(idempotency),
        state.policy(),
        state.deps(),
    )
    .await;
    // A reused Standard Webhooks id is named as the header that carried it.
    if let Err(Error::Invalid { fields }) = &mut result
        && idempotency.key.starts_with("std:")
    {
        for field in fields.iter_mut().filter(|f| f.field == "Idempotency-Key") {
            field.field = crate::signature::ID_HEADER.to_owned();
        }
    }
    match &result {
        Ok(outcome) => {
            record(status_of(outcome), started);
            if !outcome.replayed && outcome.routing.is_some() && outcome.lead.assigned_to.is_some()
            {
                crate::counters::assigned(false);
            }
        }
        Err(Error::Invalid { .. }) => record("invalid", started),
        Err(Error::Unavailable(..)) => record("unavailable", started),
        Err(_) => record("failed", started),
    }
    result
}

/// `POST /webhook/lead`: captures one lead.
///
/// A browser posting a plain form (one that asks for HTML first) gets a
/// small page in its language instead of JSON, unless the form names a
/// `_redirect` (success) or `_error_redirect` (refusal) on a public form
/// origin, which it is sent to.
#[utoipa::path(
    post,
    path = "/webhook/lead",
    tag = "capture",
    params(CaptureHeaders),
    request_body(
        description = "One lead: the original system's fields (email, first_name, last_name, phone, company, source, message, utm_*, landing_page, metadata, ...); other form builders' names are mapped, unknown fields kept in metadata. Only a missing or invalid email is refused; any other value that does not parse is kept as written and listed in `warnings`. Forms may add `_redirect` and `_error_redirect`.",
        content(
            (CaptureLead = "application/json"),
            (CaptureLead = "application/x-www-form-urlencoded"),
        ),
    ),
    responses(
        (status = 202, description = "Stored (created, merged into the known lead with that e-mail, or a replay); an unverified caller (no signature, no write-scoped API key: a public form, or any post while no secret is configured) gets only `success`, `message` and `warnings`, and a known e-mail's lead is not changed (what it sent is kept as a pending change); a browser that asks for HTML gets a thank-you page. A filled honeypot (`_hp`) gets the public-form answer (or its redirect or page) and nothing is stored",
            content((CaptureAnswer = "application/json"), (String = "text/html"))),
        (status = 303, description = "Stored, or refused: the form's `_redirect` or `_error_redirect` on a public origin"),
        (status = 400, description = "Malformed body", body = ErrorBody, content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 401, description = "Missing or bad signature", body = ErrorBody, content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 413, description = "Body over the limit", body = ErrorBody, content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 415, description = "Not JSON or url-encoded", body = ErrorBody, content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 422, description = "Missing or invalid e-mail; `fields` names it", body = ErrorBody, content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 503, description = "The store is down; nothing stored", body = ErrorBody, content((ErrorBody = "application/json"), (String = "text/html"))),
    ),
)]
pub(crate) async fn capture_one(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let lang = page::lang_of(&headers);
    let html = page::prefers_html(&headers);
    let mut redirects = Redirects::default();
    let result = capture_form(&state, &headers, body, lang, &mut redirects).await;
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| allowed_redirect(&state, r));
    match result {
        Ok((answer, kind)) => {
            if kind == Kind::Form
                && let Some(target) = redirects
                    .success
                    .as_deref()
                    .and_then(|t| allowed_redirect(&state, t))
            {
                return (
                    StatusCode::SEE_OTHER,
                    [(header::LOCATION, target)],
                    Json(answer),
                )
                    .into_response();
            }
            if html {
                return page::thank_you(lang);
            }
            (StatusCode::ACCEPTED, Json(answer)).into_response()
        }
        Err(err) => {
            let (status, _) = err.status_and_code();
            if status.is_server_error() {
                // The JSON path logs this in `into_response`; the form
                // answers below do not go through it.
                tracing::error!(error = %err, "form capture failed");
            }
            if let Some(target) = redirects
                .error
                .as_deref()
                .and_then(|t| error_redirect(&state, t, &err))
            {
                return (
                    StatusCode::SEE_OTHER,
                    [(header::LOCATION, target)],
                    Json(err.body()),
                )
                    .into_response();
            }
            if html {
                tracing::debug!(error = %err, "form refused");
                let back = back.as_ref().and_then(|v| v.to_str().ok());
                let mut page = page::problem(lang, status, &err.body(), back);
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    page.headers_mut()
                        .insert(header::RETRY_AFTER, http::HeaderValue::from(1));
                }
                return page;
            }
            err.into_response()
        }
    }
}

/// Reads, checks and stores one capture; the answer's JSON and the body
/// kind.
async fn capture_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    lang: Lang,
    redirects: &mut Redirects,
) -> ApiResult<(Value, Kind)> {
    let body = body_of(body, state.settings().max_lead_bytes)?;
    // The signature is checked before the media type is refused.
    let kind = kind_of(headers);
    let verified = authenticate(state, headers, &body, matches!(kind, Ok(Kind::Form)))?;
    let kind = kind?;
    let mut fields = parse_fields(kind, &body)?;
    if take_control_fields(state, &mut fields, redirects) {
        // A bot: told exactly what a stored public-form post is told (the
        // same JSON, redirect or thank-you page), so it learns nothing to
        // change; nothing is stored.
        record("honeypot", Instant::now());
        tracing::debug!("a filled honeypot: nothing stored");
        return Ok((form_received(lang, Vec::new())?, kind));
    }
    let input = LeadInput::from_fields(fields, state.field_map());
    let idempotency = idempotency_of(state, headers, &verified, &input, None)?;
    let outcome = capture(state, &input, &verified, &idempotency).await?;
    let answer = if verified.is_verified() {
        serde_json::to_value(Accepted::of(&outcome, lang))
            .map_err(|e| ApiError::Core(Error::internal(format!("answer: {e}"))))?
    } else {
        form_received(
            lang,
            outcome.warnings.iter().map(WarningView::from).collect(),
        )?
    };
    Ok((answer, kind))
}

/// The [`FormReceived`] answer as JSON.
fn form_received(lang: Lang, warnings: Vec<WarningView>) -> ApiResult<Value> {
    serde_json::to_value(FormReceived {
        success: true,
        message: received(lang).to_owned(),
        warnings,
    })
    .map_err(|e| ApiError::Core(Error::internal(format!("answer: {e}"))))
}

/// The `_error_redirect` target with `error=<code>` and the failing
/// `fields` added to its query, when it is on a public form origin.
fn error_redirect(state: &AppState, target: &str, err: &ApiError) -> Option<http::HeaderValue> {
    let body = err.body();
    let mut query = format!("error={}", body.error);
    let names: Vec<&str> = body.fields.iter().map(|f| f.field.as_str()).collect();
    if !names.is_empty() {
        let names = serde_urlencoded::to_string([("fields", names.join(","))]).ok()?;
        query.push('&');
        query.push_str(&names);
    }
    let (base, fragment) = match target.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (target, None),
    };
    let separator = if base.contains('?') { '&' } else { '?' };
    let mut url = format!("{base}{separator}{query}");
    if let Some(fragment) = fragment {
        url.push('#');
        url.push_str(fragment);
    }
    allowed_redirect(state, &url)
}

/// One item of a batch answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemResult {
    /// Position in the request's `leads` array.
    pub index: usize,
    /// The status this lead alone would have got (`202`, `422`, `503`, ...).
    pub status: u16,
    /// The stored lead, when `status` is `202` and the batch was signed
    /// (or carried a write key); an unsigned batch is told only the status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead: Option<Accepted>,
    /// Why not, otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// The answer to a batch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchAnswer {
    /// Leads stored.
    pub accepted: usize,
    /// Leads refused.
    pub rejected: usize,
    /// One result per lead, in request order.
    pub results: Vec<ItemResult>,
}

/// `POST /webhook/lead/batch`: `{"leads": [...]}`, each captured on its
/// own; the answer reports every item. `202` when all were stored, `207`
/// when some were, else the first failure's status.
#[utoipa::path(
    post,
    path = "/webhook/lead/batch",
    tag = "capture",
    params(CaptureHeaders),
    request_body(description = "{\"leads\": [lead, ...]}", content((CaptureBatch = "application/json"))),
    responses(
        (status = 202, description = "Every lead stored", body = BatchAnswer),
        (status = 207, description = "Some leads stored; see each result", body = BatchAnswer),
        (status = 400, description = "Malformed body (ErrorBody), or no lead stored and the first item malformed (BatchAnswer)", body = BatchRefusal),
        (status = 401, description = "Missing or bad signature", body = ErrorBody),
        (status = 409, description = "No lead stored: the first item kept conflicting with concurrent writes", body = BatchRefusal),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A bad batch size (ErrorBody), or no lead stored and the first item invalid (BatchAnswer)", body = BatchRefusal),
        (status = 503, description = "The store is down (BatchAnswer, or ErrorBody when the request timed out)", body = BatchRefusal),
    ),
)]
pub(crate) async fn capture_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let settings = state.settings();
    let lang = page::lang_of(&headers);
    let body = body_of(body, settings.max_batch_bytes)?;
    let verified = authenticate(&state, &headers, &body, false)?;
    // A bad key is the whole request's fault, not each lead's.
    client_key(&headers)?;
    if kind_of(&headers)? != Kind::Json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Malformed(format!("the body is not valid JSON: {e}")))?;
    let Some(Value::Array(items)) = value.get("leads").cloned() else {
        return Err(ApiError::Malformed(
            "a batch is {\"leads\": [ ... ]}".into(),
        ));
    };
    if items.is_empty() || items.len() > settings.max_batch_items {
        return Err(ApiError::Core(Error::invalid(
            "leads",
            "batch_size",
            format!("a batch holds 1 to {} leads", settings.max_batch_items),
        )));
    }
    let mut results = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let result = async {
            let mut fields = fields_of_json(item)?;
            if take_control_fields(&state, &mut fields, &mut Redirects::default()) {
                // A batch comes from a sender, not a browser: it is told
                // which field kept its lead out.
                record("honeypot", Instant::now());
                return Err(ApiError::Core(Error::invalid(
                    &settings.honeypot_field,
                    "must_be_empty",
                    "this field must be left empty",
                )));
            }
            let input = LeadInput::from_fields(fields, state.field_map());
            let idempotency = idempotency_of(&state, &headers, &verified, &input, Some(index))?;
            Ok::<_, ApiError>(capture(&state, &input, &verified, &idempotency).await?)
        }
        .await;
        results.push(match result {
            Ok(outcome) => ItemResult {
                index,
                status: StatusCode::ACCEPTED.as_u16(),
                // An unverified sender learns that the lead was taken,
                // nothing about it (whether the address was known, its id,
                // score or rep).
                lead: verified.is_verified().then(|| Accepted::of(&outcome, lang)),
                error: None,
            },
            Err(err) => ItemResult {
                index,
                status: err.status_and_code().0.as_u16(),
                lead: None,
                error: Some(err.body()),
            },
        });
    }
    let accepted = results
        .iter()
        .filter(|r| r.status == StatusCode::ACCEPTED.as_u16())
        .count();
    let rejected = results.len() - accepted;
    let status = if rejected == 0 {
        StatusCode::ACCEPTED
    } else if accepted > 0 {
        StatusCode::MULTI_STATUS
    } else if results.iter().any(|r| r.status == 503) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::from_u16(results[0].status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
    };
    Ok((
        status,
        Json(BatchAnswer {
            accepted,
            rejected,
            results,
        }),
    )
        .into_response())
}
