//! API keys for the lead and dashboard APIs: stored as SHA-256 hashes,
//! checked in constant time, each with `read` and/or `write` scope.
//!
//! A request presents its key as `Authorization: Bearer <key>` or
//! `X-API-Key: <key>`. Routes take [`ReadAccess`] or [`WriteAccess`] as an
//! extractor: a missing or unknown key is `401`, a key without the scope
//! `403`.
//!
//! `/metrics` has its own gate, [`MetricsAccess`]: a token of its own when
//! one is configured, else the request must come from this machine.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use lead_core::Error;

use crate::error::ApiError;
pub use crate::keys::{ApiKeys, Scopes, hash_key};
use crate::state::AppState;

/// The token of `Authorization: Bearer <token>`, if any.
fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let text = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    text.strip_prefix("Bearer ")
        .or_else(|| text.strip_prefix("bearer "))
        .map(str::trim)
}

pub(crate) fn presented_key(headers: &http::HeaderMap) -> Option<&str> {
    if let Some(token) = bearer(headers) {
        return Some(token);
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn scopes(parts: &Parts, state: &AppState) -> Result<Scopes, ApiError> {
    let key = presented_key(&parts.headers).ok_or_else(|| {
        ApiError::Core(Error::Unauthorized(
            "an API key is required (Authorization: Bearer <key> or X-API-Key)".into(),
        ))
    })?;
    state
        .inner
        .api_keys
        .scopes_of(key)
        .ok_or_else(|| ApiError::Core(Error::Unauthorized("unknown API key".into())))
}

/// Whether a capture vouches for itself with an API key: `false` when it
/// presents none, `true` for a key with the `write` scope.
///
/// # Errors
///
/// `401` for an unknown key, `403` for a key without the `write` scope: a
/// caller that presents a key expects it to count.
pub(crate) fn capture_key(headers: &http::HeaderMap, state: &AppState) -> Result<bool, ApiError> {
    let Some(key) = presented_key(headers) else {
        return Ok(false);
    };
    match state.inner.api_keys.scopes_of(key) {
        Some(scopes) if scopes.write => Ok(true),
        Some(_) => Err(ApiError::Forbidden("write")),
        None => Err(ApiError::Core(Error::Unauthorized(
            "unknown API key".into(),
        ))),
    }
}

/// Proof that the request carries a key with the `read` scope.
#[derive(Debug, Clone, Copy)]
pub struct ReadAccess;

/// Proof that the request carries a key with the `write` scope.
#[derive(Debug, Clone, Copy)]
pub struct WriteAccess;

impl FromRequestParts<AppState> for ReadAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if scopes(parts, state)?.read {
            Ok(ReadAccess)
        } else {
            Err(ApiError::Forbidden("read"))
        }
    }
}

impl FromRequestParts<AppState> for WriteAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if scopes(parts, state)?.write {
            Ok(WriteAccess)
        } else {
            Err(ApiError::Forbidden("write"))
        }
    }
}

/// Proof that the request may read `/metrics`, whose series tell how busy
/// the server is, which routes are called and how captures end.
///
/// With a metrics token configured
/// ([`AppStateBuilder::metrics_token`](crate::AppStateBuilder::metrics_token)),
/// the request must present it as `Authorization: Bearer <token>`, from
/// anywhere. Without one, only a request from this machine passes: its
/// TCP peer (`ConnectInfo`) is a loopback address and, when that peer is
/// a trusted proxy, so is the client the proxy names in `X-Forwarded-For`
/// (a proxy on this machine forwarding an outside client is refused). The
/// header can only narrow what the peer address allows, never widen it.
/// A request without `ConnectInfo` is refused: its origin is unknown.
/// Everything refused is `401 unauthorized`.
#[derive(Debug, Clone, Copy)]
pub struct MetricsAccess;

impl FromRequestParts<AppState> for MetricsAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let refused = |why: &str| Err(ApiError::Core(Error::Unauthorized(why.to_owned())));
        if let Some(token) = &state.inner.metrics_token {
            return match bearer(&parts.headers) {
                Some(presented) if token.matches(presented) => Ok(MetricsAccess),
                Some(_) => refused("wrong metrics token"),
                None => refused("the metrics token is required (Authorization: Bearer <token>)"),
            };
        }
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return refused("metrics are served to this machine only");
        };
        let trusted = &state.settings().rate_limit.trusted_proxies;
        let client = crate::limits::client_ip(peer.ip(), &parts.headers, trusted);
        if peer.ip().to_canonical().is_loopback() && client.to_canonical().is_loopback() {
            Ok(MetricsAccess)
        } else {
            refused("metrics are served to this machine only, or with the metrics token")
        }
    }
}
