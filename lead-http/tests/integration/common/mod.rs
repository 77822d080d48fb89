//! The harness of the HTTP tests: a real server on a free port of
//! 127.0.0.1 over a fresh in-memory store, a manual clock and predictable
//! ids, and one typed helper per endpoint.

// Each test binary uses its own part of the harness.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use lead_core::dedup::MergeRecord;
use lead_core::{
    AccountKey, CrmLink, Deps, FieldError, InMemoryStore, Lead, LeadExtId, LeadStore, ManualClock,
    Rep, RepId, SequentialIds, WorkingHours,
};
use lead_http::signature::{sign_legacy, sign_standard};
use lead_http::{ApiKeys, AppState, HttpSettings, Scopes, WebhookKeys, router};
use reqwest::header::{CONTENT_TYPE, HeaderMap, IF_MATCH};
use reqwest::{RequestBuilder, StatusCode};
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// An API key with the `read` scope only.
pub(crate) const READER: &str = "reader-key";
/// An API key with `read` and `write`.
pub(crate) const WRITER: &str = "writer-key";
/// An API key with `write` but not `read`.
pub(crate) const WRITE_ONLY: &str = "write-only-key";
/// The legacy `X-Webhook-Signature` secret.
pub(crate) const LEGACY_SECRET: &str = "s3cret";
/// The current Standard Webhooks secret.
pub(crate) const STANDARD_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
/// The Standard Webhooks secret being rotated out (still accepted).
pub(crate) const OLD_STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The public form origin of [`Options::public_form`].
pub(crate) const PUBLIC_ORIGIN: &str = "https://example.com";

pub(crate) const JSON: &str = "application/json";
pub(crate) const FORM: &str = "application/x-www-form-urlencoded";

/// Extra request headers, as (name, value) pairs.
pub(crate) type Headers = Vec<(&'static str, String)>;

/// When every test's clock starts: a Monday morning.
pub(crate) fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
        .single()
        .expect("a valid instant")
}

/// How the app under test is configured.
pub(crate) struct Options {
    pub(crate) webhook_keys: WebhookKeys,
    pub(crate) settings: HttpSettings,
    /// Store commits never finish (a store that hangs instead of failing).
    pub(crate) stall_commits: bool,
    /// Scoring, routing and duplicate settings.
    pub(crate) policy: lead_core::Policy,
    /// `/metrics` renders the process-wide recorder ([`global_metrics`]).
    pub(crate) metrics: bool,
    /// The token `/metrics` asks for (none: loopback clients only).
    pub(crate) metrics_token: Option<&'static str>,
}

/// The process-wide Prometheus recorder, installed on first use. Every
/// test in this binary records into it, so a test may only look for
/// series that no other test makes.
pub(crate) fn global_metrics() -> metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .expect("the only global recorder")
        })
        .clone()
}

impl Default for Options {
    /// No webhook keys (unsigned captures are accepted), default limits.
    fn default() -> Self {
        Options {
            webhook_keys: WebhookKeys::none(),
            settings: HttpSettings::default(),
            stall_commits: false,
            policy: lead_core::Policy::default(),
            metrics: false,
            metrics_token: None,
        }
    }
}

impl Options {
    /// The legacy secret and the current Standard Webhooks secret.
    pub(crate) fn signed() -> Self {
        Options {
            webhook_keys: WebhookKeys::none()
                .with_legacy(SecretString::from(LEGACY_SECRET))
                .with_standard(STANDARD_SECRET)
                .expect("a valid standard secret"),
            ..Options::default()
        }
    }

    /// Keys as [`Options::signed`], the old Standard Webhooks secret too,
    /// so senders still signing with it keep working during a rotation.
    pub(crate) fn rotating() -> Self {
        Options {
            webhook_keys: WebhookKeys::none()
                .with_legacy(SecretString::from(LEGACY_SECRET))
                .with_standard(STANDARD_SECRET)
                .and_then(|k| k.with_standard(OLD_STANDARD_SECRET))
                .expect("valid standard secrets"),
            ..Options::default()
        }
    }

    /// Keys as [`Options::signed`] and [`PUBLIC_ORIGIN`] as a public form
    /// origin.
    pub(crate) fn public_form() -> Self {
        Options::signed().with_settings(|s| s.public_form_origins = vec![PUBLIC_ORIGIN.into()])
    }

