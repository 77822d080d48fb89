//! The CRM sync beside the listeners: which CRM (`CRM_TYPE` and its
//! variables) and the worker that pushes the CRM's outbox entries and
//! pulls the CRM's changes, until the server stops.

use std::sync::Arc;
use std::time::Duration;

use lead_core::sync::{
    ConflictRule, PullConfig, PullReport, PushConfig, PushReport, SyncMonitor, pull_once, push_once,
};
use lead_core::{CrmClient, Deps, Destination, OutboxStore, Policy, SyncState};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// How often the push runs when the queue was empty (`CRM_SYNC_INTERVAL_MS`).
const PUSH_EVERY: Duration = Duration::from_secs(2);
/// How often the CRM's changes are pulled (`CRM_PULL_INTERVAL_SECS`).
const PULL_EVERY: Duration = Duration::from_secs(300);
/// How often Pipedrive's are: a pull reads four lists (80 of the
/// company's daily API tokens; a Lite seat has 30 000 a day), and its
/// webhooks bring changes at once.
const PIPEDRIVE_PULL_EVERY: Duration = Duration::from_secs(900);

/// Which ways changes go between the leads and the CRM (SPEC
/// `sync_direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Both ways (`bidirectional`, the default).
    Both,
    /// Only pushed (`to_crm`): no pull, no CRM webhooks.
    ToCrm,
    /// Only pulled (`from_crm`): the changes wait in the queue.
    FromCrm,
}

impl Direction {
    pub(crate) fn pushes(self) -> bool {
        self != Direction::FromCrm
    }

    /// Whether the CRM's changes are read (pull and webhooks).
    pub(crate) fn pulls(self) -> bool {
        self != Direction::ToCrm
    }
}

/// The configured CRM.
#[derive(Debug, Clone)]
pub(crate) enum Crm {
    /// Salesforce (`CRM_TYPE=salesforce`).
    #[cfg(feature = "salesforce")]
    Salesforce(lead_crm_salesforce::SalesforceConfig),
    /// Pipedrive (`CRM_TYPE=pipedrive`).
    #[cfg(feature = "pipedrive")]
    Pipedrive(lead_crm_pipedrive::PipedriveConfig),
}

/// The CRM sync's settings.
#[derive(Debug, Clone)]
pub(crate) struct SyncSettings {
    /// Which CRM, and how to reach it.
    pub(crate) crm: Crm,
    /// Push interval while the queue is empty.
    pub(crate) push_every: Duration,
    /// Pull interval.
    pub(crate) pull_every: Duration,
    /// Which ways changes go (`CRM_SYNC_DIRECTION`).
    pub(crate) direction: Direction,
    /// The pull's limits and rules (`CRM_MAX_RECORDS_PER_RUN`,
    /// `CRM_SYNC_STAGES`), also the CRM webhooks' rules.
    pub(crate) pull: PullConfig,
    /// Salesforce Outbound Messages, when `SALESFORCE_ORG_ID` is set.
    #[cfg(feature = "salesforce")]
    pub(crate) outbound: Option<crate::outbound::ReceiverSettings>,
    /// Pipedrive webhooks, when `PIPEDRIVE_WEBHOOK_PASSWORD` is set.
    #[cfg(feature = "pipedrive")]
    pub(crate) pipedrive_webhooks: Option<crate::pipedrive::ReceiverSettings>,
    /// Batches, leases and retries of the push (`CRM_SYNC_BATCH_SIZE`,
    /// `CRM_SYNC_LEASE_SECS`, `CRM_SYNC_MAX_ATTEMPTS`,
    /// `CRM_SYNC_RETRY_BASE_MS`, `CRM_SYNC_RETRY_MAX_SECS`).
    pub(crate) push: PushConfig,
}

