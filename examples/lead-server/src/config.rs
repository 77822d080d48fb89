//! The server's settings, read from the original system's environment
//! variables (plus a few of our own), with defaults that run on a local
//! SQLite file and nothing else.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lead_core::{Error, FieldError, Policy, Region, Rep, RuleSet};
use lead_http::{ApiKeys, HttpSettings, IpRange, Part, Rate, Scopes, WebhookKeys};
use secrecy::SecretString;

/// Where the store lives when `DATABASE_URL` is not set.
pub(crate) const DEFAULT_DATABASE_URL: &str = "sqlite://leads.db";
/// The original system's webhook port.
pub(crate) const DEFAULT_PORT: u16 = 5000;

/// How long a client may take to send a request head, by default.
pub(crate) const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How many connections are served at once, by default (all listeners).
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// How long requests in flight get after SIGTERM, by default.
pub(crate) const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest timeout a variable may give (a day).
const MAX_TIMEOUT_SECS: u64 = 86_400;
/// How long browsers keep to HTTPS after an answer, by default (a year).
pub(crate) const DEFAULT_HSTS_MAX_AGE: Duration = Duration::from_secs(31_536_000);
/// The longest `LEAD_HSTS_MAX_AGE_SECS` (two years, what browsers' preload
/// lists ask for at most); anything longer is more likely a typo.
const MAX_HSTS_MAX_AGE_SECS: u64 = 63_072_000;

/// The PEM files of native HTTPS (`LEAD_TLS_CERT`, `LEAD_TLS_KEY`): paths
/// only, read by `tls::Tls::load` at start-up and again on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsPaths {
    /// `LEAD_TLS_CERT`: the certificate chain, the server's own first.
    pub(crate) cert: String,
    /// `LEAD_TLS_KEY`: its private key (PKCS#8, PKCS#1 or SEC1).
    pub(crate) key: String,
}

/// How connections are served: the limits that keep a slow or crowded
/// client side from holding the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServeLimits {
    /// `LEAD_HEADER_READ_TIMEOUT_SECS`: a connection whose request head is
    /// not complete this long after it started is closed (slowloris).
    pub(crate) header_read_timeout: Duration,
    /// `LEAD_MAX_CONNECTIONS`: connections served at once, over every
    /// listener; further ones wait in the accept queue until one closes.
    pub(crate) max_connections: usize,
    /// `LEAD_SHUTDOWN_TIMEOUT_SECS`: after SIGTERM, how long requests in
    /// flight get before the remaining connections are closed.
    pub(crate) shutdown_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}

/// The whole number variable `name` within `range`, `default` when it is
/// not set; a value that does not read or lies outside is named through
/// `invalid` with `expected` (what a good value looks like), and the
/// default is kept so every bad variable is reported in one start.
pub(crate) fn number_in(
    get: &dyn Fn(&str) -> Option<String>,
    invalid: &mut dyn FnMut(&str, &str),
    name: &str,
    range: std::ops::RangeInclusive<u64>,
    expected: &str,
    default: u64,
) -> u64 {
    match get(name).map(|v| v.parse::<u64>()) {
        None => default,
        Some(Ok(n)) if range.contains(&n) => n,
        Some(_) => {
            invalid(name, expected);
            default
        }
    }
}

/// Whole seconds from `min` to a day.
fn seconds(value: &str, min: u64) -> Result<Duration, ()> {
    match value.parse::<u64>() {
        Ok(secs) if (min..=MAX_TIMEOUT_SECS).contains(&secs) => Ok(Duration::from_secs(secs)),
        _ => Err(()),
    }
}

/// The log filter of `WEBHOOK_DEBUG` (when `RUST_LOG` is not set): the
/// HTTP layer's refused requests and the server's own details.
pub(crate) const DEBUG_LOG_FILTER: &str = "info,lead_http=debug,lead_server=debug";

/// A variable of the original system the server does not read as
/// configured (its feature is not built yet, or it belongs to another
/// CRM than `CRM_TYPE`): the server starts without it and says so, never
/// with its value (most of them hold passwords and tokens).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unused {
    /// The variable's name.
    pub(crate) var: &'static str,
    /// Why it is not read.
    pub(crate) why: &'static str,
    /// What running without it means.
    pub(crate) effect: &'static str,
    /// It is read when `CRM_TYPE` is this CRM.
    pub(crate) read_with_crm: Option<&'static str>,
}

impl Unused {
    /// The start-up warning: the variable's name, never its value.
    pub(crate) fn warning(&self) -> String {
        format!(
            "{} is set but {}: ignored, {}",
            self.var, self.why, self.effect
        )
    }
}

/// The original system's variables this server may not read (the
/// Pipedrive ones need `CRM_TYPE=pipedrive`):
/// each one that is set and unread is named in a start-up warning.
pub(crate) const UNUSED: &[Unused] = &[
    Unused {
        var: "PIPEDRIVE_API_TOKEN",
        why: "CRM_TYPE is not pipedrive",
        effect: "no lead reaches Pipedrive",
        read_with_crm: Some("pipedrive"),
    },
    Unused {
        var: "PIPEDRIVE_COMPANY_DOMAIN",
        why: "CRM_TYPE is not pipedrive",
        effect: "no lead reaches Pipedrive",
        read_with_crm: Some("pipedrive"),
    },
    Unused {
        var: "PIPEDRIVE_DEFAULT_STAGE_ID",
        why: "CRM_TYPE is not pipedrive",
        effect: "no lead reaches Pipedrive",
        read_with_crm: Some("pipedrive"),
    },
];

/// The log filter: `RUST_LOG` when it is set (and not blank), else
/// [`DEBUG_LOG_FILTER`] when `WEBHOOK_DEBUG` is on, else `info`.
pub(crate) fn log_filter(rust_log: Option<&str>, debug: bool) -> String {
    match rust_log.map(str::trim).filter(|f| !f.is_empty()) {
        Some(filter) => filter.to_owned(),
        None if debug => DEBUG_LOG_FILTER.to_owned(),
        None => "info".to_owned(),
    }
}

/// How log lines are written (`LEAD_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `LEAD_LOG_FORMAT` from `vars`: `text` (or unset) or `json`, in any
/// case; `Err` for anything else.
pub(crate) fn log_format(vars: &HashMap<String, String>) -> Result<LogFormat, ()> {
    match vars
        .get("LEAD_LOG_FORMAT")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("" | "text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(_) => Err(()),
    }
}

/// `true`/`1`/`yes` or `false`/`0`/`no`, in any case.
pub(crate) fn flag(value: &str) -> Result<bool, ()> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(()),
    }
}

/// An ISO 3166-1 alpha-2 code the phone library knows (`ES`, `us`).
fn region(value: &str) -> Result<Region, ()> {
    if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(());
    }
    Region::parse(value).map_err(|_| ())
}

/// The address every listener is bound to, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bind {
    /// `LEAD_BIND_ADDR`, as given.
    Given(IpAddr),
    /// No `LEAD_BIND_ADDR` and a capture secret: every interface
    /// (`0.0.0.0`).
    Public,
    /// No `LEAD_BIND_ADDR` and no capture secret: loopback only
    /// (`127.0.0.1`), so unsigned captures come from this machine only.
    Loopback,
}

impl Bind {
    /// The address to listen on.
    pub(crate) fn ip(self) -> IpAddr {
        match self {
            Bind::Given(ip) => ip,
            Bind::Public => IpAddr::from([0, 0, 0, 0]),
            Bind::Loopback => IpAddr::from([127, 0, 0, 1]),
        }
    }
}

/// Whether only this machine can reach `ip` (`127.0.0.0/8`, `::1`, and
/// their IPv4-mapped forms).
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Everything the server needs to start.
pub(crate) struct ServerConfig {
    /// `DATABASE_URL`: `sqlite://path` or `postgres://…`.
    pub(crate) database_url: String,
    /// Whether `DATABASE_URL` was given (otherwise the default file is used).
    pub(crate) database_url_given: bool,
    /// The listeners and what each serves: `WEBHOOK_PORT` (default 5000)
    /// serves everything not given a port of its own by `API_PORT` or
    /// `DASHBOARD_PORT`; all on the address of [`ServerConfig::bind`].
    pub(crate) listeners: Vec<(SocketAddr, Vec<Part>)>,
    /// `CRM_WEBHOOK_PORT` (the original's 5002): the CRM's webhooks
    /// (`/webhook/crm/…`) and the operations routes on a listener of
    /// their own; `None`: they come with the capture routes.
    pub(crate) crm_webhook: Option<SocketAddr>,
    /// Why the listeners are on their address (for the start-up log).
    pub(crate) bind: Bind,
    /// `WEBHOOK_SECRET_KEY` and `WEBHOOK_STANDARD_SECRETS`.
    pub(crate) webhook_keys: WebhookKeys,
    /// `LEAD_API_KEYS`.
    pub(crate) api_keys: ApiKeys,
    /// How many API keys are configured (for the start-up log).
    pub(crate) api_key_count: usize,
    /// `PUBLIC_FORM_ORIGINS` and the defaults.
    pub(crate) http: HttpSettings,
    /// `LEAD_POLICY`, `LEAD_RULES` and `LEAD_REPS`: files read at start-up.
    pub(crate) files: FilePaths,
    /// `WEBHOOK_DEBUG`: log at [`DEBUG_LOG_FILTER`] when `RUST_LOG` is not set.
    pub(crate) debug: bool,
    /// `LEAD_DEFAULT_REGION`: the region of phone numbers written without
    /// a country prefix when the lead has no `country`; replaces the
    /// policy's `default_region`.
    pub(crate) default_region: Option<Region>,
    /// The variables of [`UNUSED`] that are set (non-empty) and not
    /// read, in that order: each is named in a start-up warning.
    pub(crate) ignored: Vec<&'static Unused>,
    /// `LEAD_TRUST_FORWARDED_FOR=true` (deprecated): loopback proxies are
    /// trusted; the start-up log says to use `LEAD_TRUSTED_PROXIES`.
    pub(crate) legacy_trust_forwarded_for: bool,
    /// The header-read timeout, the connection cap and the shutdown
    /// deadline.
    pub(crate) limits: ServeLimits,
    /// `LEAD_LOG_FORMAT`: text lines or JSON lines.
    pub(crate) log_format: LogFormat,
    /// `LEAD_TLS_CERT` and `LEAD_TLS_KEY`: serve HTTPS on every listener
    /// (`None`: plain HTTP, for a reverse proxy or a local try).
    pub(crate) tls: Option<TlsPaths>,
    /// `LEAD_HSTS_MAX_AGE_SECS` was set but there is no TLS to promise
    /// (for a start-up warning: it is ignored).
    pub(crate) hsts_without_tls: bool,
    /// `LEAD_METRICS_TOKEN`: the bearer token `/metrics` asks for; `None`:
    /// `/metrics` answers clients on this machine only.
    pub(crate) metrics_token: Option<SecretString>,
    /// `CRM_TYPE` and its variables: the CRM sync worker's settings
    /// (`None`: no CRM).
    pub(crate) sync: Option<crate::sync::SyncSettings>,
    /// `SLACK_WEBHOOK_URL`, `SMTP_*`, `LEAD_LINK_URL`: the notification
    /// channels (their routes are in `LEAD_NOTIFICATIONS_FILE`).
    pub(crate) notify: crate::notifications::NotifyVars,
    /// `LEAD_JOBS` and `LEAD_JOBS_HEARTBEAT_SECS`: whether this process
    /// schedules and runs the jobs, and its workers' heartbeat.
    pub(crate) jobs: JobsSwitch,
}

