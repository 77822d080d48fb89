//! The scheduled jobs through the whole server built in-process: data
//! seeded through lead-core's use-cases on a past clock (so what is stored
//! is stale by now), each job run through `POST /api/jobs/{name}/run` (the
//! queue and worker a scheduled run goes through), and its effect read back
//! through the API, the Salesforce mock or the store reopened.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lead_core::usecase::{self, CaptureOutcome, FollowUpChange, Idempotency};
use lead_core::{
    Deps, EventKind, FollowUpStatus, LeadEvent, LeadInput, LeadReads, ManualClock, Policy,
    RandomIds, SyncState,
};
use lead_crm_salesforce::mock::Mock;
use lead_store_sqlite::SqliteStore;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{API_KEY, reps_file};
use crate::crm_sync::{Running, temp_db, until};

/// Every job, in the order `GET /api/jobs` lists them.
const JOBS: [&str; 9] = [
    "crm_bidirectional_sync",
    "lead_deduplication",
    "lead_segmentation",
    "lead_qualification",
    "lead_behavioral_scoring",
    "sales_intelligent_routing",
    "sales_followup_automation",
    "lead_notifications",
    "housekeeping",
];

/// How long a run may take from `POST` to `succeeded` (the worker polls
/// its queue every second).
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Writes a `LEAD_JOBS_FILE` in `dir` that turns every job's schedule off
/// (only the runs a test asks for happen), with the `(job, schedule)` of
/// `schedules` set; returns its path.
fn jobs_file(dir: &Path, schedules: &[(&str, &str)]) -> String {
    let mut text = String::new();
    for job in JOBS {
        text.push_str(&format!("[jobs.{job}]\nenabled = false\n"));
        if let Some((_, schedule)) = schedules.iter().find(|(name, _)| *name == job) {
            text.push_str(&format!("schedule = \"{schedule}\"\n"));
        }
        text.push('\n');
    }
    let path = dir.join("jobs.toml");
    std::fs::write(&path, text).expect("write the jobs file");
    path.display().to_string()
}

/// The in-process server's variables on `url`, every job's schedule off,
/// with Salesforce at `mock` when given (pushes every 20 ms; the periodic
/// pull only at start, so a later pull is the job's).
fn settings(url: &str, dir: &Path, mock: Option<&Mock>) -> HashMap<String, String> {
    let mut vars = crate::crm_sync::vars(url, mock);
    vars.insert("LEAD_JOBS_FILE".to_owned(), jobs_file(dir, &[]));
    if mock.is_some() {
        vars.insert("CRM_PULL_INTERVAL_SECS".to_owned(), "3600".to_owned());
    }
    vars
}

/// The test's SQLite file opened directly, and use-cases on a clock that
/// stands at `at`.
async fn seeding(url: &str, at: DateTime<Utc>) -> (Arc<SqliteStore>, Deps) {
    let store = Arc::new(
        SqliteStore::from_url(url)
            .await
            .expect("the test's SQLite file"),
    );
    let deps = Deps::with(
        store.clone(),
        Arc::new(ManualClock::new(at)),
        Arc::new(RandomIds),
    );
    (store, deps)
}

/// A form with a name and a company (what Salesforce requires of a Lead).
fn person(email: &str, first: &str, last: &str, company: &str) -> LeadInput {
    LeadInput {
        email: Some(email.into()),
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        company: Some(company.into()),
        ..Default::default()
    }
}

async fn capture(input: &LeadInput, policy: &Policy, deps: &Deps) -> CaptureOutcome {
    usecase::capture(input, policy, deps)
        .await
        .expect("seeded capture")
}

fn days(n: i64) -> chrono::Duration {
    chrono::Duration::days(n)
}

