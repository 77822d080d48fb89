//! Review of issue 22 (notifications): delivery, dead letters, the
//! digest window, quiet hours and the events the use-cases queue, each
//! through lead-core's public API with the in-memory store and a manual
//! clock.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveTime, TimeZone, Utc};
use lead_core::notify::{
    Channel, DeliverConfig, Event, Notification, NotificationKind, QuietHours, deliver_once, digest,
};
use lead_core::ports::{Delivery, Notifier};
use lead_core::usecase::{NoProgress, capture, record_event};
use lead_core::{
    Deps, Destination, Error, EventKind, InMemoryStore, LeadEvent, LeadInput, ManualClock,
    OutboxKind, Policy, Rep, RepId, Result, SequentialIds, Stage, WorkingHours,
};

fn monday_noon() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

struct World {
    store: Arc<InMemoryStore>,
    clock: Arc<ManualClock>,
    deps: Deps,
    policy: Policy,
}

fn world() -> World {
    world_at(monday_noon())
}

fn world_at(now: chrono::DateTime<Utc>) -> World {
    let mut rep = Rep::new(RepId::parse("rep1@sales.com").unwrap(), "rep1");
    rep.working_hours = WorkingHours::always();
    let store = Arc::new(InMemoryStore::with_reps([rep]));
    let clock = Arc::new(ManualClock::new(now));
    let deps = Deps::with(
        store.clone(),
        clock.clone(),
        Arc::new(SequentialIds::default()),
    );
    let mut policy = Policy::default();
    policy.notifications.deliver_to = vec![Destination::NOTIFY];
    World {
        store,
        clock,
        deps,
        policy,
    }
}

fn input(email: &str) -> LeadInput {
    LeadInput {
        email: Some(email.into()),
        first_name: Some("Ana".into()),
        last_name: Some("López".into()),
        company: Some("Acme SL".into()),
        ..Default::default()
    }
}

async fn capture_many(w: &World, n: usize) {
    for i in 0..n {
        capture(&input(&format!("lead{i}@acme.com")), &w.policy, &w.deps)
            .await
            .unwrap();
    }
}

fn queued(store: &InMemoryStore) -> Vec<Event> {
    store
        .outbox()
        .into_iter()
        .filter(|e| e.destination == Destination::NOTIFY && e.kind == OutboxKind::Notification)
        .map(|e| serde_json::from_value(e.payload).expect("an event"))
        .collect()
}

/// Records what it sent; answers from a script, then `Sent`.
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<uuid::Uuid>>,
    answers: Mutex<VecDeque<Result<Delivery>>>,
}

impl Recorder {
    fn answering(answers: impl IntoIterator<Item = Result<Delivery>>) -> Arc<Self> {
        Arc::new(Recorder {
            answers: Mutex::new(answers.into_iter().collect()),
            ..Recorder::default()
        })
    }

    fn sent(&self) -> Vec<uuid::Uuid> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait]
impl Notifier for Recorder {
    async fn notify(&self, notification: &Notification) -> Result<Delivery> {
        let answer = self
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Ok(Delivery::Sent));
        if matches!(answer, Ok(Delivery::Sent)) {
            self.sent.lock().unwrap().push(notification.id);
        }
        answer
    }
}

fn channel(name: &str, notifier: Arc<dyn Notifier>) -> Channel {
    Channel {
        name: name.into(),
        events: NotificationKind::ALL.into_iter().collect::<BTreeSet<_>>(),
        notifier,
    }
}

fn assert_each_sent_once(sent: &[uuid::Uuid]) {
    let distinct: BTreeSet<_> = sent.iter().collect();
    assert_eq!(
        sent.len(),
        distinct.len(),
        "a notification went to the same channel twice: {sent:?}"
    );
}

// --- delivery -------------------------------------------------------------

/// A subscriber (untrusted) answers `Retry-After: 10000000000000`
/// (lead-notify turns it into this error). `deliver.rs` adds it to the
/// clock with `DateTime + TimeDelta`, which panics past year 262143: the
/// consumer task dies and nothing of that destination is delivered again
/// until a restart (where the same answer kills it again).
#[tokio::test]
async fn a_huge_retry_after_does_not_panic_the_delivery_run() {
    let w = world();
    capture_many(&w, 1).await;
    let huge = Recorder::answering([Err(Error::RateLimited {
        retry_after: Some(Duration::from_secs(10_000_000_000_000)),
    })]);
    let (deps, store) = (w.deps.clone(), w.store.clone());
    let run = tokio::spawn(async move {
        deliver_once(
            &deps,
            &*store,
            &*store,
            &[channel("webhook:acme", huge)],
            &DeliverConfig::new(Destination::NOTIFY),
        )
        .await
    })
    .await;
    let report = match run {
        Ok(report) => report.expect("the run completes"),
        Err(join) => panic!("the delivery run panicked: {join}"),
    };
    assert_eq!(report.claimed, 1);
    assert_eq!(report.retried + report.dead_lettered, 1);
}