/// Whether and how this process takes part in the scheduled jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JobsSwitch {
    /// `LEAD_JOBS=off`: no schedule and no job worker here (another
    /// process, `lead-server worker`, or Airflow runs the jobs).
    pub(crate) on: bool,
    /// `LEAD_JOBS_HEARTBEAT_SECS` (default 30).
    pub(crate) heartbeat: Duration,
}

/// The paths of the files the server reads at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FilePaths {
    /// `LEAD_POLICY`: a TOML policy (scoring, BANT, segments, routing,
    /// follow-ups, duplicates); sections left out keep their defaults.
    pub(crate) policy: Option<String>,
    /// `LEAD_RULES`: a TOML scoring rule set (the format of
    /// `lead-core/rules/default.toml`), replacing the policy's rules.
    pub(crate) rules: Option<String>,
    /// `LEAD_REPS`: a TOML file of `[[rep]]` tables.
    pub(crate) reps: Option<String>,
    /// `LEAD_JOBS_FILE`: a TOML file of `[jobs.<name>]` tables (schedule,
    /// enabled, and the settings of the jobs that have some).
    pub(crate) jobs: Option<String>,
    /// `LEAD_NOTIFICATIONS_FILE`: which events go to which channel, quiet
    /// hours, webhook subscribers, e-mail templates.
    pub(crate) notifications: Option<String>,
}

/// What the start-up files say.
#[derive(Debug, Clone)]
pub(crate) struct Files {
    /// The policy every route uses.
    pub(crate) policy: Policy,
    /// The reps to make the store's (`None`: `LEAD_REPS` not set, the
    /// stored reps stay as they are).
    pub(crate) reps: Option<Vec<Rep>>,
    /// The scheduled jobs' plans (`LEAD_JOBS_FILE` over the defaults).
    pub(crate) jobs: crate::jobs::JobsConfig,
    /// `LEAD_NOTIFICATIONS_FILE` (empty when not set).
    pub(crate) notifications: crate::notifications::NotifyFile,
}

impl FilePaths {
    /// Reads and checks every file; the error names the variable and the
    /// file, with the parser's line and column.
    pub(crate) fn load(&self) -> Result<Files, String> {
        let read = |var: &str, path: &str| {
            std::fs::read_to_string(path).map_err(|e| format!("{var}: cannot read {path}: {e}"))
        };
        let mut policy = match &self.policy {
            Some(path) => Policy::from_toml(&read("LEAD_POLICY", path)?)
                .map_err(|e| format!("LEAD_POLICY ({path}): {}", details(&e)))?,
            None => Policy::default(),
        };
        if let Some(path) = &self.rules {
            policy.rules = RuleSet::from_toml(&read("LEAD_RULES", path)?)
                .map_err(|e| format!("LEAD_RULES ({path}): {}", details(&e)))?;
        }
        let reps = match &self.reps {
            Some(path) => Some(
                parse_reps(&read("LEAD_REPS", path)?)
                    .map_err(|e| format!("LEAD_REPS ({path}): {}", details(&e)))?,
            ),
            None => None,
        };
        let jobs = match &self.jobs {
            Some(path) => crate::jobs::JobsConfig::from_toml(&read("LEAD_JOBS_FILE", path)?)
                .map_err(|e| format!("LEAD_JOBS_FILE ({path}): {e}"))?,
            None => crate::jobs::JobsConfig::defaults(),
        };
        let notifications = match &self.notifications {
            Some(path) => {
                crate::notifications::NotifyFile::from_toml(&read("LEAD_NOTIFICATIONS_FILE", path)?)
                    .map_err(|e| format!("LEAD_NOTIFICATIONS_FILE ({path}): {e}"))?
            }
            None => crate::notifications::NotifyFile::default(),
        };
        Ok(Files {
            policy,
            reps,
            jobs,
            notifications,
        })
    }
}

