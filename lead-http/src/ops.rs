//! Operations: `/health` (the process answers), `/ready` (the store
//! answers, so its migrations ran) and `/metrics` (Prometheus text).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use lead_core::LeadExtId;
use serde_json::json;

use crate::auth::MetricsAccess;
use crate::error::ErrorBody;
use crate::state::AppState;

/// `GET /health`: always `200` while the process serves requests.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "The process serves requests", body = Object)))]
pub(crate) async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /ready`: `200` when the store answers a read, `503` otherwise. A
/// store is only built after its migrations ran, so an answering store is
/// a migrated one. With a CRM configured the body also tells whether it
/// took our credentials at the last check (`crm.status`: `ok`,
/// `cannot_authenticate` or `unchecked`); that does not make the server
/// unready: captures never wait on the CRM, and the changes wait in the
/// queue until it is back.
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "The store answers (and, with a CRM, how its credentials fared)", body = Object),
    (status = 503, description = "The store does not answer", body = Object),
))]
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    // Any id works: the read proves the store is reachable.
    let probe = LeadExtId::from_random(0);
    let crm = state.sync().and_then(|sync| {
        let name = sync.monitor.crm()?;
        let seen = sync.monitor.seen();
        Some(match seen.auth {
            None => json!({ "name": name, "status": "unchecked" }),
            Some(auth) if auth.ok => json!({ "name": name, "status": "ok", "checked_at": auth.at }),
            // The reason is for people with a key: `/api/sync/status`.
            Some(auth) => json!({
                "name": name,
                "status": "cannot_authenticate",
                "checked_at": auth.at,
            }),
        })
    });
    match state.deps().store.get(&probe).await {
        Ok(_) => {
            let mut body = json!({ "status": "ready" });
            if let Some(crm) = crm {
                body["crm"] = crm;
            }
            (StatusCode::OK, Json(body)).into_response()
        }
        Err(err) => {
            tracing::warn!(error = %err, "not ready: the store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "store": "unreachable" })),
            )
                .into_response()
        }
    }
}

/// `GET /metrics`: the Prometheus exposition, or `404` when no recorder
/// was installed. Only for [`MetricsAccess`]: the metrics token when one
/// is configured, else a client on this machine; `401` otherwise.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain"),
        (status = 401, description = "No metrics token, or a wrong one, when one is configured; without one, a client not on this machine", body = ErrorBody),
        (status = 404, description = "No metrics recorder installed"),
    )
)]
pub(crate) async fn metrics(_access: MetricsAccess, State(state): State<AppState>) -> Response {
    match &state.inner.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
