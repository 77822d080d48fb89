#![doc = include_str!("../README.md")]

pub mod auth;
mod capture;
mod counters;
mod docs;
mod duplicates;
pub mod error;
mod extract;
mod followups;
mod job_control;
mod jobs;
mod keys;
mod leads;
pub mod limits;
mod notifications;
mod ops;
mod page;
mod reps;
mod schema;
pub mod signature;
mod state;
mod sync;
mod throttle;
mod view;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use auth::{ApiKeys, Scopes, hash_key};
pub use capture::{Accepted, BatchAnswer, FormReceived, ItemResult};
pub use duplicates::{MergeView, PairLead, PairPageView, PairView, UndoView};
pub use error::{ApiError, ErrorBody};
pub use followups::{FollowUpList, FollowUpView};
pub use jobs::{JobControl, JobList, JobQueued, JobRunList, JobRunView, JobView};
pub use limits::{InvalidIpRange, IpRange, Rate, RateLimit, client_key};
pub use notifications::{NotifyQueueView, NotifyStatusView};
pub use reps::{DryRun, RepList, RepView};
pub use signature::{Verified, WebhookKeys};
pub use state::{AppState, AppStateBuilder, HttpSettings, NotifyAccess, SyncAccess};
pub use sync::{AuthView, DeadLetterList, DeadLetterView, Requeued, RunView, SyncStatusView};
pub use view::{CrmLinkView, LeadDetail, LeadList, LeadView, WarningView};

/// The OpenAPI document's fixed parts; the paths come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "lead-capture",
        description = "Lead capture webhooks, the lead API, the dashboard API and operations."
    ),
    modifiers(&Security),
    components(schemas(Accepted, FormReceived, BatchAnswer, ErrorBody)),
    tags(
        (name = "capture", description = "Web forms and webhooks send leads"),
        (name = "leads", description = "Read and change leads (API key)"),
        (name = "duplicates", description = "Review duplicate pairs, merge and unmerge leads (API key)"),
        (name = "reps", description = "Sales reps and routing's dry run (API key)"),
        (name = "followups", description = "Follow-up tasks by rep, status and due date; complete or reschedule (API key)"),
        (name = "jobs", description = "The scheduled jobs: list, runs, run now (API key)"),
        (name = "sync", description = "The CRM sync: status, dead letters and their retry (API key)"),
        (name = "notifications", description = "Notifications: channels, queues, dead letters and their retry (API key)"),
        (name = "dashboard", description = "Pipeline figures (API key, read)"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
struct ApiDoc;

/// Adds the API key scheme (`Authorization: Bearer` or `X-API-Key`).
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key_header",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// The answers any route may give whatever it does: the rate limit
/// (`429`) and the request time limit (`503`), added to every operation
/// that does not document them itself. Applied once the routers' paths
/// are in the document (an `#[openapi(modifiers)]` runs before).
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = || {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build()
        };
        let common = [
            ("429", "Rate limited; Retry-After says when to come back"),
            (
                "503",
                "The request took longer than the server's limit, or the store is down",
            ),
        ];
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                for (status, description) in common {
                    if !operation.responses.responses.contains_key(status) {
                        operation.responses.responses.insert(
                            status.to_owned(),
                            ResponseBuilder::new()
                                .description(description)
                                .content("application/json", error())
                                .build()
                                .into(),
                        );
                    }
                }
            }
        }
    }
}

/// The capture webhooks: `POST /webhook/lead` and `/webhook/lead/batch`.
/// `settings` gives the body limits.
pub fn capture_router(settings: &HttpSettings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(
            OpenApiRouter::new()
                .routes(routes!(capture::capture_one))
                .layer(DefaultBodyLimit::max(settings.max_lead_bytes)),
        )
        .merge(
            OpenApiRouter::new()
                .routes(routes!(capture::capture_batch))
                .layer(DefaultBodyLimit::max(settings.max_batch_bytes)),
        )
}

