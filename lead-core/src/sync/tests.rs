use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::commit::Destination;
use crate::error::{Error, Result};
use crate::lead::Lead;
use crate::memory::InMemoryStore;
use crate::model::{
    ChangeOrigin, CrmKind, CrmLink, LeadExtId, LeadInput, Rep, RepId, Stage, WorkingHours,
};
use crate::policy::Policy;
use crate::ports::{
    CrmChange, CrmChanges, CrmClient, LeadStore, ManualClock, OutboxStore, PushOutcome,
    SequentialIds, TaskPush,
};
use crate::usecase::{self, Deps};

/// A CRM that records what it was sent; failures and rejections on demand.
#[derive(Default)]
struct FakeCrm {
    leads: Mutex<Vec<LeadExtId>>,
    tasks: Mutex<Vec<Uuid>>,
    /// Errors the next `push_leads` calls answer, last first.
    failures: Mutex<Vec<Error>>,
    /// E-mails the CRM refuses.
    refused: Mutex<HashSet<String>>,
    /// Leads the CRM takes without what goes with them.
    partly: Mutex<HashSet<LeadExtId>>,
    /// Changes made in the CRM, oldest first.
    changes: Mutex<Vec<CrmChange>>,
    /// Watermarks the pulls asked from.
    asked: Mutex<Vec<Option<String>>>,
}

impl FakeCrm {
    fn pushed_leads(&self) -> Vec<LeadExtId> {
        self.leads.lock().unwrap().clone()
    }
}

#[async_trait]
impl CrmClient for FakeCrm {
    fn kind(&self) -> CrmKind {
        CrmKind::Salesforce
    }

    async fn push_leads(&self, leads: &[Lead]) -> Result<Vec<PushOutcome>> {
        if let Some(err) = self.failures.lock().unwrap().pop() {
            return Err(err);
        }
        let refused = self.refused.lock().unwrap().clone();
        let partly = self.partly.lock().unwrap().clone();
        let mut pushed = self.leads.lock().unwrap();
        Ok(leads
            .iter()
            .map(|lead| {
                if refused.contains(lead.fields.email.as_str()) {
                    return PushOutcome::Rejected("INVALID_EMAIL_ADDRESS: Email".into());
                }
                if partly.contains(&lead.ext_id) {
                    return PushOutcome::Partly {
                        links: vec![CrmLink {
                            crm: CrmKind::Salesforce,
                            object: "Lead".into(),
                            id: format!("00Q{}", lead.ext_id.as_str()),
                        }],
                        problem: "the Opportunity: NOT_FOUND".into(),
                        temporary: false,
                    };
                }
                pushed.push(lead.ext_id.clone());
                PushOutcome::Synced(vec![CrmLink {
                    crm: CrmKind::Salesforce,
                    object: "Lead".into(),
                    id: format!("00Q{}", lead.ext_id.as_str()),
                }])
            })
            .collect())
    }

    async fn push_tasks(&self, tasks: &[TaskPush]) -> Result<Vec<PushOutcome>> {
        let mut pushed = self.tasks.lock().unwrap();
        Ok(tasks
            .iter()
            .map(|t| {
                pushed.push(t.task.id);
                PushOutcome::Synced(vec![CrmLink {
                    crm: CrmKind::Salesforce,
                    object: "Task".into(),
                    id: format!("00T{}", t.task.id.simple()),
                }])
            })
            .collect())
    }

    async fn check(&self) -> Result<()> {
        Ok(())
    }

    async fn pull_changes(&self, watermark: Option<String>, limit: usize) -> Result<CrmChanges> {
        self.asked.lock().unwrap().push(watermark.clone());
        let since = watermark.map(|w| DateTime::parse_from_rfc3339(&w).unwrap().to_utc());
        let changes: Vec<CrmChange> = self
            .changes
            .lock()
            .unwrap()
            .iter()
            .filter(|c| since.is_none_or(|s| c.changed_at > s))
            .take(limit)
            .cloned()
            .collect();
        let next_watermark = changes.last().map(|c| c.changed_at.to_rfc3339());
        Ok(CrmChanges {
            changes,
            next_watermark,
        })
    }
}

