//! Use-case tests against mocked and in-memory ports.

use std::sync::Arc;

use chrono::{TimeZone, Utc};

use super::*;
use crate::commit::OutboxKind;
use crate::memory::InMemoryStore;
use crate::model::{
    ChangeOrigin, EventKind, LeadEvent, LeadInput, Rep, RepId, Stage, WorkingHours,
};
use crate::policy::Policy;
use crate::ports::CaptureContext;
use crate::ports::{LeadReads, LeadStore, ManualClock, MockLeadStore, RepStore, SequentialIds};
use crate::usecase::Deps;

fn monday_noon() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

fn deps_with(store: Arc<dyn crate::ports::Store>) -> Deps {
    Deps::with(
        store,
        Arc::new(ManualClock::new(monday_noon())),
        Arc::new(SequentialIds::default()),
    )
}

/// A mocked capture and write side; reps and reads from an empty store.
fn deps_with_mock(store: MockLeadStore) -> Deps {
    Deps {
        store: Arc::new(store),
        ..deps_with(Arc::new(InMemoryStore::new()))
    }
}

fn rep(email: &str) -> Rep {
    let mut r = Rep::new(RepId::parse(email).unwrap(), email);
    r.working_hours = WorkingHours::always();
    r
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

#[tokio::test]
async fn capture_stores_scores_routes_and_plans_a_followup_in_one_commit() {
    let store = Arc::new(InMemoryStore::with_reps([rep("rep1@sales.com")]));
    let deps = deps_with(store.clone());
    let out = capture(&input("ana@acme.com"), &Policy::default(), &deps)
        .await
        .unwrap();

    assert_eq!(out.lead.version, 1);
    assert_eq!(
        out.lead.score.value(),
        30,
        "name + company + direct channel"
    );
    assert_eq!(
        out.lead.assigned_to.as_ref().map(RepId::as_str),
        Some("rep1@sales.com")
    );
    assert!(out.lead.routing.is_some());
    let task = out.followup.expect("follow-up planned");
    assert!(task.due_at > monday_noon());
    assert_eq!(store.followups(), vec![task]);
    let kinds: Vec<OutboxKind> = store.outbox().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [OutboxKind::LeadCreated, OutboxKind::FollowUpCreated]
    );
    assert_eq!(store.rep_states().await.unwrap()[0].load.open_leads, 1);
}

