//! Crash test: signed captures under load, `kill -9` of the server in the
//! middle, restart on the same database. Every lead answered `202` before
//! the kill must be there after the restart, and no submission may be
//! stored twice. Runs on SQLite, and on PostgreSQL (`DATABASE_URL`, a
//! fresh database; required, never skipped).

use std::collections::{BTreeMap, HashMap};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;

use crate::common::{API_KEY, SECRET, start};

/// Concurrent senders.
const SENDERS: usize = 8;
/// The server is killed once this many captures were acknowledged.
const KILL_AFTER: usize = 400;

/// Sends signed captures from `SENDERS` tasks until the server is gone;
/// kills it (SIGKILL) once `KILL_AFTER` were acknowledged. Returns every
/// acknowledged `(email, lead_ext_id)` and how many requests were sent.
async fn load_and_kill(mut child: Child, addr: &str) -> (BTreeMap<String, String>, usize) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (killed_tx, killed_rx) = tokio::sync::oneshot::channel::<()>();
    let killed_tx = Arc::new(std::sync::Mutex::new(Some(killed_tx)));
    let mut tasks = Vec::new();
    for _ in 0..SENDERS {
        let (client, acked, next, stop, killed_tx) = (
            client.clone(),
            acked.clone(),
            next.clone(),
            stop.clone(),
            killed_tx.clone(),
        );
        let url = format!("http://{addr}/webhook/lead");
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let email = format!("crash{n}@example.com");
                let body = serde_json::json!({
                    "email": email,
                    "first_name": "Crash",
                    "last_name": format!("Test{n}"),
                    "company": "Kill Nine SL",
                    "source": "web",
                })
                .to_string();
                let sig = lead_http::signature::sign_legacy(SECRET, body.as_bytes());
                let answer = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-webhook-signature", sig)
                    .header("idempotency-key", format!("crash-{n}"))
                    .body(body)
                    .send()
                    .await;
                let Ok(response) = answer else {
                    // The server is gone.
                    break;
                };
                if response.status() != reqwest::StatusCode::ACCEPTED {
                    continue;
                }
                let Ok(json) = response.json::<serde_json::Value>().await else {
                    break;
                };
                let id = json["lead_ext_id"].as_str().unwrap_or_default().to_owned();
                let mut acked = acked.lock().await;
                acked.insert(email, id);
                if acked.len() == KILL_AFTER
                    && let Some(tx) = killed_tx.lock().unwrap_or_else(|p| p.into_inner()).take()
                {
                    let _ = tx.send(());
                }
            }
        }));
    }
    killed_rx.await.expect("enough captures were acknowledged");
    // SIGKILL: no shutdown, no flush.
    child.kill().expect("kill -9 the server");
    child.wait().expect("reap the server");
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.expect("sender task");
    }
    let sent = next.load(Ordering::SeqCst);
    let acked = acked.lock().await.clone();
    (acked, sent)
}

/// Every stored lead's e-mail, through the API (all pages).
async fn stored_emails(addr: &str) -> HashMap<String, usize> {
    let client = reqwest::Client::new();
    let mut counts = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("http://{addr}/api/leads?limit=200");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: serde_json::Value = client
            .get(&url)
            .bearer_auth(API_KEY)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("page");
        for lead in page["leads"].as_array().expect("leads") {
            let email = lead["email"].as_str().expect("email").to_owned();
            *counts.entry(email).or_insert(0) += 1;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    counts
}

async fn crash_and_check(database_url: &str, label: &str) {
    let (child, addr) = start(database_url);
    let (acked, sent) = load_and_kill(child, &addr).await;
    assert!(
        acked.len() >= KILL_AFTER,
        "{label}: load reached the kill point"
    );

    let (mut child, addr) = start(database_url);
    let client = reqwest::Client::new();
    for (email, id) in &acked {
        let response = client
            .get(format!("http://{addr}/api/leads/{id}"))
            .bearer_auth(API_KEY)
            .send()
            .await
            .expect("get");
        assert_eq!(
            response.status(),
            reqwest::StatusCode::OK,
            "{label}: lead {id} ({email}) was answered 202 before the kill but is gone"
        );
        let lead: serde_json::Value = response.json().await.expect("lead");
        assert_eq!(lead["email"], email.as_str(), "{label}: lead {id}");
    }
    let stored = stored_emails(&addr).await;
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{label}: stored twice: {twice:?}");
    let unacked_stored = stored.keys().filter(|e| !acked.contains_key(*e)).count();
    println!(
        "{label}: {sent} captures sent, {} answered 202 before kill -9, all {} found after restart; \
         {unacked_stored} more were stored without their answer arriving (in flight at the kill); \
         0 stored twice; {} leads in all",
        acked.len(),
        acked.len(),
        stored.len()
    );
    child.kill().expect("stop the restarted server");
    child.wait().expect("reap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_captures_survive_kill_9_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("crash.db").display());
    crash_and_check(&url, "SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_captures_survive_kill_9_on_postgres() {
    let db = crate::common::FreshPostgres::create("crash").await;
    crash_and_check(&db.url, "PostgreSQL").await;
    db.drop().await;
}
