//! The CRM adapter suite: the sync engine's behaviour (each lead
//! delivered once, temporary failures retried, a refused record parked
//! alone and delivered by its retry, the conflict rules, no echo) checked
//! against a real adapter talking to its contract mock, so every CRM
//! (Salesforce, Pipedrive) is held to the same rules through one suite.
//!
//! An adapter's tests implement [`CrmMock`] over their mock server and
//! call [`run_all`]; each check gets a fresh mock and an in-memory store
//! on a manual clock that starts at 2026-11-23 12:00 UTC (the mocks date
//! their changes from there too).

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use crate::commit::Destination;
use crate::lead::Lead;
use crate::memory::InMemoryStore;
use crate::model::{LeadExtId, LeadInput, Rep, RepId, Stage, WorkingHours};
use crate::policy::Policy;
use crate::ports::{Clock, CrmClient, LeadStore, ManualClock, OutboxStore, SequentialIds};
use crate::sync::{PullConfig, PushConfig, pull_once, push_once};
use crate::usecase::{self, Deps};

/// A failure a mock plays on its next data call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `429` (or the CRM's own "limit exceeded").
    RateLimited,
    /// `503`.
    Unavailable,
}

/// A CRM's contract mock, as the suite drives it.
#[async_trait]
pub trait CrmMock: Send + Sync {
    /// A client of the adapter under test, pointed at this mock.
    fn client(&self) -> Arc<dyn CrmClient>;
    /// Lead records the CRM holds (Salesforce Leads, Pipedrive persons).
    async fn lead_records(&self) -> usize;
    /// Follow-up records it holds (Tasks, activities).
    async fn task_records(&self) -> usize;
    /// How many times the record of our lead `lead` was written.
    async fn writes_of(&self, lead: &LeadExtId) -> u32;
    /// The next `count` data calls fail with `failure`.
    async fn fail_next(&self, failure: Failure, count: usize);
    /// The CRM refuses records with this e-mail (a validation rule), or
    /// takes them again (`refuse = false`).
    async fn refuse_email(&self, email: &str, refuse: bool);
    /// Someone closes `lead` as lost in the CRM, `minutes` after noon of
    /// 2026-11-23 by the CRM's clock.
    async fn lose_in_crm(&self, lead: &LeadExtId, minutes: i64);
}

/// Runs every check, each on a fresh mock from `make`.
pub async fn run_all<M, F, Fut>(make: F)
where
    M: CrmMock,
    F: Fn() -> Fut,
    Fut: Future<Output = M>,
{
    each_lead_and_task_is_delivered_once(&make().await).await;
    temporary_failures_delay_and_lose_nothing(&make().await).await;
    a_refused_record_is_parked_alone_and_its_retry_delivers_it(&make().await).await;
    a_newer_crm_change_applies_and_is_not_echoed(&make().await).await;
    an_older_crm_change_does_not_overwrite_a_newer_local_one(&make().await).await;
}

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

/// The suite's side of a check: a store with one rep, a clock, the
/// adapter's client.
struct World {
    store: Arc<InMemoryStore>,
    clock: Arc<ManualClock>,
    deps: Deps,
    crm: Arc<dyn CrmClient>,
    push: PushConfig,
}

impl World {
    fn new(mock: &dyn CrmMock) -> World {
        let mut rep = Rep::new(RepId::parse("rep@sales.com").expect("a rep id"), "Rep");
        rep.working_hours = WorkingHours::always();
        let store = Arc::new(InMemoryStore::with_reps([rep]));
        let clock = Arc::new(ManualClock::new(noon()));
        let deps = Deps::with(
            store.clone(),
            clock.clone(),
            Arc::new(SequentialIds::default()),
        );
        World {
            store,
            clock,
            deps,
            crm: mock.client(),
            push: PushConfig {
                base_delay: std::time::Duration::from_secs(1),
                ..PushConfig::default()
            },
        }
    }

    async fn capture(&self, n: usize) -> Lead {
        let input = LeadInput {
            email: Some(format!("person{n}@company{n}.com")),
            first_name: Some("Ana".into()),
            last_name: Some(format!("Suite {n}")),
            company: Some(format!("Company {n}")),
            ..Default::default()
        };
        usecase::capture(&input, &Policy::default(), &self.deps)
            .await
            .expect("capture")
            .lead
    }

    async fn push(&self) -> crate::sync::PushReport {
        push_once(&self.deps, &*self.store, &*self.crm, &self.push)
            .await
            .expect("a push run")
    }

    async fn pull(&self) -> crate::sync::PullReport {
        pull_once(
            &self.deps,
            &*self.store,
            &*self.crm,
            &Policy::default(),
            &PullConfig::default(),
        )
        .await
        .expect("a pull run")
    }

    async fn backlog(&self) -> u64 {
        self.store
            .pending_count(&Destination::CRM)
            .await
            .expect("backlog")
    }

    async fn dead(&self) -> u64 {
        self.store
            .dead_count(&Destination::CRM)
            .await
            .expect("dead letters")
    }

    async fn stored(&self, lead: &LeadExtId) -> Lead {
        self.store
            .get(lead)
            .await
            .expect("a read")
            .expect("the lead")
    }

