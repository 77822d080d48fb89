//! Notifications beside the listeners: which channels are configured
//! (`SLACK_WEBHOOK_URL`, `SMTP_*`, `LEAD_NOTIFICATIONS_FILE`) and the two
//! outbox consumers that deliver them: people's channels (Slack, e-mail)
//! under [`Destination::NOTIFY`], held during quiet hours, and signed
//! webhooks under [`Destination::WEBHOOKS`]. See `docs/notifications.md`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveTime;
use lead_core::notify::{
    Channel, DeliverConfig, DeliverReport, NotificationKind, QuietHours, deliver_once,
};
use lead_core::standard_webhooks::WebhookSecret;
use lead_core::{Deps, Destination, Notifier, OutboxStore, SyncState};
use lead_notify::LeadLinks;
use secrecy::SecretString;
use serde::Deserialize;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// How often a consumer looks for entries whose retry time came, when no
/// commit woke it (`LEAD_NOTIFY_POLL_SECS`).
const POLL_EVERY: Duration = Duration::from_secs(5);

/// The notification variables (read with the others at start-up).
#[derive(Debug, Clone)]
pub(crate) struct NotifyVars {
    /// `SLACK_WEBHOOK_URL`.
    pub(crate) slack: Option<SecretString>,
    /// `SMTP_HOST`, `SMTP_PORT`, `SMTP_TLS`, `SMTP_USERNAME`,
    /// `SMTP_PASSWORD`, `SMTP_FROM`.
    pub(crate) smtp: Option<Smtp>,
    /// `LEAD_LINK_URL`: the lead link in messages (`{ext_id}` in it).
    pub(crate) lead_link: Option<String>,
    /// `LEAD_NOTIFY_POLL_SECS`.
    pub(crate) poll: Duration,
    /// `LEAD_NOTIFY_LEASE_SECS`: how long a claimed batch stays one
    /// worker's (after a crash, another takes it when this ends).
    pub(crate) lease: Duration,
    /// `LEAD_NOTIFY_RETRY_BASE_MS`: the first retry's delay.
    pub(crate) retry_base: Duration,
}

/// The SMTP server e-mails go through.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "email"), allow(dead_code))]
pub(crate) struct Smtp {
    host: String,
    port: u16,
    tls: SmtpTls,
    credentials: Option<(String, SecretString)>,
    from: String,
}

/// `SMTP_TLS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "email"), allow(dead_code))]
enum SmtpTls {
    /// `none`: plain SMTP (a local relay).
    None,
    /// `starttls` (the default).
    StartTls,
    /// `tls`: implicit TLS (port 465).
    Implicit,
}

/// Reads the notification variables; each bad one is named through
/// `invalid`.
pub(crate) fn vars(
    get: &dyn Fn(&str) -> Option<String>,
    invalid: &mut dyn FnMut(&str, &str),
) -> NotifyVars {
    let slack = get("SLACK_WEBHOOK_URL").map(SecretString::from);
    let smtp = get("SMTP_HOST").and_then(|host| {
        let tls = match get("SMTP_TLS").map(|t| t.to_ascii_lowercase()).as_deref() {
            None | Some("starttls") => SmtpTls::StartTls,
            Some("tls") => SmtpTls::Implicit,
            Some("none") => SmtpTls::None,
            Some(_) => {
                invalid("SMTP_TLS", "starttls (default), tls or none");
                SmtpTls::StartTls
            }
        };
        let default_port = match tls {
            SmtpTls::Implicit => 465,
            _ => 587,
        };
        let port = match get("SMTP_PORT").map(|p| p.parse::<u16>()) {
            None => default_port,
            Some(Ok(port)) if port > 0 => port,
            Some(_) => {
                invalid("SMTP_PORT", "a port number (1-65535)");
                default_port
            }
        };
        let credentials = match (get("SMTP_USERNAME"), get("SMTP_PASSWORD")) {
            (Some(user), Some(password)) => Some((user, SecretString::from(password))),
            (None, None) => None,
            _ => {
                invalid(
                    "SMTP_USERNAME",
                    "SMTP_USERNAME and SMTP_PASSWORD go together (both or neither)",
                );
                None
            }
        };
        let Some(from) = get("SMTP_FROM") else {
            invalid(
                "SMTP_FROM",
                "is required with SMTP_HOST: the address e-mails are sent from",
            );
            return None;
        };
        Some(Smtp {
            host,
            port,
            tls,
            credentials,
            from,
        })
    });
    let poll = match get("LEAD_NOTIFY_POLL_SECS").map(|s| s.parse::<u64>()) {
        None => POLL_EVERY,
        Some(Ok(secs)) if (1..=3600).contains(&secs) => Duration::from_secs(secs),
        Some(_) => {
            invalid("LEAD_NOTIFY_POLL_SECS", "seconds, 1 to 3600");
            POLL_EVERY
        }
    };
    let defaults = DeliverConfig::new(Destination::NOTIFY);
    let lease = match get("LEAD_NOTIFY_LEASE_SECS").map(|s| s.parse::<u64>()) {
        None => defaults.lease,
        Some(Ok(secs)) if (1..=86_400).contains(&secs) => Duration::from_secs(secs),
        Some(_) => {
            invalid("LEAD_NOTIFY_LEASE_SECS", "seconds, 1 to 86400");
            defaults.lease
        }
    };
    let retry_base = match get("LEAD_NOTIFY_RETRY_BASE_MS").map(|s| s.parse::<u64>()) {
        None => defaults.base_delay,
        Some(Ok(ms)) if (1..=3_600_000).contains(&ms) => Duration::from_millis(ms),
        Some(_) => {
            invalid("LEAD_NOTIFY_RETRY_BASE_MS", "milliseconds, 1 to 3600000");
            defaults.base_delay
        }
    };
    NotifyVars {
        slack,
        smtp,
        lead_link: get("LEAD_LINK_URL"),
        poll,
        lease,
        retry_base,
    }
}