/// `CRM_TYPE` and the CRM's variables: `None` when no CRM is configured.
/// Each problem is reported through `invalid` naming its variable; values
/// are never repeated (they hold secrets).
pub(crate) fn settings(
    get: &dyn Fn(&str) -> Option<String>,
    invalid: &mut dyn FnMut(&str, &str),
) -> Option<SyncSettings> {
    let kind = get("CRM_TYPE")?.to_ascii_lowercase();
    let mut number = |name: &str, what: &str, default: u64| {
        let expected = format!("a number of {what} above 0");
        crate::config::number_in(get, invalid, name, 1..=u64::MAX, &expected, default)
    };
    let defaults = PushConfig::default();
    let push_every = Duration::from_millis(number(
        "CRM_SYNC_INTERVAL_MS",
        "milliseconds",
        PUSH_EVERY.as_millis() as u64,
    ));
    let pull_default = if kind == "pipedrive" {
        PIPEDRIVE_PULL_EVERY
    } else {
        PULL_EVERY
    };
    let pull_every = Duration::from_secs(number(
        "CRM_PULL_INTERVAL_SECS",
        "seconds",
        pull_default.as_secs(),
    ));
    let push = PushConfig {
        worker: format!("crm-push-{}", std::process::id()),
        batch: number("CRM_SYNC_BATCH_SIZE", "entries", defaults.batch as u64) as usize,
        lease: Duration::from_secs(number(
            "CRM_SYNC_LEASE_SECS",
            "seconds",
            defaults.lease.as_secs(),
        )),
        max_attempts: number(
            "CRM_SYNC_MAX_ATTEMPTS",
            "attempts",
            u64::from(defaults.max_attempts),
        )
        .min(u64::from(u32::MAX)) as u32,
        base_delay: Duration::from_millis(number(
            "CRM_SYNC_RETRY_BASE_MS",
            "milliseconds",
            defaults.base_delay.as_millis() as u64,
        )),
        max_delay: Duration::from_secs(number(
            "CRM_SYNC_RETRY_MAX_SECS",
            "seconds",
            defaults.max_delay.as_secs(),
        )),
    };
    let direction = match get("CRM_SYNC_DIRECTION").map(|v| v.to_ascii_lowercase()) {
        None => Direction::Both,
        Some(v) if v == "bidirectional" => Direction::Both,
        Some(v) if v == "to_crm" => Direction::ToCrm,
        Some(v) if v == "from_crm" => Direction::FromCrm,
        Some(_) => {
            invalid("CRM_SYNC_DIRECTION", "bidirectional, to_crm or from_crm");
            Direction::Both
        }
    };
    let on = |name: &str, invalid: &mut dyn FnMut(&str, &str)| match get(name)
        .map(|v| crate::config::flag(&v))
    {
        None => true,
        Some(Ok(on)) => on,
        Some(Err(())) => {
            invalid(name, "true or false");
            true
        }
    };
    let mut pull = PullConfig::default();
    if let Some(n) = get("CRM_MAX_RECORDS_PER_RUN") {
        match n.parse::<usize>() {
            Ok(n) if n > 0 => pull.max_records_per_run = n,
            _ => invalid("CRM_MAX_RECORDS_PER_RUN", "a number of records above 0"),
        }
    }
    if !on("CRM_SYNC_STAGES", invalid) {
        pull.stage = ConflictRule::DontSync;
    }
    let create_deals = on("CRM_CREATE_DEALS", invalid);
    #[cfg(feature = "salesforce")]
    let mut outbound = None;
    #[cfg(feature = "pipedrive")]
    let mut pipedrive_webhooks = None;
    let crm = match kind.as_str() {
        "none" => return None,
        "salesforce" => {
            #[cfg(feature = "salesforce")]
            {
                outbound = crate::outbound::settings(get, invalid);
            }
            salesforce(get, invalid, create_deals)?
        }
        "pipedrive" => {
            #[cfg(feature = "pipedrive")]
            {
                pipedrive_webhooks = crate::pipedrive::settings(get, invalid);
            }
            pipedrive(get, invalid, create_deals)?
        }
        _ => {
            invalid("CRM_TYPE", "salesforce, pipedrive or none");
            return None;
        }
    };
    Some(SyncSettings {
        crm,
        push_every,
        pull_every,
        direction,
        pull,
        #[cfg(feature = "salesforce")]
        outbound: outbound.filter(|_| direction.pulls()),
        #[cfg(feature = "pipedrive")]
        pipedrive_webhooks: pipedrive_webhooks.filter(|_| direction.pulls()),
        push,
    })
}

