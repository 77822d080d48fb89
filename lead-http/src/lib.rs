#![doc = include_str!("../README.md")]

pub mod auth;
mod capture;
pub mod error;
mod leads;
mod ops;
pub mod signature;
mod state;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};

pub use auth::{ApiKeys, Scopes, hash_key};
pub use capture::{Accepted, BatchAnswer, ItemResult};
pub use error::{ApiError, ErrorBody};
pub use signature::{Verified, WebhookKeys};
pub use state::{AppState, AppStateBuilder, HttpSettings};

/// The capture webhooks: `POST /webhook/lead` and `/webhook/lead/batch`.
pub fn capture_router(state: &AppState) -> Router<AppState> {
    let settings = state.settings();
    Router::new()
        .route(
            "/webhook/lead",
            post(capture::capture_one).layer(DefaultBodyLimit::max(settings.max_lead_bytes)),
        )
        .route(
            "/webhook/lead/batch",
            post(capture::capture_batch).layer(DefaultBodyLimit::max(settings.max_batch_bytes)),
        )
}

/// The lead API: list, read, stage, assignment, events, statistics, merges.
pub fn leads_router() -> Router<AppState> {
    Router::new()
        .route("/api/leads", get(leads::list))
        .route("/api/leads/statistics", get(leads::statistics))
        .route("/api/leads/{lead_ext_id}", get(leads::get))
        .route("/api/leads/{lead_ext_id}/stage", put(leads::put_stage))
        .route("/api/leads/{lead_ext_id}/assign", put(leads::put_assign))
        .route("/api/leads/{lead_ext_id}/events", post(leads::post_event))
        .route("/api/merges/{merge_id}/undo", post(leads::undo_merge))
}

/// The dashboard API (`?days=30&limit=20`).
pub fn dashboard_router() -> Router<AppState> {
    Router::new()
        .route("/api/dashboard/summary", get(leads::statistics))
        .route("/api/dashboard/funnel", get(leads::funnel))
        .route("/api/dashboard/recent-leads", get(leads::recent_leads))
        .route("/api/dashboard/top-performers", get(leads::top_performers))
        .route(
            "/api/dashboard/source-performance",
            get(leads::source_performance),
        )
}

/// `/health`, `/ready`, `/metrics`.
pub fn ops_router() -> Router<AppState> {
    Router::new()
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
}

/// Every router on one listener, with request metrics and the request
/// time limit.
pub fn router(state: AppState) -> Router {
    let timeout = state.settings().request_timeout;
    Router::new()
        .merge(capture_router(&state))
        .merge(leads_router())
        .merge(dashboard_router())
        .merge(ops_router())
        .layer(middleware::from_fn(track))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            http::StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .with_state(state)
}

/// Counts requests and their latency by route and status
/// (`http_requests_total`, `http_request_duration_seconds`).
async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status).increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}