/// The `LEAD_NOTIFICATIONS_FILE` file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotifyFile {
    /// The lead link in messages, `{ext_id}` in it (`LEAD_LINK_URL` wins).
    #[serde(default)]
    lead_link: Option<String>,
    /// A folder of e-mail templates overriding the built-in ones.
    #[serde(default)]
    templates_dir: Option<PathBuf>,
    /// When people's channels hold their messages.
    #[serde(default)]
    quiet_hours: Option<QuietFile>,
    /// Slack's events.
    #[serde(default)]
    slack: Option<Route>,
    /// E-mail's events.
    #[serde(default)]
    email: Option<Route>,
    /// Webhook subscribers.
    #[serde(default)]
    webhooks: Vec<Subscriber>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuietFile {
    start: String,
    end: String,
    #[serde(default)]
    time_zone: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Route {
    #[serde(default)]
    events: Option<Vec<String>>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscriber {
    name: String,
    url: String,
    secret: SecretString,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    allow_private: bool,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("name", &self.name)
            // A subscriber's URL may carry a token in its path or query.
            .field("url", &"[redacted]")
            .field("secret", &"[redacted]")
            .field("events", &self.events)
            .field("allow_private", &self.allow_private)
            .finish()
    }
}

/// The events each channel gets when the file does not say.
const SLACK_EVENTS: [NotificationKind; 3] = [
    NotificationKind::HighPriorityLead,
    NotificationKind::StageChanged,
    NotificationKind::Digest,
];
const EMAIL_EVENTS: [NotificationKind; 3] = [
    NotificationKind::HighPriorityLead,
    NotificationKind::Assigned,
    NotificationKind::Digest,
];
const WEBHOOK_EVENTS: [NotificationKind; 3] = [
    NotificationKind::HighPriorityLead,
    NotificationKind::Assigned,
    NotificationKind::StageChanged,
];

impl NotifyFile {
    /// Reads and checks the file (events, quiet hours, secrets); the
    /// error names the key.
    pub(crate) fn from_toml(text: &str) -> Result<NotifyFile, String> {
        // The parser's message only, with the line: its full text quotes
        // the offending line, which may hold a subscriber's secret.
        let file: NotifyFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(line) => format!("line {line}: {}", e.message()),
                None => e.message().to_owned(),
            }
        })?;
        for (what, route) in [("slack", &file.slack), ("email", &file.email)] {
            if let Some(route) = route {
                events(what, route.events.as_deref(), &[])?;
            }
        }
        let mut names = BTreeSet::new();
        for sub in &file.webhooks {
            if !names.insert(sub.name.as_str()) {
                return Err(format!("webhooks: the name \"{}\" is used twice", sub.name));
            }
            Destination::parse(&format!("webhook:{}", sub.name)).map_err(|_| {
                format!(
                    "webhooks: the name \"{}\" must be 1-56 lower-case letters, digits and - _ .",
                    sub.name
                )
            })?;
            events(
                &format!("webhooks \"{}\"", sub.name),
                sub.events.as_deref(),
                &[],
            )?;
        }
        file.quiet_hours()?;
        Ok(file)
    }

    fn quiet_hours(&self) -> Result<Option<QuietHours>, String> {
        let Some(q) = &self.quiet_hours else {
            return Ok(None);
        };
        let time = |key: &str, value: &str| {
            NaiveTime::parse_from_str(value, "%H:%M")
                .map_err(|_| format!("quiet_hours.{key}: a time like 22:00, not \"{value}\""))
        };
        let time_zone = match &q.time_zone {
            Some(tz) => tz
                .parse()
                .map_err(|_| format!("quiet_hours.time_zone: \"{tz}\" is no IANA time zone"))?,
            None => chrono_tz::Tz::UTC,
        };
        let (start, end) = (time("start", &q.start)?, time("end", &q.end)?);
        if start == end {
            return Err(format!(
                "quiet_hours: start and end are both {}: no quiet hours at all, or all day? Leave the table out for none",
                q.start
            ));
        }
        Ok(Some(QuietHours {
            start,
            end,
            time_zone,
        }))
    }
}