struct World {
    store: Arc<InMemoryStore>,
    clock: Arc<ManualClock>,
    deps: Deps,
    crm: FakeCrm,
    config: PushConfig,
}

impl World {
    fn new() -> World {
        let mut rep = Rep::new(RepId::parse("rep@sales.com").unwrap(), "Rep");
        rep.working_hours = WorkingHours::always();
        let store = Arc::new(InMemoryStore::with_reps([rep]));
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap(),
        ));
        let deps = Deps::with(
            store.clone(),
            clock.clone(),
            Arc::new(SequentialIds::default()),
        );
        World {
            store,
            clock,
            deps,
            crm: FakeCrm::default(),
            config: PushConfig::default(),
        }
    }

    async fn capture(&self, email: &str) -> Lead {
        let input = LeadInput {
            email: Some(email.into()),
            first_name: Some("Ana".into()),
            company: Some("Acme".into()),
            ..Default::default()
        };
        usecase::capture(&input, &Policy::default(), &self.deps)
            .await
            .unwrap()
            .lead
    }

    async fn push(&self) -> PushReport {
        push_once(&self.deps, &*self.store, &self.crm, &self.config)
            .await
            .unwrap()
    }

    async fn backlog(&self) -> u64 {
        self.store.pending_count(&Destination::CRM).await.unwrap()
    }
}

#[tokio::test]
async fn new_leads_and_their_tasks_reach_the_crm_once_and_leave_the_queue() {
    let w = World::new();
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(w.capture(&format!("p{n}@acme.com")).await.ext_id);
    }
    assert_eq!(w.backlog().await, 6, "a lead and a task entry per capture");

    let report = w.push().await;
    assert_eq!(report.claimed, 6);
    assert_eq!((report.leads_synced, report.tasks_synced), (3, 3));
    assert_eq!(
        (report.acked, report.retried, report.dead_lettered),
        (6, 0, 0)
    );
    assert_eq!(
        w.crm.pushed_leads(),
        ids,
        "each lead once, in capture order"
    );
    assert_eq!(w.crm.tasks.lock().unwrap().len(), 3);
    assert_eq!(w.backlog().await, 0, "recording the CRM ids queued nothing");
    for id in &ids {
        let lead = w.store.get(id).await.unwrap().unwrap();
        assert_eq!(lead.crm_links.len(), 1, "{:?}", lead.crm_links);
        assert_eq!(lead.crm_links[0].id, format!("00Q{}", id.as_str()));
    }
    assert_eq!(
        w.push().await,
        PushReport::default(),
        "nothing left to push"
    );
    assert_eq!(w.crm.pushed_leads().len(), 3);
}

#[tokio::test]
async fn several_changes_of_one_lead_cost_one_push_of_its_latest_state() {
    let w = World::new();
    let lead = w.capture("ana@acme.com").await;
    let changed = w.move_to(&lead, Stage::Contacted).await;
    assert_eq!(w.backlog().await, 3);

    let report = w.push().await;
    assert_eq!(report.leads_synced, 1);
    assert_eq!(report.acked, 3);
    assert_eq!(w.crm.pushed_leads(), vec![lead.ext_id.clone()]);
    let stored = w.store.get(&lead.ext_id).await.unwrap().unwrap();
    assert_eq!(stored.stage, changed.stage);
}

#[tokio::test]
async fn a_temporary_failure_waits_its_backoff_and_then_delivers() {
    let w = World::new();
    let lead = w.capture("ana@acme.com").await;
    w.crm.failures.lock().unwrap().push(Error::RateLimited {
        retry_after: Some(Duration::from_secs(600)),
    });

    let first = w.push().await;
    // The lead goes back, and its task waits for it rather than going to
    // the dead letters.
    assert_eq!((first.retried, first.acked, first.dead_lettered), (2, 0, 0));
    assert!(w.crm.pushed_leads().is_empty());
    assert_eq!(w.backlog().await, 2);

    w.clock.advance(chrono::Duration::seconds(599));
    let early = w.push().await;
    assert_eq!(
        early.claimed, 1,
        "only the task is due; the lead honours Retry-After"
    );

    w.clock.advance(chrono::Duration::hours(1));
    let later = w.push().await;
    assert_eq!(later.leads_synced, 1);
    assert_eq!(later.tasks_synced, 1);
    assert_eq!(w.crm.pushed_leads(), vec![lead.ext_id]);
    assert_eq!(w.backlog().await, 0);
}