/// A CRM this build leaves out, named on `CRM_TYPE`.
#[cfg(not(all(feature = "salesforce", feature = "pipedrive")))]
fn not_built_in(invalid: &mut dyn FnMut(&str, &str), crm: &str) -> Option<Crm> {
    invalid(
        "CRM_TYPE",
        &format!("{crm}: this build leaves it out (build with --features {crm})"),
    );
    None
}

#[cfg(not(feature = "salesforce"))]
fn salesforce(
    _get: &dyn Fn(&str) -> Option<String>,
    invalid: &mut dyn FnMut(&str, &str),
    _create_deals: bool,
) -> Option<Crm> {
    not_built_in(invalid, "salesforce")
}

#[cfg(feature = "salesforce")]
fn salesforce(
    get: &dyn Fn(&str) -> Option<String>,
    invalid: &mut dyn FnMut(&str, &str),
    create_deals: bool,
) -> Option<Crm> {
    use lead_crm_salesforce::{Flow, SalesforceConfig};

    use crate::config::flag;

    let sandbox = match get("SALESFORCE_SANDBOX").map(|v| flag(&v)) {
        None => false,
        Some(Ok(on)) => on,
        Some(Err(())) => {
            invalid("SALESFORCE_SANDBOX", "true or false");
            false
        }
    };
    let login_url = get("SALESFORCE_LOGIN_URL").unwrap_or_else(|| {
        if sandbox {
            "https://test.salesforce.com".into()
        } else {
            "https://login.salesforce.com".into()
        }
    });
    if !(login_url.starts_with("https://") || login_url.starts_with("http://")) {
        invalid(
            "SALESFORCE_LOGIN_URL",
            "an http(s) URL (the org's My Domain URL)",
        );
    }
    let mut required = |name: &str, with: &str| {
        let value = get(name);
        if value.is_none() {
            invalid(name, &format!("required {with}"));
        }
        value
    };
    let client_id = required("SALESFORCE_CLIENT_ID", "when CRM_TYPE=salesforce");
    let flow = if let Some(path) = get("SALESFORCE_JWT_KEY_FILE") {
        // The JWT bearer flow: a certificate's key instead of a secret.
        let username = required(
            "SALESFORCE_USERNAME",
            "with SALESFORCE_JWT_KEY_FILE (the user the calls run as)",
        );
        let key = match std::fs::read_to_string(&path) {
            Ok(key) => Some(key),
            Err(err) => {
                invalid(
                    "SALESFORCE_JWT_KEY_FILE",
                    &format!("cannot read {path}: {err}"),
                );
                None
            }
        };
        let audience = get("SALESFORCE_JWT_AUDIENCE").unwrap_or_else(|| {
            if sandbox {
                Flow::SANDBOX_AUDIENCE.into()
            } else {
                Flow::PRODUCTION_AUDIENCE.into()
            }
        });
        Flow::JwtBearer {
            client_id: client_id?,
            username: username?,
            private_key: key?.into(),
            audience,
        }
    } else {
        let client_secret = required(
            "SALESFORCE_CLIENT_SECRET",
            "when CRM_TYPE=salesforce (or SALESFORCE_JWT_KEY_FILE for the JWT bearer flow)",
        );
        let password_flow = get("SALESFORCE_PASSWORD_FLOW").is_some_and(|v| flag(&v) == Ok(true));
        let (client_id, client_secret) = (client_id?, client_secret?);
        match get("SALESFORCE_USERNAME") {
            Some(username) if password_flow => {
                let Some(password) = get("SALESFORCE_PASSWORD") else {
                    invalid(
                        "SALESFORCE_PASSWORD",
                        "required with SALESFORCE_PASSWORD_FLOW=true",
                    );
                    return None;
                };
                Flow::Password {
                    client_id,
                    client_secret: client_secret.into(),
                    username,
                    password: password.into(),
                    security_token: get("SALESFORCE_SECURITY_TOKEN").unwrap_or_default().into(),
                }
            }
            Some(_) => {
                invalid(
                    "SALESFORCE_PASSWORD_FLOW",
                    "SALESFORCE_USERNAME is set but the username-password flow is off: Salesforce blocks it by default in orgs created since Summer '23 and is deprecating it. Set SALESFORCE_PASSWORD_FLOW=true to use it anyway, set SALESFORCE_JWT_KEY_FILE for the JWT bearer flow, or unset SALESFORCE_USERNAME and SALESFORCE_PASSWORD to log in with client credentials",
                );
                return None;
            }
            None => Flow::ClientCredentials {
                client_id,
                client_secret: client_secret.into(),
            },
        }
    };
    let mut config = SalesforceConfig::new(login_url, flow);
    config.create_deals = create_deals;
    // The org's Lead Status picklist, when it is not the standard one.
    if let Some(pairs) = get("SALESFORCE_STAGE_STATUS") {
        match stage_pairs(&pairs, false) {
            Some(map) => config.stage_status.extend(map),
            None => invalid(
                "SALESFORCE_STAGE_STATUS",
                "stage=Status pairs separated by ; (e.g. qualified=Qualified;proposal=Proposal Sent)",
            ),
        }
    }
    if let Some(pairs) = get("SALESFORCE_STATUS_STAGE") {
        match stage_pairs(&pairs, true) {
            Some(map) => {
                config.status_stage = map
                    .into_iter()
                    .map(|(stage, status)| (status, stage))
                    .collect();
            }
            None => invalid(
                "SALESFORCE_STATUS_STAGE",
                "Status=stage pairs separated by ; (e.g. Closed - Converted=won;Qualified=qualified)",
            ),
        }
    }
    if let Some(version) = get("SALESFORCE_API_VERSION") {
        let plain = version.trim_start_matches('v');
        let valid = plain
            .split_once('.')
            .is_some_and(|(a, b)| a.parse::<u16>().is_ok() && b.parse::<u8>().is_ok());
        if valid {
            config.api_version = plain.to_owned();
        } else {
            invalid("SALESFORCE_API_VERSION", "a version like 62.0");
        }
    }
    Some(Crm::Salesforce(config))
}

