//! What every route shares: the use-cases' dependencies, the policy, the
//! keys and the limits.

use std::sync::Arc;
use std::time::Duration;

use lead_core::sync::SyncMonitor;
use lead_core::{Deps, OutboxStore, Policy, SyncState};
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::{ExposeSecret, SecretString};

use crate::keys::{ApiKeys, MetricsToken};
use crate::limits::{Limiters, RateLimit};
use crate::signature::WebhookKeys;

/// Limits and windows of the HTTP layer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpSettings {
    /// Largest body of `POST /webhook/lead`, in bytes. Default 64 KiB.
    pub max_lead_bytes: usize,
    /// Largest body of `POST /webhook/lead/batch`, in bytes. Default 1 MiB.
    pub max_batch_bytes: usize,
    /// Most leads in one batch. Default 100.
    pub max_batch_items: usize,
    /// How long an `Idempotency-Key` or `webhook-id` keeps answering with
    /// the first result. Default 24 h.
    pub idempotency_window: chrono::Duration,
    /// How long the same normalized submission without a key counts as a
    /// double submit (answered with the first lead). Default 10 min.
    pub resubmit_window: chrono::Duration,
    /// Origins whose browser forms may post without a signature (checked
    /// against `Origin`, then `Referer`). Empty: every capture must be
    /// signed when keys are configured.
    pub public_form_origins: Vec<String>,
    /// A form field real people leave empty (hidden by CSS). A submission
    /// that fills it stores nothing and is answered as a stored public-form
    /// post (a batch item is refused naming it). Default `_hp`.
    pub honeypot_field: String,
    /// Whole-request time limit. Default 10 s.
    pub request_timeout: Duration,
    /// Per-IP and per-key rate limits.
    pub rate_limit: RateLimit,
    /// Origins browsers may call the APIs from (CORS). Empty: no CORS
    /// headers (same-origin only). The public form origins need none: a
    /// form post is not a CORS request.
    pub cors_origins: Vec<String>,
    /// `Some(max_age)`: every answer carries `Strict-Transport-Security:
    /// max-age=<seconds>`, telling browsers to reach this host over HTTPS
    /// only for that long. Set it only when the listener serves HTTPS
    /// itself (native TLS): the header promises that HTTPS works. Default
    /// `None`.
    pub hsts_max_age: Option<Duration>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_lead_bytes: 64 * 1024,
            max_batch_bytes: 1024 * 1024,
            max_batch_items: 100,
            idempotency_window: chrono::Duration::hours(24),
            resubmit_window: chrono::Duration::minutes(10),
            public_form_origins: Vec::new(),
            honeypot_field: "_hp".to_owned(),
            request_timeout: Duration::from_secs(10),
            rate_limit: RateLimit::default(),
            cors_origins: Vec::new(),
            hsts_max_age: None,
        }
    }
}

/// The routers' shared state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) deps: Deps,
    pub(crate) policy: Policy,
    pub(crate) settings: HttpSettings,
    pub(crate) webhook_keys: WebhookKeys,
    pub(crate) api_keys: ApiKeys,
    pub(crate) metrics: Option<PrometheusHandle>,
    /// The token `/metrics` asks for; `None`: loopback clients only.
    pub(crate) metrics_token: Option<MetricsToken>,
    pub(crate) limiters: Arc<Limiters>,
    /// The policy's field map, built once.
    pub(crate) field_map: lead_core::FieldMap,
    /// The CRM sync's queue, state and monitor (`/api/sync/…`).
    pub(crate) sync: Option<SyncAccess>,
    /// The scheduled jobs (`/api/jobs…`).
    pub(crate) jobs: Option<Arc<dyn crate::job_control::JobControl>>,
    /// The notification consumers' queues (`/api/notifications/…`).
    pub(crate) notifications: Option<NotifyAccess>,
}

/// What the notification routes read and change: the outbox and the
/// consumers this server runs.
#[derive(Clone)]
pub struct NotifyAccess {
    /// The outbox (backlog, dead letters, retry).
    pub outbox: Arc<dyn OutboxStore>,
    /// The consumers' destinations (`notify`, `webhooks`).
    pub destinations: Vec<lead_core::Destination>,
    /// The channels' names (`slack`, `email`, `webhook:<name>`).
    pub channels: Vec<String>,
}

impl std::fmt::Debug for NotifyAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyAccess")
            .field("destinations", &self.destinations)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

/// What the sync routes read and change: the store's outbox and sync
/// state, and the monitor the sync worker records its runs in.
#[derive(Clone)]
pub struct SyncAccess {
    /// The outbox (backlog, dead letters, retry).
    pub outbox: Arc<dyn OutboxStore>,
    /// Watermarks.
    pub state: Arc<dyn SyncState>,
    /// The worker's last runs and credentials check.
    pub monitor: Arc<SyncMonitor>,
}