#[tokio::test]
async fn a_refused_record_is_parked_alone_and_the_others_go_through() {
    let w = World::new();
    let good = w.capture("ana@acme.com").await;
    let bad = w.capture("bob@acme.com").await;
    w.crm.refused.lock().unwrap().insert("bob@acme.com".into());

    let report = w.push().await;
    assert_eq!(report.leads_synced, 1);
    assert_eq!(w.crm.pushed_leads(), vec![good.ext_id]);
    let dead = w.store.dead_letters(&Destination::CRM, 10).await.unwrap();
    assert_eq!(dead.len(), 1, "only the refused lead's entry: {dead:?}");
    assert_eq!(dead[0].entry.lead, bad.ext_id);
    assert!(
        dead[0].error.contains("INVALID_EMAIL_ADDRESS"),
        "{}",
        dead[0].error
    );
    // Its task cannot go before it: it waits (and is parked when the budget ends).
    assert_eq!(w.backlog().await, 1);
}

#[tokio::test]
async fn a_spent_retry_budget_parks_the_entry() {
    let mut w = World::new();
    w.config.max_attempts = 2;
    w.capture("ana@acme.com").await;
    for _ in 0..2 {
        w.crm
            .failures
            .lock()
            .unwrap()
            .push(Error::unavailable("503 Service Unavailable"));
    }
    let first = w.push().await;
    assert_eq!(first.retried, 2, "the lead and its waiting task");
    w.clock.advance(chrono::Duration::hours(2));
    let second = w.push().await;
    assert_eq!(second.dead_lettered, 2, "{second:?}");
    assert_eq!(w.backlog().await, 0);
    assert!(w.crm.pushed_leads().is_empty());
    let dead = w.store.dead_letters(&Destination::CRM, 10).await.unwrap();
    assert!(dead.iter().all(|d| d.attempts == 2), "{dead:?}");
}

#[test]
fn retry_delays_double_stay_under_the_cap_and_honour_retry_after() {
    let config = PushConfig {
        base_delay: Duration::from_secs(2),
        max_delay: Duration::from_secs(60),
        ..PushConfig::default()
    };
    let plain = Error::unavailable("down");
    let id = Uuid::from_u128(7);
    for attempts in 0..40 {
        let ceiling = (Duration::from_secs(2) * 2u32.saturating_pow(attempts.min(20)))
            .min(Duration::from_secs(60));
        let delay = retry_delay(&config, id, attempts, &plain);
        assert!(
            delay >= ceiling / 2 && delay <= ceiling,
            "{attempts}: {delay:?}"
        );
    }
    let spread: HashSet<Duration> = (0..50)
        .map(|n| retry_delay(&config, Uuid::from_u128(n), 3, &plain))
        .collect();
    assert!(
        spread.len() > 40,
        "jitter spreads entries: {}",
        spread.len()
    );
    let limited = Error::RateLimited {
        retry_after: Some(Duration::from_secs(3600)),
    };
    assert_eq!(
        retry_delay(&config, id, 0, &limited),
        Duration::from_secs(3600)
    );
}

impl World {
    /// The lead moved to `stage` here (not by the CRM).
    async fn move_to(&self, lead: &Lead, stage: Stage) -> Lead {
        usecase::change_stage(
            &lead.ext_id,
            stage,
            None,
            ChangeOrigin::Local,
            None,
            &Policy::default(),
            &self.deps,
        )
        .await
        .unwrap()
    }

    /// A change made in the CRM to `lead`'s record, `minutes` after noon.
    fn crm_change(&self, lead: &Lead, stage: Option<Stage>, minutes: i64) {
        let link = lead
            .crm_links
            .first()
            .cloned()
            .expect("the lead was pushed first");
        self.crm.changes.lock().unwrap().push(CrmChange {
            link,
            lead: None,
            stage,
            owner: None,
            contact: BTreeMap::new(),
            changed_at: Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
                + chrono::Duration::minutes(minutes),
        });
    }

