//! Signed webhooks to subscribers, per Standard Webhooks
//! (`../shared/crm-specs/CONTRACTS.md` §3).
//!
//! One `POST` per notification: the body is `{"type", "timestamp",
//! "data"}` ([`payload`]), signed over its exact bytes with the
//! subscriber's `whsec_` secret ([`sign`]); `webhook-id` is the
//! notification's id, the same on every retry, so the receiver can drop
//! a message it already has. Answers: 2xx delivered; a redirect is not
//! followed and fails for good; 410 fails for good (the receiver asks to
//! disable the endpoint); 429 waits `Retry-After`; 502, 503, 504 and
//! other 5xx, time-outs and connection errors are temporary (honouring
//! `Retry-After` when given); other 4xx fail for good.
//!
//! Unless [`WebhookConfig::allow_private`] is set, a subscriber can only
//! be reached on a public address (the SSRF guard): private, loopback,
//! link-local and other internal addresses are refused when the notifier
//! is built (an address in the URL) or when it connects (a name that
//! resolves to one). Requests go straight to the subscriber, never
//! through an HTTP proxy, which would resolve names where the guard
//! cannot see.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::SecondsFormat;
use lead_core::notify::{Event, Notification};
use lead_core::ports::{Delivery, Notifier};
use lead_core::standard_webhooks::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSecret};
use lead_core::{Error, Result};
use serde::Serialize;

use crate::error::{ConfigError, answer_of, read_start, said, transport};
use crate::ssrf;

/// One subscriber.
#[derive(Clone)]
pub struct WebhookConfig {
    name: String,
    url: String,
    secret: WebhookSecret,
    allow_private: bool,
    timeout: Duration,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &shown(&self.url))
            .field("secret", &self.secret)
            .field("allow_private", &self.allow_private)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A subscriber URL as `Debug` shows it: scheme and host only. Many
/// receivers (Zapier, Make) put a token in the path.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}/[redacted]",
            u.scheme(),
            u.host_str().unwrap_or_default()
        ),
        Err(_) => "[redacted]".to_owned(),
    }
}

impl WebhookConfig {
    /// The subscriber `name` (in messages and channel names), posting to
    /// `url`, signed with `secret`; public addresses only, a 15 s
    /// time-out.
    pub fn new(name: &str, url: &str, secret: WebhookSecret) -> Self {
        WebhookConfig {
            name: name.to_owned(),
            url: url.trim().to_owned(),
            secret,
            allow_private: false,
            timeout: Duration::from_secs(15),
        }
    }

    /// Lets the subscriber be on a private, loopback or other internal
    /// address (a receiver in the same network; local tests). Off by
    /// default: whoever configures a subscriber could otherwise make the
    /// server call its own network.
    pub fn allow_private(mut self, allow: bool) -> Self {
        self.allow_private = allow;
        self
    }

    /// How long one delivery may take, connection included (Standard
    /// Webhooks suggests 15 to 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Posts signed notifications to one subscriber.
pub struct WebhookNotifier {
    name: String,
    url: url::Url,
    secret: WebhookSecret,
    http: reqwest::Client,
}

impl fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("name", &self.name)
            .field("url", &shown(self.url.as_str()))
            .finish_non_exhaustive()
    }
}

impl WebhookNotifier {
    /// Checks the subscriber's URL and builds its HTTP client (no
    /// redirects, no proxy, the SSRF guard's resolver unless
    /// [`WebhookConfig::allow_private`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError::WebhookUrl`] when the URL is not http(s), carries
    /// credentials, or (without `allow_private`) names a forbidden
    /// address or `localhost`.
    pub fn new(config: WebhookConfig) -> Result<WebhookNotifier, ConfigError> {
        Self::build(config, ssrf::system_lookup())
    }