/// The lead API: list, read, stage, assignment, events, statistics, and
/// duplicates (review pairs, scan, merge, unmerge).
pub fn leads_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(leads::list))
        .routes(routes!(leads::statistics))
        .routes(routes!(leads::get, leads::patch))
        .routes(routes!(leads::put_stage))
        .routes(routes!(leads::put_assign))
        .routes(routes!(leads::post_event))
        .routes(routes!(reps::list, reps::put_all))
        .routes(routes!(reps::get, reps::put_one))
        .routes(routes!(reps::dry_run))
        .routes(routes!(followups::list))
        .routes(routes!(followups::put))
        .routes(routes!(duplicates::list_pairs))
        .routes(routes!(duplicates::get_pair))
        .routes(routes!(duplicates::scan))
        .routes(routes!(duplicates::merge_pair))
        .routes(routes!(duplicates::dismiss_pair))
        .routes(routes!(duplicates::create_merge))
        .routes(routes!(duplicates::get_merge))
        .routes(routes!(duplicates::undo_merge))
        .routes(routes!(jobs::list))
        .routes(routes!(jobs::runs))
        .routes(routes!(jobs::run_now))
        .routes(routes!(sync::status))
        .routes(routes!(sync::dead_letters))
        .routes(routes!(sync::retry))
        .routes(routes!(notifications::status))
        .routes(routes!(notifications::dead_letters))
        .routes(routes!(notifications::retry))
}

/// The dashboard API (`?days=30&limit=20`).
pub fn dashboard_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(leads::summary))
        .routes(routes!(leads::funnel))
        .routes(routes!(leads::recent_leads))
        .routes(routes!(leads::top_performers))
        .routes(routes!(leads::source_performance))
}

/// `/health`, `/ready`, `/metrics`.
pub fn ops_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ops::health))
        .routes(routes!(ops::ready))
        .routes(routes!(ops::metrics))
}

/// A group of routes one listener may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// [`capture_router`].
    Capture,
    /// [`leads_router`].
    Leads,
    /// [`dashboard_router`].
    Dashboard,
    /// [`ops_router`].
    Operations,
}

impl Part {
    /// Every part: what one listener serves by default.
    pub const ALL: [Part; 4] = [
        Part::Capture,
        Part::Leads,
        Part::Dashboard,
        Part::Operations,
    ];
}

/// The routes of `parts`, with the OpenAPI document describing exactly
/// them (built from the same route list, so neither can miss one).
fn routes_of(
    settings: &HttpSettings,
    parts: &[Part],
) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut api) = parts
        .iter()
        .fold(
            OpenApiRouter::with_openapi(ApiDoc::openapi()),
            |router, part| {
                router.merge(match part {
                    Part::Capture => capture_router(settings),
                    Part::Leads => leads_router(),
                    Part::Dashboard => dashboard_router(),
                    Part::Operations => ops_router(),
                })
            },
        )
        .split_for_parts();
    CommonResponses.modify(&mut api);
    (routes, api)
}

/// The OpenAPI document of [`router`] (also served at `/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes_of(&HttpSettings::default(), &Part::ALL).1
}

/// Every router on one listener, plus `/openapi.json` and Swagger UI at
/// `/docs`, with request metrics, rate limits, CORS for the configured
/// origins, the request time limit and security headers
/// (`X-Content-Type-Options: nosniff` on every answer, `Cache-Control:
/// no-store` on lead data, `Strict-Transport-Security` on every answer
/// when [`HttpSettings::hsts_max_age`] is set).
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so
/// the per-IP limit sees client addresses.
pub fn router(state: AppState) -> Router {
    router_for(state, &Part::ALL)
}

/// Like [`router`], serving only `parts` (for the original system's
/// separate ports: webhooks, lead API, dashboard). Each listener documents
/// its own routes at `/openapi.json`.
pub fn router_for(state: AppState, parts: &[Part]) -> Router {
    router_with(state, parts, Router::new())
}