    /// A change of `lead`'s contact fields in the CRM, `minutes` after noon.
    fn crm_contact(&self, lead: &Lead, fields: &[(&str, &str)], minutes: i64) {
        self.crm_change(lead, None, minutes);
        let mut changes = self.crm.changes.lock().unwrap();
        let last = changes.last_mut().expect("just pushed");
        last.contact = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
    }

    async fn pull(&self, config: &PullConfig) -> PullReport {
        pull_once(
            &self.deps,
            &*self.store,
            &self.crm,
            &Policy::default(),
            config,
        )
        .await
        .unwrap()
    }

    async fn stored(&self, lead: &Lead) -> Lead {
        self.store.get(&lead.ext_id).await.unwrap().unwrap()
    }

    /// `lead`'s CRM record and a second record of the same lead linked to
    /// it (Pipedrive: person + lead/deal).
    async fn with_second_record(&self, lead: &Lead) -> (CrmLink, CrmLink) {
        let person = lead.crm_links[0].clone();
        let other = CrmLink {
            object: "Opportunity".into(),
            id: "006XYZ".into(),
            ..person.clone()
        };
        let mut linked = self.stored(lead).await;
        linked.crm_links.push(other.clone());
        self.store
            .commit(crate::commit::Commit::new().write(linked.clone(), Some(linked.version)))
            .await
            .unwrap();
        (person, other)
    }

    /// A captured lead, pushed so it has its CRM link.
    async fn synced(&self, email: &str) -> Lead {
        let lead = self.capture(email).await;
        self.push().await;
        self.stored(&lead).await
    }
}

#[tokio::test]
async fn a_crm_change_is_applied_once_and_never_queued_back() {
    let w = World::new();
    let lead = w.synced("ana@acme.com").await;
    w.clock.advance(chrono::Duration::hours(1));
    w.crm_change(&lead, Some(Stage::Contacted), 90);

    let report = w.pull(&PullConfig::default()).await;
    assert_eq!((report.fetched, report.applied), (1, 1), "{report:?}");
    assert_eq!(w.stored(&lead).await.stage, Stage::Contacted);
    assert_eq!(
        w.backlog().await,
        0,
        "a CRM change is not pushed back to the CRM"
    );

    let again = w.pull(&PullConfig::default()).await;
    assert_eq!(again.fetched, 0, "the watermark moved past it");
    let asked = w.crm.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2);
    assert!(
        asked[1].is_some(),
        "the second pull asks from the stored watermark"
    );
}

#[tokio::test]
async fn an_older_crm_change_does_not_overwrite_a_newer_local_one() {
    let w = World::new();
    let lead = w.synced("ana@acme.com").await;
    // Locally the lead moved at 13:00; the CRM's change is from 12:30.
    w.clock.advance(chrono::Duration::hours(1));
    w.move_to(&lead, Stage::Contacted).await;
    w.crm_change(&lead, Some(Stage::Qualified), 30);

    let report = w.pull(&PullConfig::default()).await;
    assert_eq!((report.applied, report.kept_local), (0, 1), "{report:?}");
    assert_eq!(w.stored(&lead).await.stage, Stage::Contacted);

    // The same old change under AlwaysCrm wins regardless of age (read
    // again from the start under a watermark of its own).
    let always = PullConfig {
        watermark: "crm.pull.always".into(),
        stage: ConflictRule::AlwaysCrm,
        ..PullConfig::default()
    };
    let report = w.pull(&always).await;
    assert_eq!(report.applied, 1, "{report:?}");
    assert_eq!(w.stored(&lead).await.stage, Stage::Qualified);
}

#[tokio::test]
async fn dont_sync_leaves_the_field_and_unknown_records_are_counted() {
    let w = World::new();
    let lead = w.synced("ana@acme.com").await;
    w.clock.advance(chrono::Duration::hours(1));
    w.crm_change(&lead, Some(Stage::Lost), 120);
    w.crm.changes.lock().unwrap().push(CrmChange {
        link: CrmLink {
            crm: CrmKind::Salesforce,
            object: "Lead".into(),
            id: "00Q-not-ours".into(),
        },
        lead: None,
        stage: Some(Stage::Won),
        owner: None,
        contact: BTreeMap::new(),
        changed_at: Utc.with_ymd_and_hms(2026, 11, 23, 14, 30, 0).unwrap(),
    });
    let config = PullConfig {
        stage: ConflictRule::DontSync,
        ..PullConfig::default()
    };
    let report = w.pull(&config).await;
    assert_eq!(
        (report.applied, report.kept_local, report.unknown),
        (0, 1, 1),
        "{report:?}"
    );
    assert_eq!(w.stored(&lead).await.stage, Stage::New);
}

