//! The store conformance suite: one set of checks every [`Store`] +
//! [`OutboxStore`] + [`SyncState`] implementation must pass (in-memory,
//! SQLite, PostgreSQL), so the stores are interchangeable.
//!
//! Each check takes a fresh, empty store and panics with a message naming
//! the broken rule. Run them all with [`run_all`]:
//!
//! ```
//! # tokio_block_on(async {
//! use std::sync::Arc;
//! use lead_core::{InMemoryStore, conformance};
//!
//! conformance::run_all(|| async { Arc::new(InMemoryStore::new()) }).await;
//! # });
//! # fn tokio_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```
//!
//! Concurrency checks run their tasks with `join_all` on the caller's task:
//! a store doing real I/O (a connection pool) still sees the requests
//! overlap, and the suite needs no runtime of its own.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures_util::future::join_all;
use rust_decimal::Decimal;
use serde_json::json;

use crate::commit::{Commit, Destination, IdempotencyKey, LoadChange, OutboxEntry, OutboxKind};
use crate::dedup::review::{PairQuery, ReviewPair, ReviewStatus};
use crate::error::Error;
use crate::followup::{FollowUpStatus, FollowUpTask};
use crate::lead::Lead;
use crate::model::{
    ChangeOrigin, CrmKind, CrmLink, EventKind, LeadEvent, LeadExtId, LeadInput, Priority, Rep,
    RepId, RepLoad, Stage, WorkingHours,
};
use crate::policy::Policy;
use crate::ports::{
    AccountKey, Clock, JobStore, ManualClock, OutboxStore, RandomIds, RepStore, Replay,
    SequentialIds, Store, SyncState,
};
use crate::query::{FollowUpCursor, FollowUpQuery, LeadQuery, dashboard_of, page_of};
use crate::usecase::Deps;
use crate::usecase::{self, AssignTo};

/// Everything a full store implements.
pub trait FullStore: Store + OutboxStore + SyncState + JobStore + 'static {}
impl<T: Store + OutboxStore + SyncState + JobStore + 'static> FullStore for T {}

/// Runs every check, each on a fresh store from `make`.
pub async fn run_all<S, F, Fut>(make: F)
where
    S: FullStore,
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<S>>,
{
    a_lead_round_trips_exactly(make().await).await;
    inserts_are_unique_by_folded_email(make().await).await;
    updates_need_the_current_version(make().await).await;
    a_failed_commit_writes_nothing(make().await).await;
    concurrent_new_leads_that_break_a_rule_fail_alone(make().await).await;
    new_leads_beside_an_update_each_get_their_own_answer(make().await).await;
    concurrent_captures_of_one_email_store_one_lead(make().await).await;
    outbox_entries_go_to_one_worker_each(make().await).await;
    outbox_leases_expire_and_retries_wait(make().await).await;
    outbox_destinations_are_separate_queues(make().await).await;
    dead_letters_requeue_with_a_fresh_budget(make().await).await;
    idempotency_keys_expire(make().await).await;
    job_runs_round_trip_and_housekeeping_purges_only_the_old(make().await).await;
    a_key_reused_for_another_request_is_refused(make().await).await;
    merge_and_undo_round_trip(make().await).await;
    review_pairs_page_like_the_reference_and_keep_decisions(make().await).await;
    a_scan_merges_and_marks_through_the_store(make().await).await;
    listing_filters_and_pages_like_the_reference(make().await).await;
    followups_page_like_the_reference_and_update(make().await).await;
    dashboard_matches_the_reference(make().await).await;
    rep_workloads_count_by_increments(make().await).await;
    capture_context_equals_the_reads_it_stands_for(make().await).await;
    watermarks_and_leases(make().await).await;
    crm_links_are_named_by_object_and_may_be_shared(make().await).await;
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0)
        .single()
        .unwrap_or_default()
}

fn deps<S: FullStore>(store: &Arc<S>, clock: Arc<dyn Clock>) -> Deps {
    Deps::with(store.clone(), clock, Arc::new(SequentialIds::default()))
}

fn rep(email: &str) -> Rep {
    let mut r = Rep::new(RepId::parse(email).expect("valid rep e-mail"), email);
    r.working_hours = WorkingHours::always();
    r
}

fn form(n: usize) -> LeadInput {
    let sources = ["web", "google", "linkedin", "referral", "organic"];
    LeadInput {
        email: Some(format!("person{n}@company{}.com", n % 7)),
        first_name: Some(format!("Name{n}")),
        last_name: Some(["López", "Smith", "Müller", "Rossi"][n % 4].to_owned()),
        phone: n
            .is_multiple_of(3)
            .then(|| format!("+3461234{:04}", n % 10_000)),
        company: n.is_multiple_of(2).then(|| format!("Company{} SL", n % 7)),
        source: Some(sources[n % sources.len()].to_owned()),
        message: (n % 4 != 1).then(|| "We need a demo".to_owned()),
        utm_campaign: n.is_multiple_of(5).then(|| "spring".to_owned()),
        landing_page: (n % 2 == 1).then(|| "https://example.com/landing".to_owned()),
        ..Default::default()
    }
}