/// Like [`router_for`], with `extra` routes of the embedding program (a
/// CRM's webhook receiver) served under the same protections: request
/// id, security headers, time limit, rate limits. They are not in
/// `/openapi.json`.
pub fn router_with(state: AppState, parts: &[Part], extra: Router) -> Router {
    let settings = state.settings();
    let timeout = settings.request_timeout;
    let cors = cors_layer(&settings.cors_origins);
    let hsts = settings.hsts_max_age.map(hsts_value);
    let (routes, api) = routes_of(settings, parts);
    let router = routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .with_state(state.clone())
        .merge(extra)
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            throttle::limit,
        ))
        .layer(middleware::from_fn(track))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            within(timeout, request, next)
        }));
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    // Outermost: every answer, rate-limit, timeout and CORS ones included;
    // the request id's span wraps everything the request logs.
    router
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            security_headers(hsts.clone(), request, next)
        }))
        .layer(middleware::from_fn(request_id))
}

/// The request id header: read from the client, always on the answer.
pub const REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// The longest client request id kept; a longer one is replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The client's request id when it is sane (1 to [`MAX_REQUEST_ID_LEN`]
/// visible ASCII characters, no spaces), else `None`.
pub fn sane_request_id(value: &http::HeaderValue) -> Option<&str> {
    let bytes = value.as_bytes();
    let sane = !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes.iter().all(|b| b.is_ascii_graphic());
    sane.then(|| value.to_str().ok()).flatten()
}

/// Gives every request an id: the client's `X-Request-Id` when sane
/// ([`sane_request_id`]), else a new UUID v7. The id is put on the request
/// (handlers see the one in use), on the answer, and on a `request` span
/// (`request_id`, `method`, `path`) around everything the request logs.
async fn request_id(mut request: Request, next: Next) -> Response {
    use tracing::Instrument;
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(sane_request_id)
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let value = http::HeaderValue::from_str(&id)
        .unwrap_or_else(|_| http::HeaderValue::from_static("invalid"));
    request.headers_mut().insert(REQUEST_ID, value.clone());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let mut response = next.run(request).instrument(span).await;
    response.headers_mut().insert(REQUEST_ID, value);
    response
}

/// Adds the security headers every answer carries:
/// `X-Content-Type-Options: nosniff` on all, `Strict-Transport-Security`
/// (`hsts`, when the server serves HTTPS) on all, and `Cache-Control:
/// no-store` on the lead API (`/api/...`) and capture (`/webhook/...`)
/// answers, which hold lead data. Headers a handler set are kept (an HTML
/// page's own `Content-Security-Policy`), except a weaker `Cache-Control`
/// there.
async fn security_headers(
    hsts: Option<http::HeaderValue>,
    request: Request,
    next: Next,
) -> Response {
    use http::{HeaderValue, header};
    let no_store = holds_lead_data(request.uri().path());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if no_store {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(hsts) = hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts);
    }
    response
}

/// The `Strict-Transport-Security` value for `max_age` (whole seconds).
/// No `includeSubDomains`: other hosts of the domain may not serve HTTPS,
/// and this server cannot know.
fn hsts_value(max_age: std::time::Duration) -> http::HeaderValue {
    http::HeaderValue::from_str(&format!("max-age={}", max_age.as_secs()))
        .unwrap_or_else(|_| http::HeaderValue::from_static("max-age=31536000"))
}

/// True for the paths whose answers hold lead data: the lead, sales-ops
/// and dashboard API (`/api/...`) and the capture webhooks (`/webhook/...`).
fn holds_lead_data(path: &str) -> bool {
    ["/api", "/webhook"].iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// CORS for `origins` (exact matches), or none.
fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use http::{Method, header};
    let origins: Vec<http::HeaderValue> = origins
        .iter()
        .filter_map(|o| http::HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    (!origins.is_empty()).then(|| {
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                header::IF_MATCH,
                http::HeaderName::from_static("x-api-key"),
                http::HeaderName::from_static("idempotency-key"),
                http::HeaderName::from_static("x-webhook-signature"),
            ])
            .max_age(std::time::Duration::from_secs(600))
    })
}