#[tokio::test]
async fn only_the_email_makes_a_capture_invalid_and_other_values_are_kept() {
    let store = Arc::new(InMemoryStore::new());
    let clock = Arc::new(ManualClock::new(monday_noon()));
    let deps = Deps {
        clock: clock.clone(),
        ..deps_with(store.clone())
    };
    let bad = LeadInput {
        email: Some("nope".into()),
        phone: Some("12".into()),
        ..Default::default()
    };
    match capture(&bad, &Policy::default(), &deps).await {
        Err(Error::Invalid { fields }) => {
            let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
            assert_eq!(names, ["email"], "the phone is not a reason to refuse");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    let odd = LeadInput {
        phone: Some("call me maybe 12".into()),
        website: Some("not a url".into()),
        budget: Some("lots".into()),
        first_name: Some("A\u{0}na".into()),
        ..input("ana@acme.com")
    };
    let out = capture(&odd, &Policy::default(), &deps)
        .await
        .expect("stored despite the odd fields");
    let kept: Vec<(&str, &str, Option<&str>)> = out
        .warnings
        .iter()
        .map(|w| (w.field.as_str(), w.code.as_str(), w.value.as_deref()))
        .collect();
    assert_eq!(
        kept,
        [
            ("first_name", "invalid_character", Some("A\u{FFFD}na")),
            ("phone", "invalid_phone", Some("call me maybe 12")),
            ("website", "invalid_url", Some("not a url")),
            ("budget", "invalid_amount", Some("lots")),
        ]
    );
    assert_eq!(out.lead.fields.first_name.as_deref(), Some("Ana"));
    assert_eq!(out.lead.fields.phone, None);
    let stored = store.get(&out.lead.ext_id).await.unwrap().expect("stored");
    assert_eq!(stored.fields.warnings, out.warnings, "flagged on the lead");

    // A later submission that gives usable values clears those fields'
    // warnings (a phone, and the first name `input` sends) and keeps the
    // others.
    let fixed = LeadInput {
        phone: Some("+34 612 345 678".into()),
        ..input("ana@acme.com")
    };
    clock.advance(chrono::Duration::minutes(5));
    let merged = capture(&fixed, &Policy::default(), &deps).await.unwrap();
    assert!(merged.warnings.is_empty());
    let fields = |lead: &crate::lead::Lead| -> Vec<(String, Option<String>)> {
        lead.fields
            .warnings
            .iter()
            .map(|w| (w.field.clone(), w.value.clone()))
            .collect()
    };
    assert_eq!(
        fields(&merged.lead),
        [
            ("website".to_owned(), Some("not a url".to_owned())),
            ("budget".to_owned(), Some("lots".to_owned()))
        ]
    );

    // A later unreadable phone is kept even though the field keeps the
    // earlier usable number; so is a second unreadable website.
    let worse = LeadInput {
        phone: Some("call me at 5pm".into()),
        website: Some("also not a url".into()),
        ..input("ana@acme.com")
    };
    clock.advance(chrono::Duration::minutes(5));
    let merged = capture(&worse, &Policy::default(), &deps).await.unwrap();
    assert_eq!(
        merged.lead.fields.phone.as_ref().map(|p| p.as_str()),
        Some("+34612345678")
    );
    let kept = fields(&merged.lead);
    for (field, value) in [
        ("phone", "call me at 5pm"),
        ("website", "also not a url"),
        ("website", "not a url"),
        ("budget", "lots"),
    ] {
        assert!(
            kept.contains(&(field.to_owned(), Some(value.to_owned()))),
            "{field} = {value} is kept: {kept:?}"
        );
    }
}

#[tokio::test]
async fn national_phones_are_read_in_the_leads_country() {
    let deps = deps_with(Arc::new(InMemoryStore::new()));
    for (email, country, phone) in [
        ("a@acme.com", "ES", "+34612345678"),
        ("b@acme.com", "España", "+34612345678"),
    ] {
        let form = LeadInput {
            phone: Some("612 345 678".into()),
            country: Some(country.into()),
            ..input(email)
        };
        let out = capture(&form, &Policy::default(), &deps).await.unwrap();
        assert_eq!(
            out.lead.fields.phone.map(|p| p.to_string()).as_deref(),
            Some(phone)
        );
        assert!(out.warnings.is_empty());
    }
    // Without a country the default region (US) reads it, and it is not a
    // US number: kept as written.
    let form = LeadInput {
        phone: Some("612 345 678".into()),
        ..input("c@acme.com")
    };
    let out = capture(&form, &Policy::default(), &deps).await.unwrap();
    assert_eq!(out.lead.fields.phone, None);
    assert_eq!(out.warnings[0].value.as_deref(), Some("612 345 678"));
    let spain = Policy {
        default_region: crate::model::Region::parse("ES").unwrap(),
        ..Policy::default()
    };
    let out = capture(
        &LeadInput {
            phone: Some("612 345 678".into()),
            ..input("d@acme.com")
        },
        &spain,
        &deps,
    )
    .await
    .unwrap();
    assert_eq!(out.lead.fields.phone.unwrap().as_str(), "+34612345678");
}

fn auto_qualifying() -> Policy {
    let mut policy = Policy::default();
    policy.bant.auto_qualify_enabled = true;
    policy
}

#[tokio::test]
async fn bant_auto_qualify_moves_a_lead_to_qualified_at_capture() {
    let deps = deps_with(Arc::new(InMemoryStore::new()));
    let form = LeadInput {
        budget: Some("20000 EUR".into()),
        job_title: Some("CEO".into()),
        message: Some("We need a demo".into()),
        timeline: Some("this month".into()),
        ..input("ceo@acme.com")
    };
    let out = capture(&form, &auto_qualifying(), &deps).await.unwrap();
    assert_eq!(out.lead.stage, Stage::Qualified);
    assert_eq!(out.lead.probability_pct, 20);
    assert_eq!(out.lead.history.len(), 1);
    assert_eq!(out.lead.history[0].from, Stage::New);
    let off = capture(
        &LeadInput {
            email: Some("cfo@acme.com".into()),
            ..form.clone()
        },
        &Policy::default(),
        &deps,
    )
    .await
    .unwrap();
    assert_eq!(off.lead.stage, Stage::New, "off by default");
    let weak = capture(
        &LeadInput {
            budget: None,
            timeline: None,
            ..input("dev@acme.com")
        },
        &auto_qualifying(),
        &deps,
    )
    .await
    .unwrap();
    assert_eq!(weak.lead.stage, Stage::New, "below the threshold");
}

#[tokio::test]
async fn bant_auto_qualify_moves_a_lead_when_an_event_completes_bant() {
    let store = Arc::new(InMemoryStore::new());
    let deps = deps_with(store.clone());
    // Budget, authority and timeline: 3 of 4 would qualify, so leave the
    // timeline out: B + A = 2, and a demo request adds N.
    let form = LeadInput {
        budget: Some("20000 EUR".into()),
        job_title: Some("CEO".into()),
        message: Some("Hello".into()),
        ..input("ceo@acme.com")
    };
    let policy = auto_qualifying();
    let out = capture(&form, &policy, &deps).await.unwrap();
    assert_eq!(out.lead.stage, Stage::New);
    let visit = LeadEvent {
        kind: EventKind::PageVisit,
        at: monday_noon(),
        properties: Default::default(),
    };
    let lead = record_event(&out.lead.ext_id, visit, &policy, &deps)
        .await
        .unwrap();
    assert_eq!(lead.stage, Stage::New, "a page visit is no need");
    let demo = LeadEvent {
        kind: EventKind::DemoRequest,
        at: monday_noon(),
        properties: Default::default(),
    };
    let lead = record_event(&out.lead.ext_id, demo, &policy, &deps)
        .await
        .unwrap();
    assert_eq!(lead.stage, Stage::Qualified);
    assert_eq!(lead.bant.as_ref().map(|b| b.score), Some(3));
    let last = lead.history.last().expect("history");
    assert_eq!((last.from, last.to), (Stage::New, Stage::Qualified));
    let kinds: Vec<OutboxKind> = store.outbox().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds.last(),
        Some(&OutboxKind::StageChanged),
        "the CRM hears of the stage change: {kinds:?}"
    );
}

#[tokio::test]
async fn a_failing_store_leaves_no_half_written_lead() {
    let mut store = MockLeadStore::new();
    store
        .expect_capture_context()
        .returning(|_, _, _, _| Ok(CaptureContext::default()));
    store
        .expect_commit()
        .times(1)
        .returning(|_| Err(Error::unavailable("connection refused")));
    let deps = deps_with_mock(store);

    let err = capture(&input("ana@acme.com"), &Policy::default(), &deps)
        .await
        .unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    // `times(1)`: the only write attempted was the single atomic commit, and it was not retried.
}

#[tokio::test]
async fn an_outage_mid_capture_writes_nothing_and_recovers() {
    let store = Arc::new(InMemoryStore::with_reps([rep("rep1@sales.com")]));
    let deps = deps_with(store.clone());
    store.set_unavailable(true);
    assert!(
        capture(&input("ana@acme.com"), &Policy::default(), &deps)
            .await
            .unwrap_err()
            .is_temporary()
    );
    store.set_unavailable(false);
    assert!(store.leads().is_empty() && store.outbox().is_empty() && store.followups().is_empty());
    assert_eq!(store.rep_states().await.unwrap()[0].load.open_leads, 0);
    capture(&input("ana@acme.com"), &Policy::default(), &deps)
        .await
        .unwrap();
    assert_eq!(store.leads().len(), 1);
}

#[tokio::test]
async fn a_second_capture_with_the_same_email_merges_instead_of_storing_twice() {
    let store = Arc::new(InMemoryStore::with_reps([rep("rep1@sales.com")]));
    let deps = deps_with(store.clone());
    let first = capture(&input("ana@acme.com"), &Policy::default(), &deps)
        .await
        .unwrap();
    let mut again = input("ANA+news@acme.com");
    again.phone = Some("+34 612 34 56 78".into());
    let second = capture(&again, &Policy::default(), &deps).await.unwrap();

    assert_eq!(second.lead.ext_id, first.lead.ext_id);
    assert!(second.merged.is_some());
    assert_eq!(store.leads().len(), 1);
    assert_eq!(
        second.lead.fields.phone.as_ref().map(|p| p.as_str()),
        Some("+34612345678")
    );
    assert_eq!(second.lead.version, 2);
    assert_eq!(
        store.rep_states().await.unwrap()[0].load.open_leads,
        1,
        "a merge is not a new assignment"
    );
}

#[tokio::test]
async fn a_second_capture_merges_when_the_store_is_a_mock_too() {
    let mut store = MockLeadStore::new();
    let existing = {
        let mem = InMemoryStore::new();
        let deps = deps_with(Arc::new(mem));
        capture(&input("ana@acme.com"), &Policy::default(), &deps)
            .await
            .unwrap()
            .lead
    };
    let found = existing.clone();
    store
        .expect_capture_context()
        .withf(|key, email, _, _| key.is_none() && email == "ana@acme.com")
        .returning(move |_, _, _, _| {
            Ok(CaptureContext {
                existing: Some(found.clone()),
                ..CaptureContext::default()
            })
        });
    let ext_id = existing.ext_id.clone();
    store
        .expect_commit()
        .times(1)
        .withf(move |c| {
            c.leads.len() == 1 && c.leads[0].expected_version == Some(1) && c.merges.len() == 1
        })
        .returning(|c| Ok(c.leads.into_iter().map(|w| w.lead).collect()));
    let deps = deps_with_mock(store);
    let out = capture(&input("ana@acme.com"), &Policy::default(), &deps)
        .await
        .unwrap();
    assert_eq!(out.lead.ext_id, ext_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_captures_of_one_email_store_one_lead() {
    let store = Arc::new(InMemoryStore::with_reps([rep("rep1@sales.com")]));
    let deps = Deps::with(
        store.clone(),
        Arc::new(crate::ports::SystemClock),
        Arc::new(crate::ports::RandomIds),
    );
    let policy = Arc::new(Policy::default());
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (deps, policy) = (deps.clone(), policy.clone());
            tokio::spawn(async move {
                let mut lead = input("same@acme.com");
                lead.message = Some(format!("submission {i}"));
                capture(&lead, &policy, &deps).await
            })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().unwrap().lead.ext_id);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(store.leads().len(), 1);
}

#[tokio::test]
async fn stage_changes_follow_the_pipeline_and_free_capacity_when_closed() {
    let store = Arc::new(InMemoryStore::with_reps([rep("rep1@sales.com")]));
    let deps = deps_with(store.clone());
    let policy = Policy::default();
    let lead = capture(&input("ana@acme.com"), &policy, &deps)
        .await
        .unwrap()
        .lead;
    let id = lead.ext_id.clone();

    let refused = change_stage(
        &id,
        Stage::Won,
        None,
        ChangeOrigin::Local,
        None,
        &policy,
        &deps,
    )
    .await;
    assert!(matches!(refused, Err(Error::NotAllowed(_))), "{refused:?}");
    let stale = change_stage(
        &id,
        Stage::Contacted,
        None,
        ChangeOrigin::Local,
        Some(99),
        &policy,
        &deps,
    )
    .await;
    assert!(matches!(stale, Err(Error::Conflict(_))), "{stale:?}");

    let contacted = change_stage(
        &id,
        Stage::Contacted,
        Some("called".into()),
        ChangeOrigin::Local,
        Some(1),
        &policy,
        &deps,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            contacted.stage,
            contacted.probability_pct,
            contacted.version
        ),
        (Stage::Contacted, 10, 2)
    );
    assert!(contacted.last_contacted_at.is_some());
    let lost = change_stage(
        &id,
        Stage::Lost,
        None,
        ChangeOrigin::Crm,
        None,
        &policy,
        &deps,
    )
    .await
    .unwrap();
    assert_eq!(lost.history.len(), 2);
    assert_eq!(store.rep_states().await.unwrap()[0].load.open_leads, 0);
    let stage_pushes = store
        .outbox()
        .iter()
        .filter(|e| e.kind == OutboxKind::StageChanged)
        .count();
    assert_eq!(
        stage_pushes, 1,
        "the change that came from the CRM is not echoed back"
    );
    change_stage(
        &id,
        Stage::Nurturing,
        None,
        ChangeOrigin::Local,
        None,
        &policy,
        &deps,
    )
    .await
    .unwrap();
    assert_eq!(
        store.rep_states().await.unwrap()[0].load.open_leads,
        1,
        "reopening a lost lead takes its place back"
    );
}

#[tokio::test]
async fn reassigning_moves_the_open_lead_between_reps() {
    let store = Arc::new(InMemoryStore::with_reps([
        rep("rep1@sales.com"),
        rep("rep2@sales.com"),
    ]));
    let deps = deps_with(store.clone());
    let policy = Policy::default();
    let lead = capture(&input("ana@acme.com"), &policy, &deps)
        .await
        .unwrap()
        .lead;
    let other = ["rep1@sales.com", "rep2@sales.com"]
        .into_iter()
        .find(|r| Some(*r) != lead.assigned_to.as_ref().map(RepId::as_str))
        .unwrap();
    let moved = assign(
        &lead.ext_id,
        AssignTo::Rep(RepId::parse(other).unwrap()),
        ChangeOrigin::Local,
        None,
        &policy,
        &deps,
    )
    .await
    .unwrap();
    assert_eq!(moved.assigned_to.as_ref().map(RepId::as_str), Some(other));
    let loads: Vec<u32> = store
        .rep_states()
        .await
        .unwrap()
        .iter()
        .map(|s| s.load.open_leads)
        .collect();
    assert_eq!(loads.iter().sum::<u32>(), 1);
    let unknown = assign(
        &lead.ext_id,
        AssignTo::Rep(RepId::parse("ghost@sales.com").unwrap()),
        ChangeOrigin::Local,
        None,
        &policy,
        &deps,
    )
    .await;
    assert!(matches!(unknown, Err(Error::Invalid { .. })), "{unknown:?}");
}

#[tokio::test]
async fn events_raise_the_behavioral_score_and_segments() {
    let store = Arc::new(InMemoryStore::new());
    let deps = deps_with(store.clone());
    let policy = Policy::default();
    let lead = capture(&input("ana@acme.com"), &policy, &deps)
        .await
        .unwrap()
        .lead;
    assert!(lead.segments.contains(&"behavior:new".to_string()));
    let event = LeadEvent {
        kind: EventKind::DemoRequest,
        at: monday_noon(),
        properties: Default::default(),
    };
    let updated = record_event(&lead.ext_id, event, &policy, &deps)
        .await
        .unwrap();
    assert_eq!(updated.behavioral_score.value(), 20);
    assert!(updated.segments.contains(&"behavior:engaged".to_string()));
    assert!(
        updated.bant.as_ref().unwrap().need.met,
        "a demo request shows a need"
    );
}

#[tokio::test]
async fn undoing_a_capture_merge_restores_the_lead_exactly() {
    let store = Arc::new(InMemoryStore::new());
    let deps = deps_with(store.clone());
    let policy = Policy::default();
    let before = capture(&input("ana@acme.com"), &policy, &deps)
        .await
        .unwrap()
        .lead;
    let mut again = input("ana@acme.com");
    again.job_title = Some("CTO".into());
    let merged = capture(&again, &policy, &deps).await.unwrap();
    let record = merged.merged.unwrap();

    let (restored, absorbed) = undo_merge(record.id, &deps).await.unwrap();
    assert!(
        absorbed.is_none(),
        "the second submission was never a lead of its own"
    );
    let mut expected = before.clone();
    expected.version = restored.version;
    assert_eq!(restored, expected);
    assert!(
        matches!(undo_merge(record.id, &deps).await, Err(Error::Conflict(_))),
        "undo twice is refused"
    );
}

#[tokio::test]
async fn a_dry_run_decides_without_assigning() {
    let store = Arc::new(InMemoryStore::new());
    let deps = deps_with(store.clone());
    let policy = Policy::default();
    let lead = capture(&input("ana@acme.com"), &policy, &deps)
        .await
        .unwrap()
        .lead;
    assert!(lead.assigned_to.is_none(), "no reps yet");
    store.upsert_rep(rep("rep1@sales.com"));
    let decision = route_dry_run(&lead.ext_id, &policy, &deps).await.unwrap();
    assert_eq!(
        decision.assigned.as_ref().map(RepId::as_str),
        Some("rep1@sales.com")
    );
    assert!(
        store
            .get(&lead.ext_id)
            .await
            .unwrap()
            .unwrap()
            .assigned_to
            .is_none()
    );
    assert_eq!(store.rep_states().await.unwrap()[0].load.open_leads, 0);
}

/// Hands out the given lead ids in order (uuids from a counter).
struct FixedIds(std::sync::Mutex<Vec<&'static str>>, SequentialIds);

impl crate::ports::IdGenerator for FixedIds {
    fn lead_ext_id(&self) -> crate::model::LeadExtId {
        let next = self.0.lock().unwrap().remove(0);
        crate::model::LeadExtId::parse(next).unwrap()
    }
    fn uuid(&self) -> uuid::Uuid {
        self.1.uuid()
    }
}

#[tokio::test]
async fn the_stored_lead_survives_a_capture_merge_even_at_the_same_instant() {
    // Same clock reading and a "smaller" id for the second submission: the
    // stored lead must still keep its identity.
    let ids = FixedIds(
        std::sync::Mutex::new(vec!["WEB-ZZZZZZZZ", "WEB-22222222"]),
        SequentialIds::default(),
    );
    let deps = Deps::with(
        Arc::new(InMemoryStore::new()),
        Arc::new(ManualClock::new(monday_noon())),
        Arc::new(ids),
    );
    let first = capture(&input("ana@acme.com"), &Policy::default(), &deps)
        .await
        .unwrap();
    let second = capture(&input("ana@acme.com"), &Policy::default(), &deps)
        .await
        .unwrap();
    assert_eq!(first.lead.ext_id.as_str(), "WEB-ZZZZZZZZ");
    assert_eq!(second.lead.ext_id.as_str(), "WEB-ZZZZZZZZ");
}

#[tokio::test]
async fn a_double_submit_with_one_idempotency_key_stores_once_until_the_key_expires() {
    let store = Arc::new(InMemoryStore::new());
    let clock = Arc::new(ManualClock::new(monday_noon()));
    let deps = Deps::with(
        store.clone(),
        clock.clone(),
        Arc::new(SequentialIds::default()),
    );
    let key = Idempotency {
        key: "form-123".into(),
        window: chrono::Duration::hours(24),
        request_hash: Some("the same form".into()),
    };
    let first = capture_once(
        &input("ana@acme.com"),
        Some(&key),
        &Policy::default(),
        &deps,
    )
    .await
    .unwrap();
    let again = capture_once(
        &input("ana@acme.com"),
        Some(&key),
        &Policy::default(),
        &deps,
    )
    .await
    .unwrap();
    assert!(!first.replayed && again.replayed);
    assert_eq!(
        again.lead, first.lead,
        "nothing changed: the repeat stored nothing"
    );
    assert_eq!(store.outbox().len(), 2, "one lead's outbox entries only");

    clock.advance(chrono::Duration::hours(25));
    let later = capture_once(
        &input("ana@acme.com"),
        Some(&key),
        &Policy::default(),
        &deps,
    )
    .await
    .unwrap();
    assert!(
        !later.replayed && later.merged.is_some(),
        "an expired key is a new submission (merged by e-mail)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_repeats_of_one_key_store_one_lead() {
    let store = Arc::new(InMemoryStore::new());
    let deps = Deps::with(
        store.clone(),
        Arc::new(crate::ports::SystemClock),
        Arc::new(crate::ports::RandomIds),
    );
    let key = Arc::new(Idempotency {
        key: "webhook-msg-1".into(),
        window: chrono::Duration::hours(1),
        // No hash: the repeats differ, only the key makes them one request.
        request_hash: None,
    });
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (deps, key) = (deps.clone(), key.clone());
            tokio::spawn(async move {
                // Different e-mails: only the key makes them the same request.
                capture_once(
                    &input(&format!("user{i}@acme.com")),
                    Some(&key),
                    &Policy::default(),
                    &deps,
                )
                .await
            })
        })
        .collect();
    let mut stored = 0;
    for t in tasks {
        stored += usize::from(!t.await.unwrap().unwrap().replayed);
    }
    assert_eq!(stored, 1);
    assert_eq!(store.leads().len(), 1);
}

#[tokio::test]
async fn a_stale_expected_version_is_answered_at_once_without_retries() {
    let lead = {
        let deps = deps_with(Arc::new(InMemoryStore::new()));
        capture(&input("stale@acme.com"), &Policy::default(), &deps)
            .await
            .unwrap()
            .lead
    };
    let mut store = MockLeadStore::new();
    let stored = lead.clone();
    // One read finds version 1; the client said 7: nothing to retry.
    store
        .expect_get()
        .times(1)
        .returning(move |_| Ok(Some(stored.clone())));
    store.expect_commit().never();
    let deps = deps_with_mock(store);
    let err = change_stage(
        &lead.ext_id,
        Stage::Contacted,
        None,
        ChangeOrigin::Local,
        Some(7),
        &Policy::default(),
        &deps,
    )
    .await
    .expect_err("stale version");
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
}

/// Two leads of one person under different e-mails (same name, company
/// and phone), and somebody else.
async fn ana_twice_and_bob(deps: &Deps) -> (Lead, Lead, Lead) {
    let policy = Policy::default();
    let mut first = input("ana@acme.com");
    first.phone = Some("+34 611 222 333".into());
    let mut second = input("ana.lopez@gmail.com");
    second.phone = Some("+34 611 222 333".into());
    let mut bob = input("bob@other.com");
    bob.first_name = Some("Bob".into());
    bob.last_name = Some("Smith".into());
    bob.company = Some("Other Inc".into());
    let mut out = Vec::new();
    for form in [first, second, bob] {
        out.push(capture(&form, &policy, deps).await.unwrap().lead);
    }
    let bob = out.pop().unwrap();
    let second = out.pop().unwrap();
    (out.pop().unwrap(), second, bob)
}

fn review_only() -> crate::dedup::DedupConfig {
    crate::dedup::DedupConfig {
        mode: crate::dedup::DedupMode::Review,
        ..Default::default()
    }
}

/// Merges whatever is found, so tests do not hang on exact similarities.
fn merge_everything() -> crate::dedup::DedupConfig {
    crate::dedup::DedupConfig {
        similarity_threshold: 0.5,
        auto_merge_threshold: 0.5,
        mode: crate::dedup::DedupMode::AutoMerge,
        ..Default::default()
    }
}

async fn open_pairs(store: &InMemoryStore) -> Vec<crate::dedup::review::ReviewPair> {
    let query = crate::dedup::review::PairQuery {
        status: Some(crate::dedup::review::ReviewStatus::Open),
        ..Default::default()
    };
    store.review_pairs(&query).await.unwrap().pairs
}

#[tokio::test]
async fn a_scan_marks_pairs_for_review_once() {
    let store = Arc::new(InMemoryStore::with_reps([rep("rep1@sales.com")]));
    let deps = deps_with(store.clone());
    let (a, b, _) = ana_twice_and_bob(&deps).await;

    let first = scan_duplicates(&review_only(), &deps).await.unwrap();
    assert_eq!(
        (first.leads, first.found, first.marked, first.merged),
        (3, 1, 1, 0),
        "{first:?}"
    );
    let pairs = open_pairs(&store).await;
    assert_eq!(pairs.len(), 1);
    let mut expected = [a.ext_id.clone(), b.ext_id.clone()];
    expected.sort();
    assert_eq!(pairs[0].leads, expected);
    assert!(pairs[0].similarity.is_some_and(|s| s >= 0.85));

    let second = scan_duplicates(&review_only(), &deps).await.unwrap();
    assert_eq!((second.marked, second.skipped), (0, 1), "{second:?}");
    assert_eq!(open_pairs(&store).await, pairs, "the pair is stored once");
}

#[tokio::test]
async fn a_default_scan_merges_nothing_outside_the_same_email() {
    let store = Arc::new(InMemoryStore::with_reps([rep("rep1@sales.com")]));
    let deps = deps_with(store.clone());
    ana_twice_and_bob(&deps).await;
    // Same name, company and phone under two e-mails: well above the
    // auto-merge threshold, still left to a person by default.
    let report = scan_duplicates(&Policy::default().dedup, &deps)
        .await
        .unwrap();
    assert_eq!((report.found, report.marked, report.merged), (1, 1, 0));
    let pairs = open_pairs(&store).await;
    assert!(pairs[0].similarity.is_some_and(|s| s >= 0.95), "{pairs:?}");
}

#[tokio::test]
async fn merging_a_pair_counts_workload_and_its_undo_is_never_redone() {
    let store = Arc::new(InMemoryStore::with_reps([rep("rep1@sales.com")]));
    let deps = deps_with(store.clone());
    let (a, b, _) = ana_twice_and_bob(&deps).await;
    assert_eq!(store.rep_states().await.unwrap()[0].load.open_leads, 3);
    scan_duplicates(&review_only(), &deps).await.unwrap();
    let pair = open_pairs(&store).await.remove(0);

    let (decided, merge) = decide_pair(pair.id, PairDecision::Merge, &deps)
        .await
        .unwrap();
    let merge = merge.expect("a merge");
    assert_eq!(decided.status, crate::dedup::review::ReviewStatus::Merged);
    assert_eq!(decided.merge_id, Some(merge.merge_id));
    assert_eq!(merge.survivor.ext_id, a.ext_id, "the oldest lead survives");
    assert_eq!(merge.absorbed.merged_into.as_ref(), Some(&a.ext_id));
    assert_eq!(store.rep_states().await.unwrap()[0].load.open_leads, 2);
    assert!(
        store
            .outbox()
            .iter()
            .any(|e| e.kind == OutboxKind::Merged && e.lead == a.ext_id)
    );
    let again = decide_pair(pair.id, PairDecision::Dismiss, &deps).await;
    assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");

    let (survivor, absorbed) = undo_merge(merge.merge_id, &deps).await.unwrap();
    assert_eq!(survivor.ext_id, a.ext_id);
    assert_eq!(absorbed.map(|l| l.ext_id), Some(b.ext_id.clone()));
    assert_eq!(store.rep_states().await.unwrap()[0].load.open_leads, 3);
    let stored = store.get_review_pair(pair.id).await.unwrap().unwrap();
    assert_eq!(
        stored.status,
        crate::dedup::review::ReviewStatus::Dismissed,
        "an undone merge dismisses its pair"
    );

    let rescan = scan_duplicates(&merge_everything(), &deps).await.unwrap();
    assert_eq!(rescan.merged, 0, "{rescan:?}");
    assert!(
        store
            .get(&b.ext_id)
            .await
            .unwrap()
            .unwrap()
            .merged_into
            .is_none()
    );
}

#[tokio::test]
async fn an_auto_merge_scan_merges_and_records_the_pair() {
    let store = Arc::new(InMemoryStore::with_reps([rep("rep1@sales.com")]));
    let deps = deps_with(store.clone());
    let (a, b, _) = ana_twice_and_bob(&deps).await;

    let report = scan_duplicates(&merge_everything(), &deps).await.unwrap();
    assert_eq!((report.merged, report.marked), (1, 0), "{report:?}");
    let listed = store.list(&Default::default()).await.unwrap().leads;
    assert_eq!(listed.len(), 2, "the absorbed lead is no longer listed");
    let absorbed = store.get(&b.ext_id).await.unwrap().unwrap();
    assert_eq!(absorbed.merged_into, Some(a.ext_id.clone()));
    let all = store.review_pairs(&Default::default()).await.unwrap().pairs;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, crate::dedup::review::ReviewStatus::Merged);
    let record = store.get_merge(all[0].merge_id.unwrap()).await.unwrap();
    assert_eq!(record.and_then(|r| r.similarity), all[0].similarity);
    assert_eq!(store.rep_states().await.unwrap()[0].load.open_leads, 2);
}

