use chrono::{TimeZone, Utc};
use lead_core::notify::{DigestItem, Event, LeadCard, TaskCard};
use lead_core::{ChangeOrigin, LeadExtId, Priority, RepId, Stage};
use uuid::Uuid;

use super::*;

fn card(name: &str) -> LeadCard {
    LeadCard {
        ext_id: LeadExtId::parse("WEB-7KQ2M9XA").unwrap(),
        name: Some(name.to_owned()),
        email: "ana@acme.com".into(),
        company: Some("Acme".into()),
        job_title: None,
        score: 87,
        priority: Priority::High,
        stage: Stage::New,
        assigned_to: Some(RepId::parse("rep@example.com").unwrap()),
        source: None,
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

fn notifier() -> EmailNotifier {
    let links = LeadLinks::new(Some("https://crm.example.com/leads/{ext_id}")).unwrap();
    EmailNotifier::new(
        EmailConfig::new("127.0.0.1", 2525, "Lead capture <leads@example.com>")
            .tls(Tls::None)
            .links(links),
    )
    .expect("a valid config")
}

#[test]
fn an_assignment_renders_subject_text_and_html() {
    let n = notification(Event::Assigned {
        lead: card("Ana López"),
        to: RepId::parse("new@example.com").unwrap(),
        from: Some(RepId::parse("old@example.com").unwrap()),
    });
    let r = notifier().render(&n).unwrap();
    assert_eq!(r.subject, "Lead assigned to you: Ana López (Acme)");
    assert!(
        r.text
            .starts_with("Ana López (Acme) is now yours (reassigned from old@example.com).\n"),
        "{}",
        r.text
    );
    assert!(
        r.text
            .contains("Open it: https://crm.example.com/leads/WEB-7KQ2M9XA"),
        "{}",
        r.text
    );
    assert!(
        r.html.contains(
            r#"<a href="https:&#x2f;&#x2f;crm.example.com&#x2f;leads&#x2f;WEB-7KQ2M9XA""#
        ),
        "{}",
        r.html
    );
}

#[test]
fn html_escapes_what_a_lead_typed_and_text_keeps_it_as_typed() {
    let n = notification(Event::HighPriorityLead {
        lead: card("Ana <script>alert(1)</script>"),
    });
    let r = notifier().render(&n).unwrap();
    assert!(!r.html.contains("<script>"), "{}", r.html);
    assert!(
        r.html
            .contains("Ana &lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{}",
        r.html
    );
    assert!(
        r.text.contains("Ana <script>alert(1)</script>"),
        "{}",
        r.text
    );
    assert_eq!(
        r.subject,
        "High-priority lead: Ana <script>alert(1)</script> (Acme)"
    );
}

#[test]
fn a_stage_change_and_a_digest_render_their_specifics() {
    let won = notification(Event::StageChanged {
        lead: card("Ana López"),
        from: Stage::Negotiation,
        to: Stage::Won,
        origin: ChangeOrigin::Crm,
    });
    let r = notifier().render(&won).unwrap();
    assert_eq!(r.subject, "Won: Ana López (Acme)");
    assert!(
        r.text
            .contains("moved from negotiation to won (changed in the CRM)"),
        "{}",
        r.text
    );
    let digest = notification(Event::Digest {
        rep: Some(RepId::parse("rep@example.com").unwrap()),
        items: vec![
            DigestItem::FollowUpOverdue {
                lead: card("Ana López"),
                task: TaskCard {
                    id: Uuid::nil(),
                    subject: "Call back".into(),
                    due_at: Utc.with_ymd_and_hms(2026, 12, 3, 9, 30, 0).unwrap(),
                },
            },
            DigestItem::StaleLead {
                lead: card("Bo"),
                last_touch: Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0).unwrap(),
                days: 6,
            },
        ],
    });
    let r = notifier().render(&digest).unwrap();
    assert_eq!(r.subject, "2 leads to look at");
    assert!(
        r.text.contains(
            "* OVERDUE   Call back - Ana López (Acme), was due 2026-12-03 09:30 UTC\n            https://crm.example.com/leads/WEB-7KQ2M9XA\n"
        ),
        "{}",
        r.text
    );
    assert!(
        r.text
            .contains("* STALE     Bo (Acme), no contact for 6 days (since 2026-11-27)"),
        "{}",
        r.text
    );
    assert!(
        r.html.contains(
            r#"leads&#x2f;WEB-7KQ2M9XA">Ana López</a> (Acme), was due 2026-12-03 09:30 UTC"#
        ),
        "{}",
        r.html
    );
}

#[tokio::test]
async fn an_event_without_a_rep_is_skipped() {
    let mut lead = card("Ana");
    lead.assigned_to = None;
    let n = notification(Event::HighPriorityLead { lead });
    let sent = notifier().notify(&n).await.unwrap();
    assert_eq!(sent, Delivery::Skipped("no rep to write to"));
    let unassigned = notification(Event::Digest {
        rep: None,
        items: vec![],
    });
    assert_eq!(
        notifier().notify(&unassigned).await.unwrap(),
        Delivery::Skipped("no rep to write to")
    );
}

#[test]
fn debug_never_shows_the_password() {
    let config = EmailConfig::new("127.0.0.1", 2525, "leads@example.com")
        .tls(Tls::None)
        .credentials("mailer", "hunter2-secret".to_owned().into());
    assert!(!format!("{config:?}").contains("hunter2"), "{config:?}");
    let notifier = EmailNotifier::new(config).unwrap();
    assert!(!format!("{notifier:?}").contains("hunter2"), "{notifier:?}");
}

#[test]
fn settings_that_cannot_work_are_refused_naming_them() {
    let refused = |config: EmailConfig| EmailNotifier::new(config).unwrap_err().to_string();
    let err = refused(EmailConfig::new("smtp.example.com", 587, "not an address"));
    assert!(
        err.starts_with("SMTP_FROM \"not an address\" is not"),
        "{err}"
    );
    let err = refused(EmailConfig::new(" ", 587, "leads@example.com"));
    assert!(err.starts_with("SMTP_HOST "), "{err}");
    let err = refused(EmailConfig::new("smtp.example.com", 0, "leads@example.com"));
    assert!(err.starts_with("SMTP_PORT "), "{err}");
    let err = refused(
        EmailConfig::new("smtp.example.com", 25, "leads@example.com")
            .tls(Tls::None)
            .credentials("mailer", "pw".to_owned().into()),
    );
    assert!(
        err.starts_with("SMTP_TLS none would send the password"),
        "{err}"
    );
    for tls in [Tls::StartTls, Tls::Implicit] {
        let ok = EmailNotifier::new(
            EmailConfig::new("smtp.example.com", 587, "leads@example.com")
                .tls(tls)
                .credentials("mailer", "pw".to_owned().into()),
        );
        assert!(ok.is_ok(), "{tls:?}: {ok:?}");
    }
}
