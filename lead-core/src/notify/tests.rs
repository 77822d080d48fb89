use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveTime, TimeZone, Utc};

use super::*;
use crate::commit::{Destination, OutboxKind};
use crate::error::{Error, Result};
use crate::memory::InMemoryStore;
use crate::model::{ChangeOrigin, LeadInput, Rep, RepId, Stage, WorkingHours};
use crate::policy::Policy;
use crate::ports::{Delivery, ManualClock, Notifier, OutboxStore, SequentialIds, SyncState};
use crate::usecase::{AssignTo, Deps, NoProgress, assign, capture, change_stage};

fn monday_noon() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

struct World {
    store: Arc<InMemoryStore>,
    clock: Arc<ManualClock>,
    deps: Deps,
    policy: Policy,
}

fn rep(email: &str) -> Rep {
    let mut r = Rep::new(RepId::parse(email).unwrap(), email);
    r.working_hours = WorkingHours::always();
    r
}

fn world(reps: &[&str]) -> World {
    let store = Arc::new(InMemoryStore::with_reps(reps.iter().map(|r| rep(r))));
    let clock = Arc::new(ManualClock::new(monday_noon()));
    let deps = Deps::with(
        store.clone(),
        clock.clone(),
        Arc::new(SequentialIds::default()),
    );
    let mut policy = Policy::default();
    policy.notifications.deliver_to = vec![Destination::NOTIFY, Destination::WEBHOOKS];
    World {
        store,
        clock,
        deps,
        policy,
    }
}

/// A lead scoring 30 (name + company + direct channel): medium or high
/// depending on the thresholds.
fn input(email: &str) -> LeadInput {
    LeadInput {
        email: Some(email.into()),
        first_name: Some("Ana".into()),
        last_name: Some("López".into()),
        company: Some("Acme SL".into()),
        ..Default::default()
    }
}

fn events(store: &InMemoryStore, destination: &Destination) -> Vec<Event> {
    store
        .outbox()
        .into_iter()
        .filter(|e| &e.destination == destination)
        .inspect(|e| assert_eq!(e.kind, OutboxKind::Notification))
        .map(|e| serde_json::from_value(e.payload).expect("an event"))
        .collect()
}

fn kinds(events: &[Event]) -> Vec<NotificationKind> {
    events.iter().map(Event::kind).collect()
}

#[tokio::test]
async fn a_high_priority_capture_is_announced_to_every_consumer_in_its_commit() {
    let mut w = world(&["rep1@sales.com"]);
    w.policy.priority.high = 30;
    let out = capture(&input("ana@acme.com"), &w.policy, &w.deps)
        .await
        .unwrap();

    for destination in [Destination::NOTIFY, Destination::WEBHOOKS] {
        let queued = events(&w.store, &destination);
        assert_eq!(kinds(&queued), [NotificationKind::HighPriorityLead]);
        let lead = queued[0].lead().unwrap();
        assert_eq!(lead.ext_id, out.lead.ext_id);
        assert_eq!(lead.name.as_deref(), Some("Ana López"));
        assert_eq!(
            queued[0].recipient().map(RepId::as_str),
            Some("rep1@sales.com"),
            "the assigned rep hears of it in person"
        );
    }
    let crm: Vec<_> = w
        .store
        .outbox()
        .into_iter()
        .filter(|e| e.destination == Destination::CRM)
        .collect();
    assert_eq!(crm.len(), 2, "the CRM's entries are untouched");
}

#[tokio::test]
async fn a_medium_capture_tells_only_its_rep_and_nothing_is_queued_without_consumers() {
    let w = world(&["rep1@sales.com"]);
    capture(&input("ana@acme.com"), &w.policy, &w.deps)
        .await
        .unwrap();
    let queued = events(&w.store, &Destination::NOTIFY);
    assert_eq!(kinds(&queued), [NotificationKind::Assigned]);
    assert!(
        matches!(&queued[0], Event::Assigned { from: None, to, .. } if to.as_str() == "rep1@sales.com")
    );

    let mut quiet = world(&["rep1@sales.com"]);
    quiet.policy.notifications.deliver_to.clear();
    quiet.policy.priority.high = 30;
    capture(&input("bob@acme.com"), &quiet.policy, &quiet.deps)
        .await
        .unwrap();
    assert!(
        quiet
            .store
            .outbox()
            .iter()
            .all(|e| e.kind != OutboxKind::Notification)
    );
}