#[tokio::test]
async fn a_dismissed_pair_keeps_both_leads() {
    let store = Arc::new(InMemoryStore::new());
    let deps = deps_with(store.clone());
    let (a, b, _) = ana_twice_and_bob(&deps).await;
    scan_duplicates(&review_only(), &deps).await.unwrap();
    let pair = open_pairs(&store).await.remove(0);
    let (decided, merge) = decide_pair(pair.id, PairDecision::Dismiss, &deps)
        .await
        .unwrap();
    assert!(merge.is_none());
    assert_eq!(
        decided.status,
        crate::dedup::review::ReviewStatus::Dismissed
    );
    assert!(decided.decided_at.is_some());
    assert!(open_pairs(&store).await.is_empty());
    for id in [&a.ext_id, &b.ext_id] {
        assert!(store.get(id).await.unwrap().unwrap().merged_into.is_none());
    }
    let unknown = decide_pair(uuid::Uuid::from_u128(9), PairDecision::Merge, &deps).await;
    assert!(matches!(unknown, Err(Error::NotFound(_))), "{unknown:?}");
}

#[tokio::test]
async fn a_person_merges_any_two_leads_but_not_one_with_itself() {
    let store = Arc::new(InMemoryStore::new());
    let deps = deps_with(store.clone());
    let (a, _, bob) = ana_twice_and_bob(&deps).await;
    let itself = merge_leads(&a.ext_id, &a.ext_id, &deps).await;
    assert!(matches!(itself, Err(Error::Invalid { .. })), "{itself:?}");

    let merged = merge_leads(&bob.ext_id, &a.ext_id, &deps).await.unwrap();
    assert_eq!(merged.survivor.ext_id, a.ext_id);
    assert_eq!(merged.pair.similarity, None, "a person named this pair");
    let stored = store.get_review_pair(merged.pair.id).await.unwrap();
    assert_eq!(stored, Some(merged.pair.clone()));
    let twice = merge_leads(&a.ext_id, &bob.ext_id, &deps).await;
    assert!(matches!(twice, Err(Error::NotFound(_))), "{twice:?}");
}