    fn build(config: WebhookConfig, lookup: ssrf::Lookup) -> Result<WebhookNotifier, ConfigError> {
        let refuse = |reason: String| ConfigError::WebhookUrl {
            subscriber: config.name.clone(),
            reason,
        };
        let url =
            url::Url::parse(&config.url).map_err(|e| refuse(format!("is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refuse("must be http or https".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse(
                "must not carry credentials (the signature proves who sends)".into(),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(refuse("names no host".into()));
        }
        let mut http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("lead-notify/", env!("CARGO_PKG_VERSION")));
        if !config.allow_private {
            ssrf::check_host(&url).map_err(refuse)?;
            http = http.dns_resolver(std::sync::Arc::new(ssrf::GuardedResolver::new(lookup)));
        }
        let http = http
            .build()
            .map_err(|e| ConfigError::HttpClient(e.without_url().to_string()))?;
        Ok(WebhookNotifier {
            name: config.name,
            url,
            secret: config.secret,
            http,
        })
    }

    /// The subscriber's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn who(&self) -> String {
        format!("webhook subscriber \"{}\"", self.name)
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    #[tracing::instrument(
        name = "webhook.notify",
        skip_all,
        fields(subscriber = %self.name, notification = %notification.id, kind = %notification.event.kind())
    )]
    async fn notify(&self, notification: &Notification) -> Result<Delivery> {
        let signed = sign(notification, &self.secret, chrono::Utc::now().timestamp());
        let mut request = self.http.post(self.url.clone());
        for (name, value) in &signed.headers {
            request = request.header(*name, value);
        }
        let who = self.who();
        let failed = |err: reqwest::Error| match ssrf::refused_in(&err) {
            Some(refused) => Error::NotAllowed(format!("{who}: {refused}")),
            None => transport(&who, err),
        };
        let response = request.body(signed.body).send().await.map_err(failed)?;
        let status = response.status();
        let headers = response.headers().clone();
        let answer = read_start(response).await.map_err(failed)?;
        answer_of(&who, status, &headers, &said(&answer))
    }
}

/// One delivery as it goes on the wire: the body and the headers
/// (`content-type`, `webhook-id`, `webhook-timestamp`,
/// `webhook-signature`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The exact bytes sent (and signed).
    pub body: Vec<u8>,
    /// Header names and values, in the order sent.
    pub headers: Vec<(&'static str, String)>,
}

/// The body of a notification's webhook: `{"type": "lead.assigned",
/// "timestamp": <RFC 3339 of when it happened>, "data": <the event>}`,
/// Standard Webhooks' recommended shape. The same notification always
/// gives the same bytes.
pub fn payload(notification: &Notification) -> Vec<u8> {
    #[derive(Serialize)]
    struct Payload<'a> {
        r#type: &'static str,
        timestamp: String,
        data: &'a Event,
    }
    let payload = Payload {
        r#type: notification.event.kind().webhook_type(),
        timestamp: notification
            .created_at
            .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        data: &notification.event,
    };
    serde_json::to_vec(&payload).expect("an event serializes to JSON")
}

/// The `webhook-id` of a notification: `msg_` and its id without dashes,
/// the same on every attempt (the receiver's idempotency key).
pub fn message_id(notification: &Notification) -> String {
    format!("msg_{}", notification.id.simple())
}

/// The signed request for `notification` at `timestamp` (Unix seconds of
/// the attempt).
///
/// ```
/// use lead_core::standard_webhooks::WebhookSecret;
/// # use lead_core::notify::{Event, Notification};
/// # let n = Notification { id: uuid::Uuid::nil(), created_at: chrono::Utc::now(), event: Event::Digest { rep: None, items: vec![] } };
/// let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
/// let signed = lead_notify::webhook::sign(&n, &secret, 1_700_000_000);
/// assert_eq!(signed.headers[1], ("webhook-id", "msg_00000000000000000000000000000000".to_owned()));
/// assert!(signed.headers[3].1.starts_with("v1,"));
/// ```
pub fn sign(notification: &Notification, secret: &WebhookSecret, timestamp: i64) -> SignedRequest {
    let body = payload(notification);
    let headers = signature_headers(secret, &message_id(notification), timestamp, &body);
    SignedRequest { body, headers }
}

