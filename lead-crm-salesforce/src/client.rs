//! The HTTP side: getting and reusing the access token, sending a call
//! with exactly one re-authentication on `401 INVALID_SESSION_ID`,
//! reading `Sforce-Limit-Info`, and mapping answers onto
//! [`lead_core::Error`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lead_core::{Error, Result};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::config::{Flow, SalesforceConfig};
use crate::jwt;
use crate::wire::{TokenAnswer, TokenRefusal, api_errors};

/// A token and the instance it is for.
#[derive(Clone)]
struct Session {
    access_token: SecretString,
    instance_url: String,
}

/// API calls used and allowed, from the last `Sforce-Limit-Info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiUsage {
    /// Calls used in the rolling 24 hours.
    pub used: u64,
    /// Calls allowed.
    pub limit: u64,
}

/// An answer that is not an error: its status and body.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: String,
}

/// The HTTP client of one org.
pub(crate) struct Http {
    http: reqwest::Client,
    config: SalesforceConfig,
    /// The JWT bearer flow's key, read once when the client is built.
    jwt: Option<jwt::Signer>,
    session: tokio::sync::Mutex<Option<Session>>,
    /// The last `Sforce-Limit-Info`, and when it came.
    usage: Mutex<Option<(ApiUsage, Instant)>>,
    logins: AtomicU64,
}

/// How long a usage figure near the limit holds calls back before one is
/// let through to read a fresh one (the org's 24-hour window moves on).
const USAGE_FRESH: Duration = Duration::from_secs(15 * 60);

impl Http {
    /// Checks what can be checked before the first login (the JWT
    /// bearer key) and builds the HTTP client.
    pub(crate) fn new(config: SalesforceConfig) -> Result<Self> {
        let jwt = match &config.flow {
            Flow::JwtBearer {
                client_id,
                username,
                private_key,
                audience,
            } => Some(jwt::Signer::new(
                client_id,
                username,
                private_key,
                audience,
            )?),
            Flow::ClientCredentials { .. } | Flow::Password { .. } => None,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::internal("Salesforce: HTTP client").caused_by(e))?;
        Ok(Http {
            http,
            config,
            jwt,
            session: tokio::sync::Mutex::new(None),
            usage: Mutex::new(None),
            logins: AtomicU64::new(0),
        })
    }

    pub(crate) fn config(&self) -> &SalesforceConfig {
        &self.config
    }