/// The events a channel gets: the listed names, or `default`.
fn events(
    what: &str,
    names: Option<&[String]>,
    default: &[NotificationKind],
) -> Result<BTreeSet<NotificationKind>, String> {
    match names {
        None => Ok(default.iter().copied().collect()),
        Some(names) => names
            .iter()
            .map(|n| {
                NotificationKind::parse(n).ok_or_else(|| {
                    let known: Vec<_> = NotificationKind::ALL.iter().map(|k| k.as_str()).collect();
                    format!("{what}.events: \"{n}\" is not one of {}", known.join(", "))
                })
            })
            .collect(),
    }
}

/// The consumers the configuration turns on: each event is queued for
/// these (the policy's `notifications.deliver_to`).
pub(crate) fn destinations(vars: &NotifyVars, file: &NotifyFile) -> Vec<Destination> {
    let mut on = Vec::new();
    if vars.slack.is_some() || vars.smtp.is_some() {
        on.push(Destination::NOTIFY);
    }
    if !file.webhooks.is_empty() {
        on.push(Destination::WEBHOOKS);
    }
    on
}

/// The configured channels, built and checked (a bad URL, a webhook
/// subscriber on a private address, a template that does not compile
/// stop the start, naming the setting).
pub(crate) struct Channels {
    people: Vec<Channel>,
    webhooks: Vec<Channel>,
    quiet_hours: Option<QuietHours>,
}

impl Channels {
    /// Builds every configured channel.
    pub(crate) fn build(vars: &NotifyVars, file: &NotifyFile) -> Result<Channels, String> {
        let link = vars.lead_link.as_deref().or(file.lead_link.as_deref());
        let links = LeadLinks::new(link).map_err(|e| format!("LEAD_LINK_URL: {e}"))?;
        let mut people = Vec::new();
        if let Some(url) = &vars.slack {
            let events = events(
                "slack",
                file.slack.as_ref().and_then(|r| r.events.as_deref()),
                &SLACK_EVENTS,
            )?;
            people.push(Channel {
                name: "slack".into(),
                events,
                notifier: slack(url, &links)?,
            });
        }
        if let Some(smtp) = &vars.smtp {
            let events = events(
                "email",
                file.email.as_ref().and_then(|r| r.events.as_deref()),
                &EMAIL_EVENTS,
            )?;
            people.push(Channel {
                name: "email".into(),
                events,
                notifier: email(smtp, file.templates_dir.clone(), &links)?,
            });
        }
        let mut webhooks = Vec::new();
        for sub in &file.webhooks {
            let what = format!("webhooks \"{}\"", sub.name);
            let events = events(&what, sub.events.as_deref(), &WEBHOOK_EVENTS)?;
            use secrecy::ExposeSecret;
            let secret = WebhookSecret::parse(sub.secret.expose_secret())
                .map_err(|e| format!("{what}: secret: {e}"))?;
            // Standard Webhooks: 24 to 64 random bytes.
            if !(24..=64).contains(&secret.key().len()) {
                return Err(format!(
                    "{what}: secret: a Standard Webhooks secret is 24 to 64 random bytes (whsec_ + base64); this one is {} bytes",
                    secret.key().len()
                ));
            }
            webhooks.push(Channel {
                name: format!("webhook:{}", sub.name),
                events,
                notifier: webhook(sub, secret)?,
            });
        }
        Ok(Channels {
            people,
            webhooks,
            quiet_hours: file.quiet_hours()?,
        })
    }