/// Asks for a run of `job` through the API and waits (polling its runs)
/// until that run succeeded; fails the test if it failed. Returns the run.
pub(crate) async fn run_job(server: &Running, job: &str) -> Value {
    let (status, queued) = server
        .api(Method::POST, &format!("/api/jobs/{job}/run"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["job"], json!(job), "{queued}");
    assert_eq!(queued["status"], json!("queued"), "{queued}");
    let id = queued["run_id"].as_str().expect("a run id").to_owned();
    let deadline = tokio::time::Instant::now() + RUN_LIMIT;
    loop {
        let (status, body) = server
            .api(Method::GET, &format!("/api/jobs/{job}/runs?limit=50"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let run = body["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .find(|r| r["id"] == json!(id))
            .cloned();
        if let Some(run) = run {
            match run["status"].as_str() {
                Some("succeeded") => {
                    assert_eq!(run["job"], json!(job), "{run}");
                    assert_eq!(run["trigger"], json!("manual"), "{run}");
                    assert!(run["worker"].is_string(), "a worker ran it: {run}");
                    return run;
                }
                Some("failed") => panic!("the {job} run {id} failed: {}", run["error"]),
                _ => {}
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the {job} run {id} did not succeed within {RUN_LIMIT:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A count of a finished run.
fn count(run: &Value, name: &str) -> u64 {
    run["counts"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {name:?} in {run}"))
}

/// `GET path` until `done` holds for the answer, for at most `limit`.
async fn poll(
    server: &Running,
    path: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let (status, body) = server.api(Method::GET, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        if done(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} not as awaited within {limit:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn lead(server: &Running, id: &str) -> Value {
    let (status, body) = server.api(Method::GET, &format!("/api/leads/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The changes waiting for the CRM (with no CRM configured, all of them).
async fn backlog(server: &Running) -> u64 {
    let (status, body) = server.api(Method::GET, "/api/sync/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["backlog"].as_u64().expect("backlog")
}

fn segments(lead: &Value) -> Vec<String> {
    serde_json::from_value(lead["segments"].clone()).expect("segments")
}

/// An event of `kind` at `at`.
fn event(kind: EventKind, at: DateTime<Utc>) -> LeadEvent {
    LeadEvent {
        kind,
        at,
        properties: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_behavioral_scoring_decays_scores_recorded_twenty_days_ago() {
    let (dir, url) = temp_db();
    let then = Utc::now() - days(20);
    let policy = Policy::default();
    let (store, deps) = seeding(&url, then).await;
    let active = capture(
        &person("ana@acme-corp.com", "Ana", "López", "Acme SL"),
        &policy,
        &deps,
    )
    .await
    .lead
    .ext_id;
    usecase::record_event(&active, event(EventKind::DemoRequest, then), &policy, &deps)
        .await
        .expect("event");
    let scored = usecase::record_event(
        &active,
        event(EventKind::WebinarRegister, then),
        &policy,
        &deps,
    )
    .await
    .expect("event");
    assert_eq!(scored.behavioral_score.value(), 35, "20 + 15 when new");
    let quiet = capture(
        &person("ben@other-corp.com", "Ben", "Smith", "Other Ltd"),
        &policy,
        &deps,
    )
    .await
    .lead
    .ext_id;
    store.close().await;

    let server = Running::start(&settings(&url, dir.path(), None)).await;
    let active_before = lead(&server, active.as_str()).await;
    let quiet_before = lead(&server, quiet.as_str()).await;
    assert_eq!(active_before["behavioral_score"], json!(35));
    let run = run_job(&server, "lead_behavioral_scoring").await;
    let active_after = lead(&server, active.as_str()).await;
    let quiet_after = lead(&server, quiet.as_str()).await;
    server.stop().await;

    assert_eq!(count(&run, "leads"), 2, "{run}");
    assert_eq!(
        count(&run, "changed"),
        1,
        "only the lead with events: {run}"
    );
    let score = active_after["behavioral_score"]
        .as_u64()
        .expect("behavioral score");
    // Linear decay over 30 days: 20 days on, a third of 35 points is left.
    assert!(
        (11..=12).contains(&score),
        "decayed to now, 35 → {score}: {active_after}"
    );
    assert_eq!(
        active_after["updated_at"], active_before["updated_at"],
        "a derived value is no edit"
    );
    assert_eq!(
        quiet_after, quiet_before,
        "a lead without events is unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_segmentation_drops_the_engaged_segment_as_events_age_and_queues_it_for_the_crm() {
    let (dir, url) = temp_db();
    let then = Utc::now() - days(20);
    let policy = Policy::default();
    let (store, deps) = seeding(&url, then).await;
    let engaged = capture(
        &person("ana@acme-corp.com", "Ana", "López", "Acme SL"),
        &policy,
        &deps,
    )
    .await
    .lead
    .ext_id;
    let seeded = usecase::record_event(
        &engaged,
        event(EventKind::DemoRequest, then),
        &policy,
        &deps,
    )
    .await
    .expect("event");
    assert!(
        seeded.segments.contains(&"behavior:engaged".to_owned()),
        "{:?}",
        seeded.segments
    );
    let quiet = capture(
        &person("ben@other-corp.com", "Ben", "Smith", "Other Ltd"),
        &policy,
        &deps,
    )
    .await
    .lead
    .ext_id;
    store.close().await;

    let server = Running::start(&settings(&url, dir.path(), None)).await;
    let quiet_before = lead(&server, quiet.as_str()).await;
    let waiting = backlog(&server).await;
    let run = run_job(&server, "lead_segmentation").await;
    let engaged_after = lead(&server, engaged.as_str()).await;
    let quiet_after = lead(&server, quiet.as_str()).await;
    let waiting_after = backlog(&server).await;
    server.stop().await;

    assert_eq!(count(&run, "leads"), 2, "{run}");
    assert_eq!(count(&run, "changed"), 1, "{run}");
    let now_in = segments(&engaged_after);
    assert!(
        !now_in.contains(&"behavior:engaged".to_owned()),
        "20 points 20 days old are under the threshold: {now_in:?}"
    );
    assert!(
        engaged_after["behavioral_score"]
            .as_u64()
            .is_some_and(|s| s < 20),
        "{engaged_after}"
    );
    assert_eq!(
        waiting_after,
        waiting + 1,
        "the segment change is queued for the CRM"
    );
    assert_eq!(segments(&quiet_after), segments(&quiet_before));
    assert!(segments(&quiet_after).contains(&"behavior:new".to_owned()));
    assert_eq!(quiet_after["version"], quiet_before["version"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_qualification_moves_a_lead_meeting_bant_once_the_policy_turns_auto_qualify_on() {
    let (dir, url) = temp_db();
    let policy = Policy::default();
    let (store, deps) = seeding(&url, Utc::now() - days(1)).await;
    let strong = LeadInput {
        budget: Some("20000 EUR".into()),
        job_title: Some("CEO".into()),
        message: Some("We need a demo".into()),
        timeline: Some("this month".into()),
        ..person("ceo@acme-corp.com", "Carla", "Ruiz", "Acme SL")
    };
    let seeded = capture(&strong, &policy, &deps).await.lead;
    assert_eq!(
        seeded.stage,
        lead_core::Stage::New,
        "auto-qualify is off by default"
    );
    let strong = seeded.ext_id;
    let weak = capture(
        &person("dev@other-corp.com", "Ben", "Smith", "Other Ltd"),
        &policy,
        &deps,
    )
    .await
    .lead
    .ext_id;
    store.close().await;

    let policy_file = dir.path().join("policy.toml");
    std::fs::write(&policy_file, "[bant]\nauto_qualify_enabled = true\n").expect("policy");
    let mut vars = settings(&url, dir.path(), None);
    vars.insert("LEAD_POLICY".to_owned(), policy_file.display().to_string());
    let server = Running::start(&vars).await;
    assert_eq!(lead(&server, strong.as_str()).await["stage"], json!("new"));
    let run = run_job(&server, "lead_qualification").await;
    let strong_after = lead(&server, strong.as_str()).await;
    let weak_after = lead(&server, weak.as_str()).await;
    server.stop().await;

    assert_eq!(count(&run, "qualified"), 1, "{run}");
    assert_eq!(count(&run, "leads"), 2, "{run}");
    assert_eq!(strong_after["stage"], json!("qualified"), "{strong_after}");
    assert_eq!(weak_after["stage"], json!("new"), "{weak_after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_intelligent_routing_assigns_leads_captured_while_there_were_no_reps() {
    let (dir, url) = temp_db();
    let policy = Policy::default();
    let (store, deps) = seeding(&url, Utc::now() - days(1)).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let out = capture(
            &person(
                &format!("person{n}@company{n}.com"),
                "Ana",
                &format!("López {n}"),
                &format!("Company {n}"),
            ),
            &policy,
            &deps,
        )
        .await;
        assert_eq!(out.lead.assigned_to, None, "no reps yet");
        ids.push(out.lead.ext_id.to_string());
    }
    store.close().await;

    let reps = ["ana@sales.com", "ben@sales.com"];
    let mut vars = settings(&url, dir.path(), None);
    vars.insert("LEAD_REPS".to_owned(), reps_file(dir.path(), &reps));
    let server = Running::start(&vars).await;
    for id in &ids {
        assert_eq!(lead(&server, id).await["assigned_to"], Value::Null);
    }
    let run = run_job(&server, "sales_intelligent_routing").await;
    let mut after = Vec::new();
    for id in &ids {
        after.push(lead(&server, id).await);
    }
    server.stop().await;

    assert_eq!(count(&run, "unassigned"), 3, "{run}");
    assert_eq!(count(&run, "assigned"), 3, "{run}");
    assert_eq!(count(&run, "still_unassigned"), 0, "{run}");
    for lead in after {
        let rep = lead["assigned_to"].as_str().unwrap_or_default();
        assert!(
            reps.contains(&rep),
            "assigned to a rep of LEAD_REPS: {lead}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_followup_automation_raises_an_overdue_task_and_plans_a_missing_one_in_salesforce() {
    let (dir, url) = temp_db();
    let policy = Policy::default();
    let (store, deps) = seeding(&url, Utc::now() - days(10)).await;
    let late = capture(
        &person("ana@acme-corp.com", "Ana", "López", "Acme SL"),
        &policy,
        &deps,
    )
    .await;
    let late_task = late.followup.expect("a follow-up planned at capture");
    assert!(late_task.due_at < Utc::now(), "due in the past");
    let late = late.lead.ext_id.to_string();
    let done = capture(
        &person("ben@other-corp.com", "Ben", "Smith", "Other Ltd"),
        &policy,
        &deps,
    )
    .await;
    let done_task = done.followup.expect("a follow-up planned at capture");
    let done = done.lead.ext_id.to_string();
    usecase::update_followup(
        done_task.id,
        &FollowUpChange {
            status: Some(FollowUpStatus::Done),
            ..FollowUpChange::default()
        },
        &deps,
    )
    .await
    .expect("completed");
    store.close().await;

    let mock = Mock::start().await;
    mock.org().epoch = Some(Utc::now());
    let server = Running::start(&settings(&url, dir.path(), Some(&mock))).await;
    // What was seeded reaches the org first: the late task, not raised.
    let (late_key, done_key) = (
        late_task.id.simple().to_string(),
        done_task.id.simple().to_string(),
    );
    until(
        "both seeded tasks in the org",
        Duration::from_secs(30),
        || {
            let org = mock.org();
            org.tasks.contains_key(&late_key)
                && org
                    .tasks
                    .get(&done_key)
                    .is_some_and(|t| t["Status"] == json!("Completed"))
        },
    )
    .await;
    server.drained(Duration::from_secs(30)).await;
    assert_ne!(
        mock.org().tasks[&late_key]["Priority"],
        json!("High"),
        "a low-priority lead's task is not raised before it is overdue"
    );
    let (_, open) = server
        .api(Method::GET, &format!("/api/followups?lead={late}"))
        .await;
    let open = open["followups"].as_array().expect("follow-ups").clone();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["id"], json!(late_task.id));
    assert_eq!(open[0]["overdue_at"], Value::Null, "not marked yet");

    let run = run_job(&server, "sales_followup_automation").await;
    assert_eq!(count(&run, "overdue"), 1, "{run}");
    assert_eq!(count(&run, "created"), 1, "{run}");
    assert_eq!(count(&run, "leads"), 2, "{run}");

    let (status, marked) = server
        .api(Method::GET, &format!("/api/followups?lead={late}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{marked}");
    let tasks = marked["followups"].as_array().expect("follow-ups");
    assert_eq!(tasks.len(), 1, "an open task is not doubled: {marked}");
    assert_eq!(tasks[0]["id"], json!(late_task.id));
    assert!(tasks[0]["overdue_at"].is_string(), "{marked}");
    let (_, planned) = server
        .api(
            Method::GET,
            &format!("/api/followups?lead={done}&status=open"),
        )
        .await;
    let planned = planned["followups"].as_array().expect("follow-ups").clone();
    assert_eq!(planned.len(), 1, "a new open task: {planned:?}");
    let new_task: uuid::Uuid = serde_json::from_value(planned[0]["id"].clone()).expect("task id");
    assert_ne!(new_task, done_task.id);
    let new_key = new_task.simple().to_string();

    until(
        "the raised and the new task in the org",
        Duration::from_secs(30),
        || {
            let org = mock.org();
            org.tasks
                .get(&late_key)
                .is_some_and(|t| t["Priority"] == json!("High"))
                && org
                    .tasks
                    .get(&new_key)
                    .is_some_and(|t| t["Status"] == json!("Not Started"))
        },
    )
    .await;
    let status = server.drained(Duration::from_secs(30)).await;
    server.stop().await;
    assert_eq!(status["dead_letters"], json!(0), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_deduplication_lists_the_same_person_for_review_once() {
    let (dir, url) = temp_db();
    let policy = Policy::default();
    let (store, deps) = seeding(&url, Utc::now() - days(1)).await;
    let same = |email: &str| LeadInput {
        phone: Some("+34 611 222 333".into()),
        ..person(email, "Ana", "López", "Acme SL")
    };
    let work = capture(&same("ana.lopez@acme-corp.com"), &policy, &deps)
        .await
        .lead
        .ext_id
        .to_string();
    let home = capture(&same("ana.personal@gmail.com"), &policy, &deps)
        .await
        .lead
        .ext_id
        .to_string();
    let other = capture(
        &LeadInput {
            phone: Some("+1 415 555 0100".into()),
            ..person("ben@other-corp.com", "Ben", "Smith", "Other Ltd")
        },
        &policy,
        &deps,
    )
    .await
    .lead
    .ext_id
    .to_string();
    store.close().await;

    let server = Running::start(&settings(&url, dir.path(), None)).await;
    let (_, none) = server.api(Method::GET, "/api/duplicates").await;
    assert_eq!(none["pairs"], json!([]), "nothing listed before: {none}");
    let first = run_job(&server, "lead_deduplication").await;
    let (status, listed) = server.api(Method::GET, "/api/duplicates").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let second = run_job(&server, "lead_deduplication").await;
    let (_, relisted) = server.api(Method::GET, "/api/duplicates").await;
    let (_, work_after) = server.api(Method::GET, &format!("/api/leads/{work}")).await;
    server.stop().await;

    assert_eq!(count(&first, "leads"), 3, "{first}");
    assert!(count(&first, "found") >= 1, "{first}");
    assert_eq!(count(&first, "marked_for_review"), 1, "{first}");
    assert_eq!(
        count(&first, "merged"),
        0,
        "the default mode merges no other e-mail"
    );
    let pairs = listed["pairs"].as_array().expect("pairs");
    assert_eq!(pairs.len(), 1, "{listed}");
    let leads: BTreeSet<&str> = pairs[0]["leads"]
        .as_array()
        .expect("the pair's leads")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(leads, BTreeSet::from([work.as_str(), home.as_str()]));
    assert!(!leads.contains(other.as_str()));
    assert_eq!(pairs[0]["status"], json!("open"), "{listed}");
    assert_eq!(work_after["merged_into"], Value::Null, "listed, not merged");

    assert_eq!(
        count(&second, "marked_for_review"),
        0,
        "a pair already listed is not listed again: {second}"
    );
    assert!(count(&second, "skipped") >= 1, "{second}");
    assert_eq!(relisted["pairs"], listed["pairs"], "the same one pair");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_deletes_expired_keys_and_old_delivery_marks_only() {
    use sqlx::Connection;

    let (dir, url) = temp_db();
    let policy = Policy::default();
    let now = Utc::now();
    let then = now - days(3);
    let (store, old_deps) = seeding(&url, then).await;
    let key = |key: &str| Idempotency {
        key: key.to_owned(),
        window: days(1),
        request_hash: None,
    };
    usecase::capture_once(
        &person("ana@acme-corp.com", "Ana", "López", "Acme SL"),
        Some(&key("test:expired")),
        &policy,
        &old_deps,
    )
    .await
    .expect("capture three days ago");
    let fresh_deps = Deps::with(
        store.clone(),
        Arc::new(ManualClock::new(now)),
        Arc::new(RandomIds),
    );
    usecase::capture_once(
        &person("ben@other-corp.com", "Ben", "Smith", "Other Ltd"),
        Some(&key("test:fresh")),
        &policy,
        &fresh_deps,
    )
    .await
    .expect("capture now");
    assert!(
        store
            .find_by_idempotency_key("test:expired", then)
            .await
            .expect("read")
            .is_some(),
        "the expired key is stored"
    );
    let (old_mark, new_mark) = (
        "salesforce.outbound.done.04l5w00005286hAAAQ",
        "salesforce.outbound.done.04l5w00005286hBAAQ",
    );
    store.set_watermark(old_mark, "1").await.expect("mark");
    store.set_watermark(new_mark, "1").await.expect("mark");
    store
        .set_watermark("salesforce.pull", "2026-10-01T00:00:00.000Z")
        .await
        .expect("watermark");
    store.close().await;
    // One delivery mark, and the pull's watermark, written 40 days ago.
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("the SQLite file");
    let aged = sqlx::query("UPDATE sync_watermarks SET updated_at = ? WHERE name IN (?, ?)")
        .bind((now - days(40)).timestamp_micros())
        .bind(old_mark)
        .bind("salesforce.pull")
        .execute(&mut conn)
        .await
        .expect("age the mark")
        .rows_affected();
    assert_eq!(aged, 2);
    conn.close().await.expect("close");

    let server = Running::start(&settings(&url, dir.path(), None)).await;
    // apalis' rows of the job queue (its tables exist once the server
    // started): a task done 100 days ago, one done now, one still pending,
    // and a worker last seen 100 days ago.
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("the SQLite file");
    let (old, recent) = ((now - days(100)).timestamp(), now.timestamp());
    // (The pending one is due tomorrow, so no worker takes it meanwhile.)
    let tomorrow = (now + days(1)).timestamp();
    for (id, status, run_at, done_at) in [
        ("old-done", "Done", old, Some(old)),
        ("new-done", "Done", recent, Some(recent)),
        ("old-pending", "Pending", tomorrow, None),
    ] {
        sqlx::query(
            "INSERT INTO Jobs (job, id, job_type, status, attempts, max_attempts, run_at, done_at, priority) \
             VALUES (x'7b7d', ?, 'lead_jobs', ?, 1, 3, ?, ?, 0)",
        )
        .bind(id)
        .bind(status)
        .bind(run_at)
        .bind(done_at)
        .execute(&mut conn)
        .await
        .expect("a queue row");
    }
    sqlx::query(
        "INSERT INTO Workers (id, worker_type, storage_name, layers, last_seen) \
         VALUES ('gone', 'lead_jobs', 'SqliteStorage', '', ?)",
    )
    .bind(old)
    .execute(&mut conn)
    .await
    .expect("a worker row");
    let run = run_job(&server, "housekeeping").await;
    server.stop().await;
    assert_eq!(count(&run, "idempotency_keys"), 1, "{run}");
    assert_eq!(count(&run, "delivery_marks"), 1, "{run}");
    assert_eq!(count(&run, "job_runs"), 0, "{run}");
    assert_eq!(count(&run, "queue_tasks"), 1, "{run}");
    assert_eq!(count(&run, "queue_workers"), 1, "{run}");
    let left: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM Jobs WHERE id IN ('old-done', 'new-done', 'old-pending') ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .expect("queue rows");
    assert_eq!(
        left,
        ["new-done", "old-pending"],
        "only the old finished task goes"
    );
    conn.close().await.expect("close");

    let store = SqliteStore::from_url(&url).await.expect("reopened");
    let expired = store
        .find_by_idempotency_key("test:expired", then)
        .await
        .expect("read");
    let fresh = store
        .find_by_idempotency_key("test:fresh", Utc::now())
        .await
        .expect("read");
    let marks = (
        store.watermark(old_mark).await.expect("read"),
        store.watermark(new_mark).await.expect("read"),
        store.watermark("salesforce.pull").await.expect("read"),
    );
    store.close().await;
    assert!(expired.is_none(), "the expired key is deleted");
    assert!(fresh.is_some(), "the live key stays");
    assert_eq!(
        marks,
        (
            None,
            Some("1".to_owned()),
            Some("2026-10-01T00:00:00.000Z".to_owned())
        ),
        "the old mark goes; the recent one and the pull's watermark, however old, stay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_bidirectional_sync_pulls_a_change_made_in_salesforce() {
    let (dir, url) = temp_db();
    let policy = Policy::default();
    let (store, deps) = seeding(&url, Utc::now() - days(1)).await;
    let id = capture(
        &person("ana@acme-corp.com", "Ana", "López", "Acme SL"),
        &policy,
        &deps,
    )
    .await
    .lead
    .ext_id
    .to_string();
    store.close().await;

    let mock = Mock::start().await;
    mock.org().epoch = Some(Utc::now());
    let server = Running::start(&settings(&url, dir.path(), Some(&mock))).await;
    // The server's own pull at start, then the seeded lead pushed.
    poll(&server, "/api/sync/status", Duration::from_secs(30), |s| {
        !s["last_pull"].is_null()
    })
    .await;
    until("the lead in the org", Duration::from_secs(30), || {
        mock.org().leads.contains_key(&id)
    })
    .await;
    server.drained(Duration::from_secs(30)).await;
    assert_eq!(lead(&server, &id).await["stage"], json!("new"));

    mock.org().set_status(&id, "Closed - Not Converted");
    let run = run_job(&server, "crm_bidirectional_sync").await;
    let after = lead(&server, &id).await;
    server.stop().await;

    assert!(count(&run, "pulled") >= 1, "{run}");
    assert!(count(&run, "applied") >= 1, "{run}");
    assert_eq!(after["stage"], json!("lost"), "the CRM's change: {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_routes_list_every_job_refuse_unknown_ones_and_need_write_to_run() {
    let (dir, url) = temp_db();
    let mut vars = settings(&url, dir.path(), None);
    vars.insert(
        "LEAD_JOBS_FILE".to_owned(),
        jobs_file(dir.path(), &[("lead_deduplication", "15 1 * * *")]),
    );
    let reader = "reader-key-0123456789abcdef";
    vars.insert(
        "LEAD_API_KEYS".to_owned(),
        format!(
            "{}:read,write;{}:read",
            lead_http::hash_key(API_KEY),
            lead_http::hash_key(reader)
        ),
    );
    let server = Running::start(&vars).await;

    let (status, body) = server.api(Method::GET, "/api/jobs").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let jobs = body["jobs"].as_array().expect("jobs");
    let names: Vec<&str> = jobs.iter().filter_map(|j| j["name"].as_str()).collect();
    assert_eq!(names, JOBS, "{body}");
    for job in jobs {
        assert!(
            job["schedule"]
                .as_str()
                .is_some_and(|s| s.split_whitespace().count() == 5),
            "{job}"
        );
        assert_eq!(job["enabled"], json!(false), "{job}");
        assert_eq!(job["next_due_at"], Value::Null, "{job}");
        assert_eq!(job["last_run"], Value::Null, "{job}");
    }
    assert_eq!(jobs[1]["schedule"], json!("15 1 * * *"), "from the file");
    assert_eq!(jobs[8]["schedule"], json!("30 3 * * *"), "the default");
    assert!(
        jobs[0]["disabled_because"]
            .as_str()
            .is_some_and(|why| why.contains("CRM")),
        "{}",
        jobs[0]
    );

    let (status, body) = server.api(Method::POST, "/api/jobs/nope/run").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = server.api(Method::GET, "/api/jobs/nope/runs").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let url = format!("http://{}/api/jobs/housekeeping/run", server.addr);
    let anonymous = server.client.post(&url).send().await.expect("post");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let read_only = server
        .client
        .post(&url)
        .bearer_auth(reader)
        .send()
        .await
        .expect("post");
    assert_eq!(
        read_only.status(),
        StatusCode::FORBIDDEN,
        "a run needs write"
    );
    let listed = server
        .client
        .get(format!("http://{}/api/jobs", server.addr))
        .bearer_auth(reader)
        .send()
        .await
        .expect("get");
    assert_eq!(listed.status(), StatusCode::OK, "reading needs read only");
    let (status, runs) = server.api(Method::GET, "/api/jobs/housekeeping/runs").await;
    server.stop().await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    assert_eq!(runs["runs"], json!([]), "a refused request queued nothing");
}
