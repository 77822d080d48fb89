//! Review of issue 21 (scheduled jobs): the job use-cases against a
//! person's concurrent change, reproduced deterministically with a read
//! side that lets "the person" act at a chosen point of the job.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use lead_core::dedup::review::PairQuery;
use lead_core::ports::Retention;
use lead_core::usecase::{
    self, AssignTo, FollowUpChange, NoProgress, Refresh, automate_followups, housekeeping,
    refresh_leads, route_unassigned,
};
use lead_core::{
    ChangeOrigin, Dashboard, Deps, EventKind, FollowUpPage, FollowUpQuery, FollowUpStatus,
    FollowUpTask, InMemoryStore, Lead, LeadEvent, LeadInput, LeadPage, LeadQuery, LeadReads,
    LeadStore, ManualClock, OutboxKind, PairPage, Policy, Rep, RepId, RepStore, Replay, ReviewPair,
    SequentialIds, WorkingHours,
};
use uuid::Uuid;

fn monday_noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
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

fn rep(email: &str, hours: WorkingHours) -> Rep {
    let mut r = Rep::new(RepId::parse(email).unwrap(), email);
    r.working_hours = hours;
    r
}

type Hook = Box<dyn FnMut(&'static str, Option<Uuid>) -> Option<Action> + Send>;

/// What "the person" does at the hooked read.
enum Action {
    CompleteTask(Uuid),
    AssignLead(lead_core::LeadExtId, RepId),
}

/// The store's read side; a hook may run a person's change (through the
/// plain store) right after a read returns.
struct Racing {
    inner: Arc<InMemoryStore>,
    person: Deps,
    hook: Mutex<Hook>,
}

impl Racing {
    async fn after(&self, read: &'static str, id: Option<Uuid>) {
        let action = {
            let mut hook = self.hook.lock().unwrap();
            (*hook)(read, id)
        };
        match action {
            Some(Action::CompleteTask(task)) => {
                usecase::update_followup(
                    task,
                    &FollowUpChange {
                        status: Some(FollowUpStatus::Done),
                        ..Default::default()
                    },
                    &self.person,
                )
                .await
                .expect("the rep completes the task");
            }
            Some(Action::AssignLead(lead, to)) => {
                usecase::assign(
                    &lead,
                    AssignTo::Rep(to),
                    ChangeOrigin::Local,
                    None,
                    &Policy::default(),
                    &self.person,
                )
                .await
                .expect("the manager assigns the lead");
            }
            None => {}
        }
    }
}

#[async_trait]
impl LeadReads for Racing {
    async fn list(&self, query: &LeadQuery) -> lead_core::Result<LeadPage> {
        let page = self.inner.list(query).await?;
        self.after("list", None).await;
        Ok(page)
    }
    async fn dashboard(&self, since: DateTime<Utc>, top: usize) -> lead_core::Result<Dashboard> {
        self.inner.dashboard(since, top).await
    }
    async fn review_pairs(&self, query: &PairQuery) -> lead_core::Result<PairPage> {
        self.inner.review_pairs(query).await
    }
    async fn get_review_pair(&self, id: Uuid) -> lead_core::Result<Option<ReviewPair>> {
        self.inner.get_review_pair(id).await
    }
    async fn followups(&self, query: &FollowUpQuery) -> lead_core::Result<FollowUpPage> {
        let page = LeadReads::followups(&*self.inner, query).await?;
        self.after("followups", None).await;
        Ok(page)
    }
    async fn get_followup(&self, id: Uuid) -> lead_core::Result<Option<FollowUpTask>> {
        let task = self.inner.get_followup(id).await?;
        self.after("get_followup", Some(id)).await;
        Ok(task)
    }
    async fn find_by_email_key(&self, key: &str) -> lead_core::Result<Option<Lead>> {
        self.inner.find_by_email_key(key).await
    }
    async fn find_by_idempotency_key(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> lead_core::Result<Option<Replay>> {
        self.inner.find_by_idempotency_key(key, now).await
    }
}

/// (the job's deps over the racing reads, a person's deps over the store,
/// the clock)
fn racing(store: Arc<InMemoryStore>, hook: Hook) -> (Deps, Deps, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(monday_noon()));
    let person = Deps::with(
        store.clone(),
        clock.clone(),
        Arc::new(SequentialIds::default()),
    );
    let reads = Arc::new(Racing {
        inner: store.clone(),
        person: person.clone(),
        hook: Mutex::new(hook),
    });
    let job = Deps {
        reads,
        ..person.clone()
    };
    (job, person, clock)
}

/// The overdue marking works from a page of open tasks: a rep who
/// completes one of them after the page was read keeps the completion
/// (the mark is a compare-and-set on the task as read), and the other
/// task is marked.
#[tokio::test]
async fn review_followup_automation_does_not_reopen_a_task_a_rep_just_completed() {
    let store = Arc::new(InMemoryStore::new());
    let target = Arc::new(Mutex::new(None::<Uuid>));
    let fired = Arc::new(Mutex::new(false));
    let (t, f) = (target.clone(), fired.clone());
    let hook: Hook = Box::new(move |read, _| {
        let mut fired = f.lock().unwrap();
        if read != "followups" || *fired {
            return None;
        }
        *fired = true;
        t.lock().unwrap().map(Action::CompleteTask)
    });
    let (job, person, clock) = racing(store.clone(), hook);
    let policy = Policy::default();
    let mut tasks = Vec::new();
    for email in ["ana@acme.com", "bea@beta.com"] {
        let out = usecase::capture(&input(email), &policy, &person)
            .await
            .unwrap();
        tasks.push(out.followup.expect("capture plans a follow-up").id);
    }
    *target.lock().unwrap() = Some(tasks[0]);
    clock.advance(Duration::days(30));

    let counts = automate_followups(&policy, &job, &NoProgress)
        .await
        .unwrap();

    assert!(
        *fired.lock().unwrap(),
        "the rep acted after the page was read"
    );
    let completed = store.get_followup(tasks[0]).await.unwrap().unwrap();
    assert_eq!(
        completed.status,
        FollowUpStatus::Done,
        "the rep's completion was overwritten by the overdue mark: {completed:?}"
    );
    assert_eq!(completed.overdue_at, None);
    let other = store.get_followup(tasks[1]).await.unwrap().unwrap();
    assert!(other.overdue_at.is_some(), "the untouched task is marked");
    assert_eq!(counts["overdue"], 1, "{counts:?}");
    assert_eq!(counts["changed_meanwhile"], 1, "{counts:?}");
}

/// `route_unassigned` calls `reassign(Route)` with no expected version and
/// no re-check that the lead is still unassigned: a manager's assignment
/// made after the page was read is replaced by the router's pick.
#[tokio::test]
async fn review_routing_job_keeps_an_assignment_made_after_its_page_was_read() {
    let manager_pick = RepId::parse("anna@sales.com").unwrap();
    // Anna never works (routing skips her, a manager may still pick her);
    // nobody is there at capture, so the lead stays unassigned.
    let store = Arc::new(InMemoryStore::with_reps([rep(
        "anna@sales.com",
        WorkingHours {
            days: Vec::new(),
            ..WorkingHours::default()
        },
    )]));
    let lead_id = Arc::new(Mutex::new(None));
    let (pick, id_for_hook) = (manager_pick.clone(), lead_id.clone());
    let mut fired = false;
    let hook: Hook = Box::new(move |read, _| {
        if read != "list" || fired {
            return None;
        }
        fired = true;
        let lead = id_for_hook.lock().unwrap().clone()?;
        Some(Action::AssignLead(lead, pick.clone()))
    });
    let (job, person, _clock) = racing(store.clone(), hook);
    let policy = Policy::default();
    let out = usecase::capture(&input("ana@acme.com"), &policy, &person)
        .await
        .unwrap();
    assert_eq!(
        out.lead.assigned_to, None,
        "nobody could take it at capture"
    );
    *lead_id.lock().unwrap() = Some(out.lead.ext_id.clone());
    // A rep who can take leads joins before the job runs.
    RepStore::upsert_rep(&*store, &rep("bob@sales.com", WorkingHours::always()))
        .await
        .unwrap();

    route_unassigned(&policy, &job, &NoProgress).await.unwrap();

    let lead = store.get(&out.lead.ext_id).await.unwrap().unwrap();
    assert_eq!(
        lead.assigned_to.as_ref(),
        Some(&manager_pick),
        "the routing job replaced the manager's assignment"
    );
}

/// The segmentation refresh queues a `LeadUpdated` for the CRM whenever
/// the behavioral score moved, even with the segments unchanged; the docs
/// (and the use-case's own doc) say a behavioral score change stays local.
#[tokio::test]
async fn review_segmentation_does_not_push_a_lead_whose_segments_did_not_change() {
    let store = Arc::new(InMemoryStore::new());
    let (job, person, clock) = racing(store.clone(), Box::new(|_, _| None));
    let policy = Policy::default();
    let out = usecase::capture(&input("ana@acme.com"), &policy, &person)
        .await
        .unwrap();
    let event = LeadEvent {
        kind: EventKind::PricingView,
        at: monday_noon(),
        properties: Default::default(),
    };
    let before = usecase::record_event(&out.lead.ext_id, event, &policy, &person)
        .await
        .unwrap();
    let queued_before = store.outbox().len();
    clock.advance(Duration::days(4));

    refresh_leads(Refresh::Segments, &policy, &job, &NoProgress)
        .await
        .unwrap();

    let after = store.get(&out.lead.ext_id).await.unwrap().unwrap();
    assert_eq!(after.segments, before.segments, "segments unchanged");
    assert_ne!(
        after.behavioral_score, before.behavioral_score,
        "score decayed"
    );
    let pushed: Vec<_> = store.outbox()[queued_before..]
        .iter()
        .filter(|e| e.kind == OutboxKind::LeadUpdated)
        .map(|e| e.payload.clone())
        .collect();
    assert!(
        pushed.is_empty(),
        "a behavioral-score-only change was queued for the CRM: {pushed:?}"
    );
}

/// Housekeeping panics (instead of answering an error or deleting
/// everything old) for a long retention: `now - retention` overflows.
/// lead-server builds `Retention` from `*_days` (u32) in LEAD_JOBS_FILE
/// without a bound, and a panic inside the apalis handler takes the
/// whole job worker of the instance down.
#[tokio::test]
async fn review_housekeeping_does_not_panic_on_a_long_retention() {
    let store = Arc::new(InMemoryStore::new());
    let (_, person, _) = racing(store.clone(), Box::new(|_, _| None));
    let retention = Retention {
        delivery_marks: Duration::days(100_000_000),
        job_runs: Duration::days(30),
    };
    let outcome =
        tokio::spawn(async move { housekeeping(&*store, &retention, &person).await }).await;
    assert!(outcome.is_ok(), "housekeeping panicked");
}
