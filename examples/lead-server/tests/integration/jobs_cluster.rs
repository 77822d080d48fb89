//! Scheduled jobs across instances: two `lead-server` processes on one
//! PostgreSQL database run each due time of each job once, a disabled job
//! never runs, and a run whose process is killed mid-way is run again by
//! the other process and completes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

use crate::common::{FreshPostgres, Server};

/// A `LEAD_JOBS_FILE` with every job off, then `extra` (TOML tables that
/// override some).
fn jobs_file(dir: &std::path::Path, extra: &str) -> String {
    let mut text = String::new();
    for job in [
        "crm_bidirectional_sync",
        "lead_deduplication",
        "lead_qualification",
        "sales_intelligent_routing",
        "sales_followup_automation",
    ] {
        text.push_str(&format!("[jobs.{job}]\nenabled = false\n\n"));
    }
    text.push_str(extra);
    let path = dir.join("jobs.toml");
    std::fs::write(&path, text).expect("write the jobs file");
    path.display().to_string()
}

/// The run records of `job` in the database, oldest first.
async fn runs_in(url: &str, job: &str) -> Vec<Value> {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let docs: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM job_runs WHERE job = $1 ORDER BY started_at")
            .bind(job)
            .fetch_all(&mut conn)
            .await
            .expect("runs");
    docs.iter()
        .map(|d| serde_json::from_str(d).expect("a run record"))
        .collect()
}