    /// Commits hang forever (reads still answer).
    pub(crate) fn stalling(mut self) -> Self {
        self.stall_commits = true;
        self
    }

    /// `/metrics` renders [`global_metrics`].
    pub(crate) fn with_metrics(mut self) -> Self {
        self.metrics = true;
        self
    }

    /// `/metrics` asks for `token` as `Authorization: Bearer`.
    pub(crate) fn with_metrics_token(mut self, token: &'static str) -> Self {
        self.metrics_token = Some(token);
        self
    }

    /// Duplicate detection by `dedup`.
    pub(crate) fn with_dedup(mut self, dedup: lead_core::DedupConfig) -> Self {
        self.policy.dedup = dedup;
        self
    }

    /// Changes the limits.
    pub(crate) fn with_settings(mut self, change: impl FnOnce(&mut HttpSettings)) -> Self {
        change(&mut self.settings);
        self
    }
}

/// A running server and what a test needs to drive and inspect it.
pub(crate) struct TestApp {
    pub(crate) addr: SocketAddr,
    pub(crate) client: reqwest::Client,
    pub(crate) store: Arc<InMemoryStore>,
    pub(crate) clock: Arc<ManualClock>,
    server: JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A rep routing can always pick (works every day, all day).
pub(crate) fn rep(email: &str, name: &str) -> Rep {
    let mut rep = Rep::new(RepId::parse(email).expect("a valid rep e-mail"), name);
    rep.working_hours = WorkingHours::always();
    rep
}

/// A plain lead: a known person at a company, from the web.
pub(crate) fn person(email: &str) -> Value {
    serde_json::json!({
        "email": email,
        "first_name": "Ana",
        "last_name": "García",
        "company": "Acme Robotics",
        "source": "web",
    })
}

/// The headers of a legacy-signed body.
/// The header that makes a capture verified without a signature: the
/// [`WRITER`] API key.
pub(crate) fn writer() -> Headers {
    vec![("authorization", format!("Bearer {WRITER}"))]
}

/// `headers` and the [`writer`] key.
fn with_writer<'a>(headers: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
    let mut all: Vec<(&str, String)> = writer().into_iter().collect();
    all.extend(headers.iter().cloned());
    all
}

pub(crate) fn legacy_signature(body: &[u8]) -> Headers {
    vec![("x-webhook-signature", sign_legacy(LEGACY_SECRET, body))]
}

/// The headers of a Standard Webhooks message signed with `secret`.
pub(crate) fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Headers {
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            sign_standard(secret, id, timestamp, body).expect("a valid secret"),
        ),
    ]
}

/// The bytes of a JSON value, as sent (and signed).
pub(crate) fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON serializes")
}

/// The url-encoded bytes of form fields, as sent (and signed).
pub(crate) fn form_bytes(fields: &[(&str, &str)]) -> Vec<u8> {
    serde_urlencoded::to_string(fields)
        .expect("the form encodes")
        .into_bytes()
}

impl TestApp {
    /// An app with no webhook keys and default limits.
    pub(crate) async fn spawn() -> TestApp {
        TestApp::spawn_with(Options::default()).await
    }