/// The messages of a validation error, without the generic preamble.
fn details(err: &Error) -> String {
    match err {
        Error::Invalid { fields } => fields
            .iter()
            .map(|f| f.message.clone())
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// The reps of a reps file: `[[rep]]` tables, each a [`Rep`] (`id` and
/// `name` required, every other field defaulting as in [`Rep::new`];
/// unknown keys refused).
pub(crate) fn parse_reps(text: &str) -> Result<Vec<Rep>, Error> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RepsFile {
        #[serde(default)]
        rep: Vec<Rep>,
    }
    let file: RepsFile = toml::from_str(text)
        .map_err(|e| Error::invalid("reps", "invalid_reps_file", e.to_string()))?;
    Ok(file.rep)
}

impl ServerConfig {
    /// Reads the settings from `vars` (the process environment in `main`).
    ///
    /// | variable | meaning |
    /// | --- | --- |
    /// | `DATABASE_URL` | `sqlite://leads.db` (default) or `postgres://user:pass@host/db` |
    /// | `WEBHOOK_PORT` | the main listener's port (default 5000) |
    /// | `API_PORT` | serve the lead API on its own port (the original's 5001) |
    /// | `DASHBOARD_PORT` | serve the dashboard API on its own port (the original's 5003) |
    /// | `CRM_WEBHOOK_PORT` | serve the CRM's webhooks (`/webhook/crm/salesforce`) on their own port (the original's 5002) |
    /// | `LEAD_BIND_ADDR` | the listener's address (default `0.0.0.0` with a capture secret, `127.0.0.1` without); without a secret a non-loopback address is refused unless `LEAD_ALLOW_UNSIGNED_PUBLIC=true` |
    /// | `LEAD_ALLOW_UNSIGNED_PUBLIC` | `true`: accept a non-loopback `LEAD_BIND_ADDR` with no capture secret (anyone who reaches it can post unsigned) |
    /// | `WEBHOOK_SECRET_KEY` | `X-Webhook-Signature` secret; when set (or standard secrets are), unsigned captures are refused; set but blank is an error |
    /// | `WEBHOOK_STANDARD_SECRETS` | comma-separated `whsec_…` Standard Webhooks secrets (several rotate) |
    /// | `LEAD_API_KEYS` | `;`-separated `<sha256 hex of the key>:<scopes>` (`read`, `write`, `read,write`) |
    /// | `PUBLIC_FORM_ORIGINS` | comma-separated origins whose browser forms may post unsigned |
    /// | `CORS_ORIGINS` | comma-separated origins browsers may call the APIs from |
    /// | `LEAD_RATE_LIMIT_PER_IP` | `<per minute>[,<burst>]`, `0` turns it off (default `6000,200`) |
    /// | `LEAD_RATE_LIMIT_PER_KEY` | the same per API key (default `12000,400`) |
    /// | `LEAD_TRUSTED_PROXIES` | comma-separated IPs or CIDR ranges of your reverse proxies: from them, the client is the right-most `X-Forwarded-For` hop that is not a proxy |
    /// | `LEAD_TRUST_FORWARDED_FOR` | deprecated: `true` adds the loopback proxies (`127.0.0.0/8`, `::1`) to `LEAD_TRUSTED_PROXIES` |
    /// | `LEAD_POLICY` | a TOML policy file ([`FilePaths::policy`]) |
    /// | `LEAD_RULES` | a TOML scoring rule-set file ([`FilePaths::rules`]) |
    /// | `LEAD_REPS` | a TOML file of `[[rep]]` tables ([`FilePaths::reps`]) |
    /// | `LEAD_JOBS_FILE` | a TOML file of `[jobs.<name>]` tables: `schedule`, `enabled`, job settings ([`FilePaths::jobs`], `docs/jobs.md`) |
    /// | `LEAD_JOBS` | `on` (default): this process schedules and runs the jobs; `off`: it does not |
    /// | `LEAD_JOBS_HEARTBEAT_SECS` | how often a job worker says it is alive (default 30); a run whose worker missed three is run again elsewhere |
    /// | `LEAD_DEFAULT_REGION` | ISO 3166-1 alpha-2 region of phone numbers without a prefix when the lead has no country (replaces the policy's `default_region`) |
    /// | `WEBHOOK_DEBUG` | `true`: log at [`DEBUG_LOG_FILTER`] when `RUST_LOG` is not set |
    /// | `LEAD_LOG_FORMAT` | `text` (default) or `json`: one JSON object per log line |
    /// | `LEAD_HEADER_READ_TIMEOUT_SECS` | seconds a client has to send a request head (default 10, 1 to 86400) |
    /// | `LEAD_MAX_CONNECTIONS` | connections served at once over every listener (default 1024); more wait to be accepted |
    /// | `LEAD_SHUTDOWN_TIMEOUT_SECS` | seconds requests in flight get after SIGTERM before connections are closed (default 30, 0 to 86400) |
    /// | `LEAD_TLS_CERT` | PEM certificate chain: with `LEAD_TLS_KEY`, every listener serves HTTPS (both or neither) |
    /// | `LEAD_TLS_KEY` | PEM private key of `LEAD_TLS_CERT` |
    /// | `LEAD_HSTS_MAX_AGE_SECS` | with TLS, the `Strict-Transport-Security` max-age (default 31536000, a year; 0 sends none; at most 63072000) |
    /// | `LEAD_METRICS_TOKEN` | bearer token `/metrics` asks for; unset: `/metrics` answers this machine only |
    /// | `SLACK_WEBHOOK_URL` | a Slack incoming webhook: notifications to the team channel (`docs/notifications.md`) |
    /// | `SMTP_HOST`, `SMTP_PORT`, `SMTP_TLS`, `SMTP_USERNAME`, `SMTP_PASSWORD`, `SMTP_FROM` | e-mail to reps: the server (port default 587, `starttls` default, `tls`, `none`), credentials (both or neither), the sender address (required) |
    /// | `LEAD_LINK_URL` | the lead link in messages, with `{ext_id}` (e.g. `https://crm.example.com/leads/{ext_id}`) |
    /// | `LEAD_NOTIFICATIONS_FILE` | a TOML file: events per channel, quiet hours, webhook subscribers, e-mail templates (`docs/notifications.md`) |
    /// | `LEAD_NOTIFY_POLL_SECS` | how often the notification consumers look for retries due (default 5) |
    /// | `LEAD_NOTIFY_LEASE_SECS` | how long a consumer's claimed batch stays its own (default 120); after a crash another instance sends it when this ends |
    /// | `LEAD_NOTIFY_RETRY_BASE_MS` | the first retry's delay (default 5000), doubling up to an hour, at least what `Retry-After` asks |
    ///
    /// The variables of [`UNUSED`] are only noted in [`ServerConfig::ignored`].
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming every bad variable.
    pub(crate) fn from_vars(vars: &HashMap<String, String>) -> Result<Self, Error> {
        let get = |name: &str| {
            vars.get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut problems = Vec::new();
        let mut invalid = |field: &str, message: &str| {
            problems.push(FieldError::new(field, "invalid", message));
        };

        let mut port_of = |name: &str| {
            get(name).map(|p| {
                p.parse::<u16>().unwrap_or_else(|_| {
                    invalid(name, "a port number (0-65535)");
                    DEFAULT_PORT
                })
            })
        };
        let port = port_of("WEBHOOK_PORT").unwrap_or(DEFAULT_PORT);
        let api_port = port_of("API_PORT");
        let dashboard_port = port_of("DASHBOARD_PORT");
        let crm_webhook_port = port_of("CRM_WEBHOOK_PORT");
        let bind_addr = get("LEAD_BIND_ADDR").map(|a| {
            a.parse::<IpAddr>().unwrap_or_else(|_| {
                invalid("LEAD_BIND_ADDR", "an IP address such as 127.0.0.1");
                IpAddr::from([127, 0, 0, 1])
            })
        });
        let allow_unsigned_public = match get("LEAD_ALLOW_UNSIGNED_PUBLIC").map(|v| flag(&v)) {
            Some(Ok(allow)) => allow,
            Some(Err(())) => {
                invalid("LEAD_ALLOW_UNSIGNED_PUBLIC", "true or false");
                false
            }
            None => false,
        };

        let mut webhook_keys = WebhookKeys::none();
        match vars.get("WEBHOOK_SECRET_KEY").map(|v| v.trim()) {
            // Set but blank is a mistake (an unfilled template, a missing
            // secret store entry), not "no secret": refused, so the server
            // never turns open by accident.
            Some("") => invalid(
                "WEBHOOK_SECRET_KEY",
                "is set but empty: give the secret, or leave the variable unset to accept unsigned captures on loopback only",
            ),
            Some(secret) => {
                webhook_keys = webhook_keys.with_legacy(SecretString::from(secret.to_owned()));
            }
            None => {}
        }
        if let Some(secrets) = get("WEBHOOK_STANDARD_SECRETS") {
            for secret in secrets.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match webhook_keys.with_standard(secret) {
                    Ok(keys) => webhook_keys = keys,
                    Err(_) => {
                        invalid(
                            "WEBHOOK_STANDARD_SECRETS",
                            "each secret is whsec_ followed by base64",
                        );
                        webhook_keys = WebhookKeys::none();
                        break;
                    }
                }
            }
        }

        let mut api_keys = ApiKeys::default();
        let mut api_key_count = 0;
        if let Some(entries) = get("LEAD_API_KEYS") {
            for entry in entries.split(';').map(str::trim).filter(|e| !e.is_empty()) {
                let parsed = entry.split_once(':').ok_or(()).and_then(|(hash, scopes)| {
                    let scopes = Scopes::parse(scopes).map_err(|_| ())?;
                    api_keys.clone().with_hash(hash, scopes).map_err(|_| ())
                });
                match parsed {
                    Ok(keys) => {
                        api_keys = keys;
                        api_key_count += 1;
                    }
                    Err(()) => invalid(
                        "LEAD_API_KEYS",
                        "entries are <64 hex digits of the key's SHA-256>:<read|write|read,write>, separated by ;",
                    ),
                }
            }
        }

        let mut http = HttpSettings::default();
        if let Some(origins) = get("PUBLIC_FORM_ORIGINS") {
            http.public_form_origins = origins
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect();
        }

        if let Some(origins) = get("CORS_ORIGINS") {
            http.cors_origins = origins
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect();
        }
        for (name, slot) in [
            ("LEAD_RATE_LIMIT_PER_IP", &mut http.rate_limit.per_ip),
            ("LEAD_RATE_LIMIT_PER_KEY", &mut http.rate_limit.per_key),
        ] {
            if let Some(value) = get(name) {
                match parse_rate(&value) {
                    Ok(rate) => *slot = rate,
                    Err(()) => invalid(name, "<requests per minute>[,<burst>], or 0 for no limit"),
                }
            }
        }
        if let Some(value) = get("LEAD_TRUSTED_PROXIES") {
            for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                match entry.parse::<IpRange>() {
                    Ok(range) => http.rate_limit.trusted_proxies.push(range),
                    Err(_) => {
                        invalid(
                            "LEAD_TRUSTED_PROXIES",
                            "comma-separated IP addresses or CIDR ranges such as 10.0.0.1, 10.0.0.0/8 or fd00::/8",
                        );
                        break;
                    }
                }
            }
        }
        // Deprecated: it trusted the left-most X-Forwarded-For address from
        // anyone. It now means "a proxy on this machine".
        let mut legacy_trust_forwarded_for = false;
        if let Some(value) = get("LEAD_TRUST_FORWARDED_FOR") {
            match flag(&value) {
                Ok(trust) => {
                    legacy_trust_forwarded_for = trust;
                    if trust {
                        for range in IpRange::loopback() {
                            if !http.rate_limit.trusted_proxies.contains(&range) {
                                http.rate_limit.trusted_proxies.push(range);
                            }
                        }
                    }
                }
                Err(()) => invalid("LEAD_TRUST_FORWARDED_FOR", "true or false"),
            }
        }
        let debug = match get("WEBHOOK_DEBUG").map(|v| flag(&v)) {
            Some(Ok(debug)) => debug,
            Some(Err(())) => {
                invalid("WEBHOOK_DEBUG", "true or false");
                false
            }
            None => false,
        };
        let default_region = match get("LEAD_DEFAULT_REGION").map(|v| region(&v)) {
            Some(Ok(region)) => Some(region),
            Some(Err(())) => {
                invalid(
                    "LEAD_DEFAULT_REGION",
                    "an ISO 3166-1 alpha-2 country code such as ES or US",
                );
                None
            }
            None => None,
        };
        let mut jobs = JobsSwitch {
            on: true,
            heartbeat: Duration::from_secs(30),
        };
        if let Some(value) = get("LEAD_JOBS") {
            match value.trim() {
                "on" => jobs.on = true,
                "off" => jobs.on = false,
                _ => invalid("LEAD_JOBS", "on (the default) or off"),
            }
        }
        if let Some(value) = get("LEAD_JOBS_HEARTBEAT_SECS") {
            match seconds(&value, 1) {
                Ok(every) if every.as_secs() <= 600 => jobs.heartbeat = every,
                _ => invalid("LEAD_JOBS_HEARTBEAT_SECS", "whole seconds from 1 to 600"),
            }
        }
        let mut limits = ServeLimits::default();
        if let Some(value) = get("LEAD_HEADER_READ_TIMEOUT_SECS") {
            match seconds(&value, 1) {
                Ok(timeout) => limits.header_read_timeout = timeout,
                Err(()) => invalid(
                    "LEAD_HEADER_READ_TIMEOUT_SECS",
                    "whole seconds from 1 to 86400",
                ),
            }
        }
        if let Some(value) = get("LEAD_SHUTDOWN_TIMEOUT_SECS") {
            match seconds(&value, 0) {
                Ok(timeout) => limits.shutdown_timeout = timeout,
                Err(()) => invalid(
                    "LEAD_SHUTDOWN_TIMEOUT_SECS",
                    "whole seconds from 0 to 86400",
                ),
            }
        }
        if let Some(value) = get("LEAD_MAX_CONNECTIONS") {
            // The semaphore's ceiling is far above this.
            match value.parse::<usize>() {
                Ok(max) if (1..=1_000_000).contains(&max) => limits.max_connections = max,
                _ => invalid(
                    "LEAD_MAX_CONNECTIONS",
                    "a number of connections from 1 to 1000000",
                ),
            }
        }
        // Set but blank is a mistake (an unfilled template), as for
        // WEBHOOK_SECRET_KEY: refused rather than read as "not set", which
        // would quietly serve plain HTTP or an open /metrics.
        let mut set = |name: &str| match vars.get(name).map(|v| v.trim()) {
            Some("") => {
                invalid(name, "is set but empty: give a value, or leave it unset");
                None
            }
            Some(value) => Some(value.to_owned()),
            None => None,
        };
        let tls_cert = set("LEAD_TLS_CERT");
        let tls_key = set("LEAD_TLS_KEY");
        let metrics_token = set("LEAD_METRICS_TOKEN").map(SecretString::from);
        let blank_tls = ["LEAD_TLS_CERT", "LEAD_TLS_KEY"]
            .iter()
            .any(|name| vars.get(*name).is_some_and(|v| v.trim().is_empty()));
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(TlsPaths { cert, key }),
            (None, None) => None,
            // A blank one is already named above.
            _ if blank_tls => None,
            (Some(_), None) => {
                invalid(
                    "LEAD_TLS_KEY",
                    "is not set but LEAD_TLS_CERT is: HTTPS needs both the certificate chain and its private key (PEM files), plain HTTP neither",
                );
                None
            }
            (None, Some(_)) => {
                invalid(
                    "LEAD_TLS_CERT",
                    "is not set but LEAD_TLS_KEY is: HTTPS needs both the certificate chain and its private key (PEM files), plain HTTP neither",
                );
                None
            }
        };
        let mut hsts_max_age = Some(DEFAULT_HSTS_MAX_AGE);
        let hsts_given = get("LEAD_HSTS_MAX_AGE_SECS");
        if let Some(value) = &hsts_given {
            match value.parse::<u64>() {
                Ok(0) => hsts_max_age = None,
                Ok(secs) if secs <= MAX_HSTS_MAX_AGE_SECS => {
                    hsts_max_age = Some(Duration::from_secs(secs));
                }
                _ => invalid(
                    "LEAD_HSTS_MAX_AGE_SECS",
                    "whole seconds from 0 (no Strict-Transport-Security) to 63072000 (two years)",
                ),
            }
        }
        // HSTS promises HTTPS: only a server that serves it says so.
        if tls.is_some() {
            http.hsts_max_age = hsts_max_age;
        }
        let hsts_without_tls = hsts_given.is_some() && tls.is_none();
        let log_format = log_format(vars).unwrap_or_else(|()| {
            invalid("LEAD_LOG_FORMAT", "text or json");
            LogFormat::Text
        });
        let crm = get("CRM_TYPE").map(|c| c.to_ascii_lowercase());
        let ignored = UNUSED
            .iter()
            .filter(|item| get(item.var).is_some())
            .filter(|item| item.read_with_crm.is_none_or(|c| crm.as_deref() != Some(c)))
            .collect();
        // A blank WEBHOOK_SECRET_KEY counts as configured: it is refused
        // above, and one message says enough.
        let secret_configured = webhook_keys.required() || vars.contains_key("WEBHOOK_SECRET_KEY");
        let bind = match bind_addr {
            Some(ip) => Bind::Given(ip),
            None if secret_configured => Bind::Public,
            None => Bind::Loopback,
        };
        if !secret_configured && !allow_unsigned_public && !is_loopback(bind.ip()) {
            invalid(
                "LEAD_BIND_ADDR",
                "is not a loopback address but no WEBHOOK_SECRET_KEY or WEBHOOK_STANDARD_SECRETS is set: anyone could post unsigned captures. Set a secret, bind to 127.0.0.1, or set LEAD_ALLOW_UNSIGNED_PUBLIC=true to accept that",
            );
        }

        let sync = crate::sync::settings(&get, &mut invalid);
        let notify = crate::notifications::vars(&get, &mut invalid);

        if !problems.is_empty() {
            return Err(Error::Invalid { fields: problems });
        }
        let database_url = get("DATABASE_URL");
        Ok(ServerConfig {
            database_url_given: database_url.is_some(),
            database_url: database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            listeners: listeners(bind.ip(), port, api_port, dashboard_port),
            // Port 0 (any free port) always means a listener of its own.
            crm_webhook: crm_webhook_port
                .filter(|p| *p == 0 || *p != port)
                .map(|p| SocketAddr::new(bind.ip(), p)),
            bind,
            webhook_keys,
            api_keys,
            api_key_count,
            http,
            files: FilePaths {
                policy: get("LEAD_POLICY"),
                rules: get("LEAD_RULES"),
                reps: get("LEAD_REPS"),
                jobs: get("LEAD_JOBS_FILE"),
                notifications: get("LEAD_NOTIFICATIONS_FILE"),
            },
            jobs,
            debug,
            default_region,
            ignored,
            legacy_trust_forwarded_for,
            limits,
            log_format,
            tls,
            hsts_without_tls,
            metrics_token,
            sync,
            notify,
        })
    }
}

