//! The notifications the tests send.

use chrono::{TimeZone, Utc};
use lead_core::notify::{Event, LeadCard, Notification};
use lead_core::{LeadExtId, Priority, RepId, Stage};
use lead_notify::LeadLinks;
use uuid::Uuid;

/// Ana López of Acme, a high-priority new lead of María's.
pub(crate) fn lead(name: &str) -> LeadCard {
    LeadCard {
        ext_id: LeadExtId::parse("WEB-7KQ2M9XA").expect("a valid id"),
        name: Some(name.to_owned()),
        email: "ana.lopez@acme.example".into(),
        company: Some("Acme".into()),
        job_title: Some("CTO".into()),
        score: 87,
        priority: Priority::High,
        stage: Stage::New,
        assigned_to: Some(rep("maria@example.com")),
        source: Some("website".into()),
        estimated_value: Some(12_000.into()),
        currency: Some("EUR".into()),
    }
}

pub(crate) fn rep(email: &str) -> RepId {
    RepId::parse(email).expect("a valid rep")
}

/// `event`, as the outbox entry `0192f0c4-…` of 2026-12-03 14:05:09 UTC.
pub(crate) fn notification(event: Event) -> Notification {
    Notification {
        id: Uuid::parse_str("0192f0c4-5a7e-7b3c-9d2e-8f1a2b3c4d5e").expect("a uuid"),
        created_at: Utc
            .with_ymd_and_hms(2026, 12, 3, 14, 5, 9)
            .single()
            .expect("a time"),
        event,
    }
}

pub(crate) fn high_priority() -> Notification {
    notification(Event::HighPriorityLead {
        lead: lead("Ana López"),
    })
}

pub(crate) fn links() -> LeadLinks {
    LeadLinks::new(Some("https://crm.example.com/leads/{ext_id}")).expect("a valid template")
}

/// A loopback address nothing listens on (a port the system just gave
/// and took back).
pub(crate) fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}