#[test]
fn workload_follows_open_leads_between_states() {
    let lead = |rep: Option<&str>, stage: Stage| {
        let mut l = crate::dedup::test_support::lead("WEB-AAAAAAAA", "a@x.com", monday_noon());
        l.assigned_to = rep.map(|r| RepId::parse(r).unwrap());
        l.stage = stage;
        l
    };
    let a = lead(Some("a@x.com"), Stage::New);
    let b = lead(Some("b@x.com"), Stage::Contacted);
    let lost_b = lead(Some("b@x.com"), Stage::Lost);
    let mut merged_away = a.clone();
    merged_away.merged_into = Some(b.ext_id.clone());
    let rep = |r: &str| RepId::parse(r).unwrap();
    assert_eq!(
        open_load_changes(&[&a, &b], &[&b, &merged_away]),
        [crate::commit::LoadChange::Released {
            rep: rep("a@x.com")
        }]
    );
    assert_eq!(
        open_load_changes(&[&lost_b], &[&b]),
        [crate::commit::LoadChange::Reopened {
            rep: rep("b@x.com")
        }]
    );
    assert!(open_load_changes(&[&a], &[&a]).is_empty());
}

#[tokio::test]
async fn assigning_a_closed_lead_adds_no_open_work_until_it_reopens() {
    let store = Arc::new(InMemoryStore::with_reps([
        rep("rep1@sales.com"),
        rep("rep2@sales.com"),
    ]));
    let deps = deps_with(store.clone());
    let policy = Policy::default();
    let lead = capture(&input("ana@acme.com"), &policy, &deps)
        .await
        .unwrap()
        .lead;
    let id = lead.ext_id.clone();
    let first = lead.assigned_to.clone().expect("routed");
    let other = ["rep1@sales.com", "rep2@sales.com"]
        .into_iter()
        .map(|r| RepId::parse(r).unwrap())
        .find(|r| *r != first)
        .unwrap();
    let open = |store: Arc<InMemoryStore>| async move {
        store
            .rep_states()
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.rep.id.as_str().to_owned(), s.load.open_leads))
            .collect::<Vec<_>>()
    };
    change_stage(
        &id,
        Stage::Lost,
        None,
        ChangeOrigin::Local,
        None,
        &policy,
        &deps,
    )
    .await
    .unwrap();
    assign(
        &id,
        AssignTo::Rep(other.clone()),
        ChangeOrigin::Local,
        None,
        &policy,
        &deps,
    )
    .await
    .unwrap();
    assert!(
        open(store.clone()).await.iter().all(|(_, n)| *n == 0),
        "{:?}",
        open(store.clone()).await
    );
    change_stage(
        &id,
        Stage::Nurturing,
        None,
        ChangeOrigin::Local,
        None,
        &policy,
        &deps,
    )
    .await
    .unwrap();
    let counts = open(store.clone()).await;
    assert!(
        counts
            .iter()
            .all(|(r, n)| *n == u32::from(r == other.as_str())),
        "{counts:?}"
    );
}