/// The headers of a signed message: what [`sign`] sends, for any id and
/// body (the test vectors' too).
fn signature_headers(
    secret: &WebhookSecret,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".to_owned()),
        (ID_HEADER, id.to_owned()),
        (TIMESTAMP_HEADER, timestamp.to_string()),
        (SIGNATURE_HEADER, secret.sign(id, timestamp, body)),
    ]
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};
    use lead_core::notify::LeadCard;
    use lead_core::{LeadExtId, Priority, Stage};
    use uuid::Uuid;
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    /// `../shared/crm-specs/standard-webhooks/test-vectors.json`, from the
    /// Standard Webhooks reference libraries' tests.
    const VECTORS: [(&str, &str, i64, &str, &str); 2] = [
        (
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            r#"{"email":"test@example.com","username":"test_user"}"#,
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        ),
        (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
    ];

    #[test]
    fn the_signing_path_reproduces_both_standard_webhooks_test_vectors() {
        for (secret, id, timestamp, body, expected) in VECTORS {
            let secret = WebhookSecret::parse(secret).expect("a secret");
            let headers = signature_headers(&secret, id, timestamp, body.as_bytes());
            assert_eq!(
                headers,
                [
                    ("content-type", "application/json".to_owned()),
                    ("webhook-id", id.to_owned()),
                    ("webhook-timestamp", timestamp.to_string()),
                    ("webhook-signature", expected.to_owned()),
                ]
            );
        }
    }

    fn notification() -> Notification {
        Notification {
            id: Uuid::parse_str("0192f0c4-5a7e-7b3c-9d2e-8f1a2b3c4d5e").unwrap(),
            created_at: Utc.with_ymd_and_hms(2026, 12, 3, 14, 5, 9).unwrap(),
            event: Event::HighPriorityLead {
                lead: LeadCard {
                    ext_id: LeadExtId::parse("WEB-7KQ2M9XA").unwrap(),
                    name: Some("Ana".into()),
                    email: "ana@acme.com".into(),
                    company: None,
                    job_title: None,
                    score: 90,
                    priority: Priority::High,
                    stage: Stage::New,
                    assigned_to: None,
                    source: None,
                    estimated_value: None,
                    currency: None,
                },
            },
        }
    }

    #[test]
    fn the_payload_is_type_timestamp_and_the_event() {
        let body = payload(&notification());
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"type":"lead.high_priority","timestamp":"2026-12-03T14:05:09Z","data":{"event":"high_priority_lead","lead":{"ext_id":"WEB-7KQ2M9XA","name":"Ana","email":"ana@acme.com","score":90,"priority":"high","stage":"new"}}}"#
        );
    }

    #[test]
    fn the_message_id_has_no_dash_and_no_dot() {
        let id = message_id(&notification());
        assert_eq!(id, "msg_0192f0c45a7e7b3c9d2e8f1a2b3c4d5e");
    }

    /// A name that resolves to the loopback receiver, through a fake
    /// lookup: the connect-time guard end to end, whatever this machine's
    /// DNS or /etc/hosts say.
    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_when_connecting() {
        let receiver = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(204))
            .expect(0)
            .mount(&receiver)
            .await;
        let port = receiver.address().port();
        let lookup: ssrf::Lookup = Arc::new(move |_host: String| {
            Box::pin(async move { Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]) })
        });
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let url = format!("http://rebind.example.com:{port}/hook");
        let notifier =
            WebhookNotifier::build(WebhookConfig::new("acme", &url, secret), lookup).unwrap();
        let err = notifier.notify(&notification()).await.expect_err("refused");
        assert!(!err.is_temporary(), "{err:?}");
        assert_eq!(
            err.to_string(),
            "not allowed: webhook subscriber \"acme\": rebind.example.com resolves only to \
             loopback addresses that webhooks may not reach (SSRF guard; allow_private lifts it)"
        );
    }
}
