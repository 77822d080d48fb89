//! The HTTP side: the token header, the envelope, errors by meaning, and
//! pacing by the rate-limit headers so the client slows down before
//! Pipedrive says 429 (`../shared/crm-specs/CONTRACTS.md` §2.3, §2.9).

use std::sync::Mutex;
use std::time::Duration;

use lead_core::{Error, Result};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use crate::config::PipedriveConfig;
use crate::wire::{Envelope, ErrorBody};

/// The burst window as the last answer told it.
#[derive(Debug, Clone, Copy)]
struct Window {
    remaining: u64,
    resets_at: Instant,
}

/// The HTTP client of one company.
pub(crate) struct Http {
    http: reqwest::Client,
    config: PipedriveConfig,
    window: Mutex<Option<Window>>,
}

/// Calls left in a window below which the client waits for the window's
/// end instead of spending the last ones (other users of the token may
/// need them, and a 429 costs a round trip and a ban risk).
const KEEP: u64 = 1;

impl Http {
    pub(crate) fn new(config: PipedriveConfig) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::internal("Pipedrive: HTTP client").caused_by(e))?;
        Ok(Http {
            http,
            config,
            window: Mutex::new(None),
        })
    }

    pub(crate) fn config(&self) -> &PipedriveConfig {
        &self.config
    }

    /// Waits out the burst window when the last answer left (almost)
    /// nothing in it.
    async fn pace(&self) {
        let window = *self.window.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = window
            && w.remaining <= KEEP
            && w.resets_at > Instant::now()
        {
            tokio::time::sleep_until(w.resets_at).await;
        }
    }

    fn record_window(&self, headers: &HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let (Some(remaining), Some(reset)) =
            (number("x-ratelimit-remaining"), number("x-ratelimit-reset"))
        {
            let window = Window {
                remaining,
                resets_at: Instant::now() + Duration::from_secs(reset.max(1)),
            };
            *self.window.lock().unwrap_or_else(|p| p.into_inner()) = Some(window);
        }
    }

    /// Sends a call and reads its envelope's `data` (and `additional_data`).
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<(T, Option<crate::wire::AdditionalData>)> {
        self.pace().await;
        let url = format!("{}{path}", self.config.base_url);
        let mut request = self
            .http
            .request(method, url)
            .header("x-api-token", self.config.api_token.expose_secret())
            .header("Accept", "application/json")
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(transport)?;
        self.record_window(response.headers());
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.map_err(transport)?;
        if !status.is_success() {
            return Err(error_of(status, &headers, &text));
        }
        let envelope: Envelope<T> = serde_json::from_str(&text).map_err(|e| {
            Error::internal(format!("Pipedrive: the answer to {path} is not readable")).caused_by(e)
        })?;
        let data = envelope.data.ok_or_else(|| {
            Error::internal(format!("Pipedrive: no data in the answer to {path}"))
        })?;
        Ok((data, envelope.additional_data))
    }
}

/// A failed transport (connect, TLS, timeout): temporary.
fn transport(err: reqwest::Error) -> Error {
    Error::unavailable("Pipedrive: the request did not complete").caused_by(err.without_url())
}

/// Seconds in a header.
fn seconds(headers: &HeaderMap, name: &str) -> Option<Duration> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// An error answer by what it means: 429 waits (`Retry-After`, else the
/// window's reset, at least 2 s; an hour when the day's tokens are
/// spent), 5xx and a non-JSON 403 (Cloudflare's page after too many 429s)
/// are temporary, 401 is a refused token, 404 a missing record, the rest
/// refuses the record.
pub(crate) fn error_of(status: StatusCode, headers: &HeaderMap, body: &str) -> Error {
    let parsed = serde_json::from_str::<ErrorBody>(body);
    let said = parsed
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|_| status.to_string());
    match status {
        StatusCode::TOO_MANY_REQUESTS => {
            let day_spent = headers
                .get("x-daily-ratelimit-token-remaining")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim() == "0");
            let wait = if day_spent {
                Duration::from_secs(3600)
            } else {
                seconds(headers, "retry-after")
                    .or_else(|| seconds(headers, "x-ratelimit-reset"))
                    .unwrap_or_default()
                    .max(Duration::from_secs(2))
            };
            Error::RateLimited {
                retry_after: Some(wait),
            }
        }
        StatusCode::UNAUTHORIZED => {
            Error::Unauthorized(format!("Pipedrive refused the API token: {said}"))
        }
        StatusCode::FORBIDDEN if parsed.is_err() => Error::RateLimited {
            retry_after: Some(Duration::from_secs(60)),
        },
        StatusCode::NOT_FOUND => Error::NotFound(format!("Pipedrive: {said}")),
        s if s.is_server_error() => Error::unavailable(format!("Pipedrive answered {s}: {said}")),
        s => Error::NotAllowed(format!("Pipedrive answered {s}: {said}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("a header value"));
        }
        map
    }

    #[test]
    fn answers_become_errors_by_meaning() {
        let body = r#"{"success":false,"error":"Request over limit","errorCode":429}"#;
        let burst = error_of(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("x-ratelimit-reset", "1")]),
            body,
        );
        assert!(
            matches!(burst, Error::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(2)),
            "at least 2 s: {burst:?}"
        );
        let told = error_of(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "7")]),
            body,
        );
        assert!(
            matches!(told, Error::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(7))
        );
        let day = error_of(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("x-daily-ratelimit-token-remaining", "0")]),
            body,
        );
        assert!(
            matches!(day, Error::RateLimited { retry_after: Some(d) } if d >= Duration::from_secs(3600))
        );
        let token = error_of(
            StatusCode::UNAUTHORIZED,
            &HeaderMap::new(),
            r#"{"success":false,"error":"unauthorized access","errorCode":401,"error_info":"Please check developers.pipedrive.com"}"#,
        );
        assert!(matches!(token, Error::Unauthorized(ref m) if m.contains("unauthorized access")));
        let cloudflare = error_of(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            "<html>banned</html>",
        );
        assert!(cloudflare.is_temporary(), "{cloudflare:?}");
        let capped = error_of(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            r#"{"success":false,"error":"limit reached","code":"feature_capping_deals_limit"}"#,
        );
        assert!(
            matches!(capped, Error::NotAllowed(ref m) if m.contains("feature_capping_deals_limit"))
        );
        assert!(error_of(StatusCode::BAD_GATEWAY, &HeaderMap::new(), "").is_temporary());
        assert!(matches!(
            error_of(
                StatusCode::NOT_FOUND,
                &HeaderMap::new(),
                r#"{"success":false,"error":"requested lead not found"}"#
            ),
            Error::NotFound(_)
        ));
    }
}