/// Every field of a lead, its history, events, links, BANT and routing
/// explanation come back exactly as written.
pub async fn a_lead_round_trips_exactly<S: FullStore>(store: Arc<S>) {
    let (clock, d) = ana_and_a_clock(&store).await;
    let policy = Policy::default();
    let mut input = form(0);
    input.job_title = Some("CTO".into());
    input.website = Some("acme.com".into());
    input.country = Some("ES".into());
    input.industry = Some("Software".into());
    input.company_size = Some("250".into());
    input.budget = Some("12,500.50".into());
    input.timeline = Some("this quarter".into());
    input.consent_marketing = Some("yes".into());
    input.consent_text = Some("I agree ✓".into());
    input
        .metadata
        .insert("nested".into(), json!({"a": [1, 2.5, "ü"], "b": null}));
    let captured = usecase::capture(&input, &policy, &d)
        .await
        .expect("capture");
    let ext_id = captured.lead.ext_id.clone();
    clock.advance(chrono::Duration::minutes(5));
    let event = LeadEvent {
        kind: EventKind::PricingView,
        at: t0(),
        properties: json!({"page": "/pricing"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    };
    usecase::record_event(&ext_id, event, &policy, &d)
        .await
        .expect("record event");
    usecase::change_stage(
        &ext_id,
        Stage::Contacted,
        Some("called".into()),
        ChangeOrigin::Local,
        None,
        &policy,
        &d,
    )
    .await
    .expect("change stage");

    let mut lead = store.get(&ext_id).await.expect("get").expect("stored");
    let version = lead.version;
    lead.crm_links.push(CrmLink {
        crm: CrmKind::Salesforce,
        object: "Lead".into(),
        id: "00Q5e00000ABCDE".into(),
    });
    lead.estimated_value = Some(rust_decimal::Decimal::new(9_999_999, 2));
    lead.currency = Some("EUR".into());
    lead.ml_score = Some(crate::model::Score::clamped(73));
    let written = store
        .commit(Commit::new().write(lead.clone(), Some(version)))
        .await
        .expect("update");
    let mut expected = lead;
    expected.version = version + 1;
    assert_eq!(
        written,
        vec![expected.clone()],
        "commit returns the stored lead with its new version"
    );
    let read = store.get(&ext_id).await.expect("get").expect("stored");
    assert_eq!(read, expected, "a stored lead reads back exactly");
    assert_eq!(
        store
            .find_by_email_key("person0@company0.com")
            .await
            .expect("find"),
        Some(expected.clone())
    );
    assert_eq!(
        store
            .find_by_crm_link(&CrmLink {
                crm: CrmKind::Salesforce,
                object: "Lead".into(),
                id: "00Q5e00000ABCDE".into(),
            })
            .await
            .expect("by link")
            .map(|l| l.ext_id),
        Some(ext_id)
    );
    assert_eq!(
        store.get(&LeadExtId::from_random(7)).await.expect("get"),
        None
    );
}

/// A CRM record is its object and id (Pipedrive's person 7 is not its
/// deal 7), and two leads may link to one record (one Pipedrive person
/// for two leads): the first lead by id answers for it.
pub async fn crm_links_are_named_by_object_and_may_be_shared<S: FullStore>(store: Arc<S>) {
    let d = deps(&store, Arc::new(ManualClock::new(t0())));
    let mut leads = Vec::new();
    for n in 0..3 {
        let lead = usecase::capture(&form(n), &Policy::default(), &d)
            .await
            .expect("capture")
            .lead;
        leads.push(lead);
    }
    leads.sort_by(|a, b| a.ext_id.as_str().cmp(b.ext_id.as_str()));
    let link = |object: &str, id: &str| CrmLink {
        crm: CrmKind::Pipedrive,
        object: object.into(),
        id: id.into(),
    };
    let links = [
        vec![link("person", "7"), link("deal", "8")],
        vec![link("person", "7"), link("deal", "7")],
        vec![link("note", "7")],
    ];
    for (lead, links) in leads.iter().zip(links) {
        let mut linked = lead.clone();
        linked.crm_links = links;
        store
            .commit(Commit::new().write(linked, Some(lead.version)))
            .await
            .expect("links stored");
    }
    let found = |object: &'static str, id: &'static str| {
        let store = store.clone();
        async move {
            store
                .find_by_crm_link(&link(object, id))
                .await
                .expect("by link")
                .map(|l| l.ext_id)
        }
    };
    assert_eq!(found("person", "7").await, Some(leads[0].ext_id.clone()));
    assert_eq!(found("deal", "7").await, Some(leads[1].ext_id.clone()));
    assert_eq!(found("note", "7").await, Some(leads[2].ext_id.clone()));
    assert_eq!(found("deal", "8").await, Some(leads[0].ext_id.clone()));
    assert_eq!(found("lead", "7").await, None);
}

/// Two unmerged leads never share a folded e-mail, and ids are unique.
pub async fn inserts_are_unique_by_folded_email<S: FullStore>(store: Arc<S>) {
    let d = deps(&store, Arc::new(ManualClock::new(t0())));
    let mut input = form(1);
    input.email = Some("Ana.Lopez+a@gmail.com".into());
    let first = usecase::capture(&input, &Policy::default(), &d)
        .await
        .expect("capture")
        .lead;
    let mut twin = first.clone();
    twin.ext_id = LeadExtId::from_random(42);
    twin.fields.email = crate::model::Email::parse("analopez+b@googlemail.com").expect("valid");
    let err = store
        .commit(Commit::new().write(twin, None))
        .await
        .expect_err("same folded e-mail must conflict");
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    let mut same_id = first.clone();
    same_id.fields.email = crate::model::Email::parse("other@example.com").expect("valid");
    let err = store
        .commit(Commit::new().write(same_id, None))
        .await
        .expect_err("same ext_id must conflict");
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
}

/// Updates carry the version they read; a stale one conflicts.
pub async fn updates_need_the_current_version<S: FullStore>(store: Arc<S>) {
    let d = deps(&store, Arc::new(ManualClock::new(t0())));
    let lead = usecase::capture(&form(2), &Policy::default(), &d)
        .await
        .expect("capture")
        .lead;
    assert_eq!(lead.version, 1, "an insert stores version 1");
    let mut changed = lead.clone();
    changed.fields.company = Some("Renamed".into());
    let v2 = store
        .commit(Commit::new().write(changed.clone(), Some(1)))
        .await
        .expect("update at version 1");
    assert_eq!(v2[0].version, 2);
    let err = store
        .commit(Commit::new().write(changed, Some(1)))
        .await
        .expect_err("stale version");
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    let mut ghost = lead;
    ghost.ext_id = LeadExtId::from_random(99);
    let err = store
        .commit(Commit::new().write(ghost, Some(1)))
        .await
        .expect_err("update of a missing lead");
    assert!(
        matches!(err, Error::NotFound(_) | Error::Conflict(_)),
        "{err:?}"
    );
}

/// Stores rep `ana@sales.com` (always at work) and captures `form(n)`,
/// which routing gives to her.
/// The store with rep Ana, and use-case dependencies on a manual clock at
/// [`t0`].
async fn ana_and_a_clock<S: FullStore>(store: &Arc<S>) -> (Arc<ManualClock>, Deps) {
    store
        .upsert_rep(&rep("ana@sales.com"))
        .await
        .expect("upsert rep");
    let clock = Arc::new(ManualClock::new(t0()));
    let d = deps(store, clock.clone());
    (clock, d)
}

async fn ana_and_a_lead<S: FullStore>(store: &Arc<S>, n: usize) -> Lead {
    let (_, d) = ana_and_a_clock(store).await;
    usecase::capture(&form(n), &Policy::default(), &d)
        .await
        .expect("capture")
        .lead
}

/// A commit with one bad part leaves no trace of its good parts.
pub async fn a_failed_commit_writes_nothing<S: FullStore>(store: Arc<S>) {
    let lead = ana_and_a_lead(&store, 3).await;
    let pending = store
        .pending_count(&Destination::CRM)
        .await
        .expect("pending");
    let load = store.rep_states().await.expect("reps")[0].load.clone();

    let mut fresh = lead.clone();
    fresh.ext_id = LeadExtId::from_random(1234);
    fresh.fields.email = crate::model::Email::parse("fresh@example.com").expect("valid");
    let mut commit = Commit::new()
        .write(fresh.clone(), None)
        .write(lead.clone(), Some(lead.version + 5));
    commit.outbox.push(OutboxEntry {
        id: uuid::Uuid::from_u128(77),
        destination: Destination::CRM,
        lead: fresh.ext_id.clone(),
        kind: OutboxKind::LeadCreated,
        payload: json!({}),
        created_at: t0(),
    });
    commit.load.push(LoadChange::Assigned {
        rep: RepId::parse("ana@sales.com").expect("valid"),
        at: t0(),
        local_day: t0().date_naive(),
        pass: 9.0,
    });
    assert!(
        store.commit(commit).await.is_err(),
        "a stale part fails the whole commit"
    );
    assert_eq!(
        store.get(&fresh.ext_id).await.expect("get"),
        None,
        "the good insert was not kept"
    );
    assert_eq!(
        store
            .pending_count(&Destination::CRM)
            .await
            .expect("pending"),
        pending,
        "no outbox entry was kept"
    );
    assert_eq!(
        store.rep_states().await.expect("reps")[0].load,
        load,
        "no workload change was kept"
    );
}

/// New-lead commits arriving together, some of which break a rule (a live
/// idempotency key, an unknown rep, a taken address, a duplicated id): the
/// good ones are stored whole (projections, outbox, keys, workload), the
/// bad ones fail with the rule's error and leave nothing behind. Stores
/// that write such commits in bulk without reading first must get this
/// right too.
pub async fn concurrent_new_leads_that_break_a_rule_fail_alone<S: FullStore>(store: Arc<S>) {
    let held = ana_and_a_lead(&store, 7).await;
    let key = |name: &str, lead: &Lead| IdempotencyKey {
        key: name.to_owned(),
        lead: lead.ext_id.clone(),
        created_at: t0(),
        expires_at: t0() + chrono::Duration::hours(1),
        request_hash: Some(format!("hash of {name}")),
    };
    let mut taken = Commit::new();
    taken.idempotency.push(key("taken-key", &held));
    store.commit(taken).await.expect("store a key");
    let pending = store
        .pending_count(&Destination::CRM)
        .await
        .expect("pending");
    let open = store.rep_states().await.expect("reps")[0].load.open_leads;

    let ana = RepId::parse("ana@sales.com").expect("valid");
    let new_lead = |n: u64| {
        let mut lead = held.clone();
        lead.ext_id = LeadExtId::from_random(5_000 + n);
        lead.fields.email =
            crate::model::Email::parse(&format!("new{n}@example.com")).expect("valid");
        lead.events.push(LeadEvent {
            kind: EventKind::EmailClick,
            at: t0(),
            properties: json!({ "n": n }).as_object().cloned().unwrap_or_default(),
        });
        lead.assigned_to = Some(ana.clone());
        lead
    };
    let full = |lead: &Lead, idem: &str, rep: &RepId| {
        let mut commit = Commit::new().write(lead.clone(), None);
        commit.outbox.push(OutboxEntry {
            id: uuid::Uuid::new_v4(),
            destination: Destination::CRM,
            lead: lead.ext_id.clone(),
            kind: OutboxKind::LeadCreated,
            payload: json!({}),
            created_at: t0(),
        });
        commit.idempotency.push(key(idem, lead));
        commit.load.push(LoadChange::Assigned {
            rep: rep.clone(),
            at: t0(),
            local_day: t0().date_naive(),
            pass: 1.0,
        });
        commit
    };
    let good: Vec<Lead> = (0..6).map(new_lead).collect();
    let mut commits: Vec<(Commit, Option<&str>)> = good
        .iter()
        .enumerate()
        .map(|(i, lead)| (full(lead, &format!("good-{i}"), &ana), None))
        .collect();
    let live_key = new_lead(10);
    commits.insert(1, (full(&live_key, "taken-key", &ana), Some("conflict")));
    let ghost_rep = new_lead(11);
    let ghost = RepId::parse("ghost@sales.com").expect("valid");
    commits.insert(
        3,
        (full(&ghost_rep, "ghost-key", &ghost), Some("not found")),
    );
    let mut same_address = new_lead(12);
    same_address.fields.email = held.fields.email.clone();
    commits.insert(
        5,
        (full(&same_address, "address-key", &ana), Some("conflict")),
    );
    let mut same_id = new_lead(13);
    same_id.ext_id = held.ext_id.clone();
    commits.push((full(&same_id, "id-key", &ana), Some("conflict")));

    let results = join_all(
        commits
            .iter()
            .map(|(commit, _)| store.commit(commit.clone())),
    )
    .await;
    let mut stored = 0;
    for ((commit, expected), result) in commits.iter().zip(results) {
        let lead = &commit.leads[0].lead;
        match (expected, result) {
            (None, Ok(written)) => {
                let mut want = lead.clone();
                want.version = 1;
                assert_eq!(written, vec![want.clone()], "the good commit's lead");
                assert_eq!(
                    store.get(&lead.ext_id).await.expect("get"),
                    Some(want),
                    "a good new lead reads back exactly, events included"
                );
                let key = &commit.idempotency[0].key;
                assert_eq!(
                    store
                        .find_by_idempotency_key(key, t0())
                        .await
                        .expect("find"),
                    Some(Replay {
                        lead: lead.ext_id.clone(),
                        request_hash: Some(format!("hash of {key}")),
                    }),
                    "a good commit's key is stored with its request hash"
                );
                stored += 1;
            }
            (Some("conflict"), Err(Error::Conflict(_)))
            | (Some("not found"), Err(Error::NotFound(_))) => {
                let kept = store.get(&lead.ext_id).await.expect("get");
                if lead.ext_id == held.ext_id {
                    assert_eq!(kept, Some(held.clone()), "the stored lead is untouched");
                } else {
                    assert_eq!(kept, None, "a failed new lead is not kept");
                }
                let key = &commit.idempotency[0].key;
                if key != "taken-key" {
                    assert_eq!(
                        store
                            .find_by_idempotency_key(key, t0())
                            .await
                            .expect("find"),
                        None,
                        "a failed commit's idempotency key is not kept"
                    );
                }
            }
            (expected, result) => {
                panic!(
                    "commit of {}: expected {expected:?}, got {result:?}",
                    lead.ext_id
                )
            }
        }
    }
    assert_eq!(stored, good.len());
    assert_eq!(
        store
            .find_by_idempotency_key("taken-key", t0())
            .await
            .expect("find"),
        Some(Replay {
            lead: held.ext_id.clone(),
            request_hash: Some("hash of taken-key".into()),
        }),
        "the live key still points at its first lead, with its first hash"
    );
    assert_eq!(
        store
            .pending_count(&Destination::CRM)
            .await
            .expect("pending"),
        pending + good.len() as u64,
        "only the good commits queued outbox entries"
    );
    let load = &store.rep_states().await.expect("reps")[0].load;
    assert_eq!(
        load.open_leads,
        open + good.len() as u32,
        "only the good commits counted on the rep"
    );
}

/// A burst mixing an update with new leads, one of which takes an address
/// already stored: the update applies, the new leads are stored, and the
/// one on a taken address fails alone with `Conflict`, leaving no trace.
/// Stores that write a batch's new leads together, ahead of its other
/// commits, must answer each commit as if it ran alone.
pub async fn new_leads_beside_an_update_each_get_their_own_answer<S: FullStore>(store: Arc<S>) {
    const N: usize = 32;
    let held = ana_and_a_lead(&store, 7).await;
    let fresh = |n: usize| {
        let mut lead = held.clone();
        lead.ext_id = LeadExtId::from_random(10_000 + n as u64);
        lead.fields.email =
            crate::model::Email::parse(&format!("person{n}@example.com")).expect("valid");
        lead
    };
    let taken_at = N / 2;
    let mut changed = held.clone();
    changed.fields.first_name = Some("Changed".into());
    let commits: Vec<Commit> = (0..N)
        .map(|n| match n {
            0 => Commit::new().write(changed.clone(), Some(held.version)),
            n if n == taken_at => {
                let mut twin = fresh(n);
                twin.fields.email = held.fields.email.clone();
                Commit::new().write(twin, None)
            }
            n => Commit::new().write(fresh(n), None),
        })
        .collect();
    let results = join_all(commits.into_iter().map(|commit| store.commit(commit))).await;
    for (n, result) in results.into_iter().enumerate() {
        match n {
            0 => {
                let written = result.expect("the update succeeds");
                assert_eq!(written[0].version, held.version + 1);
            }
            n if n == taken_at => {
                let err = result.expect_err("a taken address is refused");
                assert!(matches!(err, Error::Conflict(_)), "{err:?}");
                let stored = store.get(&fresh(n).ext_id).await.expect("get");
                assert!(stored.is_none(), "the refused lead left no trace");
            }
            n => {
                let written = result.expect("the other new leads succeed");
                assert_eq!(written[0].ext_id, fresh(n).ext_id);
                let stored = store.get(&written[0].ext_id).await.expect("get");
                assert!(stored.is_some(), "lead {n} is stored");
            }
        }
    }
    let stored = store.get(&held.ext_id).await.expect("get").expect("stored");
    assert_eq!(stored.fields.first_name.as_deref(), Some("Changed"));
    assert_eq!(stored.version, held.version + 1);
}

/// 16 captures of one address at once store one lead.
pub async fn concurrent_captures_of_one_email_store_one_lead<S: FullStore>(store: Arc<S>) {
    let d = Deps::with(
        store.clone(),
        Arc::new(ManualClock::new(t0())),
        Arc::new(RandomIds),
    );
    let policy = Policy::default();
    let results = join_all((0..16).map(|i| {
        let (d, policy) = (d.clone(), policy.clone());
        async move {
            let mut input = form(4);
            input.message = Some(format!("submission {i}"));
            usecase::capture(&input, &policy, &d).await
        }
    }))
    .await;
    let ids: std::collections::BTreeSet<LeadExtId> = results
        .into_iter()
        .map(|r| r.expect("every capture succeeds").lead.ext_id)
        .collect();
    assert_eq!(ids.len(), 1, "all captures end in the same lead");
    let page = store.list(&LeadQuery::default()).await.expect("list");
    assert_eq!(page.leads.len(), 1, "one lead stored");
}

async fn fill_outbox<S: FullStore>(store: &Arc<S>, n: usize) -> Vec<uuid::Uuid> {
    let d = deps(store, Arc::new(ManualClock::new(t0())));
    let lead = usecase::capture(&form(5), &Policy::default(), &d)
        .await
        .expect("capture")
        .lead;
    let ids: Vec<uuid::Uuid> = (0..n)
        .map(|i| uuid::Uuid::from_u128(1_000 + i as u128))
        .collect();
    let mut commit = Commit::new().write(lead.clone(), Some(lead.version));
    commit.outbox = ids
        .iter()
        .enumerate()
        .map(|(i, id)| OutboxEntry {
            id: *id,
            destination: Destination::CRM,
            lead: lead.ext_id.clone(),
            kind: OutboxKind::LeadUpdated,
            payload: json!({ "n": i }),
            created_at: t0() + chrono::Duration::milliseconds(i as i64),
        })
        .collect();
    store.commit(commit).await.expect("commit outbox");
    ids
}

/// Four workers draining the outbox together handle every entry exactly once.
pub async fn outbox_entries_go_to_one_worker_each<S: FullStore>(store: Arc<S>) {
    let ids = fill_outbox(&store, 40).await;
    let now = t0() + chrono::Duration::seconds(1);
    let handled = join_all((0..4).map(|w| {
        let store = store.clone();
        async move {
            let worker = format!("worker-{w}");
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim(&Destination::CRM, &worker, 5, Duration::from_secs(60), now)
                    .await
                    .expect("claim");
                if batch.is_empty() {
                    break mine;
                }
                for c in batch {
                    store
                        .ack(c.entry.id, &worker)
                        .await
                        .expect("ack by the lease holder");
                    mine.push(c.entry.id);
                }
            }
        }
    }))
    .await;
    let mut all: Vec<uuid::Uuid> = handled.into_iter().flatten().collect();
    all.sort();
    let mut expected: Vec<uuid::Uuid> = ids;
    // The capture itself queued entries too; they must also be handled once.
    expected.extend(
        all.iter()
            .filter(|id| id.as_u128() < 1_000 || id.as_u128() >= 1_040)
            .copied(),
    );
    expected.sort();
    assert_eq!(all, expected, "every entry handled exactly once");
    assert_eq!(
        store
            .pending_count(&Destination::CRM)
            .await
            .expect("pending"),
        0
    );
}

/// Leases expire; retries wait for their time; poisoned entries are parked.
pub async fn outbox_leases_expire_and_retries_wait<S: FullStore>(store: Arc<S>) {
    let ids = fill_outbox(&store, 3).await;
    let start = t0() + chrono::Duration::seconds(1);
    let first = store
        .claim(&Destination::CRM, "a", 100, Duration::from_secs(30), start)
        .await
        .expect("claim");
    assert!(first.iter().any(|c| c.entry.id == ids[0]));
    let during = store
        .claim(
            &Destination::CRM,
            "b",
            100,
            Duration::from_secs(30),
            start + chrono::Duration::seconds(10),
        )
        .await
        .expect("claim");
    assert!(
        during.is_empty(),
        "no entry is handed out twice while its lease lives"
    );
    let after = store
        .claim(
            &Destination::CRM,
            "b",
            100,
            Duration::from_secs(30),
            start + chrono::Duration::seconds(31),
        )
        .await
        .expect("claim");
    assert_eq!(
        after.len(),
        first.len(),
        "expired leases are claimable again"
    );
    let err = store
        .ack(ids[0], "a")
        .await
        .expect_err("the old holder lost the lease");
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");

    let later = start + chrono::Duration::seconds(31);
    store
        .retry(
            ids[0],
            "b",
            later + chrono::Duration::minutes(5),
            "503 from CRM",
        )
        .await
        .expect("retry");
    store
        .dead_letter(ids[1], "b", "400 INVALID_FIELD", later)
        .await
        .expect("dead letter");
    store.ack(ids[2], "b").await.expect("ack");
    let too_soon = store
        .claim(
            &Destination::CRM,
            "c",
            100,
            Duration::from_secs(30),
            later + chrono::Duration::minutes(1),
        )
        .await
        .expect("claim");
    assert!(
        too_soon.iter().all(|c| c.entry.id != ids[0]),
        "a retry waits until its time"
    );
    let due = store
        .claim(
            &Destination::CRM,
            "c",
            100,
            Duration::from_secs(30),
            later + chrono::Duration::minutes(6),
        )
        .await
        .expect("claim");
    let retried = due
        .iter()
        .find(|c| c.entry.id == ids[0])
        .expect("the retry is due");
    assert_eq!(retried.attempts, 1);
    let dead = store
        .dead_letters(&Destination::CRM, 10)
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].entry.id, dead[0].error.as_str()),
        (ids[1], "400 INVALID_FIELD")
    );
}

