//! The CRM sync beside the listeners: which CRM (`CRM_TYPE` and its
//! variables) and the worker that pushes the CRM's outbox entries and
//! pulls the CRM's changes, until the server stops.

use std::sync::Arc;
use std::time::Duration;

use lead_core::sync::{PullConfig, PushConfig, PushReport, pull_once, push_once};
use lead_core::{CrmClient, Deps, OutboxStore, Policy, SyncState};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the push runs when the queue was empty (`CRM_SYNC_INTERVAL_MS`).
const PUSH_EVERY: Duration = Duration::from_secs(2);
/// How often the CRM's changes are pulled (`CRM_PULL_INTERVAL_SECS`).
const PULL_EVERY: Duration = Duration::from_secs(300);

/// The configured CRM.
#[derive(Debug, Clone)]
pub(crate) enum Crm {
    /// Salesforce (`CRM_TYPE=salesforce`).
    #[cfg(feature = "salesforce")]
    Salesforce(lead_crm_salesforce::SalesforceConfig),
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
}

/// `CRM_TYPE` and the CRM's variables: `None` when no CRM is configured.
/// Each problem is reported through `invalid` naming its variable; values
/// are never repeated (they hold secrets).
pub(crate) fn settings(
    get: &dyn Fn(&str) -> Option<String>,
    invalid: &mut dyn FnMut(&str, &str),
) -> Option<SyncSettings> {
    let kind = get("CRM_TYPE")?.to_ascii_lowercase();
    let push_every = match get("CRM_SYNC_INTERVAL_MS").map(|v| v.parse::<u64>()) {
        None => PUSH_EVERY,
        Some(Ok(ms)) if ms > 0 => Duration::from_millis(ms),
        Some(_) => {
            invalid("CRM_SYNC_INTERVAL_MS", "a number of milliseconds above 0");
            PUSH_EVERY
        }
    };
    let pull_every = match get("CRM_PULL_INTERVAL_SECS").map(|v| v.parse::<u64>()) {
        None => PULL_EVERY,
        Some(Ok(s)) if s > 0 => Duration::from_secs(s),
        Some(_) => {
            invalid("CRM_PULL_INTERVAL_SECS", "a number of seconds above 0");
            PULL_EVERY
        }
    };
    let crm = match kind.as_str() {
        "none" => return None,
        "salesforce" => salesforce(get, invalid)?,
        "pipedrive" => {
            invalid(
                "CRM_TYPE",
                "pipedrive: the Pipedrive adapter is not built yet (salesforce is)",
            );
            return None;
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
    })
}

#[cfg(not(feature = "salesforce"))]
fn salesforce(
    _get: &dyn Fn(&str) -> Option<String>,
    invalid: &mut dyn FnMut(&str, &str),
) -> Option<Crm> {
    invalid(
        "CRM_TYPE",
        "salesforce: Salesforce support is not built in (build with --features salesforce)",
    );
    None
}

#[cfg(feature = "salesforce")]
fn salesforce(
    get: &dyn Fn(&str) -> Option<String>,
    invalid: &mut dyn FnMut(&str, &str),
) -> Option<Crm> {
    use lead_crm_salesforce::{Flow, SalesforceConfig};

    use crate::config::flag;

    let mut required = |name: &str| {
        let value = get(name);
        if value.is_none() {
            invalid(name, "required when CRM_TYPE=salesforce");
        }
        value
    };
    let client_id = required("SALESFORCE_CLIENT_ID");
    let client_secret = required("SALESFORCE_CLIENT_SECRET");
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
    let password_flow = get("SALESFORCE_PASSWORD_FLOW").is_some_and(|v| flag(&v) == Ok(true));
    let username = get("SALESFORCE_USERNAME");
    let (client_id, client_secret) = (client_id?, client_secret?);
    let flow = match username {
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
                "SALESFORCE_USERNAME is set but the username-password flow is off: Salesforce blocks it by default in orgs created since Summer '23 and is deprecating it. Set SALESFORCE_PASSWORD_FLOW=true to use it anyway, or unset SALESFORCE_USERNAME and SALESFORCE_PASSWORD to log in with client credentials",
            );
            return None;
        }
        None => Flow::ClientCredentials {
            client_id,
            client_secret: client_secret.into(),
        },
    };
    let mut config = SalesforceConfig::new(login_url, flow);
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

impl SyncSettings {
    /// The CRM's name, for the log (never its credentials).
    pub(crate) fn crm_name(&self) -> &'static str {
        match self.crm {
            #[cfg(feature = "salesforce")]
            Crm::Salesforce(_) => "salesforce",
        }
    }
}

impl Crm {
    fn client(&self) -> Result<Arc<dyn CrmClient>, String> {
        match *self {
            #[cfg(feature = "salesforce")]
            Crm::Salesforce(ref config) => {
                lead_crm_salesforce::SalesforceClient::new(config.clone())
                    .map(|c| Arc::new(c) as Arc<dyn CrmClient>)
                    .map_err(|e| format!("cannot set up the Salesforce client: {e}"))
            }
        }
    }
}

/// Counts a push run in the seed's metric names.
fn count_push(report: &PushReport) {
    let sent = (report.leads_synced + report.tasks_synced) as u64;
    metrics::counter!("crm_sync_to_crm_total").increment(sent);
    metrics::counter!("crm_sync_total_synced_total").increment(sent);
    metrics::counter!("crm_sync_retries_total").increment(report.retried as u64);
    metrics::counter!("crm_sync_dead_letters_total").increment(report.dead_lettered as u64);
}

/// Starts the worker: a push whenever the queue may hold work (again at
/// once after a full batch, else every `push_every`), a pull every
/// `pull_every`, until `stopped` turns true. Failures are logged and the
/// run is tried again at its next turn (the outbox keeps the work).
pub(crate) fn spawn(
    settings: SyncSettings,
    deps: Deps,
    outbox: Arc<dyn OutboxStore>,
    state: Arc<dyn SyncState>,
    policy: Policy,
    mut stopped: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, String> {
    let crm = settings.crm.client()?;
    let push = PushConfig {
        worker: format!("crm-push-{}", std::process::id()),
        ..PushConfig::default()
    };
    let pull = PullConfig::default();
    Ok(tokio::spawn(async move {
        let mut next_pull = tokio::time::Instant::now();
        loop {
            let full = match push_once(&deps, &*outbox, &*crm, &push).await {
                Ok(report) => {
                    count_push(&report);
                    if report.claimed > 0 {
                        tracing::info!(?report, "CRM push");
                    }
                    report.claimed >= push.batch
                }
                Err(err) => {
                    tracing::warn!(error = %err.chain(), "CRM push failed; the entries stay queued");
                    false
                }
            };
            if tokio::time::Instant::now() >= next_pull {
                next_pull = tokio::time::Instant::now() + settings.pull_every;
                match pull_once(&deps, &*state, &*crm, &policy, &pull).await {
                    Ok(report) => {
                        metrics::counter!("crm_sync_from_crm_total")
                            .increment(report.applied as u64);
                        metrics::counter!("crm_sync_total_synced_total")
                            .increment(report.applied as u64);
                        if report.fetched > 0 {
                            tracing::info!(?report, "CRM pull");
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err.chain(), "CRM pull failed; the watermark stays")
                    }
                }
            }
            if let Ok(backlog) = outbox.pending_count(&lead_core::Destination::CRM).await {
                metrics::gauge!("crm_sync_backlog").set(backlog as f64);
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(settings.push_every) => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
            if *stopped.borrow() {
                return;
            }
        }
    }))
}