/// The listeners: every part on `port` unless given a port of its own
/// (which also serves the operations routes, for its health checks).
fn listeners(
    ip: IpAddr,
    port: u16,
    api: Option<u16>,
    dashboard: Option<u16>,
) -> Vec<(SocketAddr, Vec<Part>)> {
    let mut by_port: Vec<(u16, Vec<Part>)> = vec![(port, vec![Part::Capture, Part::Operations])];
    for (part, own) in [(Part::Leads, api), (Part::Dashboard, dashboard)] {
        let target = own.unwrap_or(port);
        match by_port.iter_mut().find(|(p, _)| *p == target) {
            Some((_, parts)) => parts.push(part),
            None => by_port.push((target, vec![part, Part::Operations])),
        }
    }
    by_port
        .into_iter()
        .map(|(p, parts)| (SocketAddr::new(ip, p), parts))
        .collect()
}

/// The variables of a TOML config file (`LEAD_CONFIG`): the same names as
/// the environment variables, e.g. `WEBHOOK_PORT = 5000`; lists become
/// comma-separated values. Environment variables win over the file.
pub(crate) fn file_vars(text: &str) -> Result<HashMap<String, String>, Error> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        Error::invalid("LEAD_CONFIG", "invalid_config_file", e.message().to_owned())
    })?;
    let mut vars = HashMap::new();
    for (key, value) in table {
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(","),
            other => {
                return Err(Error::invalid(
                    &key,
                    "invalid_config_value",
                    format!(
                        "a string, number, boolean or list, not {}",
                        other.type_str()
                    ),
                ));
            }
        };
        vars.insert(key.to_ascii_uppercase(), text);
    }
    Ok(vars)
}

