//! E-mail through a real SMTP server (aiosmtpd, see `smtp_sink`), read
//! back from what the server stored.

use lead_core::Error;
use lead_core::notify::Event;
use lead_core::ports::{Delivery, Notifier};
use lead_notify::{ConfigError, EmailConfig, EmailNotifier, Tls};
use mailparse::{MailHeaderMap, ParsedMail};

use crate::common::{lead, links, notification, rep};
use lead_notify::testing::{PASSWORD, SmtpSink, USER};

fn config(port: u16) -> EmailConfig {
    EmailConfig::new("127.0.0.1", port, "Lead capture <leads@example.com>")
        .tls(Tls::None)
        .credentials(USER, PASSWORD.to_owned().into())
        .links(links())
}

fn assigned_to(email: &str, name: &str) -> lead_core::notify::Notification {
    notification(Event::Assigned {
        lead: lead(name),
        to: rep(email),
        from: Some(rep("maria@example.com")),
    })
}

/// The decoded body of the part of type `mimetype`.
fn part(mail: &ParsedMail<'_>, mimetype: &str) -> String {
    mail.subparts
        .iter()
        .find(|p| p.ctype.mimetype == mimetype)
        .unwrap_or_else(|| panic!("a {mimetype} part"))
        .get_body()
        .expect("a readable body")
}

#[tokio::test]
async fn email_reaches_the_rep_with_a_text_and_an_html_part() {
    let sink = SmtpSink::start();
    let notifier = EmailNotifier::new(config(sink.port())).expect("a valid config");
    let n = assigned_to("jo@example.com", "Ana <script>alert(1)</script> López");

    let sent = notifier.notify(&n).await;

    assert_eq!(sent.expect("sent"), Delivery::Sent);
    let raw = sink.messages(1).remove(0);
    let mail = mailparse::parse_mail(&raw).expect("an RFC 5322 message");
    let header = |name: &str| mail.headers.get_first_value(name).unwrap_or_default();
    assert_eq!(header("X-Sink-Rcpt-To"), "jo@example.com", "the envelope");
    assert_eq!(header("X-Sink-Mail-From"), "leads@example.com");
    assert_eq!(header("To"), "jo@example.com");
    assert_eq!(header("From"), "\"Lead capture\" <leads@example.com>");
    assert_eq!(
        header("Subject"),
        "Lead assigned to you: Ana <script>alert(1)</script> López (Acme)"
    );
    assert_eq!(
        header("Message-ID"),
        "<0192f0c45a7e7b3c9d2e8f1a2b3c4d5e@example.com>"
    );
    assert_eq!(header("Auto-Submitted"), "auto-generated");
    assert_eq!(mail.ctype.mimetype, "multipart/alternative");
    let text = part(&mail, "text/plain");
    assert!(
        text.starts_with(
            "Ana <script>alert(1)</script> López (Acme) is now yours (reassigned from maria@example.com)."
        ),
        "{text}"
    );
    assert!(
        text.contains("Open it: https://crm.example.com/leads/WEB-7KQ2M9XA"),
        "{text}"
    );
    let html = part(&mail, "text/html");
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains(
            "<strong>Ana &lt;script&gt;alert(1)&lt;&#x2f;script&gt; López</strong> (Acme)"
        ),
        "{html}"
    );
    assert!(
        html.contains(
            r#"<a href="https:&#x2f;&#x2f;crm.example.com&#x2f;leads&#x2f;WEB-7KQ2M9XA""#
        ),
        "{html}"
    );
}

#[tokio::test]
async fn email_with_wrong_credentials_fails_for_good() {
    let sink = SmtpSink::start();
    let notifier = EmailNotifier::new(
        config(sink.port()).credentials(USER, "wrong-password".to_owned().into()),
    )
    .expect("a valid config");

    let err = notifier
        .notify(&assigned_to("jo@example.com", "Ana"))
        .await
        .unwrap_err();

    assert!(matches!(err, Error::Unauthorized(_)), "{err:?}");
    assert!(!err.is_temporary());
    let said = format!("{err} {err:?} {}", err.chain());
    assert!(said.contains("535"), "{said}");
    assert!(!said.contains("wrong-password"), "{said}");
}

#[tokio::test]
async fn email_with_no_server_listening_is_temporary() {
    let port = crate::common::closed_port().port();
    let notifier = EmailNotifier::new(config(port)).expect("a valid config");

    let err = notifier
        .notify(&assigned_to("jo@example.com", "Ana"))
        .await
        .unwrap_err();

    assert!(matches!(err, Error::Unavailable(..)), "{err:?}");
    assert!(err.is_temporary());
}

#[tokio::test]
async fn email_refused_by_the_server_fails_for_good_and_deferred_waits() {
    let sink = SmtpSink::start();
    let notifier = EmailNotifier::new(config(sink.port())).expect("a valid config");

    let bounced = notifier
        .notify(&assigned_to("bounce@example.com", "Ana"))
        .await
        .unwrap_err();
    let deferred = notifier
        .notify(&assigned_to("defer@example.com", "Ana"))
        .await
        .unwrap_err();

    assert!(matches!(bounced, Error::NotAllowed(_)), "{bounced:?}");
    assert!(bounced.to_string().contains("550"), "{bounced}");
    assert!(deferred.is_temporary(), "{deferred:?}");
    assert!(deferred.to_string().contains("451"), "{deferred}");
}

#[tokio::test]
async fn a_template_in_the_templates_dir_replaces_the_built_in_one() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().expect("a directory");
    std::fs::write(
        dir.path().join("assigned.subject.txt"),
        "[Leads] {{ lead.name }} for {{ to }}\n",
    )
    .expect("written");
    let notifier = EmailNotifier::new(config(sink.port()).templates_dir(Some(dir.path().into())))
        .expect("a valid config");

    notifier
        .notify(&assigned_to("jo@example.com", "Ana López"))
        .await
        .expect("sent");

    let raw = sink.messages(1).remove(0);
    let mail = mailparse::parse_mail(&raw).expect("a message");
    assert_eq!(
        mail.headers.get_first_value("Subject").as_deref(),
        Some("[Leads] Ana López for jo@example.com")
    );
    assert!(
        part(&mail, "text/plain").contains("is now yours"),
        "the other templates stay built in"
    );
}

#[test]
fn a_broken_template_override_fails_construction_naming_the_file() {
    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("assigned.html");
    std::fs::write(&file, "<p>{{ lead.name }}</p>\n<p>{% if %}</p>\n").expect("written");

    let err = EmailNotifier::new(config(2525).templates_dir(Some(dir.path().into())))
        .expect_err("refused");

    assert!(
        matches!(&err, ConfigError::Template { path, .. } if *path == file),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("e-mail template {}: line 2: ", file.display())),
        "{text}"
    );
}

#[test]
fn a_template_override_that_fails_on_an_event_fails_construction() {
    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("digest.txt");
    std::fs::write(&file, "{{ items|no_such_filter }}\n").expect("written");

    let err = EmailNotifier::new(config(2525).templates_dir(Some(dir.path().into())))
        .expect_err("refused");

    let text = err.to_string();
    assert!(text.contains(&file.display().to_string()), "{text}");
    assert!(text.contains("no_such_filter"), "{text}");
}