#[tokio::test]
async fn a_reassignment_tells_the_new_rep_who_had_it() {
    let w = world(&["rep1@sales.com", "rep2@sales.com"]);
    let lead = capture(&input("ana@acme.com"), &w.policy, &w.deps)
        .await
        .unwrap()
        .lead;
    let before = events(&w.store, &Destination::NOTIFY).len();
    let to = RepId::parse("rep2@sales.com").unwrap();
    let first = lead.assigned_to.clone().unwrap();
    let target = if first == to {
        RepId::parse("rep1@sales.com").unwrap()
    } else {
        to
    };
    assign(
        &lead.ext_id,
        AssignTo::Rep(target.clone()),
        ChangeOrigin::Local,
        None,
        &w.policy,
        &w.deps,
    )
    .await
    .unwrap();
    let queued = events(&w.store, &Destination::NOTIFY);
    assert_eq!(queued.len(), before + 1);
    match queued.last().unwrap() {
        Event::Assigned {
            to,
            from,
            lead: card,
        } => {
            assert_eq!(to, &target);
            assert_eq!(from.as_ref(), Some(&first));
            assert_eq!(card.assigned_to.as_ref(), Some(&target));
        }
        other => panic!("expected an assignment, got {other:?}"),
    }

    // The same rep again changes nothing and tells nobody.
    assign(
        &lead.ext_id,
        AssignTo::Rep(target),
        ChangeOrigin::Local,
        None,
        &w.policy,
        &w.deps,
    )
    .await
    .unwrap();
    assert_eq!(events(&w.store, &Destination::NOTIFY).len(), before + 1);
}

#[tokio::test]
async fn only_critical_stages_are_announced_wherever_the_change_was_made() {
    let w = world(&["rep1@sales.com"]);
    let lead = capture(&input("ana@acme.com"), &w.policy, &w.deps)
        .await
        .unwrap()
        .lead;
    let before = events(&w.store, &Destination::NOTIFY).len();
    for (stage, origin) in [
        (Stage::Contacted, ChangeOrigin::Local),
        (Stage::Qualified, ChangeOrigin::Local),
        (Stage::Negotiation, ChangeOrigin::Local),
        (Stage::Won, ChangeOrigin::Crm),
    ] {
        change_stage(&lead.ext_id, stage, None, origin, None, &w.policy, &w.deps)
            .await
            .unwrap();
    }
    let queued = events(&w.store, &Destination::NOTIFY);
    assert_eq!(kinds(&queued[before..]), [NotificationKind::StageChanged]);
    assert!(matches!(
        &queued[before],
        Event::StageChanged {
            from: Stage::Negotiation,
            to: Stage::Won,
            origin: ChangeOrigin::Crm,
            ..
        }
    ));
}

/// A channel that records what it sent and answers from a script (then
/// `Sent`).
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<Notification>>,
    answers: Mutex<VecDeque<Result<Delivery>>>,
}

impl Recorder {
    fn answering(answers: impl IntoIterator<Item = Result<Delivery>>) -> Arc<Self> {
        Arc::new(Recorder {
            answers: Mutex::new(answers.into_iter().collect()),
            ..Recorder::default()
        })
    }