    pub(crate) fn usage(&self) -> Option<ApiUsage> {
        self.usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|(usage, _)| usage)
    }

    /// `Err(RateLimited)` while the org's last known API usage is inside
    /// the share left to its other integrations
    /// ([`SalesforceConfig::api_reserve_pct`]): the sync slows down before
    /// the org's limit is hit, not after.
    fn within_budget(&self) -> Result<()> {
        let last = *self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let Some((usage, seen)) = last else {
            return Ok(());
        };
        let reserve = usage.limit * u64::from(self.config.api_reserve_pct.min(100)) / 100;
        if usage.used + reserve >= usage.limit && seen.elapsed() < USAGE_FRESH {
            return Err(Error::RateLimited {
                retry_after: Some(USAGE_FRESH.saturating_sub(seen.elapsed())),
            });
        }
        Ok(())
    }

    pub(crate) fn logins(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }

    /// The cached session, or a new one.
    async fn session(&self) -> Result<Session> {
        let mut cached = self.session.lock().await;
        if let Some(session) = cached.as_ref() {
            return Ok(session.clone());
        }
        let session = self.login().await?;
        *cached = Some(session.clone());
        Ok(session)
    }

    /// Forgets `stale` (unless another call already replaced it) and logs in again.
    async fn renew(&self, stale: &Session) -> Result<Session> {
        let mut cached = self.session.lock().await;
        if let Some(current) = cached.as_ref()
            && current.access_token.expose_secret() != stale.access_token.expose_secret()
        {
            return Ok(current.clone());
        }
        let session = self.login().await?;
        *cached = Some(session.clone());
        Ok(session)
    }

    async fn login(&self) -> Result<Session> {
        self.logins.fetch_add(1, Ordering::Relaxed);
        let url = format!(
            "{}/services/oauth2/token",
            self.config.login_url.trim_end_matches('/')
        );
        let form: Vec<(&str, String)> = match &self.config.flow {
            Flow::ClientCredentials {
                client_id,
                client_secret,
            } => vec![
                ("grant_type", "client_credentials".into()),
                ("client_id", client_id.clone()),
                ("client_secret", client_secret.expose_secret().to_owned()),
            ],
            Flow::Password {
                client_id,
                client_secret,
                username,
                password,
                security_token,
            } => vec![
                ("grant_type", "password".into()),
                ("client_id", client_id.clone()),
                ("client_secret", client_secret.expose_secret().to_owned()),
                ("username", username.clone()),
                (
                    "password",
                    format!(
                        "{}{}",
                        password.expose_secret(),
                        security_token.expose_secret()
                    ),
                ),
            ],
            // A new assertion at every login: the last one's `exp` has
            // likely passed by the time a session expires.
            Flow::JwtBearer { .. } => {
                let signer = self.jwt.as_ref().ok_or_else(|| {
                    Error::internal("Salesforce: the JWT bearer key was not read")
                })?;
                let assertion = signer.assertion(jwt::now()).map_err(|e| {
                    Error::internal("Salesforce: signing the JWT bearer assertion failed")
                        .caused_by(e)
                })?;
                vec![
                    ("grant_type", jwt::GRANT_TYPE.into()),
                    ("assertion", assertion),
                ]
            }
        };
        let response = self
            .http
            .post(&url)
            .header("Accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let body = response.text().await.map_err(transport)?;
        if status.is_success() {
            let answer: TokenAnswer = serde_json::from_str(&body).map_err(|e| {
                Error::internal("Salesforce: the token answer is not readable").caused_by(e)
            })?;
            return Ok(Session {
                access_token: SecretString::from(answer.access_token),
                instance_url: answer.instance_url.trim_end_matches('/').to_owned(),
            });
        }
        if status.is_server_error() {
            return Err(Error::unavailable(format!(
                "Salesforce: the token endpoint answered {status}"
            )));
        }
        // The refusal names the problem (invalid_grant, invalid_client);
        // it never quotes the credentials.
        let refusal = serde_json::from_str::<TokenRefusal>(&body)
            .map(|r| match r.error_description {
                Some(d) => format!("{}: {d}", r.error),
                None => r.error,
            })
            .unwrap_or_else(|_| status.to_string());
        Err(Error::Unauthorized(format!(
            "Salesforce refused to log in ({refusal})"
        )))
    }

    /// `path` under `/services/data/vNN.N`, or a whole path that starts
    /// with `/services/` (a `nextRecordsUrl`).
    fn url(&self, session: &Session, path: &str) -> String {
        if path.starts_with("/services/") {
            format!("{}{path}", session.instance_url)
        } else {
            format!(
                "{}/services/data/v{}{path}",
                session.instance_url, self.config.api_version
            )
        }
    }

    /// Holds or gets a session: `Ok` when the org takes our credentials.
    pub(crate) async fn check(&self) -> Result<()> {
        self.session().await.map(|_| ())
    }

    /// Sends a call (`query` pairs are URL-encoded onto it); on `401`
    /// logs in again and sends it once more.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer> {
        self.call_with(method, path, query, body, &[]).await
    }

    /// [`call`](Http::call) with extra request `headers` (e.g.
    /// `Sforce-Auto-Assign`).
    pub(crate) async fn call_with(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Answer> {
        self.within_budget()?;
        let mut session = self.session().await?;
        for attempt in 0..2 {
            let mut request = self
                .http
                .request(method.clone(), self.url(&session, path))
                .bearer_auth(session.access_token.expose_secret())
                .header("Accept", "application/json")
                .query(query);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(transport)?;
            self.record_usage(response.headers());
            let status = response.status();
            let retry_after = retry_after(response.headers());
            let text = response.text().await.map_err(transport)?;
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                session = self.renew(&session).await?;
                continue;
            }
            return answer(status, text, retry_after);
        }
        Err(Error::Unauthorized(
            "Salesforce refused a fresh session (401 twice)".into(),
        ))
    }

    fn record_usage(&self, headers: &reqwest::header::HeaderMap) {
        let Some(info) = headers
            .get("Sforce-Limit-Info")
            .and_then(|v| v.to_str().ok())
        else {
            return;
        };
        if let Some(usage) = parse_limit_info(info) {
            *self.usage.lock().unwrap_or_else(|p| p.into_inner()) = Some((usage, Instant::now()));
        }
    }
}