#[cfg(not(feature = "pipedrive"))]
fn pipedrive(
    _get: &dyn Fn(&str) -> Option<String>,
    invalid: &mut dyn FnMut(&str, &str),
    _create_deals: bool,
) -> Option<Crm> {
    not_built_in(invalid, "pipedrive")
}

/// `PIPEDRIVE_API_TOKEN`, `PIPEDRIVE_COMPANY_DOMAIN` (the company's
/// subdomain, or a whole URL for a proxy or a local test server),
/// `PIPEDRIVE_DEFAULT_STAGE_ID` and `PIPEDRIVE_STAGE_IDS`.
#[cfg(feature = "pipedrive")]
fn pipedrive(
    get: &dyn Fn(&str) -> Option<String>,
    invalid: &mut dyn FnMut(&str, &str),
    create_deals: bool,
) -> Option<Crm> {
    use lead_crm_pipedrive::PipedriveConfig;

    let token = get("PIPEDRIVE_API_TOKEN");
    if token.is_none() {
        invalid(
            "PIPEDRIVE_API_TOKEN",
            "required when CRM_TYPE=pipedrive (Pipedrive: Personal preferences → API)",
        );
    }
    let domain = get("PIPEDRIVE_COMPANY_DOMAIN");
    let base_url = match domain.as_deref() {
        None => {
            invalid(
                "PIPEDRIVE_COMPANY_DOMAIN",
                "required when CRM_TYPE=pipedrive: the company's subdomain (acme of acme.pipedrive.com) or a whole http(s) URL",
            );
            None
        }
        Some(url) if url.contains("://") => {
            if url.starts_with("https://") || url.starts_with("http://") {
                Some(url.to_owned())
            } else {
                invalid("PIPEDRIVE_COMPANY_DOMAIN", "an http(s) URL or a subdomain");
                None
            }
        }
        Some(domain) => {
            let plain = domain.trim_end_matches(".pipedrive.com");
            if !plain.is_empty() && plain.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                Some(format!("https://{plain}.pipedrive.com"))
            } else {
                invalid(
                    "PIPEDRIVE_COMPANY_DOMAIN",
                    "the company's subdomain (acme of acme.pipedrive.com) or a whole http(s) URL",
                );
                None
            }
        }
    };
    let mut number = |name: &str| match get(name).map(|v| v.parse::<u64>()) {
        None => None,
        Some(Ok(id)) if id > 0 => Some(id),
        Some(_) => {
            invalid(name, "a Pipedrive stage id (a number above 0)");
            None
        }
    };
    let default_stage_id = number("PIPEDRIVE_DEFAULT_STAGE_ID");
    let mut stage_ids = std::collections::BTreeMap::new();
    if let Some(pairs) = get("PIPEDRIVE_STAGE_IDS") {
        let read = stage_pairs(&pairs, false).and_then(|pairs| {
            pairs
                .into_iter()
                .map(|(stage, id)| Some((stage, id.parse::<u64>().ok()?)))
                .collect::<Option<Vec<_>>>()
        });
        match read {
            Some(pairs) => stage_ids.extend(pairs),
            None => invalid(
                "PIPEDRIVE_STAGE_IDS",
                "stage=id pairs separated by ; (e.g. qualified=3;proposal=4;negotiation=5)",
            ),
        }
    }
    let mut config = PipedriveConfig::new(base_url?, token?.into());
    config.default_stage_id = default_stage_id;
    config.stage_ids = stage_ids;
    config.create_deals = create_deals;
    Some(Crm::Pipedrive(config))
}