    fn sent_ids(&self) -> Vec<uuid::Uuid> {
        self.sent.lock().unwrap().iter().map(|n| n.id).collect()
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
            self.sent.lock().unwrap().push(notification.clone());
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

async fn capture_many(w: &World, n: usize) {
    for i in 0..n {
        capture(&input(&format!("lead{i}@acme.com")), &w.policy, &w.deps)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_retry_sends_only_to_the_channel_that_failed_and_honours_retry_after() {
    let w = world(&["rep1@sales.com"]);
    capture_many(&w, 1).await;
    let slack = Recorder::answering([Err(Error::RateLimited {
        retry_after: Some(Duration::from_secs(600)),
    })]);
    let email = Recorder::answering([]);
    let channels = [
        channel("slack", slack.clone()),
        channel("email", email.clone()),
    ];
    let config = DeliverConfig::new(Destination::NOTIFY);

    let first = deliver_once(&w.deps, &*w.store, &*w.store, &channels, &config)
        .await
        .unwrap();
    assert_eq!((first.claimed, first.retried, first.acked), (1, 1, 0));
    assert!(
        first
            .outcomes
            .contains(&("slack".into(), NotificationKind::Assigned, Sent::Retried))
    );
    assert_eq!(email.sent_ids().len(), 1);

    // Not before Slack's Retry-After.
    w.clock.advance(chrono::Duration::seconds(599));
    let early = deliver_once(&w.deps, &*w.store, &*w.store, &channels, &config)
        .await
        .unwrap();
    assert_eq!(early.claimed, 0);

    w.clock.advance(chrono::Duration::seconds(2));
    let second = deliver_once(&w.deps, &*w.store, &*w.store, &channels, &config)
        .await
        .unwrap();
    assert_eq!((second.claimed, second.acked), (1, 1));
    assert_eq!(slack.sent_ids().len(), 1);
    assert_eq!(email.sent_ids().len(), 1, "the e-mail is not sent twice");
    assert_eq!(
        w.store.pending_count(&Destination::NOTIFY).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn a_permanent_failure_is_parked_and_a_requeue_sends_only_what_was_missing() {
    let w = world(&["rep1@sales.com"]);
    capture_many(&w, 1).await;
    let slack = Recorder::answering([Err(Error::invalid(
        "slack",
        "no_service",
        "Slack answered 404 no_service",
    ))]);
    let email = Recorder::answering([Ok(Delivery::Skipped("no rep to write to"))]);
    let channels = [
        channel("slack", slack.clone()),
        channel("email", email.clone()),
    ];
    let config = DeliverConfig::new(Destination::NOTIFY);
    let report = deliver_once(&w.deps, &*w.store, &*w.store, &channels, &config)
        .await
        .unwrap();
    assert_eq!(report.dead_lettered, 1);
    assert!(report.outcomes.contains(&(
        "slack".into(),
        NotificationKind::Assigned,
        Sent::DeadLettered
    )));
    assert!(
        report
            .outcomes
            .contains(&("email".into(), NotificationKind::Assigned, Sent::Skipped))
    );
    let dead = w
        .store
        .dead_letters(&Destination::NOTIFY, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].error.contains("slack:") && dead[0].error.contains("no_service"));

    w.store
        .requeue(&Destination::NOTIFY, dead[0].entry.id, w.clock.now())
        .await
        .unwrap();
    let again = deliver_once(&w.deps, &*w.store, &*w.store, &channels, &config)
        .await
        .unwrap();
    assert_eq!(again.acked, 1);
    assert_eq!(slack.sent_ids(), [dead[0].entry.id]);
}

#[tokio::test]
async fn temporary_failures_give_up_after_the_attempt_budget() {
    let w = world(&["rep1@sales.com"]);
    capture_many(&w, 1).await;
    let down = Recorder::answering((0..3).map(|_| Err(Error::unavailable("Slack answered 503"))));
    let channels = [channel("slack", down.clone())];
    let config = DeliverConfig {
        max_attempts: 3,
        ..DeliverConfig::new(Destination::NOTIFY)
    };
    let mut parked = 0;
    for _ in 0..3 {
        let report = deliver_once(&w.deps, &*w.store, &*w.store, &channels, &config)
            .await
            .unwrap();
        parked += report.dead_lettered;
        w.clock.advance(chrono::Duration::hours(2));
    }
    assert_eq!(parked, 1);
    assert_eq!(w.store.dead_count(&Destination::NOTIFY).await.unwrap(), 1);
    assert!(down.sent_ids().is_empty());
}

/// A channel whose `n`-th send never finishes: the worker dies there.
struct Hangs {
    inner: Arc<Recorder>,
    at: usize,
    calls: Mutex<usize>,
    reached: tokio::sync::Notify,
}

#[async_trait]
impl Notifier for Hangs {
    async fn notify(&self, notification: &Notification) -> Result<Delivery> {
        let call = {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            *calls
        };
        if call == self.at {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.notify(notification).await
    }
}

#[tokio::test]
async fn a_worker_lost_mid_batch_leaves_nothing_to_send_twice() {
    let w = world(&["rep1@sales.com"]);
    capture_many(&w, 5).await;
    let recorder = Recorder::answering([]);
    let hangs = Arc::new(Hangs {
        inner: recorder.clone(),
        at: 4,
        calls: Mutex::new(0),
        reached: tokio::sync::Notify::new(),
    });
    let config = DeliverConfig::new(Destination::NOTIFY);
    let worker = {
        let (deps, store, config, hangs) = (
            w.deps.clone(),
            w.store.clone(),
            config.clone(),
            hangs.clone(),
        );
        tokio::spawn(async move {
            let channels = [channel("slack", hangs)];
            deliver_once(&deps, &*store, &*store, &channels, &config).await
        })
    };
    hangs.reached.notified().await;
    worker.abort();
    assert_eq!(recorder.sent_ids().len(), 3);

    // Another worker, after the dead one's lease.
    w.clock
        .advance(chrono::Duration::from_std(config.lease).unwrap() + chrono::Duration::seconds(1));
    let next = DeliverConfig {
        worker: "other".into(),
        ..config
    };
    let report = deliver_once(
        &w.deps,
        &*w.store,
        &*w.store,
        &[channel("slack", recorder.clone())],
        &next,
    )
    .await
    .unwrap();
    assert_eq!(report.claimed, 2, "only the unfinished entries come back");
    let sent = recorder.sent_ids();
    let distinct: BTreeSet<_> = sent.iter().collect();
    assert_eq!((sent.len(), distinct.len()), (5, 5));
}

#[tokio::test]
async fn a_sent_but_unacknowledged_entry_is_not_sent_again() {
    let w = world(&["rep1@sales.com"]);
    capture_many(&w, 1).await;
    let recorder = Recorder::answering([]);
    let entry = w
        .store
        .outbox()
        .into_iter()
        .find(|e| e.destination == Destination::NOTIFY)
        .unwrap();
    // As if a worker sent it and died before its acknowledgement.
    w.store
        .set_watermark(&mark_name(&Destination::NOTIFY, entry.id, "slack"), "x")
        .await
        .unwrap();
    let report = deliver_once(
        &w.deps,
        &*w.store,
        &*w.store,
        &[channel("slack", recorder.clone())],
        &DeliverConfig::new(Destination::NOTIFY),
    )
    .await
    .unwrap();
    assert_eq!(report.acked, 1);
    assert!(recorder.sent_ids().is_empty());
}

#[tokio::test]
async fn quiet_hours_hold_everything_until_they_end() {
    let w = world(&["rep1@sales.com"]);
    capture_many(&w, 1).await;
    let recorder = Recorder::answering([]);
    let config = DeliverConfig {
        quiet_hours: Some(QuietHours {
            start: NaiveTime::from_hms_opt(11, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(13, 0, 0).unwrap(),
            time_zone: chrono_tz::Tz::UTC,
        }),
        ..DeliverConfig::new(Destination::NOTIFY)
    };
    let channels = [channel("slack", recorder.clone())];
    let held = deliver_once(&w.deps, &*w.store, &*w.store, &channels, &config)
        .await
        .unwrap();
    assert_eq!(held.claimed, 0);
    assert_eq!(
        held.quiet_until,
        Some(Utc.with_ymd_and_hms(2026, 11, 23, 13, 0, 0).unwrap())
    );
    w.clock
        .set(Utc.with_ymd_and_hms(2026, 11, 23, 13, 0, 0).unwrap());
    let sent = deliver_once(&w.deps, &*w.store, &*w.store, &channels, &config)
        .await
        .unwrap();
    assert_eq!(sent.acked, 1);
}

#[test]
fn quiet_hours_over_midnight_in_a_time_zone() {
    let quiet = QuietHours {
        start: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
        end: NaiveTime::from_hms_opt(7, 0, 0).unwrap(),
        time_zone: chrono_tz::Europe::Madrid,
    };
    // 05:30 in Madrid (UTC+1 in December).
    let early = Utc.with_ymd_and_hms(2026, 12, 3, 4, 30, 0).unwrap();
    assert_eq!(
        quiet.ends_after(early),
        Some(Utc.with_ymd_and_hms(2026, 12, 3, 6, 0, 0).unwrap())
    );
    let evening = Utc.with_ymd_and_hms(2026, 12, 3, 21, 15, 0).unwrap();
    assert_eq!(
        quiet.ends_after(evening),
        Some(Utc.with_ymd_and_hms(2026, 12, 4, 6, 0, 0).unwrap())
    );
    assert_eq!(
        quiet.ends_after(Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()),
        None
    );
}

#[tokio::test]
async fn the_digest_tells_each_line_once_per_rep_as_it_crosses_its_threshold() {
    let mut w = world(&["rep1@sales.com"]);
    // Later than any first follow-up's due time.
    w.policy.notifications.stale_after_days.medium = 10;
    w.policy.notifications.stale_after_days.low = 10;
    w.policy.notifications.due_soon_hours = 24;
    let lead = capture(&input("ana@acme.com"), &w.policy, &w.deps)
        .await
        .unwrap();
    let task = lead.followup.clone().expect("a follow-up");
    let digests = |store: &InMemoryStore| -> Vec<Event> {
        events(store, &Destination::NOTIFY)
            .into_iter()
            .filter(|e| e.kind() == NotificationKind::Digest)
            .collect()
    };

    // Just captured: its follow-up was created inside the due-soon window
    // when it is due within a day.
    let first = digest(&w.policy, &w.deps, &*w.store, &NoProgress)
        .await
        .unwrap();
    let soon = task.due_at - monday_noon() <= chrono::Duration::hours(24);
    assert_eq!(first["followup_due"], u64::from(soon));

    // Past the due time: overdue, once.
    w.clock.set(task.due_at + chrono::Duration::minutes(5));
    let second = digest(&w.policy, &w.deps, &*w.store, &NoProgress)
        .await
        .unwrap();
    assert_eq!(second["followup_overdue"], 1);
    let again = digest(&w.policy, &w.deps, &*w.store, &NoProgress)
        .await
        .unwrap();
    assert_eq!((again["followup_overdue"], again["digests"]), (0, 0));

    // Ten days without contact: stale, once.
    w.clock
        .set(lead.lead.created_at + chrono::Duration::days(10) + chrono::Duration::minutes(1));
    let stale = digest(&w.policy, &w.deps, &*w.store, &NoProgress)
        .await
        .unwrap();
    assert_eq!(stale["stale_lead"], 1);
    let all = digests(&w.store);
    let last = all.last().expect("a digest");
    match last {
        Event::Digest { rep, items } => {
            assert_eq!(rep.as_ref().map(RepId::as_str), Some("rep1@sales.com"));
            assert!(matches!(
                &items[..],
                [DigestItem::StaleLead { days: 10, .. }]
            ));
        }
        other => panic!("expected a digest, got {other:?}"),
    }
    let quiet = digest(&w.policy, &w.deps, &*w.store, &NoProgress)
        .await
        .unwrap();
    assert_eq!(quiet["digests"], 0);
    assert_eq!(
        all.len() as u64,
        u64::from(soon) + 2,
        "one digest per run with something to tell"
    );
}

#[tokio::test]
async fn a_contacted_or_closed_lead_is_not_stale() {
    let mut w = world(&["rep1@sales.com"]);
    w.policy.notifications.stale_after_days.medium = 3;
    w.policy.notifications.stale_after_days.low = 3;
    let open = capture(&input("ana@acme.com"), &w.policy, &w.deps)
        .await
        .unwrap()
        .lead;
    let won = capture(&input("bob@acme.com"), &w.policy, &w.deps)
        .await
        .unwrap()
        .lead;
    w.clock.advance(chrono::Duration::days(1));
    change_stage(
        &open.ext_id,
        Stage::Contacted,
        None,
        ChangeOrigin::Local,
        None,
        &w.policy,
        &w.deps,
    )
    .await
    .unwrap();
    change_stage(
        &won.ext_id,
        Stage::Lost,
        None,
        ChangeOrigin::Local,
        None,
        &w.policy,
        &w.deps,
    )
    .await
    .unwrap();
    digest(&w.policy, &w.deps, &*w.store, &NoProgress)
        .await
        .unwrap();
    w.clock
        .advance(chrono::Duration::days(2) + chrono::Duration::minutes(1));
    let counts = digest(&w.policy, &w.deps, &*w.store, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        counts["stale_lead"], 0,
        "contacted a day in: stale a day later"
    );
    w.clock.advance(chrono::Duration::days(1));
    let counts = digest(&w.policy, &w.deps, &*w.store, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        counts["stale_lead"], 1,
        "only the open lead, three days after its contact"
    );
}