/// Each destination is a queue of its own: a consumer claims, counts and
/// sees the dead letters of its destination only, and one change queued
/// for two consumers reaches both, each once.
pub async fn outbox_destinations_are_separate_queues<S: FullStore>(store: Arc<S>) {
    let d = deps(&store, Arc::new(ManualClock::new(t0())));
    let lead = usecase::capture(&form(6), &Policy::default(), &d)
        .await
        .expect("capture")
        .lead;
    let crm_before = store
        .pending_count(&Destination::CRM)
        .await
        .expect("pending");
    let notify = Destination::parse("notify").expect("a valid destination");
    let webhook = Destination::parse("webhook:acme").expect("a valid destination");
    let entry = |n: u128, destination: &Destination| OutboxEntry {
        id: uuid::Uuid::from_u128(5_000 + n),
        destination: destination.clone(),
        lead: lead.ext_id.clone(),
        kind: OutboxKind::StageChanged,
        payload: json!({ "n": n }),
        created_at: t0() + chrono::Duration::milliseconds(n as i64),
    };
    let mut commit = Commit::new().write(lead.clone(), Some(lead.version));
    commit.outbox = vec![
        entry(0, &Destination::CRM),
        entry(1, &notify),
        entry(2, &notify),
        entry(3, &webhook),
    ];
    store.commit(commit).await.expect("commit outbox");
    assert_eq!(
        store
            .pending_count(&Destination::CRM)
            .await
            .expect("pending"),
        crm_before + 1
    );
    assert_eq!(store.pending_count(&notify).await.expect("pending"), 2);
    assert_eq!(store.pending_count(&webhook).await.expect("pending"), 1);

    let now = t0() + chrono::Duration::seconds(1);
    let lease = Duration::from_secs(60);
    let notified = store
        .claim(&notify, "n1", 100, lease, now)
        .await
        .expect("claim");
    let ids: Vec<u128> = notified.iter().map(|c| c.entry.id.as_u128()).collect();
    assert_eq!(ids, [5_001, 5_002], "only its own entries, oldest first");
    assert!(notified.iter().all(|c| c.entry.destination == notify));
    let crm = store
        .claim(&Destination::CRM, "c1", 100, lease, now)
        .await
        .expect("claim");
    assert!(crm.iter().any(|c| c.entry.id.as_u128() == 5_000));
    assert!(
        crm.iter().all(|c| c.entry.destination == Destination::CRM),
        "the CRM never takes another consumer's entries"
    );
    let unknown = Destination::parse("nobody").expect("a valid destination");
    assert!(
        store
            .claim(&unknown, "x", 100, lease, now)
            .await
            .expect("claim")
            .is_empty()
    );

    store
        .dead_letter(notified[0].entry.id, "n1", "SMTP 550", now)
        .await
        .expect("dead letter");
    let dead = store.dead_letters(&notify, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].entry.destination, notify,
        "parked with its destination"
    );
    assert!(
        store
            .dead_letters(&Destination::CRM, 10)
            .await
            .expect("dead letters")
            .is_empty(),
        "another consumer's dead letters are not the CRM's"
    );
    assert_eq!(store.pending_count(&notify).await.expect("pending"), 1);
    assert_eq!(store.pending_count(&webhook).await.expect("pending"), 1);
}

