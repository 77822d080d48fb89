//! Slack: one incoming-webhook post per notification, as a Block Kit
//! message with a plain fallback line.
//!
//! Slack's answers (its incoming-webhook docs): `200` with the body `ok`
//! is posted; `400` (`invalid_payload`, `invalid_blocks`, ...), `403`
//! (`invalid_token`, `action_prohibited`), `404` (`channel_not_found`,
//! `no_service`) and `410` (`channel_is_archived`) fail for good, naming
//! what Slack said; `429` waits `Retry-After`; 5xx, time-outs and
//! connection errors are temporary.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use lead_core::notify::{DigestItem, Event, LeadCard, Notification};
use lead_core::ports::{Delivery, Notifier};
use lead_core::{ChangeOrigin, Error, RepId, Result, Stage};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::error::{ConfigError, answer_of, read_start, said, transport};
use crate::links::LeadLinks;

/// Digest lines shown in one message. Slack takes at most 50 blocks; a
/// header, 40 lines and the "…and N more" line leave room.
pub const MAX_DIGEST_ITEMS: usize = 40;

/// Slack's limit on a header's text, in characters.
const HEADER_MAX: usize = 150;
/// Room for a user-typed value (a name, a task's subject) in a line, so
/// a section stays far below Slack's 2,000 / 3,000 characters.
const VALUE_MAX: usize = 300;

/// How to reach Slack.
///
/// The incoming-webhook URL carries the token that lets anyone post to
/// the channel: `Debug` shows `[redacted]`, errors never name it.
#[derive(Clone)]
pub struct SlackConfig {
    webhook_url: SecretString,
    links: LeadLinks,
    timeout: Duration,
}

