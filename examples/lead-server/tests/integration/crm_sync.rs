//! The CRM sync through the whole server built in-process, against the
//! Salesforce contract mock: how many calls a backlog costs, an expired
//! session, a storm of limits and outages, a record the org refuses and
//! its retry from the API, the status route and the pull.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use lead_crm_salesforce::mock::{CLIENT_ID, CLIENT_SECRET, Mock};
use lead_server::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{API_KEY, Server};

/// The in-process server's variables on `url`, with Salesforce at `mock`
/// when given; retries come back after 10 ms (doubling to 200 ms at
/// most) so a storm passes in test time.
pub(crate) fn vars(url: &str, mock: Option<&Mock>) -> HashMap<String, String> {
    let mut vars = HashMap::from([
        ("DATABASE_URL".to_owned(), url.to_owned()),
        ("WEBHOOK_PORT".to_owned(), "0".to_owned()),
        ("LEAD_BIND_ADDR".to_owned(), "127.0.0.1".to_owned()),
        (
            "LEAD_API_KEYS".to_owned(),
            format!("{}:read,write", lead_http::hash_key(API_KEY)),
        ),
    ]);
    if let Some(mock) = mock {
        for (name, value) in [
            ("CRM_TYPE", "salesforce"),
            ("SALESFORCE_LOGIN_URL", mock.url.as_str()),
            ("SALESFORCE_CLIENT_ID", CLIENT_ID),
            ("SALESFORCE_CLIENT_SECRET", CLIENT_SECRET),
            ("CRM_SYNC_INTERVAL_MS", "20"),
            ("CRM_SYNC_RETRY_BASE_MS", "10"),
            ("CRM_SYNC_RETRY_MAX_SECS", "1"),
        ] {
            vars.insert(name.to_owned(), value.to_owned());
        }
    }
    vars
}