/// A dead letter put back ([`OutboxStore::requeue`]) leaves the dead
/// letters and is claimed again at once with no attempts counted; it is
/// found only under its own destination, and only once.
pub async fn dead_letters_requeue_with_a_fresh_budget<S: FullStore>(store: Arc<S>) {
    let d = deps(&store, Arc::new(ManualClock::new(t0())));
    let lead = usecase::capture(&form(8), &Policy::default(), &d)
        .await
        .expect("capture")
        .lead;
    let notify = Destination::parse("notify").expect("a valid destination");
    let mut commit = Commit::new().write(lead.clone(), Some(lead.version));
    commit.outbox = vec![OutboxEntry {
        id: uuid::Uuid::from_u128(7_000),
        destination: notify.clone(),
        lead: lead.ext_id.clone(),
        kind: OutboxKind::StageChanged,
        payload: json!({ "n": 1 }),
        created_at: t0(),
    }];
    store.commit(commit).await.expect("commit outbox");
    let id = uuid::Uuid::from_u128(7_000);
    let now = t0() + chrono::Duration::seconds(1);
    let lease = Duration::from_secs(60);
    let claimed = store
        .claim(&notify, "n1", 10, lease, now)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    store
        .retry(id, "n1", now, "503")
        .await
        .expect("a first failure");
    let again = store
        .claim(&notify, "n1", 10, lease, now)
        .await
        .expect("claim");
    assert_eq!(again[0].attempts, 1);
    store
        .dead_letter(id, "n1", "400 bad address", now)
        .await
        .expect("parked");
    assert_eq!(store.dead_count(&notify).await.expect("dead count"), 1);
    assert_eq!(store.pending_count(&notify).await.expect("pending"), 0);

    let missing = store.requeue(&Destination::CRM, id, now).await;
    assert!(
        matches!(missing, Err(Error::NotFound(_))),
        "another destination has no such dead letter: {missing:?}"
    );
    let later = now + chrono::Duration::minutes(1);
    store.requeue(&notify, id, later).await.expect("requeued");
    assert_eq!(store.dead_count(&notify).await.expect("dead count"), 0);
    assert!(
        store
            .dead_letters(&notify, 10)
            .await
            .expect("dead letters")
            .is_empty()
    );
    assert_eq!(store.pending_count(&notify).await.expect("pending"), 1);
    let twice = store.requeue(&notify, id, later).await;
    assert!(
        matches!(twice, Err(Error::NotFound(_))),
        "a requeued entry is no dead letter any more: {twice:?}"
    );
    let back = store
        .claim(&notify, "n2", 10, lease, later)
        .await
        .expect("claim");
    assert_eq!(back.len(), 1, "claimed again at once");
    assert_eq!(
        (back[0].entry.id, back[0].attempts, &back[0].entry.payload),
        (id, 0, &json!({ "n": 1 })),
        "the same entry with a fresh budget"
    );
    store.ack(id, "n2").await.expect("delivered");
    assert_eq!(store.pending_count(&notify).await.expect("pending"), 0);
}

/// An idempotency key points at its lead, with the hash of the request
/// that stored it, until it expires; a key stored without a hash (before
/// hashes were kept) reads back without one.
pub async fn idempotency_keys_expire<S: FullStore>(store: Arc<S>) {
    let d = deps(&store, Arc::new(ManualClock::new(t0())));
    let lead = usecase::capture(&form(6), &Policy::default(), &d)
        .await
        .expect("capture")
        .lead;
    let keyed = |name: &str, created_at: DateTime<Utc>, hash: Option<&str>| IdempotencyKey {
        key: name.into(),
        lead: lead.ext_id.clone(),
        created_at,
        expires_at: created_at + chrono::Duration::hours(1),
        request_hash: hash.map(str::to_owned),
    };
    let key = |created_at: DateTime<Utc>| keyed("k-1", created_at, Some("hash-1"));
    let mut commit = Commit::new();
    commit.idempotency.push(key(t0()));
    commit.idempotency.push(keyed("k-old", t0(), None));
    store.commit(commit).await.expect("store key");
    let found = store
        .find_by_idempotency_key("k-1", t0() + chrono::Duration::minutes(59))
        .await
        .expect("find");
    let first = Replay {
        lead: lead.ext_id.clone(),
        request_hash: Some("hash-1".into()),
    };
    assert_eq!(found, Some(first.clone()), "the key and its request hash");
    assert_eq!(
        store
            .find_by_idempotency_key("k-old", t0())
            .await
            .expect("find"),
        Some(Replay {
            lead: lead.ext_id.clone(),
            request_hash: None,
        }),
        "a key stored without a hash reads back without one"
    );
    let mut again = Commit::new();
    again.idempotency.push(keyed(
        "k-1",
        t0() + chrono::Duration::minutes(30),
        Some("hash-2"),
    ));
    assert!(
        matches!(store.commit(again).await, Err(Error::Conflict(_))),
        "a live key cannot be reused, whatever its hash"
    );
    assert_eq!(
        store
            .find_by_idempotency_key("k-1", t0() + chrono::Duration::minutes(31))
            .await
            .expect("find"),
        Some(first),
        "a refused reuse leaves the first hash"
    );
    let expired = store
        .find_by_idempotency_key("k-1", t0() + chrono::Duration::minutes(61))
        .await
        .expect("find");
    assert_eq!(expired, None, "an expired key is forgotten");
    let mut reuse = Commit::new();
    reuse
        .idempotency
        .push(key(t0() + chrono::Duration::minutes(61)));
    store
        .commit(reuse)
        .await
        .expect("an expired key may be used again");
}

/// [`usecase::capture_once`] over the store: a live key brought back with
/// another request hash is refused (`Invalid` on `Idempotency-Key`,
/// `key_reused`) and stores nothing; with the same hash it replays the
/// first lead.
pub async fn a_key_reused_for_another_request_is_refused<S: FullStore>(store: Arc<S>) {
    let d = deps(&store, Arc::new(ManualClock::new(t0())));
    let policy = Policy::default();
    let idem = |hash: &str| usecase::Idempotency {
        key: "anon:reused".into(),
        window: chrono::Duration::hours(1),
        request_hash: Some(hash.into()),
    };
    let first = usecase::capture_once(&form(8), Some(&idem("hash-a")), &policy, &d)
        .await
        .expect("first capture");
    assert!(!first.replayed);
    let pending = store
        .pending_count(&Destination::CRM)
        .await
        .expect("pending");
    let other = form(9);
    let refused = usecase::capture_once(&other, Some(&idem("hash-b")), &policy, &d).await;
    match refused {
        Err(Error::Invalid { fields }) => {
            assert_eq!(fields.len(), 1);
            assert_eq!(fields[0].field, "Idempotency-Key");
            assert_eq!(fields[0].code, "key_reused");
        }
        other => panic!("expected key_reused, got {other:?}"),
    }
    let email = crate::matchkey::email_match_key(
        &crate::model::Email::parse(other.email.as_deref().unwrap_or_default()).expect("valid"),
    );
    assert_eq!(
        store.find_by_email_key(&email).await.expect("find"),
        None,
        "the refused request stored no lead"
    );
    assert_eq!(
        store
            .pending_count(&Destination::CRM)
            .await
            .expect("pending"),
        pending,
        "the refused request queued nothing"
    );
    let again = usecase::capture_once(&form(8), Some(&idem("hash-a")), &policy, &d)
        .await
        .expect("a retry");
    assert!(again.replayed, "the same request replays");
    assert_eq!(again.lead.ext_id, first.lead.ext_id);
}

/// A merge found by similarity, then undone, restores both leads exactly.
pub async fn merge_and_undo_round_trip<S: FullStore>(store: Arc<S>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let d = deps(&store, clock.clone());
    let policy = Policy::default();
    let a = usecase::capture(&form(8), &policy, &d)
        .await
        .expect("capture a")
        .lead;
    clock.advance(chrono::Duration::hours(1));
    let mut other = form(8);
    other.email = Some("someone.else@example.org".into());
    other.job_title = Some("VP Sales".into());
    // Free-form metadata keeps any JSON string, `\u0000` included (JSONB
    // would refuse it), through the capture, the merge record and the undo.
    other
        .metadata
        .insert("note".into(), serde_json::Value::from("tab\tand nul\u{0}"));
    let b = usecase::capture(&other, &policy, &d)
        .await
        .expect("capture b")
        .lead;

    let merged = crate::dedup::merge(&a, &b, clock.now(), uuid::Uuid::from_u128(5));
    let mut commit = Commit::new()
        .write(merged.survivor.clone(), Some(a.version))
        .write(merged.absorbed.clone(), Some(b.version));
    commit.merges.push(merged.record.clone());
    store.commit(commit).await.expect("merge commit");
    assert_eq!(
        store.get_merge(merged.record.id).await.expect("get merge"),
        Some(merged.record.clone())
    );
    let gone = store.list(&LeadQuery::default()).await.expect("list");
    assert_eq!(gone.leads.len(), 1, "a merged lead is not listed");

    let (survivor, absorbed) = usecase::undo_merge(merged.record.id, &d)
        .await
        .expect("undo");
    let absorbed = absorbed.expect("the absorbed lead was stored");
    let same = |x: &Lead, y: &Lead| {
        let mut x = x.clone();
        x.version = y.version;
        assert_eq!(&x, y, "undo restores the lead exactly (version aside)");
    };
    same(&a, &survivor);
    same(&b, &absorbed);
}

/// Review pairs: one per two leads, an open pair never replaces a stored
/// one, a decision does, and pages equal [`PairQuery::page_of`].
pub async fn review_pairs_page_like_the_reference_and_keep_decisions<S: FullStore>(store: Arc<S>) {
    let lead = |n: u64| LeadExtId::from_random(1000 + n);
    let mut reference: Vec<ReviewPair> = Vec::new();
    let mut commit = Commit::new();
    for n in 0..7u64 {
        let pair = ReviewPair::new(
            uuid::Uuid::from_u128(u128::from(100 + n)),
            lead(n),
            lead(n + 1),
            Some(0.86 + 0.01 * n as f64),
            t0() + chrono::Duration::seconds(n as i64),
        );
        reference.push(pair.clone());
        commit.reviews.push(pair);
    }
    store.commit(commit).await.expect("store pairs");

    // The same two leads again, found by a later scan (open): ignored.
    let mut again = Commit::new();
    again.reviews.push(ReviewPair::new(
        uuid::Uuid::from_u128(900),
        lead(1),
        lead(0),
        Some(0.99),
        t0() + chrono::Duration::hours(1),
    ));
    // Decisions replace the status and keep the first pair's id.
    let merged = ReviewPair::new(uuid::Uuid::from_u128(901), lead(2), lead(3), None, t0()).decided(
        ReviewStatus::Merged,
        Some(uuid::Uuid::from_u128(5)),
        t0(),
    );
    let dismissed = reference[4].clone().decided(
        ReviewStatus::Dismissed,
        None,
        t0() + chrono::Duration::minutes(3),
    );
    again.reviews.push(merged.clone());
    again.reviews.push(dismissed.clone());
    store.commit(again).await.expect("decide pairs");
    reference[2] = ReviewPair::merged_with(&reference[2], &merged).expect("merge an open pair");
    reference[4] =
        ReviewPair::merged_with(&reference[4], &dismissed).expect("dismiss an open pair");

    // Only the undo of its merge may dismiss a merged pair; a refused
    // decision writes nothing of its commit.
    let stale = reference[2]
        .clone()
        .decided(ReviewStatus::Dismissed, None, t0());
    let mut refused = Commit::new();
    refused.reviews.push(
        reference[5]
            .clone()
            .decided(ReviewStatus::Dismissed, None, t0()),
    );
    refused.reviews.push(stale);
    assert!(
        matches!(store.commit(refused).await, Err(Error::Conflict(_))),
        "a stale dismissal of a merged pair is a conflict"
    );
    let undone = reference[2].clone().decided(
        ReviewStatus::Dismissed,
        Some(uuid::Uuid::from_u128(5)),
        t0(),
    );
    let mut undo = Commit::new();
    undo.reviews.push(undone.clone());
    store
        .commit(undo)
        .await
        .expect("the undo dismisses a merged pair");
    reference[2] = ReviewPair::merged_with(&reference[2], &undone).expect("an undo");
    assert_eq!(reference[2].status, ReviewStatus::Dismissed);
    assert_eq!(reference[2].id, uuid::Uuid::from_u128(102));

    for (status, lead) in [
        (None, None),
        (Some(ReviewStatus::Open), None),
        (Some(ReviewStatus::Merged), None),
        (Some(ReviewStatus::Dismissed), None),
        (None, Some(lead(3))),
        (Some(ReviewStatus::Open), Some(lead(3))),
    ] {
        let mut query = PairQuery {
            status,
            lead,
            limit: Some(2),
            after: None,
        };
        loop {
            let page = store.review_pairs(&query).await.expect("review pairs");
            assert_eq!(page, query.page_of(&reference), "{query:?}");
            match page.next_cursor {
                Some(after) => query.after = Some(after),
                None => break,
            }
        }
    }
    for pair in &reference {
        assert_eq!(
            store
                .get_review_pair(pair.id)
                .await
                .expect("get pair")
                .as_ref(),
            Some(pair)
        );
    }
    assert_eq!(
        store
            .get_review_pair(uuid::Uuid::from_u128(900))
            .await
            .expect("get pair"),
        None,
        "the ignored pair's id was never stored"
    );
}