    /// An app configured by `options`, over a fresh store.
    pub(crate) async fn spawn_with(options: Options) -> TestApp {
        let store = Arc::new(InMemoryStore::new());
        let clock = Arc::new(ManualClock::new(start_time()));
        let mut deps = Deps::with(
            store.clone(),
            clock.clone(),
            Arc::new(SequentialIds::default()),
        );
        if options.stall_commits {
            deps.store = Arc::new(StallingStore(store.clone()));
        }
        let mut builder = AppState::builder(deps);
        if options.metrics {
            builder = builder.metrics(global_metrics());
        }
        if let Some(token) = options.metrics_token {
            builder = builder.metrics_token(&SecretString::from(token));
        }
        let state = builder
            .api_keys(
                ApiKeys::default()
                    .with_key(READER, Scopes::READ)
                    .with_key(WRITER, Scopes::READ_WRITE)
                    .with_key(
                        WRITE_ONLY,
                        Scopes {
                            read: false,
                            write: true,
                        },
                    ),
            )
            .webhook_keys(options.webhook_keys)
            .settings(options.settings)
            .policy(options.policy)
            .build();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port on 127.0.0.1");
        let addr = listener.local_addr().expect("the bound address");
        let server = tokio::spawn(async move {
            // As the server binary serves it: with client addresses.
            axum::serve(
                listener,
                router(state).into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("the server runs");
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client");
        TestApp {
            addr,
            client,
            store,
            clock,
            server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request and reads the whole answer.
    pub(crate) async fn send(&self, request: RequestBuilder) -> Reply {
        let response = request
            .send()
            .await
            .expect("the server answers (a dropped connection means the handler panicked)");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("the whole body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// A request with these extra headers.
    fn with_headers(mut request: RequestBuilder, headers: &[(&str, String)]) -> RequestBuilder {
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request
    }

    /// A request presenting `key` as a bearer token (none when `None`).
    fn with_key(request: RequestBuilder, key: Option<&str>) -> RequestBuilder {
        match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    // ----- capture -----

    /// `POST path` with exactly these bytes and headers.
    async fn post_bytes(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Reply {
        let request = self
            .client
            .post(self.url(path))
            .header(CONTENT_TYPE, content_type)
            .body(body);
        self.send(Self::with_headers(request, headers)).await
    }

    /// `POST /webhook/lead` with exactly these bytes.
    pub(crate) async fn post_lead_bytes(
        &self,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Reply {
        self.post_bytes("/webhook/lead", content_type, body, headers)
            .await
    }

    /// `POST /webhook/lead` with a JSON lead, unsigned.
    pub(crate) async fn post_lead_json(&self, lead: &Value) -> Reply {
        self.post_lead_bytes(JSON, json_bytes(lead), &[]).await
    }

    /// `POST /webhook/lead` with a JSON lead and extra headers.
    pub(crate) async fn post_lead_json_with(
        &self,
        lead: &Value,
        headers: &[(&str, String)],
    ) -> Reply {
        self.post_lead_bytes(JSON, json_bytes(lead), headers).await
    }

    /// `POST /webhook/lead` with a JSON lead signed with the legacy secret.
    pub(crate) async fn post_lead_json_signed(&self, lead: &Value) -> Reply {
        let body = json_bytes(lead);
        let headers = legacy_signature(&body);
        self.post_lead_bytes(JSON, body, &headers).await
    }

    /// `POST /webhook/lead` with an url-encoded form and extra headers.
    pub(crate) async fn post_lead_form(
        &self,
        fields: &[(&str, &str)],
        headers: &[(&str, String)],
    ) -> Reply {
        self.post_lead_bytes(FORM, form_bytes(fields), headers)
            .await
    }

    /// [`TestApp::post_lead_json`] as a verified sender ([`writer`]).
    pub(crate) async fn post_lead_json_verified(&self, lead: &Value) -> Reply {
        self.post_lead_json_with(lead, &writer()).await
    }

    /// [`TestApp::post_lead_json_with`] as a verified sender ([`writer`]).
    pub(crate) async fn post_lead_json_with_verified(
        &self,
        lead: &Value,
        headers: &[(&str, String)],
    ) -> Reply {
        self.post_lead_json_with(lead, &with_writer(headers)).await
    }

    /// [`TestApp::post_lead_form`] as a verified sender ([`writer`]).
    pub(crate) async fn post_lead_form_verified(
        &self,
        fields: &[(&str, &str)],
        headers: &[(&str, String)],
    ) -> Reply {
        self.post_lead_form(fields, &with_writer(headers)).await
    }

    /// [`TestApp::post_batch`] as a verified sender ([`writer`]).
    pub(crate) async fn post_batch_verified(
        &self,
        leads: &[Value],
        headers: &[(&str, String)],
    ) -> Reply {
        self.post_batch(leads, &with_writer(headers)).await
    }

    /// `POST /webhook/lead/batch` with exactly these bytes.
    pub(crate) async fn post_batch_bytes(
        &self,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Reply {
        self.post_bytes("/webhook/lead/batch", content_type, body, headers)
            .await
    }

    /// `POST /webhook/lead/batch` with `{"leads": leads}` as JSON.
    pub(crate) async fn post_batch(&self, leads: &[Value], headers: &[(&str, String)]) -> Reply {
        let body = json_bytes(&serde_json::json!({ "leads": leads }));
        self.post_batch_bytes(JSON, body, headers).await
    }

    // ----- lead API -----

    /// `GET /api/leads?…`.
    pub(crate) async fn get_leads(&self, key: Option<&str>, query: &[(&str, &str)]) -> Reply {
        let request = self.client.get(self.url("/api/leads")).query(query);
        self.send(Self::with_key(request, key)).await
    }

    /// `GET /api/leads/{id}`.
    pub(crate) async fn get_lead(&self, key: Option<&str>, id: &str) -> Reply {
        let request = self.client.get(self.url(&format!("/api/leads/{id}")));
        self.send(Self::with_key(request, key)).await
    }

    /// `GET /api/leads/statistics?…`.
    pub(crate) async fn get_statistics(&self, key: Option<&str>, query: &[(&str, &str)]) -> Reply {
        let request = self
            .client
            .get(self.url("/api/leads/statistics"))
            .query(query);
        self.send(Self::with_key(request, key)).await
    }

    /// `PUT /api/leads/{id}/stage`.
    pub(crate) async fn put_stage(&self, key: Option<&str>, id: &str, body: &Value) -> Reply {
        let request = self
            .client
            .put(self.url(&format!("/api/leads/{id}/stage")))
            .json(body);
        self.send(Self::with_key(request, key)).await
    }

    /// `PUT /api/leads/{id}/stage` conditional on an `If-Match` header.
    pub(crate) async fn put_stage_if_match(
        &self,
        key: Option<&str>,
        id: &str,
        body: &Value,
        if_match: &str,
    ) -> Reply {
        let request = self
            .client
            .put(self.url(&format!("/api/leads/{id}/stage")))
            .header(IF_MATCH, if_match)
            .json(body);
        self.send(Self::with_key(request, key)).await
    }

    /// `PUT /api/leads/{id}/assign`.
    pub(crate) async fn put_assign(&self, key: Option<&str>, id: &str, body: &Value) -> Reply {
        let request = self
            .client
            .put(self.url(&format!("/api/leads/{id}/assign")))
            .json(body);
        self.send(Self::with_key(request, key)).await
    }

    /// `POST /api/leads/{id}/events`.
    pub(crate) async fn post_event(&self, key: Option<&str>, id: &str, body: &Value) -> Reply {
        let request = self
            .client
            .post(self.url(&format!("/api/leads/{id}/events")))
            .json(body);
        self.send(Self::with_key(request, key)).await
    }

    /// `POST /api/merges/{id}/undo`.
    pub(crate) async fn post_undo_merge(&self, key: Option<&str>, merge_id: &str) -> Reply {
        let request = self
            .client
            .post(self.url(&format!("/api/merges/{merge_id}/undo")));
        self.send(Self::with_key(request, key)).await
    }

    /// `GET /api/dashboard/{view}?…`.
    pub(crate) async fn get_dashboard(
        &self,
        key: Option<&str>,
        view: &str,
        query: &[(&str, &str)],
    ) -> Reply {
        let request = self
            .client
            .get(self.url(&format!("/api/dashboard/{view}")))
            .query(query);
        self.send(Self::with_key(request, key)).await
    }

    /// `method path` with `key` and an optional JSON body.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(Self::with_key(request, key)).await
    }

    /// `GET path` with these headers only (to present keys other ways).
    pub(crate) async fn get_with_headers(&self, path: &str, headers: &[(&str, String)]) -> Reply {
        let request = self.client.get(self.url(path));
        self.send(Self::with_headers(request, headers)).await
    }

    // ----- operations -----

    /// `GET /health`.
    pub(crate) async fn get_health(&self) -> Reply {
        self.send(self.client.get(self.url("/health"))).await
    }

    /// `GET /ready`.
    pub(crate) async fn get_ready(&self) -> Reply {
        self.send(self.client.get(self.url("/ready"))).await
    }

    /// `GET /metrics`.
    pub(crate) async fn get_metrics(&self) -> Reply {
        self.send(self.client.get(self.url("/metrics"))).await
    }

    /// `GET /metrics` with `Authorization: Bearer <token>`.
    pub(crate) async fn get_metrics_with_token(&self, token: &str) -> Reply {
        self.send(self.client.get(self.url("/metrics")).bearer_auth(token))
            .await
    }

    // ----- shortcuts -----

    /// Captures a JSON lead as a verified sender (the [`WRITER`] API key,
    /// unsigned) and returns the full answer, asserting it was created.
    pub(crate) async fn create_lead(&self, lead: &Value) -> Captured {
        let reply = self.post_lead_json_with(lead, &writer()).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        let captured = reply.captured();
        assert_eq!(captured.status, "created", "{captured:?}");
        captured
    }

    /// The stored leads that were not merged away.
    pub(crate) fn live_leads(&self) -> Vec<Lead> {
        self.store
            .leads()
            .into_iter()
            .filter(|l| l.merged_into.is_none())
            .collect()
    }

    /// The unmerged stored lead with this e-mail.
    pub(crate) fn stored_by_email(&self, email: &str) -> Lead {
        self.live_leads()
            .into_iter()
            .find(|l| l.fields.email.as_str() == email)
            .unwrap_or_else(|| panic!("a lead with {email} is stored"))
    }

    /// The stored lead with this id.
    pub(crate) fn stored(&self, id: &str) -> Lead {
        self.store
            .leads()
            .into_iter()
            .find(|l| l.ext_id.as_str() == id)
            .unwrap_or_else(|| panic!("lead {id} is stored"))
    }
}

/// The in-memory store whose commits never finish: a database that hangs
/// (lock wait, network black hole) rather than failing fast. Only the
/// capture and write side is wrapped; reps and reads go to the store.
struct StallingStore(Arc<InMemoryStore>);

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl LeadStore for StallingStore {
    async fn commit(&self, _commit: lead_core::Commit) -> lead_core::Result<Vec<Lead>> {
        std::future::pending().await
    }

    async fn capture_context<'a>(
        &self,
        idempotency_key: Option<&'a str>,
        email_key: &str,
        account: &AccountKey,
        now: DateTime<Utc>,
    ) -> lead_core::Result<lead_core::CaptureContext> {
        self.0
            .capture_context(idempotency_key, email_key, account, now)
            .await
    }

    async fn get(&self, ext_id: &LeadExtId) -> lead_core::Result<Option<Lead>> {
        self.0.get(ext_id).await
    }

    async fn account_owner(&self, key: &AccountKey) -> lead_core::Result<Option<RepId>> {
        self.0.account_owner(key).await
    }

    async fn get_merge(&self, id: uuid::Uuid) -> lead_core::Result<Option<MergeRecord>> {
        self.0.get_merge(id).await
    }

    async fn find_by_crm_link(&self, link: &CrmLink) -> lead_core::Result<Option<Lead>> {
        self.0.find_by_crm_link(link).await
    }
}

/// A whole answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    /// The JSON body; `Null` when empty, a string when not JSON.
    pub(crate) body: Value,
}

impl Reply {
    /// The body as `T`.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.body.clone()).unwrap_or_else(|e| {
            panic!(
                "the {} body does not read as {}: {e}\n{}",
                self.status,
                std::any::type_name::<T>(),
                self.body
            )
        })
    }

    /// The body of an accepted capture.
    pub(crate) fn captured(&self) -> Captured {
        self.json()
    }

    /// The body of an error, after checking the status and code.
    pub(crate) fn error(&self, status: StatusCode, code: &str) -> ErrorReply {
        assert_eq!(self.status, status, "{}", self.body);
        let error: ErrorReply = self.json();
        assert_eq!(error.error, code, "{}", self.body);
        assert!(!error.message.is_empty(), "{}", self.body);
        error
    }

    /// A header's value, as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// `202` body of a capture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Captured {
    pub(crate) success: bool,
    pub(crate) message: String,
    pub(crate) lead_email: String,
    pub(crate) lead_ext_id: String,
    pub(crate) score: u8,
    pub(crate) priority: String,
    pub(crate) stage: String,
    pub(crate) assigned_to: Option<String>,
    pub(crate) status: String,
    pub(crate) warnings: Vec<lead_http::WarningView>,
}

/// Every error's body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErrorReply {
    pub(crate) error: String,
    pub(crate) message: String,
    pub(crate) fields: Vec<FieldError>,
}

impl ErrorReply {
    /// The names of the failing fields.
    pub(crate) fn field_names(&self) -> Vec<&str> {
        self.fields.iter().map(|f| f.field.as_str()).collect()
    }
}

/// A batch answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchReply {
    pub(crate) accepted: usize,
    pub(crate) rejected: usize,
    pub(crate) results: Vec<ItemReply>,
}

/// One item of a batch answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ItemReply {
    pub(crate) index: usize,
    pub(crate) status: u16,
    pub(crate) lead: Option<Captured>,
    pub(crate) error: Option<ErrorReply>,
}

/// A page of `GET /api/leads`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Page {
    pub(crate) success: bool,
    pub(crate) count: usize,
    pub(crate) leads: Vec<lead_http::LeadView>,
    pub(crate) next_cursor: Option<String>,
}