/// A running in-process server.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    /// Every listener, the main one first.
    addrs: Vec<SocketAddr>,
    pub(crate) client: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Running {
    pub(crate) async fn start(vars: &HashMap<String, String>) -> Running {
        let app = Application::build(vars).await.expect("the app starts");
        let addrs = app.addrs().to_vec();
        let addr = *addrs.first().expect("one listener");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Running {
            addr,
            addrs,
            client: reqwest::Client::new(),
            stop,
            task,
        }
    }

    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("join").expect("clean stop");
    }

    /// Captures leads `from..to`, 100 per batch request.
    pub(crate) async fn capture(&self, from: usize, to: usize) {
        let ids: Vec<usize> = (from..to).collect();
        for chunk in ids.chunks(100) {
            let leads: Vec<Value> = chunk.iter().map(|&n| person(n)).collect();
            let answer = self
                .client
                .post(format!("http://{}/webhook/lead/batch", self.addr))
                .bearer_auth(API_KEY)
                .json(&json!({ "leads": leads }))
                .send()
                .await
                .expect("capture request");
            assert!(answer.status().is_success(), "{}", answer.status());
        }
    }

    pub(crate) async fn api(&self, method: reqwest::Method, path: &str) -> (StatusCode, Value) {
        let answer = self
            .client
            .request(method, format!("http://{}{path}", self.addr))
            .bearer_auth(API_KEY)
            .send()
            .await
            .expect("API request");
        let status = answer.status();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    async fn status(&self) -> Value {
        let (status, body) = self.api(reqwest::Method::GET, "/api/sync/status").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Waits (polling the status route) until nothing is queued.
    pub(crate) async fn drained(&self, limit: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let status = self.status().await;
            if status["backlog"] == json!(0) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still queued after {limit:?}: {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A temporary directory (kept while the test runs) and a SQLite file in it.
pub(crate) fn temp_db() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("leads.db").display());
    (dir, url)
}

fn person(n: usize) -> Value {
    json!({
        "email": format!("person{n}@company{n}.com"),
        "first_name": "Ana",
        "last_name": format!("López {n}"),
        "company": format!("Company {n}"),
    })
}

/// Polls `done` until it holds, for at most `limit`.
pub(crate) async fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every record of the org written exactly once.
fn each_written_once(mock: &Mock) {
    let org = mock.org();
    let twice: Vec<_> = org.writes.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "written more than once: {twice:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_leads_and_their_tasks_reach_salesforce_in_twelve_calls() {
    let (_dir, url) = temp_db();
    // Captured while no CRM is configured: the changes wait in the queue.
    let offline = Running::start(&vars(&url, None)).await;
    offline.capture(0, 1000).await;
    let status = offline.status().await;
    assert_eq!(status["crm"], Value::Null);
    assert_eq!(status["backlog"], json!(2000), "a lead and its task each");
    offline.stop().await;

    let mock = Mock::start().await;
    let online = Running::start(&vars(&url, Some(&mock))).await;
    online.drained(Duration::from_secs(60)).await;
    // The run is recorded once push_once returns, just after its last
    // acknowledgement emptied the queue.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = online.status().await;
        if !status["last_busy_push"].is_null() {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no push recorded: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    online.stop().await;

    let org = mock.org();
    assert_eq!((org.leads.len(), org.tasks.len()), (1000, 1000));
    let calls = org.logins as usize + org.calls.len();
    assert!(
        calls <= 12,
        "{calls} calls: {} login(s) and {:?}",
        org.logins,
        org.calls
    );
    assert_eq!(org.logins, 1);
    let upserts: Vec<&String> = org
        .calls
        .iter()
        .filter(|c| c.starts_with("PATCH /composite"))
        .collect();
    assert_eq!(
        upserts.len(),
        10,
        "five calls of 200 leads, five of 200 tasks: {:?}",
        org.calls
    );
    drop(org);
    each_written_once(&mock);
    assert_eq!(status["dead_letters"], json!(0));
    assert_eq!(status["crm"], json!("salesforce"));
    assert_eq!(status["auth"]["ok"], json!(true));
    let busy = &status["last_busy_push"]["report"];
    assert_eq!(
        (busy["leads_synced"].clone(), busy["tasks_synced"].clone()),
        (json!(1000), json!(1000)),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_costs_one_login_and_a_storm_delays_but_loses_nothing() {
    let (_dir, url) = temp_db();
    let mock = Mock::start().await;
    let server = Running::start(&vars(&url, Some(&mock))).await;
    server.capture(0, 10).await;
    server.drained(Duration::from_secs(30)).await;
    assert_eq!(mock.org().logins, 1);

    // The session ends: the next call is refused once, one login follows.
    mock.org().expire_sessions();
    server.capture(10, 20).await;
    server.drained(Duration::from_secs(30)).await;
    assert_eq!(mock.org().logins, 2, "exactly one re-login");

    // Limits and outages, several in a row.
    {
        let limit = json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]);
        let busy = json!([{"message": "Too many requests", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]);
        let down = json!([{"message": "Service unavailable", "errorCode": "SERVER_UNAVAILABLE"}]);
        let mut org = mock.org();
        org.failures.extend([
            (reqwest::StatusCode::TOO_MANY_REQUESTS, busy.clone()),
            (reqwest::StatusCode::FORBIDDEN, limit.clone()),
            (reqwest::StatusCode::SERVICE_UNAVAILABLE, down.clone()),
            (reqwest::StatusCode::TOO_MANY_REQUESTS, busy),
            (reqwest::StatusCode::FORBIDDEN, limit),
            (reqwest::StatusCode::SERVICE_UNAVAILABLE, down),
        ]);
    }
    server.capture(20, 60).await;
    let status = server.drained(Duration::from_secs(60)).await;
    assert!(mock.org().failures.is_empty(), "the storm was met");
    server.stop().await;
    let org = mock.org();
    assert_eq!((org.leads.len(), org.tasks.len()), (60, 60), "nothing lost");
    assert_eq!(status["dead_letters"], json!(0), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_is_the_only_dead_letter_and_its_retry_delivers_it() {
    let (_dir, url) = temp_db();
    let mock = Mock::start().await;
    mock.org().refused.insert(
        "person3@company3.com".into(),
        json!({"statusCode": "INVALID_EMAIL_ADDRESS", "message": "Email: invalid email address", "fields": ["Email"]}),
    );
    // The refused lead's task waits for its lead as long as this test
    // runs, however slow the machine: it is not given up on.
    let mut settings = vars(&url, Some(&mock));
    settings.insert("CRM_SYNC_MAX_ATTEMPTS".to_owned(), "1000".to_owned());
    let server = Running::start(&settings).await;
    server.capture(0, 6).await;
    // The org takes the others (in as many pushes as the commits came
    // in); the refused lead is parked once its call's answer is read.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let (status, dead) = server
            .api(reqwest::Method::GET, "/api/sync/dead-letters")
            .await;
        assert_eq!(status, StatusCode::OK, "{dead}");
        if dead["count"] != json!(0) && mock.org().leads.len() == 5 {
            break dead;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no dead letter and five leads in 30 s: {dead}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(dead["total"], json!(1), "only the refused lead: {dead}");
    assert_eq!(mock.org().leads.len(), 5);
    let letter = &dead["dead_letters"][0];
    assert_eq!(letter["kind"], json!("lead_created"));
    assert!(
        letter["error"]
            .as_str()
            .is_some_and(|e| e.contains("INVALID_EMAIL_ADDRESS")),
        "{letter}"
    );
    let lead = letter["lead_ext_id"].as_str().expect("lead id").to_owned();
    let (_, detail) = server
        .api(reqwest::Method::GET, &format!("/api/leads/{lead}"))
        .await;
    assert_eq!(detail["email"], json!("person3@company3.com"), "{detail}");

    // Someone fixes the cause in Salesforce, then asks for another try.
    mock.org().refused.clear();
    let id = letter["id"].as_str().expect("id").to_owned();
    let (status, body) = server
        .api(
            reqwest::Method::POST,
            &format!("/api/sync/dead-letters/{id}/retry"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (again, _) = server
        .api(
            reqwest::Method::POST,
            &format!("/api/sync/dead-letters/{id}/retry"),
        )
        .await;
    assert_eq!(
        again,
        StatusCode::NOT_FOUND,
        "a retried letter is no letter"
    );
    let status = server.drained(Duration::from_secs(30)).await;
    server.stop().await;
    assert_eq!(status["dead_letters"], json!(0), "{status}");
    let org = mock.org();
    assert_eq!((org.leads.len(), org.tasks.len()), (6, 6));
    assert!(org.leads.contains_key(&lead));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_routes_need_their_scopes_and_ready_tells_a_refused_login() {
    let (_dir, url) = temp_db();
    let mock = Mock::start().await;
    let mut settings = vars(&url, Some(&mock));
    settings.insert(
        "SALESFORCE_CLIENT_SECRET".to_owned(),
        "not-the-secret".to_owned(),
    );
    settings.insert(
        "LEAD_API_KEYS".to_owned(),
        format!(
            "{}:read,write;{}:read",
            lead_http::hash_key(API_KEY),
            lead_http::hash_key("reader-key-0123456789abcdef")
        ),
    );
    let server = Running::start(&settings).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let answer = server
            .client
            .get(format!("http://{}/ready", server.addr))
            .send()
            .await
            .expect("ready");
        assert_eq!(
            answer.status(),
            StatusCode::OK,
            "captures do not need the CRM"
        );
        let body: Value = answer.json().await.expect("json");
        if body["crm"]["status"] != json!("unchecked") {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no check in 30 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        ready["crm"]["status"],
        json!("cannot_authenticate"),
        "{ready}"
    );
    assert!(
        ready["crm"].get("error").is_none(),
        "the reason is for key holders: {ready}"
    );
    // The changes wait for fixed credentials; none is given up on.
    server.capture(0, 3).await;
    let status = server.status().await;
    let error = status["auth"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("invalid_client"), "{status}");
    assert!(!error.contains("not-the-secret"), "no secret in the answer");
    assert_eq!(
        (status["backlog"].clone(), status["dead_letters"].clone()),
        (json!(6), json!(0)),
        "{status}"
    );
    assert_eq!(mock.org().logins, 0, "the org gave no session");

    let anonymous = server
        .client
        .get(format!("http://{}/api/sync/status", server.addr))
        .send()
        .await
        .expect("status");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let reader = server
        .client
        .post(format!(
            "http://{}/api/sync/dead-letters/{}/retry",
            server.addr,
            uuid::Uuid::nil()
        ))
        .bearer_auth("reader-key-0123456789abcdef")
        .send()
        .await
        .expect("retry");
    assert_eq!(
        reader.status(),
        StatusCode::FORBIDDEN,
        "a retry needs write"
    );
    let (status, body) = server
        .api(reqwest::Method::GET, "/api/sync/dead-letters?limit=0")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    server.stop().await;
}

/// The Salesforce variables of a server process on `mock`, plus `more`.
fn process_vars<'a>(mock: &'a Mock, more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut vars = vec![
        ("CRM_TYPE", "salesforce"),
        ("SALESFORCE_LOGIN_URL", mock.url.as_str()),
        ("SALESFORCE_CLIENT_ID", CLIENT_ID),
        ("SALESFORCE_CLIENT_SECRET", CLIENT_SECRET),
        ("CRM_SYNC_INTERVAL_MS", "20"),
        ("CRM_SYNC_RETRY_BASE_MS", "10"),
        ("CRM_SYNC_RETRY_MAX_SECS", "1"),
    ];
    vars.extend_from_slice(more);
    vars
}

/// Waits until the process server's queue is empty.
async fn process_drained(server: &Server, limit: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let (status, body) = server
            .api(reqwest::Method::GET, "/api/sync/status", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["backlog"] == json!(0) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still queued after {limit:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of an unlabelled sample in a Prometheus exposition.
fn sample(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (metric, value) = line.split_once(' ')?;
        (metric == name).then(|| value.trim().parse().ok())?
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_sync_metrics_count_each_way_and_a_pulled_change_is_not_pushed_back() {
    let (_dir, url) = temp_db();
    let mock = Mock::start().await;
    let server = Server::start_with(
        &url,
        &process_vars(&mock, &[("CRM_PULL_INTERVAL_SECS", "1")]),
    );
    let mut ids = Vec::new();
    for n in 0..3 {
        let (status, body) = server.capture(&person(n)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        ids.push(body["lead_ext_id"].as_str().expect("lead id").to_owned());
    }
    process_drained(&server, Duration::from_secs(30)).await;
    assert_eq!(mock.org().tasks.len(), 3);

    // A change made in Salesforce (now, after our push) comes back with
    // the next pull.
    {
        let mut org = mock.org();
        org.epoch = Some(chrono::Utc::now());
        org.set_status(&ids[1], "Closed - Not Converted");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, lead) = server
            .api(
                reqwest::Method::GET,
                &format!("/api/leads/{}", ids[1]),
                None,
            )
            .await;
        if lead["stage"] == json!("lost") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not pulled: {lead}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    process_drained(&server, Duration::from_secs(30)).await;
    let metrics = server.metrics().await;
    server.stop();

    assert_eq!(
        sample(&metrics, "crm_sync_to_crm_total"),
        Some(6.0),
        "three leads and three tasks:\n{metrics}"
    );
    assert_eq!(sample(&metrics, "crm_sync_from_crm_total"), Some(1.0));
    assert_eq!(sample(&metrics, "crm_sync_total_synced_total"), Some(7.0));
    assert_eq!(sample(&metrics, "crm_sync_backlog"), Some(0.0));
    assert_eq!(sample(&metrics, "crm_sync_dead_letters"), Some(0.0));
    assert_eq!(sample(&metrics, "crm_sync_authenticated"), Some(1.0));
    assert!(
        sample(&metrics, "crm_api_usage_used").is_some_and(|used| used >= 2.0),
        "Sforce-Limit-Info is exported:\n{metrics}"
    );
    assert_eq!(
        mock.org().writes.get(&format!("Lead/{}", ids[1])),
        Some(&1),
        "the stage Salesforce set was not sent back to it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_leaves_one_record_per_lead_after_the_restart() {
    let (_dir, url) = temp_db();
    // A backlog captured while no CRM was configured.
    let offline = Server::start(&url);
    let mut ids = std::collections::BTreeSet::new();
    for n in 0..450 {
        let (status, body) = offline.capture(&person(n)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        ids.insert(body["lead_ext_id"].as_str().expect("lead id").to_owned());
    }
    offline.stop();

    // A slow org: the batch of 450 takes three lead calls; the server is
    // killed (SIGKILL) once the first one was answered.
    let mock = Mock::start().await;
    mock.org().delay_ms = 300;
    let crashing = Server::start_with(&url, &process_vars(&mock, &[("CRM_SYNC_LEASE_SECS", "2")]));
    until(
        "a first answered lead call",
        Duration::from_secs(30),
        || mock.org().leads.len() >= 200,
    )
    .await;
    crashing.stop();
    let written = mock.org().leads.len();
    assert!(written < 450, "killed mid-batch: {written} leads written");

    // Restarted: the lease runs out, the entries are claimed again.
    mock.org().delay_ms = 0;
    let restarted = Server::start_with(&url, &process_vars(&mock, &[("CRM_SYNC_LEASE_SECS", "2")]));
    let status = process_drained(&restarted, Duration::from_secs(60)).await;
    restarted.stop();
    assert_eq!(status["dead_letters"], json!(0), "{status}");
    let org = mock.org();
    let in_org: std::collections::BTreeSet<String> = org
        .leads
        .values()
        .map(|l| l["Web_Lead_Id__c"].as_str().expect("our id").to_owned())
        .collect();
    assert_eq!(org.leads.len(), 450, "one record per lead");
    assert_eq!(in_org, ids, "each lead's record, none missing");
    assert_eq!(org.tasks.len(), 450, "one task per lead");
    let whos: std::collections::BTreeSet<&str> = org
        .tasks
        .values()
        .filter_map(|t| t["WhoId"].as_str())
        .collect();
    assert_eq!(whos.len(), 450, "each task on its own lead");
}

/// Salesforce's recorded Outbound Message (two Lead notifications), with
/// the first one about our lead `ext_id`, set to `status` at `modified`.
fn outbound_message(ext_id: &str, status: &str, modified: &str, first_id: &str) -> String {
    include_str!(
        "../../../../lead-crm-salesforce/tests/fixtures/outbound-message/notifications-lead-sample.xml"
    )
    .replace("wl_01HZX3Q8R4", ext_id)
    .replace("Working - Contacted", status)
    .replace("2026-05-15T18:00:00.000Z", modified)
    .replace("04l5w00005286hAAAQ", first_id)
}

/// Posts an Outbound Message body to the server.
async fn post_outbound(
    server: &Running,
    query: &str,
    body: String,
) -> (StatusCode, String, String) {
    let answer = server
        .client
        .post(format!(
            "http://{}/webhook/crm/salesforce{query}",
            server.addr
        ))
        .header("content-type", "text/xml; charset=utf-8")
        .header("SOAPAction", "\"\"")
        .body(body)
        .send()
        .await
        .expect("outbound message");
    let status = answer.status();
    let kind = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, kind, answer.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_message_applies_once_answers_the_ack_and_refuses_other_orgs() {
    let (_dir, url) = temp_db();
    let mock = Mock::start().await;
    let mut settings = vars(&url, Some(&mock));
    settings.insert("SALESFORCE_ORG_ID".to_owned(), "00D5w000004qGTO".to_owned());
    settings.insert(
        "SALESFORCE_OUTBOUND_TOKEN".to_owned(),
        "outbound-token-0123456789".to_owned(),
    );
    let server = Running::start(&settings).await;
    server.capture(0, 1).await;
    server.drained(Duration::from_secs(30)).await;
    let (_, list) = server.api(reqwest::Method::GET, "/api/leads").await;
    let lead = list["leads"][0]["lead_ext_id"]
        .as_str()
        .expect("a lead")
        .to_owned();
    let writes = mock.org().writes.clone();
    let later = (chrono::Utc::now() + chrono::Duration::minutes(1))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let message = outbound_message(
        &lead,
        "Closed - Not Converted",
        &later,
        "04l5w00005286hAAAQ",
    );
    let token = "?token=outbound-token-0123456789";

    // Without the endpoint's token, or from another org: refused.
    let (status, _, _) = post_outbound(&server, "", message.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, kind, fault) = post_outbound(
        &server,
        token,
        message.replace("00D5w000004qGTOEA2", "00D000000000001AAA"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{fault}");
    assert!(kind.starts_with("text/xml"), "{kind}");
    assert!(fault.contains("soapenv:Fault"), "{fault}");
    let (_, unchanged) = server
        .api(reqwest::Method::GET, &format!("/api/leads/{lead}"))
        .await;
    assert_eq!(unchanged["stage"], json!("new"), "nothing applied");

    // While another delivery of it is being applied: no Ack, so
    // Salesforce sends it again later.
    let side = lead_store_sqlite::SqliteStore::from_url(&url)
        .await
        .expect("the same file");
    let applying = "salesforce.outbound.applying.04l5w00005286hAAAQ";
    let now = chrono::Utc::now();
    assert!(
        lead_core::SyncState::try_lease(
            &side,
            applying,
            "other",
            now + chrono::Duration::minutes(2),
            now
        )
        .await
        .expect("lease")
    );
    let (status, _, fault) = post_outbound(&server, token, message.clone()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{fault}");
    lead_core::SyncState::release_lease(&side, applying, "other")
        .await
        .expect("released");
    side.close().await;

    // From the org: applied, and answered with Salesforce's own Ack.
    let (status, kind, ack) = post_outbound(&server, token, message.clone()).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert!(kind.starts_with("text/xml"), "{kind}");
    let recorded = include_str!(
        "../../../../lead-crm-salesforce/tests/fixtures/outbound-message/notifications-ack-response.xml"
    );
    assert_eq!(
        ack.split_whitespace().collect::<String>(),
        recorded.split_whitespace().collect::<String>(),
        "the recorded acknowledgement"
    );
    let (_, applied) = server
        .api(reqwest::Method::GET, &format!("/api/leads/{lead}"))
        .await;
    assert_eq!(applied["stage"], json!("lost"), "{applied}");

    // Re-sent (not acknowledged in time, as Salesforce sees it): the same
    // Ack, and nothing changes the second time.
    let (status, _, again) = post_outbound(&server, token, message).await;
    assert_eq!((status, again.as_str()), (StatusCode::OK, ack.as_str()));
    let (_, after) = server
        .api(reqwest::Method::GET, &format!("/api/leads/{lead}"))
        .await;
    assert_eq!(
        after["version"], applied["version"],
        "a repeat changes nothing"
    );

    // An older change, told later under a new notification id, does not
    // overwrite the newer one.
    let earlier = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let stale = outbound_message(&lead, "Closed - Converted", &earlier, "04l5w00005286hCAAQ");
    let (status, _, _) = post_outbound(&server, token, stale).await;
    assert_eq!(status, StatusCode::OK);
    let (_, kept) = server
        .api(reqwest::Method::GET, &format!("/api/leads/{lead}"))
        .await;
    assert_eq!(kept["stage"], json!("lost"), "the newer value stays");
    assert_eq!(kept["version"], applied["version"]);

    server.drained(Duration::from_secs(30)).await;
    assert_eq!(
        mock.org().writes,
        writes,
        "a change Salesforce told us of is not sent back to it"
    );

    // The original system's setup sends Id, Email and Status only: the
    // lead is found by its Salesforce id, the change dated on arrival.
    server.capture(1, 2).await;
    server.drained(Duration::from_secs(30)).await;
    let (_, list) = server.api(reqwest::Method::GET, "/api/leads").await;
    let second = list["leads"]
        .as_array()
        .expect("leads")
        .iter()
        .find_map(|l| l["lead_ext_id"].as_str().filter(|id| *id != lead))
        .expect("the second lead")
        .to_owned();
    let record = mock.org().leads[&second]["Id"]
        .as_str()
        .expect("its Salesforce id")
        .to_owned();
    let writes = mock.org().writes.clone();
    let seed_style = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D5w000004qGTOEA2</OrganizationId>
   <Notification>
    <Id>04l5w00005286hDAAQ</Id>
    <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{record}</sf:Id>
     <sf:Email>person1@company1.com</sf:Email>
     <sf:Status>Closed - Not Converted</sf:Status>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#
    );
    let (status, _, body) = post_outbound(&server, token, seed_style).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, second_lead) = server
        .api(reqwest::Method::GET, &format!("/api/leads/{second}"))
        .await;
    assert_eq!(second_lead["stage"], json!("lost"), "{second_lead}");

    let status = server.drained(Duration::from_secs(30)).await;
    server.stop().await;
    assert_eq!(status["dead_letters"], json!(0));
    assert_eq!(
        mock.org().writes,
        writes,
        "a change Salesforce told us of is not sent back to it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_webhook_port_serves_the_crm_webhooks_on_a_listener_of_their_own() {
    let (_dir, url) = temp_db();
    let mock = Mock::start().await;
    let mut settings = vars(&url, Some(&mock));
    settings.insert(
        "SALESFORCE_ORG_ID".to_owned(),
        "00D5w000004qGTOEA2".to_owned(),
    );
    settings.insert(
        "SALESFORCE_OUTBOUND_TOKEN".to_owned(),
        "outbound-token-0123456789".to_owned(),
    );
    settings.insert("CRM_WEBHOOK_PORT".to_owned(), "0".to_owned());
    let server = Running::start(&settings).await;
    assert_eq!(server.addrs.len(), 2, "the main listener and the CRM's");
    let message = outbound_message(
        "WEB-AAAAAAAA",
        "Closed - Not Converted",
        "2026-05-15T18:00:00.000Z",
        "04l5w00005286hEAAQ",
    );
    let post = |addr: SocketAddr| {
        server
            .client
            .post(format!(
                "http://{addr}/webhook/crm/salesforce?token=outbound-token-0123456789"
            ))
            .header("content-type", "text/xml; charset=utf-8")
            .body(message.clone())
            .send()
    };
    let main = post(server.addr).await.expect("post");
    assert_eq!(
        main.status(),
        StatusCode::NOT_FOUND,
        "not on the main listener"
    );
    let own = post(server.addrs[1]).await.expect("post");
    assert_eq!(own.status(), StatusCode::OK);
    let ready = server
        .client
        .get(format!("http://{}/ready", server.addrs[1]))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), StatusCode::OK, "health checks there too");
    server.stop().await;
}