/// The duplicate scan, decisions and undo, on this store: merges stay
/// atomic with workloads and pairs, and an undone merge is not redone.
pub async fn a_scan_merges_and_marks_through_the_store<S: FullStore>(store: Arc<S>) {
    let (clock, d) = ana_and_a_clock(&store).await;
    let policy = Policy::default();
    let mut first = form(8);
    first.phone = Some("+34 611 222 333".into());
    let mut second = first.clone();
    second.email = Some("other.address@example.org".into());
    let a = usecase::capture(&first, &policy, &d).await.expect("a").lead;
    clock.advance(chrono::Duration::minutes(5));
    let b = usecase::capture(&second, &policy, &d)
        .await
        .expect("b")
        .lead;
    let open = |store: &Arc<S>| {
        let store = store.clone();
        async move { store.rep_states().await.expect("reps")[0].load.open_leads }
    };
    assert_eq!(open(&store).await, 2);

    let everything = crate::dedup::DedupConfig {
        similarity_threshold: 0.5,
        auto_merge_threshold: 0.5,
        mode: crate::dedup::DedupMode::AutoMerge,
        ..Default::default()
    };
    let report = usecase::scan_duplicates(&everything, &d)
        .await
        .expect("scan");
    assert_eq!((report.leads, report.merged), (2, 1), "{report:?}");
    assert_eq!(open(&store).await, 1, "the absorbed lead's place is freed");
    let pairs = store
        .review_pairs(&PairQuery::default())
        .await
        .expect("pairs")
        .pairs;
    assert_eq!(pairs.len(), 1);
    let merge_id = pairs[0].merge_id.expect("merged pair");
    assert_eq!(
        store
            .get(&b.ext_id)
            .await
            .expect("get")
            .map(|l| l.merged_into),
        Some(Some(a.ext_id.clone()))
    );

    usecase::undo_merge(merge_id, &d).await.expect("undo");
    assert_eq!(open(&store).await, 2);
    let rescan = usecase::scan_duplicates(&everything, &d)
        .await
        .expect("rescan");
    assert_eq!((rescan.merged, rescan.skipped), (0, 1), "{rescan:?}");
    assert_eq!(
        store
            .get_review_pair(pairs[0].id)
            .await
            .expect("pair")
            .map(|p| p.status),
        Some(ReviewStatus::Dismissed)
    );
}