/// `stage=Status;…` (or `Status=stage;…` when `status_first`) as
/// (stage, Status) pairs; `None` when a pair does not read.
#[cfg(any(feature = "salesforce", feature = "pipedrive"))]
fn stage_pairs(text: &str, status_first: bool) -> Option<Vec<(lead_core::Stage, String)>> {
    text.split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (left, right) = pair.split_once('=')?;
            let (stage, status) = if status_first {
                (right, left)
            } else {
                (left, right)
            };
            let stage = lead_core::Stage::parse(stage.trim()).ok()?;
            let status = status.trim();
            (!status.is_empty()).then(|| (stage, status.to_owned()))
        })
        .collect()
}

impl SyncSettings {
    /// The CRM's name, for the log (never its credentials).
    pub(crate) fn crm_name(&self) -> &'static str {
        match self.crm {
            #[cfg(feature = "salesforce")]
            Crm::Salesforce(_) => "salesforce",
            #[cfg(feature = "pipedrive")]
            Crm::Pipedrive(_) => "pipedrive",
        }
    }
}

/// API calls used and allowed, as the CRM last said (Salesforce's
/// `Sforce-Limit-Info`).
type Usage = Box<dyn Fn() -> Option<(u64, u64)> + Send + Sync>;

/// The CRM's client, built once at start (a bad key or URL stops the
/// start), shared by the sync worker and the CRM's webhook receiver.
#[derive(Clone)]
pub(crate) struct CrmHandle {
    /// The CRM as the sync engine sees it.
    pub(crate) crm: Arc<dyn CrmClient>,
    /// API calls used and allowed, when the CRM reports them.
    usage: Arc<Usage>,
    /// The Salesforce client itself (Outbound Messages).
    #[cfg(feature = "salesforce")]
    pub(crate) salesforce: Option<Arc<lead_crm_salesforce::SalesforceClient>>,
    /// The Pipedrive client itself (webhooks).
    #[cfg(feature = "pipedrive")]
    pub(crate) pipedrive: Option<Arc<lead_crm_pipedrive::PipedriveClient>>,
}