/// `600` or `600,50`; `0` is no limit.
fn parse_rate(value: &str) -> Result<Option<Rate>, ()> {
    let (per_minute, burst) = match value.split_once(',') {
        Some((rate, burst)) => (rate.trim(), Some(burst.trim())),
        None => (value.trim(), None),
    };
    let per_minute: u32 = per_minute.parse().map_err(|_| ())?;
    if per_minute == 0 {
        return Ok(None);
    }
    let burst = match burst {
        Some(b) => b.parse::<u32>().map_err(|_| ())?.max(1),
        None => (per_minute / 30).max(1),
    };
    Ok(Some(Rate { per_minute, burst }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn no_configuration_runs_on_a_local_sqlite_file_on_port_5000() {
        let config = ServerConfig::from_vars(&HashMap::new()).expect("defaults");
        assert_eq!(config.database_url, DEFAULT_DATABASE_URL);
        assert!(!config.database_url_given);
        assert_eq!(config.listeners.len(), 1, "one listener serves everything");
        assert_eq!(config.listeners[0].0.port(), 5000);
        assert_eq!(config.listeners[0].1.len(), 4);
        assert!(!config.webhook_keys.required());
        assert_eq!(config.api_key_count, 0);
        assert_eq!(config.bind, Bind::Loopback, "no secret: loopback only");
        assert_eq!(
            config.listeners[0].0,
            "127.0.0.1:5000".parse().expect("address")
        );
    }

    /// The names of the variables an invalid configuration names.
    fn refused(pairs: &[(&str, &str)]) -> Vec<String> {
        match ServerConfig::from_vars(&vars(pairs)) {
            Err(Error::Invalid { fields }) => fields.into_iter().map(|f| f.field).collect(),
            Err(other) => panic!("{pairs:?}: {other}"),
            Ok(_) => panic!("{pairs:?} accepted"),
        }
    }

    #[test]
    fn a_blank_webhook_secret_is_an_error_naming_it_not_an_open_server() {
        for blank in ["", "   ", "\t"] {
            assert_eq!(
                refused(&[("WEBHOOK_SECRET_KEY", blank)]),
                ["WEBHOOK_SECRET_KEY"],
                "{blank:?}"
            );
            // Also with an address that would be fine either way.
            assert_eq!(
                refused(&[("WEBHOOK_SECRET_KEY", blank), ("LEAD_BIND_ADDR", "0.0.0.0")]),
                ["WEBHOOK_SECRET_KEY"],
                "{blank:?}: one message, about the secret"
            );
        }
        // A config file's empty string is the same mistake.
        let file = file_vars("WEBHOOK_SECRET_KEY = \"\"\n").expect("valid file");
        assert!(ServerConfig::from_vars(&file).is_err());
    }

    #[test]
    fn without_a_secret_and_an_address_the_server_binds_to_loopback() {
        for pairs in [
            &[][..],
            &[("WEBHOOK_PORT", "8080")][..],
            &[("LEAD_ALLOW_UNSIGNED_PUBLIC", "true")][..],
            &[("WEBHOOK_STANDARD_SECRETS", " , ")][..],
        ] {
            let config = ServerConfig::from_vars(&vars(pairs)).expect("valid");
            assert_eq!(config.bind, Bind::Loopback, "{pairs:?}");
            assert!(
                config
                    .listeners
                    .iter()
                    .all(|(addr, _)| addr.ip() == IpAddr::from([127, 0, 0, 1])),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn without_a_secret_a_public_address_is_refused_unless_opted_in() {
        for public in ["0.0.0.0", "::", "192.0.2.10", "2001:db8::1"] {
            let named = refused(&[("LEAD_BIND_ADDR", public)]);
            assert_eq!(named, ["LEAD_BIND_ADDR"], "{public}");
            let Err(Error::Invalid { fields }) =
                ServerConfig::from_vars(&vars(&[("LEAD_BIND_ADDR", public)]))
            else {
                unreachable!()
            };
            assert!(
                fields[0].message.contains("LEAD_ALLOW_UNSIGNED_PUBLIC"),
                "{}",
                fields[0].message
            );
            assert_eq!(
                refused(&[
                    ("LEAD_BIND_ADDR", public),
                    ("LEAD_ALLOW_UNSIGNED_PUBLIC", "false")
                ]),
                ["LEAD_BIND_ADDR"],
                "{public}"
            );
            let config = ServerConfig::from_vars(&vars(&[
                ("LEAD_BIND_ADDR", public),
                ("LEAD_ALLOW_UNSIGNED_PUBLIC", "true"),
            ]))
            .expect("opted in");
            assert_eq!(config.bind, Bind::Given(public.parse().expect("ip")));
            assert!(!config.webhook_keys.required());
        }
        // Loopback addresses need no opt-in.
        for local in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
            let config = ServerConfig::from_vars(&vars(&[("LEAD_BIND_ADDR", local)])).expect(local);
            assert_eq!(config.bind, Bind::Given(local.parse().expect("ip")));
        }
        assert_eq!(
            refused(&[("LEAD_ALLOW_UNSIGNED_PUBLIC", "sure")]),
            ["LEAD_ALLOW_UNSIGNED_PUBLIC"]
        );
    }

    #[test]
    fn with_a_secret_the_default_address_is_every_interface() {
        let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        for pairs in [
            &[("WEBHOOK_SECRET_KEY", "s3cret")][..],
            &[("WEBHOOK_STANDARD_SECRETS", whsec)][..],
        ] {
            let config = ServerConfig::from_vars(&vars(pairs)).expect("valid");
            assert_eq!(config.bind, Bind::Public, "{pairs:?}");
            assert_eq!(config.listeners[0].0.ip(), IpAddr::from([0, 0, 0, 0]));
            let mut public = pairs.to_vec();
            public.push(("LEAD_BIND_ADDR", "0.0.0.0"));
            let config = ServerConfig::from_vars(&vars(&public)).expect("a secret: no opt-in");
            assert_eq!(config.bind, Bind::Given(IpAddr::from([0, 0, 0, 0])));
        }
    }

    #[test]
    fn the_original_variables_are_read() {
        let hash = lead_http::hash_key("k1");
        let config = ServerConfig::from_vars(&vars(&[
            ("DATABASE_URL", "postgres://u:p@db/leads"),
            ("WEBHOOK_PORT", "8080"),
            ("WEBHOOK_SECRET_KEY", "s3cret"),
            ("LEAD_API_KEYS", &format!("{hash}:read,write")),
            (
                "PUBLIC_FORM_ORIGINS",
                "https://example.com/, https://b.example",
            ),
        ]))
        .expect("valid");
        assert_eq!(config.listeners[0].0.port(), 8080);
        assert!(config.webhook_keys.required());
        assert_eq!(config.api_keys.scopes_of("k1"), Some(Scopes::READ_WRITE));
        assert_eq!(
            config.http.public_form_origins,
            vec!["https://example.com", "https://b.example"]
        );
    }

    #[test]
    fn the_original_separate_ports_can_be_enabled() {
        let config =
            ServerConfig::from_vars(&vars(&[("API_PORT", "5001"), ("DASHBOARD_PORT", "5003")]))
                .expect("valid");
        let ports: Vec<(u16, Vec<Part>)> = config
            .listeners
            .iter()
            .map(|(a, p)| (a.port(), p.clone()))
            .collect();
        assert_eq!(
            ports,
            vec![
                (5000, vec![Part::Capture, Part::Operations]),
                (5001, vec![Part::Leads, Part::Operations]),
                (5003, vec![Part::Dashboard, Part::Operations]),
            ]
        );
    }

    #[test]
    fn serve_limits_have_defaults_and_a_bad_one_is_named() {
        let config = ServerConfig::from_vars(&HashMap::new()).expect("defaults");
        assert_eq!(config.limits, ServeLimits::default());
        assert_eq!(config.limits.header_read_timeout, Duration::from_secs(10));
        assert_eq!(config.limits.max_connections, 1024);
        assert_eq!(config.limits.shutdown_timeout, Duration::from_secs(30));
        let config = ServerConfig::from_vars(&vars(&[
            ("LEAD_HEADER_READ_TIMEOUT_SECS", "2"),
            ("LEAD_MAX_CONNECTIONS", "16"),
            ("LEAD_SHUTDOWN_TIMEOUT_SECS", "0"),
        ]))
        .expect("valid");
        assert_eq!(
            config.limits,
            ServeLimits {
                header_read_timeout: Duration::from_secs(2),
                max_connections: 16,
                shutdown_timeout: Duration::ZERO,
            }
        );
        for (var, bad) in [
            ("LEAD_HEADER_READ_TIMEOUT_SECS", "0"),
            ("LEAD_HEADER_READ_TIMEOUT_SECS", "10s"),
            ("LEAD_HEADER_READ_TIMEOUT_SECS", "86401"),
            ("LEAD_MAX_CONNECTIONS", "0"),
            ("LEAD_MAX_CONNECTIONS", "-1"),
            ("LEAD_MAX_CONNECTIONS", "many"),
            ("LEAD_SHUTDOWN_TIMEOUT_SECS", "-5"),
            ("LEAD_SHUTDOWN_TIMEOUT_SECS", "1.5"),
        ] {
            assert_eq!(refused(&[(var, bad)]), [var], "{var}={bad}");
        }
    }

    #[test]
    fn the_log_format_is_text_or_json_and_a_bad_one_is_named() {
        let config = ServerConfig::from_vars(&HashMap::new()).expect("defaults");
        assert_eq!(config.log_format, LogFormat::Text);
        for (value, format) in [
            ("json", LogFormat::Json),
            (" JSON ", LogFormat::Json),
            ("text", LogFormat::Text),
            ("", LogFormat::Text),
        ] {
            let config =
                ServerConfig::from_vars(&vars(&[("LEAD_LOG_FORMAT", value)])).expect(value);
            assert_eq!(config.log_format, format, "{value:?}");
        }
        for bad in ["logfmt", "jsonl", "yes"] {
            assert_eq!(
                refused(&[("LEAD_LOG_FORMAT", bad)]),
                ["LEAD_LOG_FORMAT"],
                "{bad}"
            );
        }
    }

    #[test]
    fn tls_needs_both_files_and_one_alone_is_named() {
        let none = ServerConfig::from_vars(&HashMap::new()).expect("defaults");
        assert_eq!(none.tls, None, "plain HTTP by default");
        assert_eq!(none.http.hsts_max_age, None, "no HSTS without TLS");
        let both = ServerConfig::from_vars(&vars(&[
            ("LEAD_TLS_CERT", " /etc/lead/chain.pem "),
            ("LEAD_TLS_KEY", "/etc/lead/key.pem"),
        ]))
        .expect("both files");
        assert_eq!(
            both.tls,
            Some(TlsPaths {
                cert: "/etc/lead/chain.pem".into(),
                key: "/etc/lead/key.pem".into(),
            })
        );
        assert_eq!(both.http.hsts_max_age, Some(DEFAULT_HSTS_MAX_AGE));
        assert_eq!(DEFAULT_HSTS_MAX_AGE, Duration::from_secs(31_536_000));
        assert_eq!(
            refused(&[("LEAD_TLS_CERT", "/etc/lead/chain.pem")]),
            ["LEAD_TLS_KEY"]
        );
        assert_eq!(
            refused(&[("LEAD_TLS_KEY", "/etc/lead/key.pem")]),
            ["LEAD_TLS_CERT"]
        );
        // Set but blank is an unfilled template, not "no TLS".
        assert_eq!(
            refused(&[
                ("LEAD_TLS_CERT", " "),
                ("LEAD_TLS_KEY", "/etc/lead/key.pem")
            ]),
            ["LEAD_TLS_CERT"]
        );
        assert_eq!(
            refused(&[("LEAD_TLS_CERT", ""), ("LEAD_TLS_KEY", "")]),
            ["LEAD_TLS_CERT", "LEAD_TLS_KEY"]
        );
    }

    #[test]
    fn the_hsts_max_age_is_read_with_tls_and_a_bad_one_is_named() {
        let tls = [
            ("LEAD_TLS_CERT", "/etc/lead/chain.pem"),
            ("LEAD_TLS_KEY", "/etc/lead/key.pem"),
        ];
        let with = |age: &str| {
            let mut pairs = tls.to_vec();
            pairs.push(("LEAD_HSTS_MAX_AGE_SECS", age));
            ServerConfig::from_vars(&vars(&pairs))
        };
        assert_eq!(
            with("600").expect("valid").http.hsts_max_age,
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            with("0").expect("valid").http.hsts_max_age,
            None,
            "0 sends none"
        );
        assert!(!with("600").expect("valid").hsts_without_tls);
        for bad in ["-1", "1y", "63072001", "31536000000"] {
            let Err(Error::Invalid { fields }) = with(bad) else {
                panic!("{bad} accepted");
            };
            let named: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
            assert_eq!(named, ["LEAD_HSTS_MAX_AGE_SECS"], "{bad}");
        }
        // Without TLS it is ignored (and warned about): never sent.
        let plain =
            ServerConfig::from_vars(&vars(&[("LEAD_HSTS_MAX_AGE_SECS", "600")])).expect("valid");
        assert_eq!(plain.http.hsts_max_age, None);
        assert!(plain.hsts_without_tls);
    }

    #[test]
    fn the_metrics_token_is_read_and_a_blank_one_is_named() {
        use secrecy::ExposeSecret;
        let none = ServerConfig::from_vars(&HashMap::new()).expect("defaults");
        assert!(none.metrics_token.is_none());
        let config = ServerConfig::from_vars(&vars(&[("LEAD_METRICS_TOKEN", " hunter2-prom ")]))
            .expect("valid");
        assert_eq!(
            config.metrics_token.as_ref().map(|t| t.expose_secret()),
            Some("hunter2-prom")
        );
        let Err(Error::Invalid { fields }) =
            ServerConfig::from_vars(&vars(&[("LEAD_METRICS_TOKEN", "  ")]))
        else {
            panic!("a blank token accepted");
        };
        assert_eq!(fields[0].field, "LEAD_METRICS_TOKEN");
    }

    #[test]
    fn a_config_file_gives_the_same_variables() {
        let vars = file_vars(
            "WEBHOOK_PORT = 8081\nPUBLIC_FORM_ORIGINS = [\"https://a.example\", \"https://b.example\"]\nlead_trust_forwarded_for = true\n",
        )
        .expect("valid file");
        let config = ServerConfig::from_vars(&vars).expect("valid");
        assert_eq!(config.listeners[0].0.port(), 8081);
        assert_eq!(
            config.http.public_form_origins,
            vec!["https://a.example", "https://b.example"]
        );
        assert_eq!(
            config.http.rate_limit.trusted_proxies,
            IpRange::loopback().to_vec()
        );
        assert!(file_vars("WEBHOOK_PORT = ").is_err());
        assert!(file_vars("[section]\nx = 1").is_err());
    }

    #[test]
    fn rate_limits_and_cors_are_read() {
        let config = ServerConfig::from_vars(&vars(&[
            ("LEAD_RATE_LIMIT_PER_IP", "600,50"),
            ("LEAD_RATE_LIMIT_PER_KEY", "0"),
            ("LEAD_TRUST_FORWARDED_FOR", "true"),
            ("CORS_ORIGINS", "https://app.example.com/"),
        ]))
        .expect("valid");
        assert_eq!(
            config.http.rate_limit.per_ip,
            Some(Rate {
                per_minute: 600,
                burst: 50
            })
        );
        assert_eq!(config.http.rate_limit.per_key, None);
        assert!(config.legacy_trust_forwarded_for);
        assert_eq!(
            config.http.rate_limit.trusted_proxies,
            IpRange::loopback().to_vec(),
            "the deprecated flag trusts a proxy on this machine only"
        );
        assert_eq!(config.http.cors_origins, vec!["https://app.example.com"]);
        assert!(ServerConfig::from_vars(&vars(&[("LEAD_RATE_LIMIT_PER_IP", "fast")])).is_err());
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges_and_a_bad_one_is_named() {
        let config = ServerConfig::from_vars(&vars(&[(
            "LEAD_TRUSTED_PROXIES",
            "10.0.0.0/8, 192.0.2.7,fd00::/8",
        )]))
        .expect("valid");
        let trusted = &config.http.rate_limit.trusted_proxies;
        assert_eq!(trusted.len(), 3);
        assert!(trusted[0].contains("10.9.9.9".parse().expect("ip")));
        assert!(trusted[1].contains("192.0.2.7".parse().expect("ip")));
        assert!(trusted[2].contains("fd00::1".parse().expect("ip")));
        assert!(!config.legacy_trust_forwarded_for);
        let none = ServerConfig::from_vars(&HashMap::new()).expect("defaults");
        assert!(
            none.http.rate_limit.trusted_proxies.is_empty(),
            "X-Forwarded-For is ignored unless proxies are named"
        );
        let off = ServerConfig::from_vars(&vars(&[("LEAD_TRUST_FORWARDED_FOR", "false")]))
            .expect("valid");
        assert!(off.http.rate_limit.trusted_proxies.is_empty());
        let both = ServerConfig::from_vars(&vars(&[
            ("LEAD_TRUSTED_PROXIES", "10.0.0.0/8"),
            ("LEAD_TRUST_FORWARDED_FOR", "true"),
        ]))
        .expect("valid");
        assert_eq!(both.http.rate_limit.trusted_proxies.len(), 3);
        for bad in ["proxy.internal", "10.0.0.0/33", "10.0.0.1, nope"] {
            assert_eq!(
                refused(&[("LEAD_TRUSTED_PROXIES", bad)]),
                ["LEAD_TRUSTED_PROXIES"],
                "{bad}"
            );
        }
    }

    #[test]
    fn every_bad_variable_is_named_and_no_secret_is_repeated() {
        let Err(Error::Invalid { fields }) = ServerConfig::from_vars(&vars(&[
            ("WEBHOOK_PORT", "http"),
            ("WEBHOOK_STANDARD_SECRETS", "whsec_not base64 hunter2"),
            ("LEAD_API_KEYS", "hunter2:read"),
        ])) else {
            panic!("bad variables accepted");
        };
        let named: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            named,
            ["WEBHOOK_PORT", "WEBHOOK_STANDARD_SECRETS", "LEAD_API_KEYS"]
        );
        assert!(fields.iter().all(|f| !f.message.contains("hunter2")));
    }

    /// The original system's variables (SPEC "HTTP surface" and the seed's
    /// `WEBHOOK_DEBUG`), each with a value it could hold.
    const SEED_VARS: [(&str, &str); 16] = [
        ("CRM_TYPE", "salesforce"),
        ("SALESFORCE_USERNAME", "ventas@empresa.com"),
        ("SALESFORCE_PASSWORD", "hunter2-secret"),
        ("SALESFORCE_SECURITY_TOKEN", "hunter2-token"),
        ("SALESFORCE_CLIENT_ID", "hunter2-client"),
        ("SALESFORCE_CLIENT_SECRET", "hunter2-client-secret"),
        ("SALESFORCE_SANDBOX", "false"),
        ("PIPEDRIVE_API_TOKEN", "hunter2-pipedrive"),
        ("PIPEDRIVE_COMPANY_DOMAIN", "mycompany"),
        ("PIPEDRIVE_DEFAULT_STAGE_ID", "1"),
        ("WEBHOOK_SECRET_KEY", "hunter2-webhook"),
        ("WEBHOOK_PORT", "5000"),
        ("WEBHOOK_DEBUG", "false"),
        ("API_PORT", "5001"),
        (
            "DATABASE_URL",
            "postgresql://user:hunter2@localhost:5432/db",
        ),
        (
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/YOUR/WEBHOOK/URL",
        ),
    ];

    #[test]
    fn every_seed_variable_is_honoured_or_named_as_ignored_without_its_value() {
        // The seed logs in to Salesforce with a username and password: that
        // flow is off unless asked for (see the next test).
        let mut seed = vars(&SEED_VARS);
        seed.insert("SALESFORCE_PASSWORD_FLOW".into(), "true".into());
        let config = ServerConfig::from_vars(&seed).expect("the seed's values");
        let ignored: Vec<&str> = config.ignored.iter().map(|i| i.var).collect();
        assert_eq!(
            ignored,
            [
                "PIPEDRIVE_API_TOKEN",
                "PIPEDRIVE_COMPANY_DOMAIN",
                "PIPEDRIVE_DEFAULT_STAGE_ID",
            ]
        );
        // The others are read.
        assert!(config.notify.slack.is_some(), "SLACK_WEBHOOK_URL is read");
        assert_eq!(config.database_url, SEED_VARS[14].1);
        assert!(config.webhook_keys.required());
        assert!(!config.debug);
        let ports: Vec<u16> = config.listeners.iter().map(|(a, _)| a.port()).collect();
        assert_eq!(ports, [5000, 5001]);
        let sync = config.sync.as_ref().expect("CRM_TYPE=salesforce");
        assert_eq!(sync.crm_name(), "salesforce");
        let crate::sync::Crm::Salesforce(salesforce) = &sync.crm else {
            panic!("not Salesforce: {:?}", sync.crm);
        };
        assert_eq!(
            salesforce.login_url, "https://login.salesforce.com",
            "SALESFORCE_SANDBOX=false"
        );
        for (var, _) in SEED_VARS {
            let honoured = [
                "WEBHOOK_SECRET_KEY",
                "WEBHOOK_PORT",
                "WEBHOOK_DEBUG",
                "API_PORT",
                "DATABASE_URL",
                "CRM_TYPE",
                "SALESFORCE_USERNAME",
                "SALESFORCE_PASSWORD",
                "SALESFORCE_SECURITY_TOKEN",
                "SALESFORCE_CLIENT_ID",
                "SALESFORCE_CLIENT_SECRET",
                "SALESFORCE_SANDBOX",
                "SLACK_WEBHOOK_URL",
            ];
            assert!(
                honoured.contains(&var) || ignored.contains(&var),
                "{var} is neither read nor warned about"
            );
        }
        for item in &config.ignored {
            let warning = item.warning();
            assert!(warning.starts_with(item.var), "{warning}");
            assert!(warning.contains(item.why), "{warning}");
            for value in ["hunter2", "ventas@", "mycompany", "hooks.slack.com"] {
                assert!(!warning.contains(value), "{warning} shows a value");
            }
        }
        // The consumer key is an id; the secrets are redacted.
        let shown = format!("{sync:?}");
        for secret in ["hunter2-secret", "hunter2-token", "hunter2-client-secret"] {
            assert!(!shown.contains(secret), "a secret in Debug: {shown}");
        }
    }

    #[test]
    fn crm_settings_that_cannot_work_stop_the_start_naming_the_variable() {
        let field_of = |pairs: &[(&str, &str)]| match ServerConfig::from_vars(&vars(pairs)) {
            Err(Error::Invalid { fields }) => {
                for f in &fields {
                    assert!(!f.message.contains("hunter2"), "a value in {f:?}");
                }
                fields.iter().map(|f| f.field.clone()).collect::<Vec<_>>()
            }
            Err(other) => panic!("not a validation error: {other:?}"),
            Ok(_) => panic!("not refused: {pairs:?}"),
        };
        assert_eq!(field_of(&SEED_VARS), ["SALESFORCE_PASSWORD_FLOW"]);
        assert_eq!(
            field_of(&[
                ("CRM_TYPE", "salesforce"),
                ("SALESFORCE_PASSWORD", "hunter2")
            ]),
            ["SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET"]
        );
        assert_eq!(
            field_of(&[("CRM_TYPE", "pipedrive")]),
            ["PIPEDRIVE_API_TOKEN", "PIPEDRIVE_COMPANY_DOMAIN"]
        );
        assert_eq!(
            field_of(&[
                ("CRM_TYPE", "pipedrive"),
                ("PIPEDRIVE_API_TOKEN", "hunter2"),
                ("PIPEDRIVE_COMPANY_DOMAIN", "acme corp"),
                ("PIPEDRIVE_STAGE_IDS", "qualified=three"),
                ("PIPEDRIVE_WEBHOOK_PASSWORD", "short"),
            ]),
            [
                "PIPEDRIVE_WEBHOOK_PASSWORD",
                "PIPEDRIVE_COMPANY_DOMAIN",
                "PIPEDRIVE_STAGE_IDS"
            ]
        );
        assert_eq!(field_of(&[("CRM_TYPE", "hubspot")]), ["CRM_TYPE"]);
        let client = [
            ("CRM_TYPE", "Salesforce"),
            ("SALESFORCE_CLIENT_ID", "id"),
            ("SALESFORCE_CLIENT_SECRET", "hunter2"),
        ];
        let config = ServerConfig::from_vars(&vars(&client)).expect("client credentials");
        let sync = config.sync.expect("sync on");
        let crate::sync::Crm::Salesforce(salesforce) = &sync.crm else {
            panic!("not Salesforce: {:?}", sync.crm);
        };
        assert_eq!(salesforce.login_url, "https://login.salesforce.com");
        assert!(matches!(
            salesforce.flow,
            lead_crm_salesforce::Flow::ClientCredentials { .. }
        ));
        assert!(
            ServerConfig::from_vars(&vars(&[("CRM_TYPE", "none")]))
                .expect("no CRM")
                .sync
                .is_none()
        );
        assert_eq!(
            field_of(&[
                ("CRM_TYPE", "salesforce"),
                ("SALESFORCE_CLIENT_ID", "id"),
                ("SALESFORCE_CLIENT_SECRET", "hunter2"),
                ("SALESFORCE_ORG_ID", "00D5w"),
            ]),
            ["SALESFORCE_ORG_ID"]
        );
        assert_eq!(
            field_of(&[
                ("CRM_TYPE", "salesforce"),
                ("SALESFORCE_CLIENT_ID", "id"),
                ("SALESFORCE_CLIENT_SECRET", "hunter2"),
                ("SALESFORCE_ORG_ID", "00D5w000004qGTO"),
                ("SALESFORCE_OUTBOUND_TOKEN", "hunter2"),
            ]),
            ["SALESFORCE_OUTBOUND_TOKEN"],
            "a short token is no password"
        );
        assert_eq!(
            field_of(&[
                ("CRM_TYPE", "salesforce"),
                ("SALESFORCE_CLIENT_ID", "id"),
                ("SALESFORCE_CLIENT_SECRET", "hunter2"),
                ("SALESFORCE_ORG_ID", "00D5w000004qGTO"),
            ]),
            ["SALESFORCE_OUTBOUND_TOKEN"],
            "an org id is no secret: the endpoint needs its token"
        );
        assert_eq!(
            field_of(&[
                ("CRM_TYPE", "salesforce"),
                ("SALESFORCE_CLIENT_ID", "id"),
                ("SALESFORCE_CLIENT_SECRET", "hunter2"),
                ("CRM_SYNC_DIRECTION", "sideways"),
                ("CRM_MAX_RECORDS_PER_RUN", "0"),
                ("CRM_CREATE_DEALS", "maybe"),
            ]),
            [
                "CRM_SYNC_DIRECTION",
                "CRM_MAX_RECORDS_PER_RUN",
                "CRM_CREATE_DEALS"
            ]
        );
        let tuned = ServerConfig::from_vars(&vars(&[
            ("CRM_TYPE", "salesforce"),
            ("SALESFORCE_CLIENT_ID", "id"),
            ("SALESFORCE_CLIENT_SECRET", "hunter2"),
            ("CRM_SYNC_DIRECTION", "to_crm"),
            ("CRM_MAX_RECORDS_PER_RUN", "500"),
            ("CRM_SYNC_STAGES", "false"),
            ("CRM_CREATE_DEALS", "false"),
            ("SALESFORCE_ORG_ID", "00D5w000004qGTO"),
            ("SALESFORCE_OUTBOUND_TOKEN", "outbound-token-0123456789"),
        ]))
        .expect("valid")
        .sync
        .expect("sync on");
        assert!(!tuned.direction.pulls());
        assert_eq!(tuned.pull.max_records_per_run, 500);
        assert_eq!(tuned.pull.stage, lead_core::sync::ConflictRule::DontSync);
        assert!(tuned.outbound.is_none(), "to_crm reads no CRM webhooks");
        let crate::sync::Crm::Salesforce(salesforce) = &tuned.crm else {
            panic!("not Salesforce");
        };
        assert!(!salesforce.create_deals);

        let mapped = ServerConfig::from_vars(&vars(&[
            ("CRM_TYPE", "salesforce"),
            ("SALESFORCE_CLIENT_ID", "id"),
            ("SALESFORCE_CLIENT_SECRET", "hunter2"),
            (
                "SALESFORCE_STAGE_STATUS",
                "qualified=Qualified; proposal=Proposal Sent",
            ),
            (
                "SALESFORCE_STATUS_STAGE",
                "Closed - Converted=won;Qualified=qualified",
            ),
        ]))
        .expect("valid")
        .sync
        .expect("sync on");
        let crate::sync::Crm::Salesforce(salesforce) = &mapped.crm else {
            panic!("not Salesforce");
        };
        assert_eq!(
            salesforce.stage_status[&lead_core::Stage::Qualified],
            "Qualified"
        );
        assert_eq!(
            salesforce.stage_status[&lead_core::Stage::Proposal],
            "Proposal Sent"
        );
        assert_eq!(
            salesforce.stage_status[&lead_core::Stage::New],
            "Open - Not Contacted",
            "the stages not named keep the standard picklist"
        );
        assert_eq!(
            salesforce.status_stage["Qualified"],
            lead_core::Stage::Qualified
        );
        assert_eq!(
            salesforce.status_stage.len(),
            2,
            "the pull's map is replaced whole"
        );
        assert_eq!(
            field_of(&[
                ("CRM_TYPE", "salesforce"),
                ("SALESFORCE_CLIENT_ID", "id"),
                ("SALESFORCE_CLIENT_SECRET", "hunter2"),
                ("SALESFORCE_STAGE_STATUS", "finished=Done"),
                ("SALESFORCE_STATUS_STAGE", "Done"),
            ]),
            ["SALESFORCE_STAGE_STATUS", "SALESFORCE_STATUS_STAGE"]
        );
    }

    #[test]
    fn a_jwt_key_file_selects_the_jwt_bearer_flow_without_a_secret() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("salesforce.key");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nhunter2\n-----END PRIVATE KEY-----\n",
        )
        .expect("key file");
        let key = key.display().to_string();
        let jwt = [
            ("CRM_TYPE", "salesforce"),
            ("SALESFORCE_CLIENT_ID", "id"),
            ("SALESFORCE_USERNAME", "integration@acme.example"),
            ("SALESFORCE_JWT_KEY_FILE", key.as_str()),
            ("SALESFORCE_SANDBOX", "true"),
        ];
        let config = ServerConfig::from_vars(&vars(&jwt)).expect("the JWT bearer flow");
        let sync = config.sync.expect("sync on");
        let crate::sync::Crm::Salesforce(salesforce) = &sync.crm else {
            panic!("not Salesforce: {:?}", sync.crm);
        };
        assert_eq!(salesforce.login_url, "https://test.salesforce.com");
        match &salesforce.flow {
            lead_crm_salesforce::Flow::JwtBearer {
                username, audience, ..
            } => {
                assert_eq!(username, "integration@acme.example");
                assert_eq!(audience, lead_crm_salesforce::Flow::SANDBOX_AUDIENCE);
            }
            other => panic!("not the JWT flow: {other:?}"),
        }
        assert!(!format!("{sync:?}").contains("hunter2"), "the key in Debug");
        // This key cannot sign: the client refuses it when it is built.
        let err = sync.crm.client().err().expect("an unusable key");
        assert!(err.contains("private_key"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");

        let field_of = |pairs: &[(&str, &str)]| match ServerConfig::from_vars(&vars(pairs)) {
            Err(Error::Invalid { fields }) => {
                fields.iter().map(|f| f.field.clone()).collect::<Vec<_>>()
            }
            other => panic!("not refused: {:?}", other.err()),
        };
        assert_eq!(
            field_of(&[
                ("CRM_TYPE", "salesforce"),
                ("SALESFORCE_CLIENT_ID", "id"),
                ("SALESFORCE_JWT_KEY_FILE", key.as_str()),
            ]),
            ["SALESFORCE_USERNAME"]
        );
        assert_eq!(
            field_of(&[
                ("CRM_TYPE", "salesforce"),
                ("SALESFORCE_CLIENT_ID", "id"),
                ("SALESFORCE_USERNAME", "integration@acme.example"),
                ("SALESFORCE_JWT_KEY_FILE", "/no/such/key.pem"),
            ]),
            ["SALESFORCE_JWT_KEY_FILE"]
        );
    }

    #[test]
    fn crm_type_pipedrive_reads_the_seed_s_pipedrive_variables() {
        let mut pairs: Vec<(&str, &str)> = SEED_VARS
            .iter()
            .copied()
            .filter(|(k, _)| !k.starts_with("SALESFORCE"))
            .collect();
        pairs.retain(|(k, _)| *k != "CRM_TYPE");
        pairs.push(("CRM_TYPE", "pipedrive"));
        pairs.push(("PIPEDRIVE_STAGE_IDS", "qualified=3; proposal=4"));
        let config = ServerConfig::from_vars(&vars(&pairs)).expect("the seed's values");
        let ignored: Vec<&str> = config.ignored.iter().map(|i| i.var).collect();
        assert!(
            ignored.is_empty(),
            "the Pipedrive ones are read: {ignored:?}"
        );
        let sync = config.sync.as_ref().expect("CRM_TYPE=pipedrive");
        assert_eq!(sync.crm_name(), "pipedrive");
        assert_eq!(sync.pull_every, std::time::Duration::from_secs(900));
        assert!(
            sync.pipedrive_webhooks.is_none(),
            "no password, no receiver"
        );
        let crate::sync::Crm::Pipedrive(pipedrive) = &sync.crm else {
            panic!("not Pipedrive: {:?}", sync.crm);
        };
        assert_eq!(pipedrive.base_url, "https://mycompany.pipedrive.com");
        assert_eq!(pipedrive.default_stage_id, Some(1));
        assert_eq!(
            pipedrive.stage_ids.get(&lead_core::Stage::Proposal),
            Some(&4)
        );
        assert!(
            !format!("{pipedrive:?}").contains("hunter2"),
            "the token stays out of Debug"
        );
        // A whole URL (a proxy, a local test server) is taken as it is.
        pairs.push(("PIPEDRIVE_COMPANY_DOMAIN", "http://127.0.0.1:9000"));
        let local = ServerConfig::from_vars(&vars(&pairs)).expect("a URL");
        let Some(crate::sync::Crm::Pipedrive(pipedrive)) = local.sync.map(|s| s.crm) else {
            panic!("Pipedrive");
        };
        assert_eq!(pipedrive.base_url, "http://127.0.0.1:9000");
    }

    #[test]
    fn blank_or_absent_seed_variables_are_not_warned_about() {
        let config =
            ServerConfig::from_vars(&vars(&[("CRM_TYPE", "  "), ("SLACK_WEBHOOK_URL", "")]))
                .expect("valid");
        assert!(config.ignored.is_empty());
        assert!(config.sync.is_none(), "a blank CRM_TYPE is no CRM");
        let config =
            ServerConfig::from_vars(&vars(&[("PIPEDRIVE_API_TOKEN", "t")])).expect("valid");
        let ignored: Vec<&str> = config.ignored.iter().map(|i| i.var).collect();
        assert_eq!(ignored, ["PIPEDRIVE_API_TOKEN"]);
    }

    #[test]
    fn webhook_debug_turns_on_debug_logs_unless_rust_log_says_otherwise() {
        for (value, debug) in [
            ("true", true),
            ("1", true),
            ("YES", true),
            ("false", false),
            ("0", false),
            ("no", false),
        ] {
            let config = ServerConfig::from_vars(&vars(&[("WEBHOOK_DEBUG", value)])).expect(value);
            assert_eq!(config.debug, debug, "{value}");
        }
        assert!(
            !ServerConfig::from_vars(&HashMap::new())
                .expect("defaults")
                .debug
        );
        let Err(Error::Invalid { fields }) =
            ServerConfig::from_vars(&vars(&[("WEBHOOK_DEBUG", "verbose-hunter2")]))
        else {
            panic!("a bad WEBHOOK_DEBUG accepted");
        };
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].field, "WEBHOOK_DEBUG");
        assert!(
            !fields[0].message.contains("hunter2"),
            "{}",
            fields[0].message
        );

        assert_eq!(log_filter(None, true), DEBUG_LOG_FILTER);
        assert_eq!(
            log_filter(Some(" "), true),
            DEBUG_LOG_FILTER,
            "blank is unset"
        );
        assert_eq!(log_filter(None, false), "info");
        assert_eq!(log_filter(Some("warn"), true), "warn", "RUST_LOG wins");
        assert_eq!(
            log_filter(Some("lead_http=trace"), false),
            "lead_http=trace"
        );
    }

    #[test]
    fn lead_default_region_is_an_alpha_2_code_and_a_bad_one_is_named() {
        let config =
            ServerConfig::from_vars(&vars(&[("LEAD_DEFAULT_REGION", "es")])).expect("valid region");
        assert_eq!(
            config.default_region.map(|r| r.code().to_owned()),
            Some("ES".into())
        );
        let config =
            ServerConfig::from_vars(&vars(&[("LEAD_DEFAULT_REGION", " GB ")])).expect("valid");
        assert_eq!(
            config.default_region.map(|r| r.code().to_owned()),
            Some("GB".into())
        );
        assert!(
            ServerConfig::from_vars(&HashMap::new())
                .expect("defaults")
                .default_region
                .is_none(),
            "unset: the policy's default_region stays"
        );
        for bad in ["Spain", "E", "ESP", "XX", "34", "é1"] {
            let Err(Error::Invalid { fields }) =
                ServerConfig::from_vars(&vars(&[("LEAD_DEFAULT_REGION", bad)]))
            else {
                panic!("{bad:?} accepted as a region");
            };
            let named: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
            assert_eq!(named, ["LEAD_DEFAULT_REGION"], "{bad:?}");
        }
    }

    #[test]
    fn a_reps_file_needs_only_id_and_name_and_names_what_is_wrong() {
        let reps = parse_reps(
            r#"
            [[rep]]
            id = "ana@empresa.com"
            name = "Ana García"
            time_zone = "Europe/Madrid"
            daily_capacity = 25
            working_hours = { days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat"], start = "08:30:00", end = "17:00:00" }
            skills = { languages = ["es", "en"], industries = ["software"] }

            [[rep]]
            id = "bob@empresa.com"
            name = "Bob"
            "#,
        )
        .expect("valid reps file");
        assert_eq!(reps.len(), 2);
        assert_eq!(serde_json::json!(reps[0].time_zone), "Europe/Madrid");
        assert_eq!(reps[0].daily_capacity, 25);
        assert_eq!(reps[0].working_hours.days.len(), 6);
        assert!(reps[0].skills.languages.contains("es"));
        let bob = lead_core::RepId::parse("bob@empresa.com").expect("valid");
        assert_eq!(
            reps[1],
            Rep::new(bob, "Bob"),
            "the rest are Rep::new's defaults"
        );

        for (text, says) in [
            (
                "[[rep]]\nid = \"ana@empresa.com\"\nname = \"Ana\"\ndaily_capcity = 5\n",
                "daily_capcity",
            ),
            (
                "[[rep]]\nid = \"not an address\"\nname = \"Ana\"\n",
                "valid e-mail",
            ),
            (
                "[[rep]]\nid = \"ana@empresa.com\"\nname = \"Ana\"\ntime_zone = \"Mars/Olympus\"\n",
                "line 4",
            ),
            ("[[rep]]\nname = \"Ana\"\n", "missing field `id`"),
            (
                "[[reps]]\nid = \"ana@empresa.com\"\nname = \"Ana\"\n",
                "reps",
            ),
        ] {
            let err = parse_reps(text).expect_err(text);
            let message = super::details(&err);
            assert!(message.contains(says), "{text:?}: {message}");
        }
    }

    #[test]
    fn the_example_reps_file_is_valid_and_its_first_rep_shows_the_defaults() {
        let reps = parse_reps(include_str!("../reps.example.toml")).expect("valid example");
        assert_eq!(reps.len(), 2);
        let shown = Rep {
            name: "Ana García".into(),
            ..Rep::new(reps[0].id.clone(), "")
        };
        assert_eq!(reps[0], shown, "the values written out are the defaults");
        assert_eq!(serde_json::json!(reps[1].time_zone), "Europe/Madrid");
    }

    #[test]
    fn start_up_files_are_read_and_a_bad_one_names_its_variable_and_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            path.display().to_string()
        };
        let rules = write(
            "rules.toml",
            "[[group]]\nname = \"all\"\ncap = 100\n\n[[group.rule]]\nid = \"any\"\npoints = 77\nwhen = { present = \"email\" }\n",
        );
        let policy = write("policy.toml", "default_region = \"ES\"\n");
        let reps = write(
            "reps.toml",
            "[[rep]]\nid = \"ana@empresa.com\"\nname = \"Ana\"\n",
        );
        let files = FilePaths {
            policy: Some(policy),
            rules: Some(rules),
            reps: Some(reps),
            jobs: None,
            notifications: None,
        }
        .load()
        .expect("valid files");
        assert_eq!(files.policy.default_region.code(), "ES");
        assert_eq!(files.policy.rules.groups.len(), 1);
        assert_eq!(files.reps.map(|r| r.len()), Some(1));
        assert!(
            FilePaths::default()
                .load()
                .expect("no files")
                .reps
                .is_none()
        );

        let bad = write("bad.toml", "[[group]]\nname = 5\n");
        let err = FilePaths {
            rules: Some(bad.clone()),
            ..FilePaths::default()
        }
        .load()
        .expect_err("bad rules");
        assert!(err.starts_with(&format!("LEAD_RULES ({bad}): ")), "{err}");
        let missing = dir.path().join("nope.toml").display().to_string();
        let err = FilePaths {
            reps: Some(missing.clone()),
            ..FilePaths::default()
        }
        .load()
        .expect_err("missing file");
        assert!(
            err.starts_with(&format!("LEAD_REPS: cannot read {missing}")),
            "{err}"
        );
    }
}