    /// Pushes until the queue is empty (moving the clock past each retry),
    /// at most `runs` times.
    async fn drain(&self, runs: usize) {
        for _ in 0..runs {
            if self.backlog().await == 0 {
                return;
            }
            self.push().await;
            self.clock.advance(chrono::Duration::minutes(30));
        }
        assert_eq!(self.backlog().await, 0, "still queued after {runs} runs");
    }
}

/// Three leads and their tasks, pushed twice: one record each in the CRM,
/// each written once, the queue empty.
pub async fn each_lead_and_task_is_delivered_once(mock: &dyn CrmMock) {
    let w = World::new(mock);
    let mut leads = Vec::new();
    for n in 0..3 {
        leads.push(w.capture(n).await);
    }
    let report = w.push().await;
    assert_eq!(
        (report.leads_synced, report.tasks_synced),
        (3, 3),
        "{report:?}"
    );
    let again = w.push().await;
    assert_eq!(again.claimed, 0, "nothing left to send: {again:?}");
    assert_eq!(mock.lead_records().await, 3);
    assert_eq!(mock.task_records().await, 3);
    for lead in &leads {
        assert_eq!(mock.writes_of(&lead.ext_id).await, 1, "{}", lead.ext_id);
        assert!(
            !w.stored(&lead.ext_id).await.crm_links.is_empty(),
            "the CRM's id is recorded"
        );
    }
    assert_eq!(w.backlog().await, 0);
}

/// Limits and outages in a row: retried with backoff, nothing parked,
/// everything delivered once.
pub async fn temporary_failures_delay_and_lose_nothing(mock: &dyn CrmMock) {
    let w = World::new(mock);
    let lead = w.capture(0).await;
    mock.fail_next(Failure::RateLimited, 2).await;
    mock.fail_next(Failure::Unavailable, 2).await;
    let report = w.push().await;
    assert!(report.retried > 0, "{report:?}");
    assert_eq!(report.dead_lettered, 0, "{report:?}");
    w.drain(10).await;
    assert_eq!(w.dead().await, 0);
    assert_eq!(mock.lead_records().await, 1);
    assert_eq!(mock.task_records().await, 1);
    assert_eq!(mock.writes_of(&lead.ext_id).await, 1);
}

/// One record the CRM refuses: only its change is parked, the others
/// go; once the CRM takes it, the retry delivers it.
pub async fn a_refused_record_is_parked_alone_and_its_retry_delivers_it(mock: &dyn CrmMock) {
    let w = World::new(mock);
    let good = w.capture(0).await;
    let bad = w.capture(1).await;
    mock.refuse_email(bad.fields.email.as_str(), true).await;
    w.push().await;
    let dead = w
        .store
        .dead_letters(&Destination::CRM, 10)
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), 1, "only the refused lead: {dead:?}");
    assert_eq!(dead[0].entry.lead, bad.ext_id);
    assert_eq!(mock.writes_of(&good.ext_id).await, 1);

    mock.refuse_email(bad.fields.email.as_str(), false).await;
    w.store
        .requeue(&Destination::CRM, dead[0].entry.id, w.clock.now())
        .await
        .expect("requeued");
    w.drain(20).await;
    assert_eq!(w.dead().await, 0);
    assert_eq!(mock.writes_of(&bad.ext_id).await, 1);
    assert_eq!(mock.lead_records().await, 2);
    assert_eq!(mock.task_records().await, 2, "the waiting task went too");
}

/// A change made in the CRM after the lead's own last change applies,
/// and is not sent back.
pub async fn a_newer_crm_change_applies_and_is_not_echoed(mock: &dyn CrmMock) {
    let w = World::new(mock);
    let lead = w.capture(0).await;
    w.push().await;
    let writes = mock.writes_of(&lead.ext_id).await;
    // Pulled at 15:00; changed in the CRM at 14:00, after our 12:00.
    w.clock.advance(chrono::Duration::hours(3));
    mock.lose_in_crm(&lead.ext_id, 120).await;
    let report = w.pull().await;
    assert_eq!(report.applied, 1, "{report:?}");
    assert_eq!(w.stored(&lead.ext_id).await.stage, Stage::Lost);
    assert_eq!(w.backlog().await, 0, "nothing queued back to the CRM");
    w.push().await;
    assert_eq!(
        mock.writes_of(&lead.ext_id).await,
        writes,
        "the CRM's own change is not written back to it"
    );
}

/// A CRM change older than the lead's local change keeps the local
/// value (two-way newest wins, the default rule).
pub async fn an_older_crm_change_does_not_overwrite_a_newer_local_one(mock: &dyn CrmMock) {
    let w = World::new(mock);
    let lead = w.capture(0).await;
    w.push().await;
    // Moved here at 15:00; the CRM's change is from 13:00.
    w.clock.advance(chrono::Duration::hours(3));
    usecase::change_stage(
        &lead.ext_id,
        Stage::Contacted,
        None,
        crate::model::ChangeOrigin::Local,
        None,
        &Policy::default(),
        &w.deps,
    )
    .await
    .expect("a local change");
    mock.lose_in_crm(&lead.ext_id, 60).await;
    let report = w.pull().await;
    assert_eq!(report.applied, 0, "{report:?}");
    assert_eq!(w.stored(&lead.ext_id).await.stage, Stage::Contacted);
}