#[tokio::test]
async fn contact_fields_from_the_crm_are_applied_by_their_rules_and_not_sent_back() {
    let w = World::new();
    let lead = w.synced("ana@acme.com").await;
    w.clock.advance(chrono::Duration::hours(1));
    // Changed in the CRM after the lead's last local change.
    w.crm_contact(
        &lead,
        &[
            ("job_title", "CTO"),
            ("company", "Acme Oy"),
            ("phone", "+34 612 34 56 78"),
        ],
        90,
    );
    let phone_kept = PullConfig {
        contact_fields: BTreeMap::from([("phone".to_owned(), ConflictRule::DontSync)]),
        ..PullConfig::default()
    };
    let report = w.pull(&phone_kept).await;
    assert_eq!(report.applied, 1, "{report:?}");
    let stored = w.stored(&lead).await;
    assert_eq!(stored.fields.job_title.as_deref(), Some("CTO"));
    assert_eq!(stored.fields.company.as_deref(), Some("Acme Oy"));
    assert_eq!(
        stored.fields.phone, lead.fields.phone,
        "phone is not taken from the CRM (its own rule)"
    );
    assert_eq!(w.backlog().await, 0, "nothing queued back to the CRM");

    // Edited here at 15:00; a CRM value from 14:00 told later loses.
    w.clock.advance(chrono::Duration::hours(2));
    let edit = usecase::LeadEdit {
        job_title: Some(Some("VP Sales".into())),
        ..usecase::LeadEdit::default()
    };
    usecase::edit_lead(&lead.ext_id, &edit, None, &Policy::default(), &w.deps)
        .await
        .unwrap();
    let queued = w.backlog().await;
    w.crm_contact(&stored, &[("job_title", "Intern")], 120);
    let report = w.pull(&phone_kept).await;
    assert_eq!((report.applied, report.kept_local), (0, 1), "{report:?}");
    assert_eq!(
        w.stored(&lead).await.fields.job_title.as_deref(),
        Some("VP Sales")
    );
    assert_eq!(w.backlog().await, queued);

    // A value our rules refuse is counted, and the pull goes on.
    w.crm_contact(&stored, &[("website", "not a website at all")], 240);
    w.crm_contact(&stored, &[("country", "Finland")], 241);
    let report = w.pull(&phone_kept).await;
    assert_eq!(report.fetched, 2, "{report:?}");
    assert_eq!(
        w.stored(&lead).await.fields.country.as_deref(),
        Some("Finland")
    );
}

#[tokio::test]
async fn sync_once_pulls_then_pushes_and_reports_each_half() {
    let w = World::new();
    let known = w.synced("ana@acme.com").await;
    w.clock.advance(chrono::Duration::hours(1));
    w.crm_change(&known, Some(Stage::Contacted), 90);
    let fresh = w.capture("bea@acme.com").await;

    let (pulled, pushed) = sync_once(
        &w.deps,
        &*w.store,
        &*w.store,
        &w.crm,
        &Policy::default(),
        &PullConfig::default(),
        &w.config,
    )
    .await;
    assert_eq!(pulled.unwrap().applied, 1);
    assert_eq!(pushed.unwrap().leads_synced, 1, "the new lead went out");
    assert_eq!(w.stored(&known).await.stage, Stage::Contacted);
    assert!(w.crm.pushed_leads().contains(&fresh.ext_id));
    assert_eq!(w.backlog().await, 0);
}

#[tokio::test]
async fn a_refused_login_leaves_the_entries_queued_not_parked() {
    let w = World::new();
    w.capture("ana@acme.com").await;
    w.crm
        .failures
        .lock()
        .unwrap()
        .push(Error::Unauthorized("invalid_grant: expired".into()));
    let report = w.push().await;
    assert_eq!(
        (report.retried, report.dead_lettered),
        (2, 0),
        "the lead waits for fixed credentials, its task for the lead: {report:?}"
    );
    assert_eq!(w.backlog().await, 2, "the lead's entry and its task's");
}