impl fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackConfig")
            .field("webhook_url", &"[redacted]")
            .field("links", &self.links)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SlackConfig {
    /// Posts to `webhook_url` (`SLACK_WEBHOOK_URL`), with no lead links
    /// and a 10 s time-out.
    pub fn new(webhook_url: SecretString) -> Self {
        SlackConfig {
            webhook_url,
            links: LeadLinks::none(),
            timeout: Duration::from_secs(10),
        }
    }

    /// Messages link to the lead (an "Open lead" button).
    pub fn links(mut self, links: LeadLinks) -> Self {
        self.links = links;
        self
    }

    /// How long one post may take, connection included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Posts notifications to a Slack channel through an incoming webhook.
pub struct SlackNotifier {
    http: reqwest::Client,
    webhook_url: SecretString,
    links: LeadLinks,
}

impl fmt::Debug for SlackNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackNotifier")
            .field("webhook_url", &"[redacted]")
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

impl SlackNotifier {
    /// Checks the configuration and builds the HTTP client (redirects are
    /// not followed: a webhook URL that redirects is a wrong one).
    ///
    /// # Errors
    ///
    /// [`ConfigError::SlackWebhookUrl`] when the URL is not https (plain
    /// http only to a loopback host, for a local test receiver), names no
    /// host or carries credentials; the message never quotes the URL.
    pub fn new(config: SlackConfig) -> Result<SlackNotifier, ConfigError> {
        check_url(config.webhook_url.expose_secret())?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("lead-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::HttpClient(e.without_url().to_string()))?;
        Ok(SlackNotifier {
            http,
            webhook_url: config.webhook_url,
            links: config.links,
        })
    }
}

fn check_url(raw: &str) -> Result<(), ConfigError> {
    let url =
        url::Url::parse(raw.trim()).map_err(|_| ConfigError::SlackWebhookUrl("is not a URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => return Err(ConfigError::SlackWebhookUrl("names no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(ConfigError::SlackWebhookUrl(
                "must be https (plain http only to a loopback test receiver)",
            ));
        }
        _ => return Err(ConfigError::SlackWebhookUrl("must be an https URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::SlackWebhookUrl("must not carry credentials"));
    }
    Ok(())
}

#[async_trait]
impl Notifier for SlackNotifier {
    #[tracing::instrument(
        name = "slack.notify",
        skip_all,
        fields(notification = %notification.id, kind = %notification.event.kind())
    )]
    async fn notify(&self, notification: &Notification) -> Result<Delivery> {
        let body = message(notification, &self.links);
        let response = self
            .http
            .post(self.webhook_url.expose_secret().trim())
            .json(&body)
            .send()
            .await
            .map_err(|e| transport("Slack", e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let answer = read_start(response)
            .await
            .map_err(|e| transport("Slack", e))?;
        let said = said(&answer);
        // Slack's success is `200 ok`; a 200 with anything else (a proxy's
        // page) did not reach Slack.
        if status == reqwest::StatusCode::OK && said != "ok" {
            return Err(Error::internal(format!(
                "Slack answered 200 without `ok`: {said}"
            )));
        }
        answer_of("Slack", status, &headers, &said)
    }
}

/// The Slack message for a notification: `{"text": <fallback line>,
/// "blocks": [...]}` in Block Kit. A lead event has a header, the lead's
/// fields (score, priority, stage, company, source, rep), what happened
/// (the new rep and the one before, the stages and where the change was
/// made) and an "Open lead" button when `links` gives a link; a digest
/// has one line per item (at most [`MAX_DIGEST_ITEMS`], then "…and N
/// more"). Text people typed is escaped (`&`, `<`, `>`) as Slack asks, so
/// a lead named `<!channel>` notifies nobody.
///
/// ```
/// # use lead_core::notify::{Event, LeadCard, Notification};
/// # use lead_core::{LeadExtId, Priority, Stage};
/// # let lead = LeadCard {
/// #     ext_id: LeadExtId::parse("WEB-7KQ2M9XA").unwrap(), name: Some("Ana López".into()),
/// #     email: "ana@acme.com".into(), company: Some("Acme".into()), job_title: None, score: 87,
/// #     priority: Priority::High, stage: Stage::New, assigned_to: None, source: None,
/// #     estimated_value: None, currency: None,
/// # };
/// let n = Notification { id: uuid::Uuid::nil(), created_at: chrono::Utc::now(), event: Event::HighPriorityLead { lead } };
/// let links = lead_notify::LeadLinks::new(Some("https://crm.example.com/leads/{ext_id}")).unwrap();
/// let message = lead_notify::slack::message(&n, &links);
/// assert_eq!(message["blocks"][0]["text"]["text"], "🔥 High-priority lead: Ana López (Acme)");
/// ```
pub fn message(notification: &Notification, links: &LeadLinks) -> Value {
    let (text, blocks) = match &notification.event {
        Event::HighPriorityLead { lead } => {
            let about = [lead.job_title.as_deref(), Some(lead.email.as_str())]
                .into_iter()
                .flatten()
                .map(|t| clipped(t, VALUE_MAX))
                .collect::<Vec<_>>()
                .join(" · ");
            lead_event("🔥 High-priority lead", lead, context(about), links)
        }
        Event::Assigned { lead, to, from } => {
            let line = match from {
                Some(from) => format!("Reassigned to *{}* (was *{}*)", rep(to), rep(from)),
                None => format!("Assigned to *{}*", rep(to)),
            };
            lead_event("👤 Lead assigned", lead, section(line), links)
        }
        Event::StageChanged {
            lead,
            from,
            to,
            origin,
        } => {
            let heading = match to {
                Stage::Won => "🏆 Lead won",
                Stage::Lost => "❌ Lead lost",
                _ => "➡️ Lead moved on",
            };
            let by = match origin {
                ChangeOrigin::Local => "changed in lead capture",
                ChangeOrigin::Crm => "changed in the CRM",
            };
            let line = format!("*Stage:* {from} → *{to}* ({by})");
            lead_event(heading, lead, section(line), links)
        }
        Event::Digest { rep, items } => digest(rep.as_ref(), items, links),
    };
    json!({ "text": text, "blocks": blocks })
}

/// A lead event's fallback line and blocks: the header, the lead's
/// fields, what `happened`, and the button to the lead.
fn lead_event(
    heading: &str,
    lead: &LeadCard,
    happened: Value,
    links: &LeadLinks,
) -> (String, Vec<Value>) {
    let title = format!("{heading}: {}", title(lead));
    let mut blocks = vec![header(&title), fields(lead), happened];
    if let Some(url) = links.url(&lead.ext_id) {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": { "type": "plain_text", "text": "Open lead" },
                "url": url,
            }],
        }));
    }
    let text = format!("{}, score {}", escape(&title), lead.score);
    (text, blocks)
}