/// Polls `GET /api/jobs/{job}/runs` on `server` until `done` holds for the
/// runs listed, for at most `limit`; returns them.
async fn runs_until(
    server: &Server,
    job: &str,
    limit: Duration,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let (status, body) = server
            .api(
                Method::GET,
                &format!("/api/jobs/{job}/runs?limit=200"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let runs = body["runs"].as_array().cloned().unwrap_or_default();
        if done(&runs) {
            return runs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{job}: not there within {limit:?}: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn start(url: &str, jobs: &str) -> Server {
    Server::start_with(
        url,
        &[
            ("LEAD_JOBS_FILE", jobs),
            ("LEAD_JOBS_HEARTBEAT_SECS", "1"),
            ("RUST_LOG", "info,lead_server::queue=debug"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_run_each_due_time_once_and_never_a_disabled_job() {
    let db = FreshPostgres::create("jobs_once").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let jobs = jobs_file(
        dir.path(),
        "[jobs.housekeeping]\nschedule = \"* * * * * *\"\n\n\
         [jobs.lead_segmentation]\nschedule = \"*/2 * * * * *\"\n\n\
         [jobs.lead_behavioral_scoring]\nschedule = \"* * * * * *\"\nenabled = false\n",
    );
    let a = start(&db.url, &jobs);
    let b = start(&db.url, &jobs);
    // Both schedules fire every second: wait for a dozen housekeeping
    // runs done.
    let succeeded = |runs: &[Value]| runs.iter().filter(|r| r["status"] == "succeeded").count();
    runs_until(&a, "housekeeping", Duration::from_secs(60), |runs| {
        succeeded(runs) >= 12
    })
    .await;
    // Each instance counts the runs its own worker did.
    let mut metrics = String::new();
    for server in [&a, &b] {
        metrics.push_str(&server.metrics().await);
    }
    for line in [
        "lead_job_runs_total{job=\"housekeeping\",status=\"succeeded\"}",
        "lead_job_duration_seconds_count{job=\"housekeeping\"}",
    ] {
        assert!(metrics.contains(line), "{line} in /metrics:\n{metrics}");
    }
    let (log_a, log_b) = (a.stop(), b.stop());

    let housekeeping = runs_in(&db.url, "housekeeping").await;
    let segmentation = runs_in(&db.url, "lead_segmentation").await;
    for (job, runs) in [
        ("housekeeping", &housekeeping),
        ("lead_segmentation", &segmentation),
    ] {
        let mut per_due: BTreeMap<String, usize> = BTreeMap::new();
        for run in runs {
            *per_due.entry(run["due_at"].to_string()).or_default() += 1;
        }
        assert!(
            per_due.values().all(|n| *n == 1),
            "{job}: a due time ran more than once: {per_due:?}"
        );
        assert!(!per_due.is_empty(), "{job} ran");
    }
    // Every second from the first due time to the last was run (by one
    // instance or the other), none skipped.
    let dues: BTreeSet<i64> = housekeeping
        .iter()
        .filter_map(|r| r["due_at"].as_str())
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .expect("due time")
                .timestamp()
        })
        .collect();
    let (first, last) = (*dues.first().expect("runs"), *dues.last().expect("runs"));
    assert_eq!(
        dues.len() as i64,
        last - first + 1,
        "every due second once: {dues:?}"
    );
    for run in housekeeping.iter().filter(|r| r["status"] != "running") {
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["attempts"], 1, "{run}");
    }
    // Both instances scheduled the same due times; the queue kept one.
    let contended = |log: &str| log.contains("already queued by another instance");
    assert!(
        contended(&log_a) || contended(&log_b),
        "both instances pushed due times"
    );
    let workers: BTreeSet<&str> = housekeeping
        .iter()
        .filter_map(|r| r["worker"].as_str())
        .collect();
    assert!(!workers.is_empty());
    assert!(
        runs_in(&db.url, "lead_behavioral_scoring").await.is_empty(),
        "a disabled job never runs"
    );
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let (tasks, keys): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT idempotency_key) FROM apalis.jobs WHERE job_type = 'lead_jobs'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("queue rows");
    assert_eq!(tasks, keys, "one queued task per due time");
    assert_eq!(
        tasks as usize,
        housekeeping.len() + segmentation.len(),
        "each queued task has its run record"
    );
    drop(conn);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_way_is_run_again_by_the_other_instance() {
    let db = FreshPostgres::create("jobs_crash").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let jobs = jobs_file(
        dir.path(),
        "[jobs.housekeeping]\nenabled = false\n\n\
         [jobs.lead_segmentation]\nenabled = false\n\n\
         [jobs.lead_behavioral_scoring]\nenabled = false\n",
    );
    let a = start(&db.url, &jobs);
    let b = start(&db.url, &jobs);
    for n in 0..5 {
        let (status, body) = a
            .capture(&json!({ "email": format!("crash{n}@example.com"), "first_name": "Ana" }))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    // Hold the leads table: the run that reads it blocks mid-way.
    let mut lock = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut lock)
        .await
        .expect("begin");
    sqlx::query("LOCK TABLE leads IN ACCESS EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .expect("lock");
    let (status, body) = a
        .api(Method::POST, "/api/jobs/lead_segmentation/run", None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let run_id = body["run_id"].as_str().expect("run id").to_owned();
    let this = |runs: &[Value]| runs.iter().find(|r| r["id"] == run_id.as_str()).cloned();
    let running = runs_until(&a, "lead_segmentation", Duration::from_secs(30), |runs| {
        this(runs).is_some_and(|r| r["status"] == "running")
    })
    .await;
    let running = this(&running).expect("the run");
    let worker = running["worker"].as_str().expect("its worker").to_owned();
    let pid_a = format!(":{}", a.pid());
    let (killed, survivor) = if worker.ends_with(&pid_a) {
        (a, b)
    } else {
        (b, a)
    };
    assert!(worker.ends_with(&format!(":{}", killed.pid())), "{worker}");
    let survivor_pid = format!(":{}", survivor.pid());
    killed.stop();
    sqlx::query("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("unlock");

    let done = runs_until(
        &survivor,
        "lead_segmentation",
        Duration::from_secs(60),
        |runs| this(runs).is_some_and(|r| r["status"] == "succeeded"),
    )
    .await;
    let done = this(&done).expect("the run");
    assert_eq!(
        done["attempts"], 2,
        "the killed attempt, then this one: {done}"
    );
    assert!(
        done["worker"]
            .as_str()
            .is_some_and(|w| w.ends_with(&survivor_pid)),
        "the other instance finished it: {done}"
    );
    assert_eq!(done["counts"]["leads"], 5, "{done}");
    survivor.stop();
    drop(lock);
    db.drop().await;
}

/// `lead-server worker`: the scheduled jobs (and the sync) without
/// listeners, on the same database as the web instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_runs_the_jobs_and_serves_nothing() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("temp dir");
    let jobs = jobs_file(
        dir.path(),
        "[jobs.housekeeping]\nschedule = \"* * * * * *\"\n\n\
         [jobs.lead_segmentation]\nenabled = false\n\n\
         [jobs.lead_behavioral_scoring]\nenabled = false\n",
    );
    let url = format!("sqlite://{}", dir.path().join("leads.db").display());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lead-server"))
        .arg("worker")
        .env("DATABASE_URL", &url)
        .env("LEAD_JOBS_FILE", &jobs)
        .env("LEAD_JOBS_HEARTBEAT_SECS", "1")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start lead-server worker");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(crate::common::plain(&line)).is_err() {
                return;
            }
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut log = Vec::new();
    while !log
        .iter()
        .any(|l: &String| l.contains("job run succeeded") && l.contains("housekeeping"))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => log.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("no housekeeping run within 60 s:\n{}", log.join("\n"));
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = log.join("\n");
    assert!(log.contains("worker mode"), "{log}");
    assert!(!log.contains("listening"), "a worker binds no port:\n{log}");
}