#[tokio::test]
async fn a_partly_taken_lead_keeps_its_link_and_its_tasks_go() {
    let w = World::new();
    let lead = w.capture("ana@acme.com").await;
    w.crm.partly.lock().unwrap().insert(lead.ext_id.clone());
    let report = w.push().await;
    assert_eq!(
        report.dead_lettered, 1,
        "the lead's entry, for a person: {report:?}"
    );
    let stored = w.stored(&lead).await;
    assert!(
        stored.crm_links.iter().any(|l| l.object == "Lead"),
        "what the CRM took is recorded"
    );
    let dead = w.store.dead_letters(&Destination::CRM, 10).await.unwrap();
    assert!(dead[0].error.contains("Opportunity"), "{:?}", dead[0].error);
    assert_eq!(
        report.tasks_synced, 1,
        "its task went in the same run: {report:?}"
    );
    assert_eq!(w.backlog().await, 0);
}

#[tokio::test]
async fn one_crm_change_of_stage_owner_and_contact_applies_every_field() {
    let w = World::new();
    let lead = w.synced("ana@acme.com").await;
    // Pulled at 14:00, a change made at 13:30: the stage write stamps
    // the lead 14:00, after the change.
    w.clock.advance(chrono::Duration::hours(2));
    w.crm_contact(&lead, &[("job_title", "CTO")], 90);
    w.crm
        .changes
        .lock()
        .unwrap()
        .last_mut()
        .expect("a change")
        .stage = Some(Stage::Contacted);

    let report = w.pull(&PullConfig::default()).await;
    assert_eq!(
        report.applied, 2,
        "the stage write does not make the contact fields look older: {report:?}"
    );
    let stored = w.stored(&lead).await;
    assert_eq!(stored.stage, Stage::Contacted);
    assert_eq!(stored.fields.job_title.as_deref(), Some("CTO"));
}

/// Deliveries of a webhook, each a record's whole state at a time: in
/// order, each newer one applies even though the previous apply dated the
/// lead after it; late and repeated ones change nothing; a local change
/// after the last delivery still wins over an older delivery.
#[tokio::test]
async fn delivered_changes_apply_in_the_crm_s_order_per_record() {
    let w = World::new();
    let lead = w.synced("ana@acme.com").await;
    let link = lead.crm_links[0].clone();
    let at = |minutes: i64| {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap() + chrono::Duration::minutes(minutes)
    };
    let phone = |number: &str, minutes: i64| CrmChange {
        link: link.clone(),
        lead: None,
        stage: None,
        owner: None,
        contact: [("phone".to_owned(), number.to_owned())].into(),
        changed_at: at(minutes),
    };
    let deliver = |change: CrmChange| {
        let w = &w;
        async move {
            apply_delivered(
                &w.deps,
                &*w.store,
                CrmKind::Salesforce,
                &Policy::default(),
                &PullConfig::default(),
                &change,
            )
            .await
            .unwrap()
        }
    };
    let phone_now = || async {
        w.stored(&lead)
            .await
            .fields
            .phone
            .map(|p| p.as_str().to_owned())
    };
    // Delivered at 13:00, both changes made at 12:10 and 12:20.
    w.clock.advance(chrono::Duration::hours(1));
    assert_eq!(deliver(phone("+34612000001", 10)).await.applied, 1);
    let second = deliver(phone("+34612000002", 20)).await;
    assert_eq!(
        second.applied, 1,
        "newer than the last delivery: {second:?}"
    );
    assert_eq!(phone_now().await.as_deref(), Some("+34612000002"));
    // The first again (a retry), and an older one late: nothing changes.
    assert_eq!(deliver(phone("+34612000001", 10)).await.applied, 0);
    assert_eq!(deliver(phone("+34612000009", 5)).await.applied, 0);
    assert_eq!(phone_now().await.as_deref(), Some("+34612000002"));
    // Changed here at 13:30; a CRM change from 12:30 is older than that.
    w.clock.advance(chrono::Duration::minutes(30));
    let edit = usecase::LeadEdit {
        phone: Some(Some("+34612000003".into())),
        ..Default::default()
    };
    usecase::edit_lead(&lead.ext_id, &edit, None, &Policy::default(), &w.deps)
        .await
        .unwrap();
    assert_eq!(deliver(phone("+34612000004", 30)).await.applied, 0);
    assert_eq!(phone_now().await.as_deref(), Some("+34612000003"));
    assert_eq!(w.backlog().await, 1, "only the local edit goes to the CRM");
}