/// A digest's fallback line and blocks.
fn digest(rep_id: Option<&RepId>, items: &[DigestItem], links: &LeadLinks) -> (String, Vec<Value>) {
    let title = match rep_id {
        Some(r) => format!("📋 Digest for {r}"),
        None => "📋 Unassigned leads".to_owned(),
    };
    let mut blocks = vec![header(&title)];
    if items.is_empty() {
        blocks.push(section("Nothing needs looking at right now.".into()));
    }
    for item in items.iter().take(MAX_DIGEST_ITEMS) {
        blocks.push(section(digest_line(item, links)));
    }
    if items.len() > MAX_DIGEST_ITEMS {
        let more = items.len() - MAX_DIGEST_ITEMS;
        blocks.push(context(format!("…and {more} more")));
    }
    let count = match items.len() {
        1 => "1 item".to_owned(),
        n => format!("{n} items"),
    };
    (format!("{}: {count}", escape(&title)), blocks)
}

fn digest_line(item: &DigestItem, links: &LeadLinks) -> String {
    let lead = item.lead();
    let who = lead_mention(lead, links);
    match item {
        DigestItem::FollowUpOverdue { task, .. } => format!(
            "⏰ *Overdue:* {} · {who}, was due {}",
            clipped(&task.subject, VALUE_MAX),
            when(task.due_at, true)
        ),
        DigestItem::FollowUpDue { task, .. } => format!(
            "📅 *Due soon:* {} · {who}, due {}",
            clipped(&task.subject, VALUE_MAX),
            when(task.due_at, true)
        ),
        DigestItem::StaleLead {
            last_touch, days, ..
        } => {
            let days = match days {
                1 => "1 day".to_owned(),
                d => format!("{d} days"),
            };
            format!(
                "💤 *Stale:* {who}, no contact for {days} (since {})",
                when(*last_touch, false)
            )
        }
    }
}

/// The lead's name (and company) as a link to it, or in bold without one.
fn lead_mention(lead: &LeadCard, links: &LeadLinks) -> String {
    let name = clipped(lead.display_name(), VALUE_MAX);
    let company = lead
        .company
        .as_deref()
        .map(|c| format!(" ({})", clipped(c, VALUE_MAX)))
        .unwrap_or_default();
    match links.url(&lead.ext_id) {
        // Inside `<url|text>` the URL is escaped too, and a `|` would end it.
        Some(url) => format!("<{}|{name}>{company}", escape(&url).replace('|', "%7C")),
        None => format!("*{name}*{company}"),
    }
}

/// A time each reader sees in their own time zone (Slack's date
/// formatting), with a UTC fallback for clients that cannot.
fn when(at: chrono::DateTime<chrono::Utc>, with_time: bool) -> String {
    if with_time {
        format!(
            "<!date^{}^{{date_short_pretty}} {{time}}|{}>",
            at.timestamp(),
            at.format("%Y-%m-%d %H:%M UTC")
        )
    } else {
        format!(
            "<!date^{}^{{date_short_pretty}}|{}>",
            at.timestamp(),
            at.format("%Y-%m-%d")
        )
    }
}

/// The lead's fields, two columns.
fn fields(lead: &LeadCard) -> Value {
    let mut fields = vec![
        ("Score", lead.score.to_string()),
        ("Priority", lead.priority.to_string()),
        ("Stage", lead.stage.to_string()),
    ];
    if let Some(company) = &lead.company {
        fields.push(("Company", clipped(company, VALUE_MAX)));
    }
    if let Some(source) = &lead.source {
        fields.push(("Source", clipped(source, VALUE_MAX)));
    }
    let rep_text = match &lead.assigned_to {
        Some(r) => rep(r),
        None => "_unassigned_".to_owned(),
    };
    fields.push(("Rep", rep_text));
    if let Some(value) = lead.estimated_value {
        let currency = lead.currency.as_deref().unwrap_or_default();
        fields.push(("Value", clipped(&format!("{value} {currency}"), VALUE_MAX)));
    }
    let fields = fields
        .into_iter()
        .map(|(name, value)| json!({ "type": "mrkdwn", "text": format!("*{name}*\n{}", value.trim()) }))
        .collect::<Vec<_>>();
    json!({ "type": "section", "fields": fields })
}

fn header(text: &str) -> Value {
    json!({
        "type": "header",
        "text": { "type": "plain_text", "text": clipped(text, HEADER_MAX), "emoji": true },
    })
}

fn section(mrkdwn: String) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": mrkdwn } })
}

fn context(mrkdwn: String) -> Value {
    json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": mrkdwn }] })
}

/// "Ana López (Acme)", or the e-mail address when the name is unknown.
fn title(lead: &LeadCard) -> String {
    match &lead.company {
        Some(company) => format!("{} ({company})", lead.display_name()),
        None => lead.display_name().to_owned(),
    }
}