#[tokio::test]
async fn naming_two_leads_of_a_stored_pair_decides_that_pair() {
    let store = Arc::new(InMemoryStore::new());
    let deps = deps_with(store.clone());
    let (a, b, _) = ana_twice_and_bob(&deps).await;
    scan_duplicates(&review_only(), &deps).await.unwrap();
    let pair = open_pairs(&store).await.remove(0);

    let merged = merge_leads(&b.ext_id, &a.ext_id, &deps).await.unwrap();
    assert_eq!(merged.pair.id, pair.id, "the stored pair, not a new one");
    assert_eq!(merged.pair.similarity, pair.similarity);
    let record = store.get_merge(merged.merge_id).await.unwrap().unwrap();
    assert_eq!(record.similarity, pair.similarity);
    assert_eq!(
        store
            .get_review_pair(pair.id)
            .await
            .unwrap()
            .map(|p| p.status),
        Some(crate::dedup::review::ReviewStatus::Merged)
    );
    let late = decide_pair(pair.id, PairDecision::Dismiss, &deps).await;
    assert!(matches!(late, Err(Error::Conflict(_))), "{late:?}");
}

/// The lead's JSON without its pending changes: what an unverified
/// submission may not change.
fn without_pending(lead: &Lead) -> serde_json::Value {
    let mut fields = lead.fields.clone();
    fields.metadata.remove(crate::dedup::PENDING_CHANGES);
    serde_json::to_value(fields).unwrap()
}

