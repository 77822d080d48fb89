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

use crate::config::number_in;

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
        let port = number_in(
            get,
            invalid,
            "SMTP_PORT",
            1..=u64::from(u16::MAX),
            "a port number (1-65535)",
            default_port,
        ) as u16;
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
    let defaults = DeliverConfig::new(Destination::NOTIFY);
    let mut number =
        |name, range, expected, default| number_in(get, invalid, name, range, expected, default);
    let poll = Duration::from_secs(number(
        "LEAD_NOTIFY_POLL_SECS",
        1..=3600,
        "seconds, 1 to 3600",
        POLL_EVERY.as_secs(),
    ));
    let lease = Duration::from_secs(number(
        "LEAD_NOTIFY_LEASE_SECS",
        1..=86_400,
        "seconds, 1 to 86400",
        defaults.lease.as_secs(),
    ));
    let retry_base = Duration::from_millis(number(
        "LEAD_NOTIFY_RETRY_BASE_MS",
        1..=3_600_000,
        "milliseconds, 1 to 3600000",
        defaults.base_delay.as_millis() as u64,
    ));
    NotifyVars {
        slack,
        smtp,
        lead_link: get("LEAD_LINK_URL"),
        poll,
        lease,
        retry_base,
    }
}

/// The `LEAD_NOTIFICATIONS_FILE` file, read and checked once at start-up
/// (event names, quiet hours, subscribers' names and secrets).
#[derive(Debug, Clone, Default)]
pub(crate) struct NotifyFile {
    /// The lead link in messages, `{ext_id}` in it (`LEAD_LINK_URL` wins).
    lead_link: Option<String>,
    /// A folder of e-mail templates overriding the built-in ones.
    templates_dir: Option<PathBuf>,
    /// When people's channels hold their messages.
    quiet_hours: Option<QuietHours>,
    /// Slack's events (`None`: no `[slack]` table, the defaults).
    slack: Option<Events>,
    /// E-mail's events (`None`: no `[email]` table, the defaults).
    email: Option<Events>,
    /// Webhook subscribers.
    webhooks: Vec<Subscriber>,
}

/// The events a channel gets: `None` when the file does not list them.
type Events = Option<BTreeSet<NotificationKind>>;

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileText {
    #[serde(default)]
    lead_link: Option<String>,
    #[serde(default)]
    templates_dir: Option<PathBuf>,
    #[serde(default)]
    quiet_hours: Option<QuietText>,
    #[serde(default)]
    slack: Option<RouteText>,
    #[serde(default)]
    email: Option<RouteText>,
    #[serde(default)]
    webhooks: Vec<SubscriberText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuietText {
    start: String,
    end: String,
    #[serde(default)]
    time_zone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteText {
    #[serde(default)]
    events: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriberText {
    name: String,
    url: String,
    secret: SecretString,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    allow_private: bool,
}

/// A webhook subscriber, checked.
#[derive(Clone)]
struct Subscriber {
    name: String,
    // Read only where webhooks are compiled in; a build without them refuses
    // a file with subscribers before any is used.
    #[cfg_attr(not(feature = "webhooks"), allow(dead_code))]
    url: String,
    secret: WebhookSecret,
    events: Events,
    allow_private: bool,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("name", &self.name)
            // A subscriber's URL may carry a token in its path or query.
            .field("url", &"[redacted]")
            .field("secret", &self.secret)
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
    /// Reads and checks the file (events, quiet hours, subscribers); the
    /// error names the key.
    pub(crate) fn from_toml(text: &str) -> Result<NotifyFile, String> {
        // The parser's message only, with the line: its full text quotes
        // the offending line, which may hold a subscriber's secret.
        let file: FileText = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(line) => format!("line {line}: {}", e.message()),
                None => e.message().to_owned(),
            }
        })?;
        let route = |what: &str, route: Option<RouteText>| {
            route.map(|r| events(what, r.events.as_deref())).transpose()
        };
        let mut names = BTreeSet::new();
        let mut webhooks = Vec::new();
        for sub in file.webhooks {
            if !names.insert(sub.name.clone()) {
                return Err(format!("webhooks: the name \"{}\" is used twice", sub.name));
            }
            Destination::parse(&format!("webhook:{}", sub.name)).map_err(|_| {
                format!(
                    "webhooks: the name \"{}\" must be 1-56 lower-case letters, digits and - _ .",
                    sub.name
                )
            })?;
            let what = format!("webhooks \"{}\"", sub.name);
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
            webhooks.push(Subscriber {
                events: events(&what, sub.events.as_deref())?,
                name: sub.name,
                url: sub.url,
                secret,
                allow_private: sub.allow_private,
            });
        }
        Ok(NotifyFile {
            lead_link: file.lead_link,
            templates_dir: file.templates_dir,
            quiet_hours: file.quiet_hours.map(quiet_hours).transpose()?,
            slack: route("slack", file.slack)?,
            email: route("email", file.email)?,
            webhooks,
        })
    }
}

/// Quiet hours as written (`22:00`, an IANA zone), checked.
fn quiet_hours(q: QuietText) -> Result<QuietHours, String> {
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
    Ok(QuietHours {
        start,
        end,
        time_zone,
    })
}

/// The event names a channel lists (`None`: it lists none).
fn events(what: &str, names: Option<&[String]>) -> Result<Events, String> {
    names
        .map(|names| {
            names
                .iter()
                .map(|n| {
                    NotificationKind::parse(n).ok_or_else(|| {
                        let known: Vec<_> =
                            NotificationKind::ALL.iter().map(|k| k.as_str()).collect();
                        format!("{what}.events: \"{n}\" is not one of {}", known.join(", "))
                    })
                })
                .collect()
        })
        .transpose()
}

/// The events listed, or `default`.
fn or_default(events: Option<&Events>, default: &[NotificationKind]) -> BTreeSet<NotificationKind> {
    match events.and_then(Option::as_ref) {
        Some(listed) => listed.clone(),
        None => default.iter().copied().collect(),
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
            people.push(Channel {
                name: "slack".into(),
                events: or_default(file.slack.as_ref(), &SLACK_EVENTS),
                notifier: slack(url, &links)?,
            });
        }
        if let Some(smtp) = &vars.smtp {
            people.push(Channel {
                name: "email".into(),
                events: or_default(file.email.as_ref(), &EMAIL_EVENTS),
                notifier: email(smtp, file.templates_dir.clone(), &links)?,
            });
        }
        let mut webhooks = Vec::new();
        for sub in &file.webhooks {
            webhooks.push(Channel {
                name: format!("webhook:{}", sub.name),
                events: or_default(Some(&sub.events), &WEBHOOK_EVENTS),
                notifier: webhook(sub)?,
            });
        }
        Ok(Channels {
            people,
            webhooks,
            quiet_hours: file.quiet_hours,
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
fn webhook(sub: &Subscriber) -> Result<Arc<dyn Notifier>, String> {
    use lead_notify::webhook::{WebhookConfig, WebhookNotifier};
    let config = WebhookConfig::new(&sub.name, &sub.url, sub.secret.clone())
        .allow_private(sub.allow_private);
    Ok(Arc::new(
        WebhookNotifier::new(config).map_err(|e| e.to_string())?,
    ))
}

#[cfg(not(feature = "webhooks"))]
fn webhook(sub: &Subscriber) -> Result<Arc<dyn Notifier>, String> {
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