/// Listing agrees with [`page_of`] for every filter, across pages.
pub async fn listing_filters_and_pages_like_the_reference<S: FullStore>(store: Arc<S>) {
    for r in ["ana@sales.com", "ben@sales.com"] {
        store.upsert_rep(&rep(r)).await.expect("upsert rep");
    }
    let clock = Arc::new(ManualClock::new(t0()));
    let d = deps(&store, clock.clone());
    let policy = Policy::default();
    let mut all = Vec::new();
    for n in 0..23 {
        // Some leads share a creation instant, so the id must break ties.
        if n % 3 != 0 {
            clock.advance(chrono::Duration::seconds(7));
        }
        let mut lead = usecase::capture(&form(100 + n), &policy, &d)
            .await
            .expect("capture")
            .lead;
        if n % 4 == 0 {
            lead = usecase::change_stage(
                &lead.ext_id,
                Stage::Contacted,
                None,
                ChangeOrigin::Local,
                None,
                &policy,
                &d,
            )
            .await
            .expect("stage");
        }
        all.push(lead);
    }
    let queries = [
        LeadQuery::default(),
        LeadQuery {
            limit: Some(4),
            ..Default::default()
        },
        LeadQuery {
            stage: Some(Stage::Contacted),
            limit: Some(2),
            ..Default::default()
        },
        LeadQuery {
            priority: Some(Priority::Low),
            ..Default::default()
        },
        LeadQuery {
            assigned_to: Some(RepId::parse("ben@sales.com").expect("valid")),
            limit: Some(3),
            ..Default::default()
        },
        LeadQuery {
            source: Some("LinkedIn".into()),
            ..Default::default()
        },
        LeadQuery {
            segment: Some("source:paid".into()),
            ..Default::default()
        },
        LeadQuery {
            text: Some("COMPANY3".into()),
            ..Default::default()
        },
        LeadQuery {
            text: Some("müller".into()),
            ..Default::default()
        },
        LeadQuery {
            created_from: Some(t0() + chrono::Duration::seconds(30)),
            created_to: Some(t0() + chrono::Duration::seconds(90)),
            limit: Some(3),
            ..Default::default()
        },
    ];
    for query in queries {
        let mut q = query.clone();
        loop {
            let got = store.list(&q).await.expect("list");
            let want = page_of(all.iter(), &q);
            let ids = |p: &crate::query::LeadPage| {
                p.leads.iter().map(|l| l.ext_id.clone()).collect::<Vec<_>>()
            };
            assert_eq!(ids(&got), ids(&want), "page for {q:?}");
            assert_eq!(got.next_cursor, want.next_cursor, "cursor for {q:?}");
            match got.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
    }
}

/// Walks every page of `query` (cursors through their text form, as a
/// client sends them back) and checks each against
/// [`FollowUpQuery::page_of`] over `all`, and that the walk lists every
/// match once, in order.
async fn followup_pages_agree<S: FullStore>(
    store: &S,
    all: &[FollowUpTask],
    query: &FollowUpQuery,
) {
    let mut q = query.clone();
    let mut seen = Vec::new();
    for _ in 0..=all.len() + 1 {
        let got = store.followups(&q).await.expect("follow-ups");
        assert_eq!(got, q.page_of(all.iter().cloned()), "page for {q:?}");
        seen.extend(got.tasks.iter().map(|t| t.id));
        match got.next_cursor {
            Some(cursor) => {
                let text = cursor.to_string();
                q.cursor = Some(FollowUpCursor::parse(&text).expect("a cursor the store gave"));
            }
            None => {
                let mut every: Vec<&FollowUpTask> =
                    all.iter().filter(|t| query.matches(t)).collect();
                every.sort_by_key(|t| (t.due_at, t.id));
                let every: Vec<uuid::Uuid> = every.iter().map(|t| t.id).collect();
                assert_eq!(seen, every, "every page of {query:?}, walked");
                return;
            }
        }
    }
    panic!("the pages of {query:?} never end");
}

/// Follow-up tasks: pages equal [`FollowUpQuery::page_of`] for each filter
/// alone and combined, at several page sizes, walked to the end;
/// [`LeadReads::get_followup`](crate::ports::LeadReads::get_followup) reads a task back exactly; a
/// [`Commit::followup_updates`] entry replaces the stored task whole (so
/// filters see its new status, rep and due date), and one that names a
/// task not stored before the commit fails the whole commit with
/// `NotFound`.
pub async fn followups_page_like_the_reference_and_update<S: FullStore>(store: Arc<S>) {
    use FollowUpStatus::{Cancelled, Done, Open};
    let reps: Vec<RepId> = ["ana@sales.com", "ben@sales.com", "cho@sales.com"]
        .into_iter()
        .map(|r| RepId::parse(r).expect("valid"))
        .collect();
    for r in &reps {
        store
            .upsert_rep(&rep(r.as_str()))
            .await
            .expect("upsert rep");
    }
    let clock = Arc::new(ManualClock::new(t0()));
    let d = deps(&store, clock.clone());
    let policy = Policy::default();
    let mut all: Vec<FollowUpTask> = Vec::new();
    let mut leads = Vec::new();
    for n in 0..5 {
        clock.advance(chrono::Duration::minutes(13));
        let captured = usecase::capture(&form(300 + n), &policy, &d)
            .await
            .expect("capture");
        all.push(captured.followup.expect("a new lead gets a follow-up"));
        leads.push(captured.lead);
    }
    // Tasks with every mix of rep (or none), status and due date; 36 tasks
    // over 17 due instants, with ids out of due order, so ties on `due_at`
    // must be broken by id.
    let mut tasks = Commit::new();
    for k in 0..36u64 {
        let status = [Open, Done, Cancelled][(k / 4 % 3) as usize];
        let micros = if k % 9 == 0 { 123_456 } else { 0 };
        let task = FollowUpTask {
            id: uuid::Uuid::from_u128(
                u128::from(k.wrapping_mul(0x9E37_79B9_7F4A_7C15)) << 64 | u128::from(k),
            ),
            lead: leads[(k % 5) as usize].ext_id.clone(),
            assigned_to: match k % 4 {
                0 => None,
                i => Some(reps[i as usize - 1].clone()),
            },
            priority: Priority::ALL[(k % 3) as usize],
            due_at: t0()
                + chrono::Duration::hours(((k * 7) % 17 * 5) as i64)
                + chrono::Duration::microseconds(micros),
            subject: format!("Call back #{k} ✆"),
            status,
            created_at: t0(),
            completed_at: (status == Done).then(|| t0() + chrono::Duration::minutes(k as i64)),
            notes: k
                .is_multiple_of(5)
                .then(|| format!("note {k}: \"quoted\", tab\t, ünïcode")),
            overdue_at: (status == Open && k % 7 == 0).then(|| t0() + chrono::Duration::hours(1)),
        };
        all.push(task.clone());
        tasks.followups.push(task);
    }
    store.commit(tasks).await.expect("store tasks");

    for task in &all {
        assert_eq!(
            store
                .get_followup(task.id)
                .await
                .expect("get follow-up")
                .as_ref(),
            Some(task),
            "a stored task reads back exactly"
        );
    }
    assert_eq!(
        store
            .get_followup(uuid::Uuid::from_u128(0xDEAD))
            .await
            .expect("get follow-up"),
        None
    );

    let hours = |h: i64| t0() + chrono::Duration::hours(h);
    let q = FollowUpQuery::default;
    let queries = |leads: &[Lead]| {
        vec![
            q(),
            FollowUpQuery {
                limit: Some(1),
                ..q()
            },
            FollowUpQuery {
                limit: Some(7),
                ..q()
            },
            FollowUpQuery {
                limit: Some(100_000),
                ..q()
            },
            FollowUpQuery {
                assigned_to: Some(reps[0].clone()),
                limit: Some(3),
                ..q()
            },
            FollowUpQuery {
                assigned_to: Some(reps[2].clone()),
                ..q()
            },
            FollowUpQuery {
                status: Some(Open),
                limit: Some(4),
                ..q()
            },
            FollowUpQuery {
                status: Some(Done),
                ..q()
            },
            FollowUpQuery {
                status: Some(Cancelled),
                limit: Some(2),
                ..q()
            },
            FollowUpQuery {
                lead: Some(leads[2].ext_id.clone()),
                limit: Some(2),
                ..q()
            },
            // Bounds on a due instant: `due_from` keeps it, `due_to` does not.
            FollowUpQuery {
                due_from: Some(hours(10)),
                ..q()
            },
            FollowUpQuery {
                due_to: Some(hours(40)),
                limit: Some(5),
                ..q()
            },
            FollowUpQuery {
                due_from: Some(hours(15)),
                due_to: Some(hours(55)),
                limit: Some(3),
                ..q()
            },
            FollowUpQuery {
                assigned_to: Some(reps[1].clone()),
                status: Some(Open),
                ..q()
            },
            FollowUpQuery {
                assigned_to: Some(reps[0].clone()),
                status: Some(Done),
                due_from: Some(t0()),
                due_to: Some(hours(80)),
                limit: Some(1),
                ..q()
            },
            FollowUpQuery {
                lead: Some(leads[1].ext_id.clone()),
                status: Some(Open),
                limit: Some(1),
                ..q()
            },
            FollowUpQuery {
                lead: Some(leads[0].ext_id.clone()),
                assigned_to: Some(reps[2].clone()),
                due_from: Some(hours(5)),
                ..q()
            },
        ]
    };
    for query in queries(&leads) {
        assert!(
            !query.page_of(all.iter().cloned()).tasks.is_empty(),
            "the tasks exercise {query:?}"
        );
        followup_pages_agree(&*store, &all, &query).await;
    }
    let nobody = FollowUpQuery {
        assigned_to: Some(RepId::parse("nobody@sales.com").expect("valid")),
        ..q()
    };
    assert_eq!(
        store.followups(&nobody).await.expect("follow-ups"),
        crate::query::FollowUpPage::default()
    );

    // Ana completes one of her open tasks; it also moves to Ben, with a
    // new due date, subject and priority: the update replaces it whole.
    let before = all
        .iter()
        .find(|t| t.assigned_to.as_ref() == Some(&reps[0]) && t.status == Open)
        .cloned()
        .expect("ana has an open task");
    let done = FollowUpTask {
        assigned_to: Some(reps[1].clone()),
        priority: Priority::High,
        due_at: t0() + chrono::Duration::days(9) + chrono::Duration::microseconds(7),
        subject: "Demo follow-up".into(),
        status: Done,
        completed_at: Some(hours(3)),
        notes: Some("Called: demo booked for Friday ✓".into()),
        ..before.clone()
    };
    // Two updates of one task in one commit apply in order: the last wins.
    let mut update = Commit::new();
    update.followup_updates.push(FollowUpTask {
        notes: Some("Left a voicemail".into()),
        due_at: hours(30),
        ..before.clone()
    });
    update.followup_updates.push(done.clone());
    assert_eq!(
        store.commit(update).await.expect("update a stored task"),
        Vec::<Lead>::new()
    );
    for t in all.iter_mut().filter(|t| t.id == done.id) {
        *t = done.clone();
    }
    assert_eq!(
        store.get_followup(done.id).await.expect("get follow-up"),
        Some(done.clone()),
        "an updated task reads back exactly"
    );
    let by_new = FollowUpQuery {
        assigned_to: Some(reps[1].clone()),
        status: Some(Done),
        due_from: Some(done.due_at),
        due_to: Some(done.due_at + chrono::Duration::microseconds(1)),
        ..q()
    };
    assert_eq!(
        store.followups(&by_new).await.expect("follow-ups").tasks,
        vec![done.clone()],
        "found by its new rep, status and due instant"
    );
    let by_old = FollowUpQuery {
        assigned_to: Some(reps[0].clone()),
        status: Some(Open),
        due_to: Some(before.due_at + chrono::Duration::microseconds(1)),
        limit: Some(crate::query::MAX_FOLLOWUP_PAGE),
        ..q()
    };
    assert!(
        !store
            .followups(&by_old)
            .await
            .expect("follow-ups")
            .tasks
            .iter()
            .any(|t| t.id == done.id),
        "no longer found by its old rep and status"
    );

    // An update of a task that is not stored fails its whole commit: the
    // new lead, the other (valid) update and the outbox entry stay out.
    let pending = store
        .pending_count(&Destination::CRM)
        .await
        .expect("pending");
    let mut fresh = leads[0].clone();
    fresh.ext_id = LeadExtId::from_random(4242);
    fresh.fields.email = crate::model::Email::parse("fresh.followup@example.com").expect("valid");
    let kept = all
        .iter()
        .find(|t| t.id != done.id && t.notes.is_none())
        .cloned()
        .expect("another task");
    let mut refused = Commit::new().write(fresh.clone(), None);
    refused.outbox.push(OutboxEntry {
        id: uuid::Uuid::from_u128(0xF00D),
        destination: Destination::CRM,
        lead: fresh.ext_id.clone(),
        kind: OutboxKind::LeadCreated,
        payload: json!({}),
        created_at: t0(),
    });
    refused.followup_updates.push(FollowUpTask {
        notes: Some("must not be kept".into()),
        ..kept.clone()
    });
    refused.followup_updates.push(FollowUpTask {
        id: uuid::Uuid::from_u128(0xDEAD),
        ..done.clone()
    });
    let err = store
        .commit(refused)
        .await
        .expect_err("an update of an unknown task");
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert_eq!(store.get(&fresh.ext_id).await.expect("get"), None);
    assert_eq!(
        store
            .pending_count(&Destination::CRM)
            .await
            .expect("pending"),
        pending
    );
    assert_eq!(
        store.get_followup(kept.id).await.expect("get follow-up"),
        Some(kept.clone()),
        "the valid update of a refused commit was not kept"
    );
    assert_eq!(
        store
            .get_followup(uuid::Uuid::from_u128(0xDEAD))
            .await
            .expect("get follow-up"),
        None
    );
    // A task the same commit inserts is not stored yet: updating it fails
    // the commit, insert included.
    let newborn = FollowUpTask {
        id: uuid::Uuid::from_u128(0xBEEF),
        ..kept.clone()
    };
    let mut both = Commit::new();
    both.followups.push(newborn.clone());
    both.followup_updates.push(FollowUpTask {
        status: Cancelled,
        ..newborn.clone()
    });
    let err = store
        .commit(both)
        .await
        .expect_err("an update of a task not stored before the commit");
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert_eq!(
        store.get_followup(newborn.id).await.expect("get follow-up"),
        None
    );

    // A guarded update applies only over the task exactly as it was read:
    // over a task someone changed since, the commit fails and writes
    // nothing (the follow-up automation's compare-and-set).
    let current = store
        .get_followup(kept.id)
        .await
        .expect("get follow-up")
        .expect("stored");
    let stale = FollowUpTask {
        notes: Some("read before the rep's change".into()),
        ..current.clone()
    };
    let marked = FollowUpTask {
        overdue_at: Some(t0() + chrono::Duration::days(3)),
        ..current.clone()
    };
    let mut guarded = Commit::new();
    guarded.followup_expected.push(stale);
    guarded.followup_updates.push(marked.clone());
    let err = store
        .commit(guarded)
        .await
        .expect_err("the task changed since it was read");
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(
        store.get_followup(kept.id).await.expect("get follow-up"),
        Some(current.clone()),
        "a refused guarded update writes nothing"
    );
    let mut guarded = Commit::new();
    guarded.followup_expected.push(current.clone());
    guarded.followup_updates.push(marked.clone());
    store.commit(guarded).await.expect("the task as read");
    assert_eq!(
        store.get_followup(kept.id).await.expect("get follow-up"),
        Some(marked.clone())
    );
    let mut restore = Commit::new();
    restore.followup_updates.push(current);
    store.commit(restore).await.expect("restore");

    for query in queries(&leads).iter().chain([&by_new, &by_old]) {
        followup_pages_agree(&*store, &all, query).await;
    }
}

/// Dashboard figures agree with [`dashboard_of`].
pub async fn dashboard_matches_the_reference<S: FullStore>(store: Arc<S>) {
    for r in ["ana@sales.com", "ben@sales.com", "cho@sales.com"] {
        store.upsert_rep(&rep(r)).await.expect("upsert rep");
    }
    let clock = Arc::new(ManualClock::new(t0()));
    let d = deps(&store, clock.clone());
    let policy = Policy::default();
    let path = [
        Stage::Contacted,
        Stage::Qualified,
        Stage::Proposal,
        Stage::Negotiation,
        Stage::Won,
    ];
    let mut all = Vec::new();
    for n in 0..30 {
        clock.advance(chrono::Duration::hours(6));
        let mut lead = usecase::capture(&form(200 + n), &policy, &d)
            .await
            .expect("capture")
            .lead;
        for stage in path.iter().take(n % 6) {
            lead = usecase::change_stage(
                &lead.ext_id,
                *stage,
                None,
                ChangeOrigin::Local,
                None,
                &policy,
                &d,
            )
            .await
            .expect("stage");
        }
        if n % 7 == 3 && lead.stage != Stage::Won {
            lead = usecase::change_stage(
                &lead.ext_id,
                Stage::Lost,
                None,
                ChangeOrigin::Local,
                None,
                &policy,
                &d,
            )
            .await
            .expect("lost");
        }
        all.push(lead);
    }
    let window_2 = t0() + chrono::Duration::days(4);
    deal_values_on(&store, &d, &policy, &mut all).await;
    for (since, top) in [(t0(), 10), (window_2, 2)] {
        let got = store.dashboard(since, top).await.expect("dashboard");
        let want = dashboard_of(all.iter(), since, top);
        let values = |d: &crate::query::Dashboard| {
            let s = &d.stats;
            // As JSON: the same numbers with the same scale, as clients see them.
            serde_json::to_value((&s.pipeline_value, &s.weighted_pipeline_value, &s.won_value))
                .expect("serialize values")
        };
        assert_eq!(values(&got), values(&want), "pipeline values since {since}");
        assert_eq!(got.stats.total, want.stats.total);
        assert_eq!(got.stats.by_stage, want.stats.by_stage);
        assert_eq!(got.stats.by_priority, want.stats.by_priority);
        assert_eq!(got.stats.by_source, want.stats.by_source);
        assert_eq!(got.stats.unassigned, want.stats.unassigned);
        assert!(
            (got.stats.average_score - want.stats.average_score).abs() < 1e-9,
            "average score"
        );
        assert_eq!(got.funnel, want.funnel, "funnel");
        let perf = |d: &crate::query::Dashboard| {
            d.top_performers
                .iter()
                .map(|p| (p.rep.clone(), p.assigned, p.won))
                .collect::<Vec<_>>()
        };
        assert_eq!(perf(&got), perf(&want), "top performers");
        let sources = |d: &crate::query::Dashboard| {
            d.source_performance
                .iter()
                .map(|s| (s.source.clone(), s.leads, s.high_priority, s.won))
                .collect::<Vec<_>>()
        };
        assert_eq!(sources(&got), sources(&want), "source performance");
    }

    // The reference itself, against figures worked out by hand from the
    // table in `deal_values_on`.
    let money = |entries: &[(&str, &str)]| -> BTreeMap<String, Decimal> {
        entries
            .iter()
            .map(|(c, v)| ((*c).to_owned(), v.parse().expect("decimal")))
            .collect()
    };
    let all_time = dashboard_of(all.iter(), t0(), 10).stats;
    assert_eq!(
        all_time.pipeline_value,
        money(&[
            ("EUR", "14434.66"),
            ("USD", "60075.25"),
            ("unknown", "40.00")
        ]),
        "pipeline value: open leads only (nurturing in; won, lost, unqualified, merged out)"
    );
    assert_eq!(
        all_time.weighted_pipeline_value,
        money(&[("EUR", "7168.884"), ("USD", "11015.05"), ("unknown", "24")]),
        "weighted pipeline value: each value times its lead's probability"
    );
    assert_eq!(
        all_time.won_value,
        money(&[("EUR", "3500.49"), ("USD", "4321.09")]),
        "won value: won leads only"
    );
    let recent = dashboard_of(all.iter(), window_2, 10).stats;
    assert_eq!(
        (
            recent.pipeline_value,
            recent.weighted_pipeline_value,
            recent.won_value
        ),
        (
            money(&[("EUR", "900.10"), ("USD", "10075.25"), ("unknown", "40.00")]),
            money(&[("EUR", "515.06"), ("USD", "6015.05"), ("unknown", "24")]),
            money(&[("EUR", "999.99")]),
        ),
        "values of the leads created in the window only"
    );
}

/// Gives deal values to leads of [`dashboard_matches_the_reference`]
/// (`all[n]` is the `n`th lead captured, one every 6 hours), through
/// [`usecase::edit_lead`] as the API does, and a few written directly: a
/// probability no stage has, a value without a currency, a merged lead.
/// The expected figures there are worked out from this table.
async fn deal_values_on<S: FullStore>(store: &Arc<S>, d: &Deps, policy: &Policy, all: &mut [Lead]) {
    for (n, to) in [(12, Stage::Unqualified), (13, Stage::Nurturing)] {
        all[n] = usecase::change_stage(
            &all[n].ext_id,
            to,
            None,
            ChangeOrigin::Local,
            None,
            policy,
            d,
        )
        .await
        .expect("stage");
    }
    // (lead, its stage and probability by then, value, currency)
    let deals = [
        (1, Stage::Contacted, 10, "50000", "USD"),
        (2, Stage::Qualified, 20, "300", "EUR"),
        (3, Stage::Lost, 0, "7000", "EUR"),
        (4, Stage::Negotiation, 60, "10000.00", "EUR"),
        (5, Stage::Won, 100, "2500.50", "EUR"),
        (9, Stage::Proposal, 40, "1234.56", "EUR"),
        (10, Stage::Lost, 0, "12000", "USD"),
        (11, Stage::Won, 100, "4321.09", "USD"),
        (12, Stage::Unqualified, 0, "900", "EUR"),
        (13, Stage::Nurturing, 5, "2000", "EUR"),
        (16, Stage::Negotiation, 60, "800.10", "EUR"),
        (17, Stage::Won, 100, "999.99", "EUR"),
        (20, Stage::Qualified, 20, "75.25", "USD"),
        (22, Stage::Negotiation, 60, "10000", "USD"),
        (24, Stage::Lost, 0, "555", "EUR"),
        (27, Stage::Proposal, 40, "100", "EUR"),
    ];
    for (n, stage, probability, value, currency) in deals {
        let edit = usecase::LeadEdit {
            estimated_value: Some(Some(value.parse().expect("decimal"))),
            currency: Some(Some(currency.into())),
            ..Default::default()
        };
        let lead = usecase::edit_lead(&all[n].ext_id, &edit, None, policy, d)
            .await
            .expect("edit value");
        assert_eq!(
            (lead.stage, lead.probability_pct),
            (stage, probability),
            "lead {n}'s stage, as the expected figures assume"
        );
        all[n] = lead;
    }
    // Proposal at 35 %, not the stage's 40 %: the lead's own probability counts.
    all[27].probability_pct = 35;
    // Negotiation (60 %): a value no API call could write.
    all[28].estimated_value = Some(Decimal::new(4000, 2));
    all[28].currency = None;
    // Won, but merged away: counts nowhere.
    all[29].estimated_value = Some(Decimal::from(5_000_000));
    all[29].currency = Some("EUR".into());
    all[29].merged_into = Some(all[0].ext_id.clone());
    for n in [27, 28, 29] {
        let version = all[n].version;
        let written = store
            .commit(Commit::new().write(all[n].clone(), Some(version)))
            .await
            .expect("write a deal directly");
        all[n] = written.into_iter().next().expect("the written lead");
    }
}

/// The stored workload of `rep`; panics when the store does not know the rep.
pub async fn rep_load<S: RepStore + ?Sized>(store: &S, rep: &RepId) -> RepLoad {
    store
        .rep_states()
        .await
        .expect("rep states")
        .into_iter()
        .find(|s| &s.rep.id == rep)
        .map(|s| s.load)
        .unwrap_or_else(|| panic!("no rep {rep}"))
}

/// Workload changes are increments: concurrent assignments never lose a count.
pub async fn rep_workloads_count_by_increments<S: FullStore>(store: Arc<S>) {
    let ana = RepId::parse("ana@sales.com").expect("valid");
    store
        .upsert_rep(&rep("ana@sales.com"))
        .await
        .expect("upsert rep");
    let assigned = |pass: f64| {
        let mut c = Commit::new();
        c.load.push(LoadChange::Assigned {
            rep: ana.clone(),
            at: t0(),
            local_day: t0().date_naive(),
            pass,
        });
        c
    };
    let results = join_all((0..10).map(|i| store.commit(assigned(f64::from(i))))).await;
    assert!(results.iter().all(Result::is_ok));
    let mut release = Commit::new();
    release.load.push(LoadChange::Released { rep: ana.clone() });
    release.load.push(LoadChange::Released { rep: ana.clone() });
    release.load.push(LoadChange::Reopened { rep: ana.clone() });
    store.commit(release).await.expect("release and reopen");
    let state = store
        .rep_states()
        .await
        .expect("reps")
        .into_iter()
        .find(|s| s.rep.id == ana)
        .expect("rep");
    assert_eq!((state.load.open_leads, state.load.assigned_today), (9, 10));
    assert_eq!(state.load.pass, 9.0, "the pass only moves forward");
    assert_eq!(state.load.last_assigned_at, Some(t0()));

    // Several reps, days and clamped releases in one commit: each rep ends
    // as if its changes were applied one at a time.
    store
        .upsert_rep(&rep("bob@sales.com"))
        .await
        .expect("upsert rep");
    let bob = RepId::parse("bob@sales.com").expect("valid");
    let next_day = t0() + chrono::Duration::days(1);
    let assign = |rep: &RepId, at: DateTime<Utc>, pass: f64| LoadChange::Assigned {
        rep: rep.clone(),
        at,
        local_day: at.date_naive(),
        pass,
    };
    let mut mixed = Commit::new();
    mixed.load.extend([
        assign(&bob, t0(), 2.0),
        assign(&ana, t0(), 3.0),
        assign(&bob, next_day, 1.0),
        LoadChange::Released { rep: bob.clone() },
        assign(&bob, next_day, f64::NAN),
        LoadChange::Released { rep: bob.clone() },
        LoadChange::Released { rep: bob.clone() },
        LoadChange::Released { rep: bob.clone() },
        LoadChange::Reopened { rep: bob.clone() },
    ]);
    store.commit(mixed).await.expect("mixed workload changes");
    let (ana_load, bob_load) = (rep_load(&*store, &ana).await, rep_load(&*store, &bob).await);
    assert_eq!(
        (ana_load.open_leads, ana_load.assigned_today, ana_load.pass),
        (10, 11, 9.0),
        "same day: the count goes on; a lower pass does not move it"
    );
    assert_eq!(
        (bob_load.open_leads, bob_load.assigned_today, bob_load.today),
        (1, 2, Some(next_day.date_naive())),
        "releases never go below zero; a new day restarts the count"
    );
    assert_eq!(
        (bob_load.pass, bob_load.last_assigned_at),
        (2.0, Some(next_day)),
        "the highest pass; the last assignment's instant"
    );

    // A run that changes day and comes back: the stored count of that day
    // does not go on, since the count restarted within the run.
    let carol = RepId::parse("carol@sales.com").expect("valid");
    store
        .upsert_rep(&rep("carol@sales.com"))
        .await
        .expect("upsert rep");
    let mut first = Commit::new();
    first.load.push(assign(&carol, t0(), 0.0));
    store.commit(first).await.expect("first assignment");
    let mut back = Commit::new();
    back.load
        .extend([assign(&carol, next_day, 1.0), assign(&carol, t0(), 2.0)]);
    store.commit(back).await.expect("a day and back");
    let carol_load = rep_load(&*store, &carol).await;
    assert_eq!(
        (
            carol_load.open_leads,
            carol_load.assigned_today,
            carol_load.today
        ),
        (3, 1, Some(t0().date_naive())),
        "the count restarted on the day between"
    );

    let mut renamed = state.rep.clone();
    renamed.name = "Ana María".into();
    store.upsert_rep(&renamed).await.expect("update rep");
    let again = store
        .rep_states()
        .await
        .expect("reps")
        .into_iter()
        .find(|s| s.rep.id == ana)
        .expect("rep");
    assert_eq!(
        (again.rep.name.as_str(), again.load.open_leads),
        ("Ana María", 10),
        "profile updates keep the workload"
    );
    let mut unknown = Commit::new();
    unknown.load.push(LoadChange::Released {
        rep: RepId::parse("ghost@sales.com").expect("valid"),
    });
    assert!(
        store.commit(unknown).await.is_err(),
        "an unknown rep is refused"
    );

    // Account matching: the owner of an open lead at the same company.
    let d = deps(&store, Arc::new(ManualClock::new(t0())));
    let lead = usecase::capture(&form(300), &Policy::default(), &d)
        .await
        .expect("capture")
        .lead;
    let lead = usecase::assign(
        &lead.ext_id,
        AssignTo::Rep(ana.clone()),
        ChangeOrigin::Local,
        None,
        &Policy::default(),
        &d,
    )
    .await
    .expect("assign");
    let keys = crate::matchkey::MatchKeys::of(&lead.fields);
    let key = AccountKey {
        company: keys.company_key(),
        domain: keys.corporate_domain().map(str::to_owned),
    };
    assert_eq!(store.account_owner(&key).await.expect("owner"), Some(ana));
    let nobody = AccountKey {
        company: Some("no such company".into()),
        domain: None,
    };
    assert_eq!(store.account_owner(&nobody).await.expect("owner"), None);
}

/// Watermarks are kept; a lease has one holder at a time.
pub async fn watermarks_and_leases<S: FullStore>(store: Arc<S>) {
    assert_eq!(store.watermark("salesforce.pull").await.expect("get"), None);
    store
        .set_watermark("salesforce.pull", "2026-11-23T14:00:00Z")
        .await
        .expect("set");
    store
        .set_watermark("salesforce.pull", "2026-11-23T15:00:00Z")
        .await
        .expect("overwrite");
    assert_eq!(
        store
            .watermark("salesforce.pull")
            .await
            .expect("get")
            .as_deref(),
        Some("2026-11-23T15:00:00Z")
    );

    let until = t0() + chrono::Duration::minutes(5);
    assert!(
        store
            .try_lease("job.sync", "node-a", until, t0())
            .await
            .expect("lease")
    );
    assert!(
        !store
            .try_lease("job.sync", "node-b", until, t0())
            .await
            .expect("lease"),
        "held by a"
    );
    assert!(
        store
            .try_lease(
                "job.sync",
                "node-a",
                until + chrono::Duration::minutes(5),
                t0()
            )
            .await
            .expect("renew")
    );
    let later = until + chrono::Duration::minutes(6);
    assert!(
        store
            .try_lease(
                "job.sync",
                "node-b",
                later + chrono::Duration::minutes(5),
                later
            )
            .await
            .expect("expired")
    );
    store
        .release_lease("job.sync", "node-a")
        .await
        .expect("release by a non-holder is a no-op");
    assert!(
        !store
            .try_lease("job.sync", "node-a", later, later)
            .await
            .expect("still b's")
    );
    store
        .release_lease("job.sync", "node-b")
        .await
        .expect("release");
    assert!(
        store
            .try_lease(
                "job.sync",
                "node-a",
                later + chrono::Duration::minutes(1),
                later
            )
            .await
            .expect("free")
    );
}

/// [`LeadStore::capture_context`](crate::ports::LeadStore::capture_context) answers exactly what the four reads it
/// stands for answer, in every case a capture meets.
pub async fn capture_context_equals_the_reads_it_stands_for<S: FullStore>(store: Arc<S>) {
    store
        .upsert_rep(&rep("ana@sales.com"))
        .await
        .expect("upsert rep");
    store
        .upsert_rep(&rep("bob@sales.com"))
        .await
        .expect("upsert rep");
    let clock = Arc::new(ManualClock::new(t0()));
    let d = deps(&store, clock.clone());
    let mut input = form(2);
    input.company = Some("Company2 SL".into());
    let captured = usecase::capture(&input, &Policy::default(), &d)
        .await
        .expect("capture")
        .lead;
    let mut keyed = Commit::new();
    keyed.idempotency.push(IdempotencyKey {
        key: "ctx-key".into(),
        lead: captured.ext_id.clone(),
        created_at: t0(),
        expires_at: t0() + chrono::Duration::hours(1),
        request_hash: Some("ctx-hash".into()),
    });
    store.commit(keyed).await.expect("store a key");

    let held = crate::matchkey::email_match_key(&captured.fields.email);
    let keys = crate::matchkey::MatchKeys::of(&captured.fields);
    let account = AccountKey {
        company: keys.company_key(),
        domain: keys.corporate_domain().map(str::to_owned),
    };
    let nobody = AccountKey {
        company: Some("no such company".into()),
        domain: None,
    };
    let now = t0() + chrono::Duration::minutes(5);
    for (key, email, account) in [
        (Some("ctx-key"), held.as_str(), &account),
        (Some("other-key"), held.as_str(), &account),
        (None, "nobody@example.com", &nobody),
        (None, held.as_str(), &AccountKey::default()),
    ] {
        let context = store
            .capture_context(key, email, account, now)
            .await
            .expect("capture context");
        let replay = match key {
            Some(k) => store.find_by_idempotency_key(k, now).await.expect("find"),
            None => None,
        };
        assert_eq!(context.replay, replay, "replay for {key:?}");
        if key == Some("ctx-key") {
            assert_eq!(
                replay.as_ref().and_then(|r| r.request_hash.as_deref()),
                Some("ctx-hash"),
                "the stored key comes with its request hash"
            );
        }
        if replay.is_some() {
            continue;
        }
        assert_eq!(
            context.existing,
            store.find_by_email_key(email).await.expect("find"),
            "existing lead for {email}"
        );
        assert_eq!(
            context.owner,
            store.account_owner(account).await.expect("owner"),
            "owner for {account:?}"
        );
        assert_eq!(
            context.reps,
            store.rep_states().await.expect("reps"),
            "rep states"
        );
    }
}

/// Job runs round-trip and list newest first; housekeeping deletes expired
/// idempotency keys, old delivery marks and old finished runs, and keeps
/// everything else.
pub async fn job_runs_round_trip_and_housekeeping_purges_only_the_old<S: FullStore>(store: Arc<S>) {
    use crate::ports::{DELIVERY_MARK, JobRun, Purged, Retention, Trigger};
    let at = |minutes: i64| t0() + chrono::Duration::minutes(minutes);
    let mut first = JobRun::queued(
        uuid::Uuid::from_u128(1),
        "lead_segmentation",
        Trigger::Schedule,
        Some(at(0)),
        at(0),
    );
    store.save_run(&first).await.expect("save");
    first = first.started(at(1));
    first.worker = Some("node-a".into());
    store.save_run(&first).await.expect("replace");
    let first = first.finished(Ok([("leads".to_owned(), 3)].into()), at(2));
    store.save_run(&first).await.expect("finish");
    let second = JobRun::queued(
        uuid::Uuid::from_u128(2),
        "lead_segmentation",
        Trigger::Manual,
        None,
        at(10),
    );
    store.save_run(&second).await.expect("save");
    let other = JobRun::queued(
        uuid::Uuid::from_u128(3),
        "housekeeping",
        Trigger::Cli,
        None,
        at(5),
    );
    store.save_run(&other).await.expect("save");
    assert_eq!(
        store.get_run(first.id).await.expect("get"),
        Some(first.clone()),
        "a run round-trips exactly"
    );
    assert_eq!(
        store.get_run(uuid::Uuid::from_u128(9)).await.expect("get"),
        None
    );
    assert_eq!(
        store.runs("lead_segmentation", 10).await.expect("runs"),
        vec![second.clone(), first.clone()],
        "newest first, this job's only"
    );
    assert_eq!(
        store.runs("lead_segmentation", 1).await.expect("runs"),
        vec![second.clone()]
    );

    // Delivery marks are stamped when written (now, by the store's clock).
    let mark = format!("salesforce.outbound{DELIVERY_MARK}04t000001");
    store.set_watermark(&mark, "1").await.expect("mark");
    store
        .set_watermark("salesforce.pull", "2026-11-23T15:00:00Z")
        .await
        .expect("watermark");
    let d = deps(&store, Arc::new(ManualClock::new(t0())));
    let lead = usecase::capture(&form(7), &Policy::default(), &d)
        .await
        .expect("capture")
        .lead;
    let mut key = IdempotencyKey {
        key: "old".into(),
        lead: lead.ext_id.clone(),
        created_at: at(0),
        expires_at: at(60),
        request_hash: None,
    };
    let mut keys = Commit::new();
    keys.idempotency.push(key.clone());
    key.key = "fresh".into();
    key.expires_at = at(60 * 48);
    keys.idempotency.push(key);
    store.commit(keys).await.expect("keys");

    let retention = Retention {
        delivery_marks: chrono::Duration::days(30),
        job_runs: chrono::Duration::days(1),
    };
    let purged = store.purge(at(120), &retention).await.expect("purge");
    assert_eq!(
        purged,
        Purged {
            idempotency_keys: 1,
            delivery_marks: 0,
            job_runs: 0
        },
        "only the expired key goes: the mark and the run are recent"
    );
    assert!(
        store
            .find_by_idempotency_key("old", at(0))
            .await
            .expect("find")
            .is_none()
    );
    assert!(
        store
            .find_by_idempotency_key("fresh", at(0))
            .await
            .expect("find")
            .is_some()
    );

    let much_later = Utc::now() + chrono::Duration::days(31);
    let purged = store.purge(much_later, &retention).await.expect("purge");
    assert_eq!(
        purged,
        Purged {
            idempotency_keys: 1,
            delivery_marks: 1,
            job_runs: 1
        },
        "the fresh key expired by then, the mark is old, the finished run too"
    );
    assert_eq!(store.watermark(&mark).await.expect("get"), None);
    assert_eq!(
        store
            .watermark("salesforce.pull")
            .await
            .expect("get")
            .as_deref(),
        Some("2026-11-23T15:00:00Z"),
        "a watermark is never purged"
    );
    assert_eq!(store.get_run(first.id).await.expect("get"), None);
    assert!(
        store.get_run(second.id).await.expect("get").is_some(),
        "an unfinished run stays"
    );
    assert!(store.get_run(other.id).await.expect("get").is_some());
}