#[tokio::test]
async fn a_thousand_unverified_submissions_change_no_field_nor_consent_and_stay_under_the_cap() {
    let store = Arc::new(InMemoryStore::with_reps([rep("rep1@sales.com")]));
    let clock = Arc::new(ManualClock::new(monday_noon()));
    let deps = Deps {
        clock: clock.clone(),
        ..deps_with(store.clone())
    };
    let policy = Policy::default();
    let mut first = input("ana@acme.com");
    first.consent_marketing = Some("false".into());
    first.phone = Some("+34 612 345 678".into());
    let stored = capture(&first, &policy, &deps).await.unwrap().lead;
    let before = without_pending(&stored);
    let outbox_before = store.outbox().len();

    for n in 0..1_000 {
        clock.advance(chrono::Duration::seconds(1));
        let mut sent = LeadInput {
            email: Some(
                if n % 2 == 0 {
                    "ANA@acme.com"
                } else {
                    "ana@acme.com"
                }
                .into(),
            ),
            first_name: Some(format!("Mallory {n}")),
            last_name: Some("x".repeat(n % 7 * 1_000)),
            phone: Some(format!("+1 415 555 {:04}", n)),
            company: Some(format!("Evil {n} Inc")),
            consent_marketing: Some(if n % 3 == 0 { "yes" } else { "no" }.into()),
            consent_text: Some(format!("I agree {n}")),
            message: Some("m".repeat(n % 10 * 900)),
            ..Default::default()
        };
        sent.metadata.insert(
            format!("key{n}"),
            serde_json::Value::from("v".repeat(n % 5 * 2_000)),
        );
        sent.metadata.insert(
            "alternate_values".into(),
            serde_json::json!({ "first_name": [format!("Fake {n}")] }),
        );
        let out = capture_from(&sent, Provenance::Unverified, None, &policy, &deps)
            .await
            .unwrap();
        assert!(out.pending && out.merged.is_none(), "{n}");
    }

    let now = store.get(&stored.ext_id).await.unwrap().unwrap();
    assert_eq!(
        without_pending(&now),
        before,
        "no field nor consent changed"
    );
    assert_eq!(now.fields.consent_marketing, Some(false));
    assert_eq!(now.score, stored.score);
    let pending = now.fields.metadata[crate::dedup::PENDING_CHANGES]
        .as_array()
        .unwrap();
    assert!((1..=crate::dedup::MAX_PENDING_CHANGES).contains(&pending.len()));
    assert_eq!(
        pending.last().unwrap()["fields"]["first_name"],
        "Mallory 999"
    );
    let document = serde_json::to_vec(&now).unwrap().len();
    let original = serde_json::to_vec(&stored).unwrap().len();
    assert!(
        document <= original + crate::dedup::MAX_PENDING_BYTES,
        "document {document} bytes, first stored {original} bytes"
    );
    assert_eq!(
        store.outbox().len(),
        outbox_before + 1_000,
        "every pending change is announced"
    );
    assert_eq!(
        store.list(&Default::default()).await.unwrap().leads.len(),
        1
    );
}

#[tokio::test]
async fn an_unverified_submission_for_a_new_email_is_a_new_lead_and_a_verified_one_merges() {
    let store = Arc::new(InMemoryStore::new());
    let clock = Arc::new(ManualClock::new(monday_noon()));
    let deps = Deps {
        clock: clock.clone(),
        ..deps_with(store.clone())
    };
    let policy = Policy::default();
    let ana = input("ana@acme.com");
    let anonymous = || capture_from(&ana, Provenance::Unverified, None, &policy, &deps);
    let created = anonymous().await.unwrap();
    assert!(created.routing.is_some() && !created.pending);

    let mut change = input("ana@acme.com");
    change.first_name = Some("Anna".into());
    let nothing_new = anonymous().await.unwrap();
    assert!(nothing_new.pending);
    assert_eq!(
        nothing_new.lead, created.lead,
        "nothing new: nothing written"
    );

    clock.advance(chrono::Duration::minutes(1));
    let merged = capture(&change, &policy, &deps).await.unwrap();
    assert!(merged.merged.is_some() && !merged.pending);
    assert_eq!(merged.lead.fields.first_name.as_deref(), Some("Anna"));
}
