//! The documented samples (`docs/notifications.md`) are what the code
//! renders: each is made here and must appear there word for word. When a template or message
//! changes, the failure prints the new sample to paste.

use lead_core::notify::Event;
use lead_core::standard_webhooks::WebhookSecret;
use lead_notify::{EmailConfig, EmailNotifier, slack, webhook};

use crate::common::{high_priority, lead, links, notification, rep};

const README: &str = include_str!("../../../docs/notifications.md");

fn assert_in_readme(what: &str, sample: &str) {
    assert!(
        README.contains(sample),
        "docs/notifications.md's {what} sample is stale; the code renders:\n\n{sample}\n"
    );
}

#[test]
fn readme_shows_the_slack_message_of_a_high_priority_lead() {
    let message = slack::message(&high_priority(), &links());
    let sample = serde_json::to_string_pretty(&message).expect("JSON");
    assert_in_readme("Slack", &format!("```json\n{sample}\n```"));
}

#[test]
fn readme_shows_the_email_of_an_assignment() {
    let notifier = EmailNotifier::new(
        EmailConfig::new("smtp.example.com", 587, "Lead capture <leads@example.com>")
            .links(links()),
    )
    .expect("a valid config");
    let n = notification(Event::Assigned {
        lead: lead("Ana López"),
        to: rep("jo@example.com"),
        from: Some(rep("maria@example.com")),
    });
    let rendered = notifier.render(&n).expect("rendered");
    assert_in_readme(
        "e-mail (text)",
        &format!(
            "```text\nSubject: {}\n\n{}```",
            rendered.subject, rendered.text
        ),
    );
    assert_in_readme("e-mail (HTML)", &format!("```html\n{}```", rendered.html));
}

#[test]
fn readme_shows_a_signed_webhook_request() {
    let secret =
        WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a valid secret");
    // The attempt's time: a second after the notification was made.
    let at = high_priority().created_at.timestamp() + 1;
    let signed = webhook::sign(&high_priority(), &secret, at);
    let headers = signed
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\n"))
        .collect::<String>();
    let body = String::from_utf8(signed.body).expect("UTF-8 JSON");
    assert_in_readme(
        "webhook",
        &format!(
            "```http\nPOST /hooks/lead-capture HTTP/1.1\nhost: hooks.example.com\n{headers}\n{body}\n```"
        ),
    );
}