impl Crm {
    /// The client, and a reader of the CRM's own API usage figures when
    /// it reports them.
    pub(crate) fn client(&self) -> Result<CrmHandle, String> {
        match *self {
            #[cfg(feature = "salesforce")]
            Crm::Salesforce(ref config) => {
                let client = Arc::new(
                    lead_crm_salesforce::SalesforceClient::new(config.clone())
                        .map_err(|e| format!("cannot set up the Salesforce client: {e}"))?,
                );
                let usage: Usage = {
                    let client = client.clone();
                    Box::new(move || client.api_usage().map(|u| (u.used, u.limit)))
                };
                Ok(CrmHandle {
                    crm: client.clone(),
                    usage: Arc::new(usage),
                    salesforce: Some(client),
                    #[cfg(feature = "pipedrive")]
                    pipedrive: None,
                })
            }
            #[cfg(feature = "pipedrive")]
            Crm::Pipedrive(ref config) => {
                let client = Arc::new(
                    lead_crm_pipedrive::PipedriveClient::new(config.clone())
                        .map_err(|e| format!("cannot set up the Pipedrive client: {e}"))?,
                );
                Ok(CrmHandle {
                    crm: client.clone(),
                    usage: Arc::new(Box::new(|| None)),
                    #[cfg(feature = "salesforce")]
                    salesforce: None,
                    pipedrive: Some(client),
                })
            }
        }
    }
}

/// Counts a push run in the seed's metric names and logs it; its report,
/// when it ran.
fn count_push(pushed: lead_core::Result<PushReport>) -> Option<PushReport> {
    match pushed {
        Ok(report) => {
            let sent = (report.leads_synced + report.tasks_synced) as u64;
            metrics::counter!("crm_sync_to_crm_total").increment(sent);
            metrics::counter!("crm_sync_total_synced_total").increment(sent);
            metrics::counter!("crm_sync_retries_total").increment(report.retried as u64);
            metrics::counter!("crm_sync_dead_letters_total").increment(report.dead_lettered as u64);
            if report.claimed > 0 {
                tracing::info!(?report, "CRM push");
            }
            Some(report)
        }
        Err(err) => {
            tracing::warn!(error = %err.chain(), "CRM push failed; the entries stay queued");
            None
        }
    }
}

/// Counts a pull run in the seed's metric names and logs it.
fn count_pull(pulled: lead_core::Result<PullReport>) {
    match pulled {
        Ok(report) => {
            metrics::counter!("crm_sync_from_crm_total").increment(report.applied as u64);
            metrics::counter!("crm_sync_total_synced_total").increment(report.applied as u64);
            if report.fetched > 0 {
                tracing::info!(?report, "CRM pull");
            }
        }
        Err(err) => {
            tracing::warn!(error = %err.chain(), "CRM pull failed; the watermark stays")
        }
    }
}

/// What the worker shares with the server: where it records its runs,
/// and how commits wake it.
pub(crate) struct Shared {
    /// The CRM's client.
    pub(crate) handle: CrmHandle,
    /// Its runs and credentials checks, for `/api/sync/status` and `/ready`.
    pub(crate) monitor: Arc<SyncMonitor>,
    /// Notified after each commit that queued something for the CRM.
    pub(crate) wake: Arc<Notify>,
}

/// How long a woken worker waits for more commits before it pushes, at
/// least: a burst of captures goes out in one batch rather than one call
/// each.
const GATHER: Duration = Duration::from_millis(50);

