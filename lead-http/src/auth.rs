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
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes {
    /// List and read leads, statistics and dashboards.
    pub read: bool,
    /// Change stages, assignments, events and merges.
    pub write: bool,
}

impl Scopes {
    /// Read only.
    pub const READ: Scopes = Scopes {
        read: true,
        write: false,
    };
    /// Read and write.
    pub const READ_WRITE: Scopes = Scopes {
        read: true,
        write: true,
    };

    /// Parses `read`, `write` or `read,write`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on anything else.
    pub fn parse(text: &str) -> Result<Scopes, Error> {
        let mut scopes = Scopes::default();
        for part in text.split([',', '+', ' ']).filter(|p| !p.is_empty()) {
            match part.trim() {
                "read" => scopes.read = true,
                "write" => scopes.write = true,
                _ => {
                    return Err(Error::invalid(
                        "api_keys",
                        "invalid_scope",
                        "scopes are read and write",
                    ));
                }
            }
        }
        Ok(scopes)
    }
}

/// The configured keys (hashes only).
#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Vec<([u8; 32], Scopes)>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} key(s) [hashes redacted])", self.keys.len())
    }
}

/// The SHA-256 hex digest to put in the configuration for `key`.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl ApiKeys {
    /// Adds a key by its SHA-256 hex digest ([`hash_key`]).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] when `hash` is not 64 hex digits.
    pub fn with_hash(mut self, hash: &str, scopes: Scopes) -> Result<Self, Error> {
        let bytes = hex::decode(hash.trim().trim_start_matches("sha256:"))
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                Error::invalid(
                    "api_keys",
                    "invalid_key_hash",
                    "an API key is configured as the 64-digit SHA-256 hex of the key",
                )
            })?;
        self.keys.push((bytes, scopes));
        Ok(self)
    }

    /// Adds a key given in clear (tests, throw-away setups); only its hash
    /// is kept.
    pub fn with_key(mut self, key: &str, scopes: Scopes) -> Self {
        self.keys
            .push((Sha256::digest(key.as_bytes()).into(), scopes));
        self
    }

    /// The scopes of `presented`, if it is a configured key. Every stored
    /// hash is compared, in constant time, whatever matches.
    pub fn scopes_of(&self, presented: &str) -> Option<Scopes> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (hash, scopes) in &self.keys {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(*scopes);
            }
        }
        found
    }
}

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

/// The token `GET /metrics` asks for (`LEAD_METRICS_TOKEN`), kept as its
/// SHA-256 only, like the API keys.
#[derive(Clone)]
pub(crate) struct MetricsToken([u8; 32]);

impl MetricsToken {
    pub(crate) fn new(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `presented` is the token. Digests of equal length are
    /// compared in constant time, so neither the token's length nor its
    /// first differing byte shows in the answer's timing.
    fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(self.0.ct_eq(&digest))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_hash_with_their_scopes() {
        let keys = ApiKeys::default()
            .with_key("reader-key", Scopes::READ)
            .with_hash(&hash_key("writer-key"), Scopes::READ_WRITE)
            .expect("hash");
        assert_eq!(keys.scopes_of("reader-key"), Some(Scopes::READ));
        assert_eq!(keys.scopes_of("writer-key"), Some(Scopes::READ_WRITE));
        assert_eq!(keys.scopes_of("writer-key "), None);
        assert_eq!(keys.scopes_of(""), None);
        assert!(!format!("{keys:?}").contains(&hash_key("reader-key")));
        assert!(ApiKeys::default().with_hash("abc", Scopes::READ).is_err());
        assert_eq!(Scopes::parse("read,write").ok(), Some(Scopes::READ_WRITE));
        assert!(Scopes::parse("admin").is_err());
    }

    #[test]
    fn the_metrics_token_matches_itself_only() {
        let token = MetricsToken::new("prom-token");
        assert!(token.matches("prom-token"));
        for wrong in ["", "prom-token ", "prom-toke", "prom-tokenx", "PROM-TOKEN"] {
            assert!(!token.matches(wrong), "{wrong:?}");
        }
    }
}