fn rep(id: &RepId) -> String {
    escape(id.as_str())
}

/// `&`, `<` and `>` as Slack's control characters need them.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` escaped, cut to at most `max` characters (with `…`) without
/// splitting an escape.
fn clipped(text: &str, max: usize) -> String {
    let escaped = escape(text);
    if escaped.chars().count() <= max {
        return escaped;
    }
    let mut out = String::new();
    let mut count = 0;
    for c in text.chars() {
        let piece = escape(c.encode_utf8(&mut [0; 4]));
        let len = piece.chars().count();
        if count + len > max.saturating_sub(1) {
            break;
        }
        out.push_str(&piece);
        count += len;
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use lead_core::notify::TaskCard;
    use lead_core::{LeadExtId, Priority};
    use uuid::Uuid;

    use super::*;

    fn card(name: &str) -> LeadCard {
        LeadCard {
            ext_id: LeadExtId::parse("WEB-7KQ2M9XA").unwrap(),
            name: Some(name.to_owned()),
            email: "ana@acme.com".into(),
            company: Some("Acme & Co".into()),
            job_title: Some("CTO".into()),
            score: 87,
            priority: Priority::High,
            stage: Stage::New,
            assigned_to: Some(RepId::parse("rep@example.com").unwrap()),
            source: Some("website".into()),
            estimated_value: None,
            currency: None,
        }
    }

    fn notification(event: Event) -> Notification {
        Notification {
            id: Uuid::nil(),
            created_at: Utc.with_ymd_and_hms(2026, 12, 3, 14, 0, 0).unwrap(),
            event,
        }
    }

    fn links() -> LeadLinks {
        LeadLinks::new(Some("https://crm.example.com/leads/{ext_id}")).unwrap()
    }

    fn texts(message: &Value) -> String {
        message.to_string()
    }

    #[test]
    fn a_high_priority_lead_has_header_fields_and_a_button() {
        let n = notification(Event::HighPriorityLead {
            lead: card("Ana López"),
        });
        let m = message(&n, &links());
        let blocks = m["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(
            blocks[0]["text"]["text"],
            "🔥 High-priority lead: Ana López (Acme &amp; Co)"
        );
        let fields: Vec<&str> = blocks[1]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "*Score*\n87",
                "*Priority*\nhigh",
                "*Stage*\nnew",
                "*Company*\nAcme &amp; Co",
                "*Source*\nwebsite",
                "*Rep*\nrep@example.com"
            ]
        );
        assert_eq!(blocks[2]["elements"][0]["text"], "CTO · ana@acme.com");
        assert_eq!(blocks[3]["type"], "actions");
        assert_eq!(
            blocks[3]["elements"][0]["url"],
            "https://crm.example.com/leads/WEB-7KQ2M9XA"
        );
        assert_eq!(
            m["text"],
            "🔥 High-priority lead: Ana López (Acme &amp; Co), score 87"
        );
    }

    #[test]
    fn without_links_there_is_no_button() {
        let n = notification(Event::HighPriorityLead {
            lead: card("Ana López"),
        });
        let m = message(&n, &LeadLinks::none());
        assert!(
            m["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|b| b["type"] != "actions")
        );
    }

    #[test]
    fn user_text_cannot_mention_the_channel_or_break_markup() {
        let n = notification(Event::HighPriorityLead {
            lead: card("<!channel> <https://evil.example|click>"),
        });
        let all = texts(&message(&n, &links()));
        assert!(!all.contains("<!channel>"), "{all}");
        assert!(!all.contains("<https://evil.example"), "{all}");
        assert!(all.contains("&lt;!channel&gt;"), "{all}");
    }

    #[test]
    fn an_assignment_names_the_new_and_previous_rep() {
        let n = notification(Event::Assigned {
            lead: card("Ana López"),
            to: RepId::parse("new@example.com").unwrap(),
            from: Some(RepId::parse("old@example.com").unwrap()),
        });
        let m = message(&n, &links());
        assert_eq!(
            m["blocks"][0]["text"]["text"],
            "👤 Lead assigned: Ana López (Acme &amp; Co)"
        );
        assert_eq!(
            m["blocks"][2]["text"]["text"],
            "Reassigned to *new@example.com* (was *old@example.com*)"
        );
    }

    #[test]
    fn a_stage_change_says_from_where_to_where_and_who_changed_it() {
        let n = notification(Event::StageChanged {
            lead: card("Ana López"),
            from: Stage::Negotiation,
            to: Stage::Won,
            origin: ChangeOrigin::Crm,
        });
        let m = message(&n, &links());
        assert_eq!(
            m["blocks"][0]["text"]["text"],
            "🏆 Lead won: Ana López (Acme &amp; Co)"
        );
        assert_eq!(
            m["blocks"][2]["text"]["text"],
            "*Stage:* negotiation → *won* (changed in the CRM)"
        );
    }

    #[test]
    fn a_long_name_keeps_the_header_within_slacks_limit() {
        let n = notification(Event::HighPriorityLead {
            lead: card(&"&".repeat(400)),
        });
        let m = message(&n, &links());
        let header = m["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(header.chars().count() <= HEADER_MAX, "{}", header.len());
        assert!(header.ends_with("&amp;…"), "{header}");
    }

    fn overdue(i: usize) -> DigestItem {
        DigestItem::FollowUpOverdue {
            lead: card(&format!("Lead {i}")),
            task: TaskCard {
                id: Uuid::nil(),
                subject: "Call back".into(),
                due_at: Utc.with_ymd_and_hms(2026, 12, 3, 9, 30, 0).unwrap(),
            },
        }
    }

    #[test]
    fn a_digest_has_one_line_per_item_with_wording_and_link() {
        let items = vec![
            overdue(1),
            DigestItem::FollowUpDue {
                lead: card("Bo"),
                task: TaskCard {
                    id: Uuid::nil(),
                    subject: "Send <proposal>".into(),
                    due_at: Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap(),
                },
            },
            DigestItem::StaleLead {
                lead: card("Cy"),
                last_touch: Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0).unwrap(),
                days: 6,
            },
        ];
        let n = notification(Event::Digest {
            rep: Some(RepId::parse("rep@example.com").unwrap()),
            items,
        });
        let m = message(&n, &links());
        assert_eq!(
            m["blocks"][0]["text"]["text"],
            "📋 Digest for rep@example.com"
        );
        assert_eq!(
            m["blocks"][1]["text"]["text"],
            "⏰ *Overdue:* Call back · <https://crm.example.com/leads/WEB-7KQ2M9XA|Lead 1> (Acme &amp; Co), \
             was due <!date^1796290200^{date_short_pretty} {time}|2026-12-03 09:30 UTC>"
        );
        assert!(
            m["blocks"][2]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with("📅 *Due soon:* Send &lt;proposal&gt; · ")
        );
        assert!(
            m["blocks"][3]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("no contact for 6 days (since <!date^")
        );
        assert_eq!(m["text"], "📋 Digest for rep@example.com: 3 items");
    }

    #[test]
    fn a_long_digest_stops_at_forty_lines_and_counts_the_rest() {
        let n = notification(Event::Digest {
            rep: None,
            items: (0..55).map(overdue).collect(),
        });
        let m = message(&n, &LeadLinks::none());
        let blocks = m["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["text"]["text"], "📋 Unassigned leads");
        assert_eq!(blocks.len(), 1 + MAX_DIGEST_ITEMS + 1);
        assert!(blocks.len() <= 50);
        assert_eq!(
            blocks.last().unwrap()["elements"][0]["text"],
            "…and 15 more"
        );
        assert!(
            blocks[1]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("*Lead 0* (Acme")
        );
    }

    #[test]
    fn urls_that_are_not_https_or_loopback_are_refused_without_quoting_them() {
        for (url, says) in [
            ("not a url", "is not a URL"),
            (
                "http://hooks.slack.com/services/T/B/SECRET",
                "must be https",
            ),
            ("ftp://hooks.slack.com/services/T/B/SECRET", "https URL"),
            (
                "https://u:SECRET@hooks.slack.com/services/T/B/x",
                "credentials",
            ),
        ] {
            let err = SlackNotifier::new(SlackConfig::new(url.into()))
                .expect_err(url)
                .to_string();
            assert!(err.starts_with("SLACK_WEBHOOK_URL "), "{err}");
            assert!(err.contains(says), "{url}: {err}");
            assert!(!err.contains("SECRET"), "{err}");
        }
        for url in [
            "https://hooks.slack.com/services/T/B/x",
            "http://127.0.0.1:9/services/x",
            "http://[::1]:9/x",
            "http://localhost:9/x",
        ] {
            assert!(
                SlackNotifier::new(SlackConfig::new(url.into())).is_ok(),
                "{url}"
            );
        }
    }
}