fn after_noon(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap() + chrono::Duration::minutes(minutes)
}

fn phone_change(link: &CrmLink, number: &str, minutes: i64) -> CrmChange {
    CrmChange {
        link: link.clone(),
        lead: None,
        stage: None,
        owner: None,
        contact: [("phone".to_owned(), number.to_owned())].into(),
        changed_at: after_noon(minutes),
    }
}

async fn delivered(w: &World, change: CrmChange) -> PullReport {
    apply_delivered(
        &w.deps,
        &*w.store,
        CrmKind::Salesforce,
        &Policy::default(),
        &PullConfig::default(),
        &change,
    )
    .await
    .unwrap()
}

/// A delivery kept out (older than a local edit) does not let the next
/// delivery, newer than it but still older than the local edit, win.
#[tokio::test]
async fn a_kept_delivery_does_not_let_the_next_older_one_win() {
    let w = World::new();
    let lead = w.synced("ana@acme.com").await;
    let link = lead.crm_links[0].clone();
    // Local edit at 13:30.
    w.clock.advance(chrono::Duration::minutes(90));
    let edit = usecase::LeadEdit {
        phone: Some(Some("+34612000003".into())),
        ..Default::default()
    };
    usecase::edit_lead(&lead.ext_id, &edit, None, &Policy::default(), &w.deps)
        .await
        .unwrap();
    // CRM changes made at 12:30 and 12:40 (both older than 13:30) arrive late.
    assert_eq!(
        delivered(&w, phone_change(&link, "+34612000004", 30))
            .await
            .applied,
        0
    );
    let second = delivered(&w, phone_change(&link, "+34612000005", 40)).await;
    let phone = w
        .stored(&lead)
        .await
        .fields
        .phone
        .map(|p| p.as_str().to_owned());
    assert_eq!(
        phone.as_deref(),
        Some("+34612000003"),
        "the local edit (13:30) is newer than the CRM change (12:40): {second:?}"
    );
}

/// Two records of one lead (Pipedrive: person + lead/deal). The second
/// record's change, made in the CRM before the first delivery's write but
/// after every local change, still applies: a CRM apply is no local
/// change.
#[tokio::test]
async fn a_change_of_a_second_record_is_not_lost_behind_the_first_ones_write() {
    let w = World::new();
    let lead = w.synced("ana@acme.com").await;
    let (person, other) = w.with_second_record(&lead).await;
    // Both changed in the CRM at 12:30, delivered at 13:00.
    w.clock.advance(chrono::Duration::hours(1));
    assert_eq!(
        delivered(&w, phone_change(&person, "+34612000001", 30))
            .await
            .applied,
        1
    );
    w.clock.advance(chrono::Duration::seconds(1));
    let mut owner = phone_change(&other, "", 30);
    owner.contact.clear();
    owner.contact.insert("job_title".into(), "CTO".into());
    let report = delivered(&w, owner).await;
    assert_eq!(
        w.stored(&lead).await.fields.job_title.as_deref(),
        Some("CTO"),
        "no local change since 12:00; only our own apply of the person: {report:?}"
    );
}

/// The same through the pull: two changes of two records of one lead in one
/// page both apply (the second is not judged against the first's write).
#[tokio::test]
async fn one_pull_with_two_records_of_one_lead_applies_both() {
    let w = World::new();
    let lead = w.synced("ana@acme.com").await;
    let (person, other) = w.with_second_record(&lead).await;
    w.clock.advance(chrono::Duration::hours(1));
    w.crm
        .changes
        .lock()
        .unwrap()
        .push(phone_change(&person, "+34612000001", 30));
    let mut second = phone_change(&other, "", 31);
    second.contact.clear();
    second.contact.insert("job_title".into(), "CTO".into());
    w.crm.changes.lock().unwrap().push(second);
    let report = w.pull(&PullConfig::default()).await;
    assert_eq!(report.applied, 2, "{report:?}");
}