/// A notifier whose sends are slow: each takes longer than the lease (a
/// subscriber timing out, a slow SMTP server). When worker A starts its
/// second entry, its lease is over and worker B (another instance) has
/// claimed what is left; A sends anyway.
struct SlowThenRacing {
    inner: Arc<Recorder>,
    calls: Mutex<usize>,
    clock: Arc<ManualClock>,
    lease: chrono::Duration,
    other: Mutex<Option<Box<dyn FnOnce() -> futures_like::BoxFuture + Send>>>,
}

mod futures_like {
    pub(super) type BoxFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
}

#[async_trait]
impl Notifier for SlowThenRacing {
    async fn notify(&self, notification: &Notification) -> Result<Delivery> {
        let call = {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            *calls
        };
        if call == 2 {
            // Another instance's consumer claims the expired batch now.
            let other = self.other.lock().unwrap().take();
            if let Some(other) = other {
                other().await;
            }
        }
        let answer = self.inner.notify(notification).await;
        // The send took longer than the whole lease.
        self.clock
            .advance(self.lease + chrono::Duration::seconds(1));
        answer
    }
}

#[tokio::test]
async fn a_worker_whose_lease_ran_out_mid_batch_does_not_send_what_another_took() {
    let w = world();
    capture_many(&w, 3).await;
    let recorder = Recorder::answering([]);
    let config_a = DeliverConfig {
        worker: "a".into(),
        ..DeliverConfig::new(Destination::NOTIFY)
    };
    let config_b = DeliverConfig {
        worker: "b".into(),
        ..DeliverConfig::new(Destination::NOTIFY)
    };
    let other = {
        let (deps, store, recorder, config_b) = (
            w.deps.clone(),
            w.store.clone(),
            recorder.clone(),
            config_b.clone(),
        );
        Box::new(move || -> futures_like::BoxFuture {
            Box::pin(async move {
                deliver_once(
                    &deps,
                    &*store,
                    &*store,
                    &[channel("slack", recorder)],
                    &config_b,
                )
                .await
                .expect("worker b runs");
            })
        }) as Box<dyn FnOnce() -> futures_like::BoxFuture + Send>
    };
    let slow = Arc::new(SlowThenRacing {
        inner: recorder.clone(),
        calls: Mutex::new(0),
        clock: w.clock.clone(),
        lease: chrono::Duration::from_std(config_a.lease).unwrap(),
        other: Mutex::new(Some(other)),
    });
    deliver_once(
        &w.deps,
        &*w.store,
        &*w.store,
        &[channel("slack", slow)],
        &config_a,
    )
    .await
    .expect("worker a runs");
    // Whatever is left, worker b sends afterwards.
    w.clock.advance(chrono::Duration::hours(1));
    deliver_once(
        &w.deps,
        &*w.store,
        &*w.store,
        &[channel("slack", recorder.clone())],
        &config_b,
    )
    .await
    .expect("worker b runs");

    let sent = recorder.sent();
    assert_each_sent_once(&sent);
    assert_eq!(sent.len(), 3, "every notification sent: {sent:?}");
}

// --- events ---------------------------------------------------------------

/// `critical_stages` may name any stage ("won, lost, or configured").
/// BANT auto-qualification moves a lead to `qualified` when an event (or
/// an edit) completes its BANT: the stage change reaches the CRM, but no
/// notification is queued (`lead_ops::reassessed` never calls `tell`).
#[tokio::test]
async fn an_auto_qualification_to_a_critical_stage_is_announced() {
    let mut w = world();
    w.policy.bant.auto_qualify_enabled = true;
    w.policy.notifications.critical_stages = vec![Stage::Qualified, Stage::Won, Stage::Lost];
    let form = LeadInput {
        budget: Some("20000 EUR".into()),
        job_title: Some("CEO".into()),
        message: Some("Hello".into()),
        ..input("ceo@acme.com")
    };
    let out = capture(&form, &w.policy, &w.deps).await.unwrap();
    assert_eq!(out.lead.stage, Stage::New);
    let before = queued(&w.store).len();
    let demo = LeadEvent {
        kind: EventKind::DemoRequest,
        at: monday_noon(),
        properties: Default::default(),
    };
    let lead = record_event(&out.lead.ext_id, demo, &w.policy, &w.deps)
        .await
        .unwrap();
    assert_eq!(lead.stage, Stage::Qualified, "auto-qualified");
    let after = queued(&w.store);
    assert!(
        after[before..].iter().any(|e| matches!(
            e,
            Event::StageChanged {
                to: Stage::Qualified,
                ..
            }
        )),
        "no stage_changed notification for a configured critical stage: {:?}",
        after[before..].iter().map(Event::kind).collect::<Vec<_>>()
    );
}