    /// The consumers to run: (their settings, their channels).
    fn consumers(self, vars: &NotifyVars) -> Vec<(DeliverConfig, Vec<Channel>)> {
        let config = |destination| DeliverConfig {
            lease: vars.lease,
            base_delay: vars.retry_base,
            ..DeliverConfig::new(destination)
        };
        let mut consumers = Vec::new();
        if !self.people.is_empty() {
            let people = DeliverConfig {
                quiet_hours: self.quiet_hours,
                ..config(Destination::NOTIFY)
            };
            consumers.push((people, self.people));
        }
        if !self.webhooks.is_empty() {
            consumers.push((config(Destination::WEBHOOKS), self.webhooks));
        }
        consumers
    }

    /// Settings given for a channel that is not configured (they do
    /// nothing), for start-up warnings.
    pub(crate) fn unused(vars: &NotifyVars, file: &NotifyFile) -> Vec<&'static str> {
        let mut unused = Vec::new();
        if file.slack.is_some() && vars.slack.is_none() {
            unused.push("[slack] in LEAD_NOTIFICATIONS_FILE without SLACK_WEBHOOK_URL");
        }
        if file.email.is_some() && vars.smtp.is_none() {
            unused.push("[email] in LEAD_NOTIFICATIONS_FILE without SMTP_HOST");
        }
        if file.templates_dir.is_some() && vars.smtp.is_none() {
            unused.push("templates_dir in LEAD_NOTIFICATIONS_FILE without SMTP_HOST");
        }
        if file.quiet_hours.is_some() && vars.slack.is_none() && vars.smtp.is_none() {
            unused.push("[quiet_hours] in LEAD_NOTIFICATIONS_FILE without Slack or e-mail");
        }
        unused
    }

    /// The channels' names, for the start-up log.
    pub(crate) fn names(&self) -> Vec<String> {
        self.people
            .iter()
            .chain(&self.webhooks)
            .map(|c| c.name.clone())
            .collect()
    }
}

/// What to say when a channel is configured but not built in.
#[cfg_attr(
    all(feature = "slack", feature = "email", feature = "webhooks"),
    allow(dead_code)
)]
fn not_built(setting: &str, feature: &str) -> String {
    format!(
        "{setting} is set, but this lead-server was built without the `{feature}` feature: build it with `--features {feature}` (on by default)"
    )
}

#[cfg(feature = "slack")]
fn slack(url: &SecretString, links: &LeadLinks) -> Result<Arc<dyn Notifier>, String> {
    let config = lead_notify::slack::SlackConfig::new(url.clone()).links(links.clone());
    let notifier = lead_notify::slack::SlackNotifier::new(config).map_err(|e| e.to_string())?;
    Ok(Arc::new(notifier))
}

#[cfg(not(feature = "slack"))]
fn slack(_: &SecretString, _: &LeadLinks) -> Result<Arc<dyn Notifier>, String> {
    Err(not_built("SLACK_WEBHOOK_URL", "slack"))
}

#[cfg(feature = "email")]
fn email(
    smtp: &Smtp,
    templates: Option<PathBuf>,
    links: &LeadLinks,
) -> Result<Arc<dyn Notifier>, String> {
    use lead_notify::email::{EmailConfig, EmailNotifier, Tls};
    let tls = match smtp.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::StartTls => Tls::StartTls,
        SmtpTls::Implicit => Tls::Implicit,
    };
    let mut config = EmailConfig::new(&smtp.host, smtp.port, &smtp.from)
        .tls(tls)
        .templates_dir(templates)
        .links(links.clone());
    if let Some((user, password)) = &smtp.credentials {
        config = config.credentials(user, password.clone());
    }
    Ok(Arc::new(
        EmailNotifier::new(config).map_err(|e| e.to_string())?,
    ))
}

#[cfg(not(feature = "email"))]
fn email(_: &Smtp, _: Option<PathBuf>, _: &LeadLinks) -> Result<Arc<dyn Notifier>, String> {
    Err(not_built("SMTP_HOST", "email"))
}

