//! Review of issue 22: a webhook subscriber's answers driving lead-core's
//! delivery run, end to end (the real `WebhookNotifier` against a local
//! receiver, lead-core's `deliver_once` over the in-memory outbox).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use lead_core::notify::{Channel, DeliverConfig, Event, LeadCard, NotificationKind, deliver_once};
use lead_core::standard_webhooks::WebhookSecret;
use lead_core::{
    Commit, Deps, Destination, InMemoryStore, LeadExtId, LeadStore, ManualClock, OutboxEntry,
    OutboxKind, OutboxStore, Priority, SequentialIds, Stage,
};
use lead_notify::{WebhookConfig, WebhookNotifier};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn card() -> LeadCard {
    LeadCard {
        ext_id: LeadExtId::parse("WEB-7KQ2M9XA").expect("a valid id"),
        name: Some("Ana López".into()),
        email: "ana@acme.example".into(),
        company: None,
        job_title: None,
        score: 90,
        priority: Priority::High,
        stage: Stage::New,
        assigned_to: None,
        source: None,
        estimated_value: None,
        currency: None,
    }
}

/// A subscriber answers `503` with `Retry-After: 10000000000000` (a
/// broken or hostile receiver: subscribers are other people's systems).
/// The delivery run must survive it; today `deliver.rs` computes
/// `now + delay` with `DateTime + TimeDelta`, which panics, and in the
/// server that panic ends the `webhooks` consumer's task for good.
#[tokio::test]
async fn a_subscriber_answering_an_absurd_retry_after_does_not_panic_the_consumer() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "10000000000000"))
        .mount(&receiver)
        .await;
    let url = format!("{}/hook", receiver.uri());
    let secret = WebhookSecret::parse(SECRET).expect("a secret");
    let notifier =
        WebhookNotifier::new(WebhookConfig::new("acme", &url, secret).allow_private(true))
            .expect("a subscriber");

    let store = Arc::new(InMemoryStore::new());
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 12, 3, 14, 5, 9).unwrap(),
    ));
    let deps = Deps::with(store.clone(), clock, Arc::new(SequentialIds::default()));
    let event = Event::HighPriorityLead { lead: card() };
    let mut commit = Commit::new();
    commit.outbox.push(OutboxEntry {
        id: uuid::Uuid::now_v7(),
        destination: Destination::WEBHOOKS,
        lead: card().ext_id,
        kind: OutboxKind::Notification,
        payload: serde_json::to_value(&event).expect("json"),
        created_at: Utc.with_ymd_and_hms(2026, 12, 3, 14, 5, 9).unwrap(),
    });
    store.commit(commit).await.expect("queued");

    let channel = Channel {
        name: "webhook:acme".into(),
        events: NotificationKind::ALL.into_iter().collect::<BTreeSet<_>>(),
        notifier: Arc::new(notifier),
    };
    let run = {
        let (deps, store) = (deps.clone(), store.clone());
        tokio::spawn(async move {
            deliver_once(
                &deps,
                &*store,
                &*store,
                &[channel],
                &DeliverConfig::new(Destination::WEBHOOKS),
            )
            .await
        })
        .await
    };
    let report = match run {
        Ok(report) => report.expect("the run completes"),
        Err(join) => panic!("the webhooks consumer panicked: {join}"),
    };
    assert_eq!(report.retried + report.dead_lettered, 1, "{report:?}");
    assert_eq!(
        store.pending_count(&Destination::WEBHOOKS).await.unwrap()
            + store.dead_count(&Destination::WEBHOOKS).await.unwrap(),
        1
    );
}