/// `api-usage=18/15000` out of `Sforce-Limit-Info` (other `; key=used/limit`
/// pairs may come along).
pub(crate) fn parse_limit_info(info: &str) -> Option<ApiUsage> {
    info.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        if key.trim() != "api-usage" {
            return None;
        }
        let (used, limit) = value.trim().split_once('/')?;
        Some(ApiUsage {
            used: used.trim().parse().ok()?,
            limit: limit.trim().parse().ok()?,
        })
    })
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// A failed transport (connect, TLS, timeout, broken body): temporary.
fn transport(err: reqwest::Error) -> Error {
    Error::unavailable("Salesforce: the request did not complete").caused_by(err.without_url())
}

/// An answer as a result: success and `300` (several matches) are the
/// caller's to read; the rest become errors by what they mean.
fn answer(status: StatusCode, body: String, retry_after: Option<Duration>) -> Result<Answer> {
    if status.is_success() || status == StatusCode::MULTIPLE_CHOICES {
        return Ok(Answer { status, body });
    }
    let errors = api_errors(&body);
    let said = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let limit = errors.iter().any(|e| e.code == "REQUEST_LIMIT_EXCEEDED");
    Err(match status {
        StatusCode::TOO_MANY_REQUESTS => Error::RateLimited { retry_after },
        StatusCode::FORBIDDEN if limit => Error::RateLimited { retry_after },
        StatusCode::UNAUTHORIZED => {
            Error::Unauthorized(format!("Salesforce refused the session: {said}"))
        }
        StatusCode::NOT_FOUND => Error::NotFound(format!("Salesforce: {said}")),
        StatusCode::CONFLICT => Error::Conflict(format!("Salesforce: {said}")),
        s if s.is_server_error() => Error::unavailable(format!("Salesforce answered {s}: {said}")),
        s => Error::NotAllowed(format!("Salesforce answered {s}: {said}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_info_is_read_whatever_else_comes_along() {
        assert_eq!(
            parse_limit_info("api-usage=18/15000"),
            Some(ApiUsage {
                used: 18,
                limit: 15000
            })
        );
        assert_eq!(
            parse_limit_info("per-app-api-usage=2/250(appName=x); api-usage=25/5000"),
            Some(ApiUsage {
                used: 25,
                limit: 5000
            })
        );
        assert_eq!(parse_limit_info("api-usage=x/5000"), None);
    }

    #[test]
    fn answers_become_errors_by_meaning() {
        let limit =
            r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
        let err = answer(StatusCode::FORBIDDEN, limit.into(), None)
            .err()
            .unwrap();
        assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
        let busy = answer(StatusCode::SERVICE_UNAVAILABLE, String::new(), None)
            .err()
            .unwrap();
        assert!(busy.is_temporary(), "{busy:?}");
        let bad = r#"{"message":"No such column 'Foo' on sobject of type Lead","errorCode":"INVALID_FIELD"}"#;
        let err = answer(StatusCode::BAD_REQUEST, bad.into(), None)
            .err()
            .unwrap();
        assert!(!err.is_temporary(), "{err:?}");
        assert!(err.to_string().contains("INVALID_FIELD"), "{err}");
        let slow = answer(
            StatusCode::TOO_MANY_REQUESTS,
            String::new(),
            Some(Duration::from_secs(7)),
        )
        .err()
        .unwrap();
        assert!(matches!(
            slow,
            Error::RateLimited {
                retry_after: Some(d)
            } if d == Duration::from_secs(7)
        ));
    }
}