/// Starts the worker: a push whenever the queue may hold work (at once
/// after a full batch, shortly after a commit queued something, else
/// every `push_every`), a credentials check and a pull every
/// `pull_every`, until `stopped` turns true. Failures are logged and the
/// run is tried again at its next turn (the outbox keeps the work).
pub(crate) fn spawn(
    settings: SyncSettings,
    deps: Deps,
    outbox: Arc<dyn OutboxStore>,
    state: Arc<dyn SyncState>,
    policy: Policy,
    shared: Shared,
    mut stopped: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let Shared {
        handle,
        monitor,
        wake,
    } = shared;
    let CrmHandle { crm, usage, .. } = handle;
    let push = settings.push.clone();
    let pull = settings.pull.clone();
    tokio::spawn(async move {
        let mut next_pull = tokio::time::Instant::now();
        let mut last_push = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_pull {
                next_pull = tokio::time::Instant::now() + settings.pull_every;
                check(&*crm, &deps, &monitor).await;
                if settings.direction.pulls() {
                    let pulled = pull_once(&deps, &*state, &*crm, &policy, &pull).await;
                    monitor.record_pull(deps.clock.now(), pulled.as_ref().copied());
                    count_pull(pulled);
                }
            }
            // While the CRM refuses our credentials the queue waits (a
            // push would only spend the entries' retries); the check
            // before each pull tells when it takes them again.
            let refused = monitor.seen().auth.is_some_and(|a| !a.ok);
            let full = if settings.direction.pushes() && !refused {
                last_push = tokio::time::Instant::now();
                let pushed = push_once(&deps, &*outbox, &*crm, &push).await;
                monitor.record_push(deps.clock.now(), pushed.as_ref().copied());
                // Straight on only after a full batch that moved: a
                // failing one waits its turn like the entries it retried.
                count_push(pushed).is_some_and(|r| r.claimed >= push.batch && r.acked > 0)
            } else {
                false
            };
            if let Ok(backlog) = outbox.pending_count(&Destination::CRM).await {
                metrics::gauge!("crm_sync_backlog").set(backlog as f64);
            }
            if let Ok(dead) = outbox.dead_count(&Destination::CRM).await {
                metrics::gauge!("crm_sync_dead_letters").set(dead as f64);
            }
            if let Some((used, limit)) = usage() {
                metrics::gauge!("crm_api_usage_used").set(used as f64);
                metrics::gauge!("crm_api_usage_limit").set(limit as f64);
            }
            if full && !*stopped.borrow() {
                continue;
            }
            let until_pull = next_pull.saturating_duration_since(tokio::time::Instant::now());
            let woken = tokio::select! {
                _ = tokio::time::sleep(settings.push_every.min(until_pull)) => false,
                _ = wake.notified() => true,
                _ = stopped.wait_for(|stop| *stop) => return,
            };
            if woken {
                // Each push spends the org's API calls: pushes stay at
                // least `push_every` apart, so a steady stream of captures
                // goes out in batches; after a quiet spell a commit is
                // pushed at once (after GATHER, for its neighbours).
                let gap = settings.push_every.saturating_sub(last_push.elapsed());
                tokio::select! {
                    _ = tokio::time::sleep(GATHER.max(gap)) => {}
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
            }
            if *stopped.borrow() {
                return;
            }
        }
    })
}

/// Whether the CRM takes our credentials, recorded and counted: a refused
/// login is said once in the log at each check, naming the CRM's reason.
async fn check(crm: &dyn CrmClient, deps: &Deps, monitor: &SyncMonitor) {
    let checked = crm.check().await;
    monitor.record_check(deps.clock.now(), checked.as_ref().copied());
    let ok = checked.is_ok();
    metrics::gauge!("crm_sync_authenticated").set(if ok { 1.0 } else { 0.0 });
    if let Err(err) = checked {
        tracing::error!(error = %err.chain(), "the CRM does not take our credentials; changes wait in the queue");
    }
}
