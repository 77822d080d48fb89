//! Per-IP and per-API-key rate limits (GCRA, `governor`), answered `429`
//! in the one error shape with `Retry-After`.
//!
//! The client IP is the connection's peer address (the server runs
//! `into_make_service_with_connect_info`), or the first `X-Forwarded-For`
//! address when [`RateLimit::trust_forwarded_for`] is set (behind a proxy
//! you run). API keys are limited by a hash of the key, never the key.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use lead_core::Error;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// A limit: a sustained rate per minute and a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per minute, sustained.
    pub per_minute: u32,
    /// Requests allowed at once above the sustained rate.
    pub burst: u32,
}

/// The rate limits of the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Per client IP, every route. Default 6 000/min, burst 200; `None`
    /// turns it off.
    pub per_ip: Option<Rate>,
    /// Per API key, the lead and dashboard APIs. Default 12 000/min, burst
    /// 400; `None` turns it off.
    pub per_key: Option<Rate>,
    /// Take the client IP from the first `X-Forwarded-For` address
    /// (only behind a proxy you run: clients can set the header). Default
    /// `false`.
    pub trust_forwarded_for: bool,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_ip: Some(Rate {
                per_minute: 6_000,
                burst: 200,
            }),
            per_key: Some(Rate {
                per_minute: 12_000,
                burst: 400,
            }),
            trust_forwarded_for: false,
        }
    }
}

impl RateLimit {
    /// No limits.
    pub fn off() -> Self {
        Self {
            per_ip: None,
            per_key: None,
            trust_forwarded_for: false,
        }
    }
}

fn quota(rate: Rate) -> Option<Quota> {
    let per_minute = NonZeroU32::new(rate.per_minute)?;
    let burst = NonZeroU32::new(rate.burst.max(1))?;
    Some(Quota::per_minute(per_minute).allow_burst(burst))
}

/// The limiters, shared by every request.
pub(crate) struct Limiters {
    checks: std::sync::atomic::AtomicU64,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_key: Option<DefaultKeyedRateLimiter<[u8; 32]>>,
    trust_forwarded_for: bool,
}

impl Limiters {
    pub(crate) fn new(limits: &RateLimit) -> Arc<Self> {
        Arc::new(Self {
            checks: std::sync::atomic::AtomicU64::new(0),
            per_ip: limits.per_ip.and_then(quota).map(RateLimiter::keyed),
            per_key: limits.per_key.and_then(quota).map(RateLimiter::keyed),
            trust_forwarded_for: limits.trust_forwarded_for,
        })
    }

    fn client_ip(&self, request: &Request) -> Option<IpAddr> {
        if self.trust_forwarded_for
            && let Some(ip) = request
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok())
        {
            return Some(ip);
        }
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
    }

    fn api_key_hash(request: &Request) -> Option<[u8; 32]> {
        let headers = request.headers();
        let key = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))?;
        Some(Sha256::digest(key.trim().as_bytes()).into())
    }

    /// `Err(wait)` when the request is over a limit.
    fn check(&self, request: &Request) -> Result<(), Duration> {
        // Now and then, forget clients that are back to full capacity, so
        // the tables stay as small as the set of recent clients.
        let n = self
            .checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n % 4096 == 4095 {
            self.shrink();
        }
        let wait = |not_until: governor::NotUntil<_>| {
            not_until.wait_time_from(DefaultClock::default().now())
        };
        if let Some(limiter) = &self.per_ip
            && let Some(ip) = self.client_ip(request)
        {
            limiter.check_key(&ip).map_err(wait)?;
        }
        if let Some(limiter) = &self.per_key
            && let Some(hash) = Self::api_key_hash(request)
        {
            limiter.check_key(&hash).map_err(wait)?;
        }
        Ok(())
    }

    /// Forgets keys that are back to full capacity (bounded memory).
    fn shrink(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
        }
        if let Some(l) = &self.per_key {
            l.retain_recent();
        }
    }
}

/// The middleware: `429` with `Retry-After` over a limit.
pub(crate) async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limiters = &state.inner.limiters;
    match limiters.check(&request) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            metrics::counter!("http_rate_limited_total").increment(1);
            ApiError::Core(Error::RateLimited {
                retry_after: Some(Duration::from_secs(wait.as_secs().max(1))),
            })
            .into_response()
        }
    }
}