impl std::fmt::Debug for SyncAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncAccess")
            .field("crm", &self.monitor.crm())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.inner.settings)
            .field("webhook_keys", &self.inner.webhook_keys)
            .field("api_keys", &self.inner.api_keys)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over `deps` with the default policy and settings, no keys (so
    /// captures are accepted unsigned and the lead API refuses everyone)
    /// and no metrics.
    pub fn new(deps: Deps) -> Self {
        AppStateBuilder::new(deps).build()
    }

    /// A builder, to set keys, policy and limits.
    pub fn builder(deps: Deps) -> AppStateBuilder {
        AppStateBuilder::new(deps)
    }

    pub(crate) fn deps(&self) -> &Deps {
        &self.inner.deps
    }

    pub(crate) fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    pub(crate) fn settings(&self) -> &HttpSettings {
        &self.inner.settings
    }

    pub(crate) fn sync(&self) -> Option<&SyncAccess> {
        self.inner.sync.as_ref()
    }

    pub(crate) fn jobs(&self) -> Option<&Arc<dyn crate::job_control::JobControl>> {
        self.inner.jobs.as_ref()
    }

    pub(crate) fn notifications(&self) -> Option<&NotifyAccess> {
        self.inner.notifications.as_ref()
    }

    /// Form field names to lead fields: the built-in map plus the policy's
    /// `field_aliases`.
    pub(crate) fn field_map(&self) -> &lead_core::FieldMap {
        &self.inner.field_map
    }
}

/// Builds an [`AppState`].
#[derive(Debug)]
pub struct AppStateBuilder {
    deps: Deps,
    policy: Policy,
    settings: HttpSettings,
    webhook_keys: WebhookKeys,
    api_keys: ApiKeys,
    metrics: Option<PrometheusHandle>,
    metrics_token: Option<MetricsToken>,
    sync: Option<SyncAccess>,
    jobs: Option<Arc<dyn crate::job_control::JobControl>>,
    notifications: Option<NotifyAccess>,
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken([redacted])")
    }
}

impl AppStateBuilder {
    fn new(deps: Deps) -> Self {
        Self {
            deps,
            policy: Policy::default(),
            settings: HttpSettings::default(),
            webhook_keys: WebhookKeys::none(),
            api_keys: ApiKeys::default(),
            metrics: None,
            metrics_token: None,
            sync: None,
            jobs: None,
            notifications: None,
        }
    }

    /// The CRM sync's queue and monitor, for `/api/sync/…` and `/ready`.
    /// Without it those routes answer `404` (no sync on this server).
    pub fn sync(mut self, access: SyncAccess) -> Self {
        self.sync = Some(access);
        self
    }

    /// The scheduled jobs, for `/api/jobs…`. Without them those routes
    /// answer `404` (no jobs on this server).
    pub fn jobs(mut self, control: Arc<dyn crate::job_control::JobControl>) -> Self {
        self.jobs = Some(control);
        self
    }

    /// The notification consumers, for `/api/notifications/…`. Without
    /// them those routes answer `404` (no notifications on this server).
    pub fn notifications(mut self, access: NotifyAccess) -> Self {
        self.notifications = Some(access);
        self
    }

    /// The scoring, routing and follow-up policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Limits and windows.
    pub fn settings(mut self, settings: HttpSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Keys capture signatures are checked with.
    pub fn webhook_keys(mut self, keys: WebhookKeys) -> Self {
        self.webhook_keys = keys;
        self
    }

    /// Keys of the lead and dashboard APIs.
    pub fn api_keys(mut self, keys: ApiKeys) -> Self {
        self.api_keys = keys;
        self
    }

    /// The Prometheus recorder `/metrics` renders.
    pub fn metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// The token `GET /metrics` asks for, as `Authorization: Bearer
    /// <token>` ([`MetricsAccess`](crate::auth::MetricsAccess)). Without
    /// one, `/metrics` answers requests from this machine only. Only a
    /// hash of the token is kept.
    pub fn metrics_token(mut self, token: &SecretString) -> Self {
        self.metrics_token = Some(MetricsToken::new(token.expose_secret()));
        self
    }

    /// The state. A policy whose `field_aliases` name no lead field (only
    /// possible when built in code: [`Policy::from_toml`] refuses it) uses
    /// the built-in field map, with an error in the log.
    pub fn build(self) -> AppState {
        let field_map = self.policy.field_map().unwrap_or_else(|err| {
            tracing::error!(error = %err, "policy field_aliases ignored");
            lead_core::FieldMap::standard().clone()
        });
        if self.metrics.is_some() {
            crate::counters::describe();
        }
        AppState {
            inner: Arc::new(Inner {
                field_map,
                limiters: Limiters::new(&self.settings.rate_limit),
                deps: self.deps,
                policy: self.policy,
                settings: self.settings,
                webhook_keys: self.webhook_keys,
                api_keys: self.api_keys,
                metrics: self.metrics,
                metrics_token: self.metrics_token,
                sync: self.sync,
                jobs: self.jobs,
                notifications: self.notifications,
            }),
        }
    }
}