// --- digest ---------------------------------------------------------------

fn digests(store: &InMemoryStore) -> Vec<Event> {
    queued(store)
        .into_iter()
        .filter(|e| e.kind() == NotificationKind::Digest)
        .collect()
}

fn overdue_lines(store: &InMemoryStore) -> usize {
    digests(store)
        .iter()
        .map(|d| match d {
            Event::Digest { items, .. } => items
                .iter()
                .filter(|i| i.kind() == "followup_overdue")
                .count(),
            _ => 0,
        })
        .sum()
}

/// Two instances whose clocks differ by a minute: the scheduled digest
/// runs on one just after a follow-up fell due; someone presses "run now"
/// on the other, whose clock is a minute behind. That run moves the
/// watermark *back*, so the next scheduled run tells the same overdue
/// follow-up again.
#[tokio::test]
async fn a_digest_run_on_a_clock_behind_the_watermark_does_not_repeat_lines() {
    let w = world();
    let out = capture(&input("ana@acme.com"), &w.policy, &w.deps)
        .await
        .unwrap();
    let due = out.followup.expect("a follow-up").due_at;

    w.clock.set(due + chrono::Duration::seconds(10));
    digest(&w.policy, &w.deps, &*w.store, &NoProgress)
        .await
        .unwrap();
    assert_eq!(overdue_lines(&w.store), 1, "told once");

    w.clock.set(due - chrono::Duration::seconds(50));
    digest(&w.policy, &w.deps, &*w.store, &NoProgress)
        .await
        .unwrap();

    w.clock.set(due + chrono::Duration::hours(2));
    digest(&w.policy, &w.deps, &*w.store, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        overdue_lines(&w.store),
        1,
        "the overdue follow-up was told again"
    );
}

/// `due_soon_hours` (like `first_digest_hours` and `stale_after_days`) is
/// a `u32` the policy file may set to anything; the digest adds it to the
/// clock with `DateTime + TimeDelta`, which panics. Either the policy
/// refuses it or the digest survives it.
#[tokio::test]
async fn a_huge_due_soon_hours_is_refused_or_harmless() {
    let policy = Policy::from_toml("[notifications]\ndue_soon_hours = 4000000000\n");
    let Ok(mut policy) = policy else {
        return; // refused with a message: fine
    };
    let w = world();
    policy.notifications.deliver_to = vec![Destination::NOTIFY];
    let (deps, store) = (w.deps.clone(), w.store.clone());
    let run = tokio::spawn(async move {
        digest(&policy, &deps, &*store, &NoProgress)
            .await
            .map(|_| ())
    })
    .await;
    if let Err(join) = run {
        panic!("the digest job panicked on an accepted policy: {join}");
    }
}

// --- quiet hours ----------------------------------------------------------

fn madrid(start: (u32, u32), end: (u32, u32)) -> QuietHours {
    QuietHours {
        start: NaiveTime::from_hms_opt(start.0, start.1, 0).unwrap(),
        end: NaiveTime::from_hms_opt(end.0, end.1, 0).unwrap(),
        time_zone: chrono_tz::Europe::Madrid,
    }
}

/// 2026-03-29 in Madrid: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
/// Quiet hours ending at 02:30 end at the first instant after the gap,
/// 03:00 CEST (as the code's comment says), not at 03:30: at 01:00 UTC the
/// local time is already past the end and `ends_after` says "not quiet".
#[test]
fn quiet_hours_ending_in_a_spring_forward_gap_end_when_the_gap_does() {
    let quiet = madrid((22, 0), (2, 30));
    let night = Utc.with_ymd_and_hms(2026, 3, 29, 0, 30, 0).unwrap();
    let end = Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap();
    assert_eq!(quiet.ends_after(end), None, "no longer quiet at 03:00 CEST");
    assert_eq!(quiet.ends_after(night), Some(end));
}

/// 2026-10-25 in Madrid: 03:00 CEST goes back to 02:00 CET (01:00 UTC).
/// At 02:15 CET (the second 02:15) quiet hours ending at 02:30 are on;
/// `ends_after` answers the *first* 02:30 (CEST), 45 minutes in the past.
#[test]
fn quiet_hours_in_a_fall_back_hour_end_after_now() {
    let quiet = madrid((22, 0), (2, 30));
    let now = Utc.with_ymd_and_hms(2026, 10, 25, 1, 15, 0).unwrap();
    let until = quiet.ends_after(now).expect("quiet at 02:15 CET");
    assert!(until > now, "quiet until {until}, before now {now}");
}