#[cfg(feature = "webhooks")]
fn webhook(sub: &Subscriber, secret: WebhookSecret) -> Result<Arc<dyn Notifier>, String> {
    use lead_notify::webhook::{WebhookConfig, WebhookNotifier};
    let config = WebhookConfig::new(&sub.name, &sub.url, secret).allow_private(sub.allow_private);
    Ok(Arc::new(
        WebhookNotifier::new(config).map_err(|e| e.to_string())?,
    ))
}

#[cfg(not(feature = "webhooks"))]
fn webhook(sub: &Subscriber, _: WebhookSecret) -> Result<Arc<dyn Notifier>, String> {
    Err(not_built(
        &format!("LEAD_NOTIFICATIONS_FILE's webhook \"{}\"", sub.name),
        "webhooks",
    ))
}

/// What the consumers share with the server.
pub(crate) struct Consumers {
    /// Each consumer's destination and its waker (woken by commits that
    /// queue for it).
    pub(crate) wakes: Vec<(Destination, Arc<Notify>)>,
    consumers: Vec<(DeliverConfig, Vec<Channel>)>,
}

impl Consumers {
    /// The consumers of `channels`, not started.
    pub(crate) fn new(channels: Channels, vars: &NotifyVars) -> Consumers {
        let consumers = channels.consumers(vars);
        let wakes = consumers
            .iter()
            .map(|(c, _)| (c.destination.clone(), Arc::new(Notify::new())))
            .collect();
        Consumers { wakes, consumers }
    }

    /// Starts each consumer; `instance` makes the lease holders' names
    /// unique across processes.
    pub(crate) fn spawn(
        self,
        deps: &Deps,
        outbox: Arc<dyn OutboxStore>,
        state: Arc<dyn SyncState>,
        instance: &str,
        poll: Duration,
        stopped: &watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        self.consumers
            .into_iter()
            .zip(self.wakes)
            .map(|((mut config, channels), (_, wake))| {
                config.worker = format!("{}@{instance}", config.worker);
                spawn(
                    deps.clone(),
                    outbox.clone(),
                    state.clone(),
                    channels,
                    config,
                    poll,
                    wake,
                    stopped.clone(),
                )
            })
            .collect()
    }
}

/// One consumer's loop: a delivery run whenever its queue may hold work
/// (at once after a full batch, when a commit queued something, else
/// every `poll`), until `stopped`. Failures are logged and tried again at
/// the next turn (the outbox keeps the work).
#[allow(clippy::too_many_arguments)] // one consumer's parts, spelled out
fn spawn(
    deps: Deps,
    outbox: Arc<dyn OutboxStore>,
    state: Arc<dyn SyncState>,
    channels: Vec<Channel>,
    config: DeliverConfig,
    poll: Duration,
    wake: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let destination = config.destination.as_str().to_owned();
        loop {
            let run = deliver_once(&deps, &*outbox, &*state, &channels, &config).await;
            let full = count(&destination, run).is_some_and(|r| r.claimed >= config.batch);
            if let Ok(backlog) = outbox.pending_count(&config.destination).await {
                metrics::gauge!("lead_notifications_backlog", "destination" => destination.clone())
                    .set(backlog as f64);
            }
            if let Ok(dead) = outbox.dead_count(&config.destination).await {
                metrics::gauge!("lead_notifications_dead_letters", "destination" => destination.clone())
                    .set(dead as f64);
            }
            if *stopped.borrow() {
                return;
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = wake.notified() => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
        }
    })
}

/// Counts a run per channel, event and outcome and logs it; its report,
/// when it ran.
fn count(destination: &str, run: lead_core::Result<DeliverReport>) -> Option<DeliverReport> {
    match run {
        Ok(report) => {
            for (channel, event, outcome) in &report.outcomes {
                metrics::counter!(
                    "lead_notifications_total",
                    "channel" => channel.clone(),
                    "event" => event.as_str(),
                    "outcome" => outcome.as_str(),
                )
                .increment(1);
            }
            if report.claimed > 0 {
                tracing::info!(
                    destination,
                    claimed = report.claimed,
                    acked = report.acked,
                    retried = report.retried,
                    dead_lettered = report.dead_lettered,
                    "notifications delivered"
                );
            }
            if report.dead_lettered > 0 {
                tracing::warn!(
                    destination,
                    count = report.dead_lettered,
                    "notifications parked in the dead letters: GET /api/notifications/dead-letters"
                );
            }
            Some(report)
        }
        Err(err) => {
            tracing::warn!(destination, error = %err.chain(), "notification run failed; the entries stay queued");
            None
        }
    }
}