/// A path no route serves: `404` in the error shape.
async fn no_route(uri: http::Uri) -> Response {
    use axum::response::IntoResponse;
    ApiError::Core(lead_core::Error::NotFound(format!(
        "no route {}",
        uri.path()
    )))
    .into_response()
}

/// A method the path does not take: `405` in the error shape.
async fn no_method(method: http::Method) -> Response {
    use axum::response::IntoResponse;
    ApiError::MethodNotAllowed(method.to_string()).into_response()
}

/// Answers `503 timeout` in the error shape when a request takes longer
/// than `limit` (a store that hangs, a slow client body). The work is
/// dropped, but a commit it already handed to the store's writer may
/// still complete, so the answer says the lead may have been stored (a
/// retry with the same idempotency key is safe), unlike a store that is
/// down.
async fn within(limit: std::time::Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            use axum::response::IntoResponse;
            ApiError::TimedOut {
                limit_ms: limit.as_millis(),
            }
            .into_response()
        }
    }
}

/// Counts requests and their latency by route and status
/// (`http_requests_total`, `http_request_duration_seconds`).
async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    record_request(route, method, response.status(), started.elapsed());
    response
}

/// The `method` label of the request metrics: the standard methods by
/// name, any other token `other`, so a client cannot create a new series
/// per method it invents (the `route` label is the matched route or
/// `unmatched`, fixed too).
fn method_label(method: &http::Method) -> &'static str {
    use http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Records one answered request in the request metrics.
fn record_request(
    route: String,
    method: &'static str,
    status: http::StatusCode,
    elapsed: std::time::Duration,
) {
    let status = status.as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method, "status" => status).increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route, "method" => method)
        .record(elapsed.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_id_is_kept_only_when_sane() {
        let value = |v: &[u8]| http::HeaderValue::from_bytes(v).expect("a header value");
        for sane in [
            &b"abc-123"[..],
            b"x",
            b"0f8fad5b-d9cb-469f-a165-70867728950e",
            &[b'a'; 128],
        ] {
            assert!(sane_request_id(&value(sane)).is_some(), "{sane:?}");
        }
        for insane in [
            &b""[..],
            b"has space",
            b"tab\there",
            &[b'a'; 129],
            "caf\u{e9}".as_bytes(),
        ] {
            assert!(sane_request_id(&value(insane)).is_none(), "{insane:?}");
        }
    }

    #[test]
    fn lead_data_is_under_api_and_webhook_only() {
        for path in [
            "/api",
            "/api/leads",
            "/api/dashboard/summary",
            "/webhook/lead",
            "/webhook/lead/batch",
        ] {
            assert!(holds_lead_data(path), "{path}");
        }
        for path in [
            "/health",
            "/metrics",
            "/docs/",
            "/openapi.json",
            "/apix",
            "/webhooks",
        ] {
            assert!(!holds_lead_data(path), "{path}");
        }
    }

    #[test]
    fn the_method_label_takes_only_standard_methods() {
        for (method, label) in [
            ("GET", "GET"),
            ("POST", "POST"),
            ("PUT", "PUT"),
            ("PATCH", "PATCH"),
            ("DELETE", "DELETE"),
            ("HEAD", "HEAD"),
            ("OPTIONS", "OPTIONS"),
            ("FOOBAR", "other"),
            ("get", "other"),
            ("TRACE", "other"),
            ("CONNECT", "other"),
        ] {
            let method = http::Method::from_bytes(method.as_bytes()).expect("a method token");
            assert_eq!(method_label(&method), label, "{method}");
        }
    }

    #[test]
    fn an_invented_method_is_rendered_as_other() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let method = http::Method::from_bytes(b"FOOBAR").expect("a method token");
        metrics::with_local_recorder(&recorder, || {
            record_request(
                "unmatched".to_owned(),
                method_label(&method),
                http::StatusCode::NOT_FOUND,
                std::time::Duration::from_millis(1),
            );
        });
        let rendered = handle.render();
        assert!(rendered.contains(r#"method="other""#), "{rendered}");
        assert!(!rendered.contains("FOOBAR"), "{rendered}");
    }
}
