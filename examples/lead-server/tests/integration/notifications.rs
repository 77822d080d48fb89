//! Notifications through the whole server: each event kind triggered
//! through the real use-case (a capture, an assignment, a stage change,
//! the digest job) and what reached a local Slack receiver, a webhook
//! subscriber (signature checked with lead-http's verifier, itself tested
//! with the reference vectors) and a real SMTP server; Slack down while
//! leads are captured; a 429/5xx storm; a kill -9 mid-batch; a subscriber
//! on a loopback address refused.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::{IntoResponse, Response};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{API_KEY, Server, reps_file};
use crate::crm_sync::{Running, temp_db, until};

/// How long a notification may take to arrive (the consumers poll every
/// second here, retries come back after 50 ms doubling).
const ARRIVAL: Duration = Duration::from_secs(30);

/// The Standard Webhooks secret of the test subscriber.
const HOOK_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// What a receiver answers one request with.
enum Answer {
    /// This status, with `Retry-After` seconds when given.
    Status(u16, Option<u64>),
    /// No answer until the test opens the gate (then 200).
    Hold(Arc<tokio::sync::Semaphore>),
}

/// One request a receiver got, and its answer (`None`: not answered).
#[derive(Debug, Clone)]
struct Seen {
    headers: HeaderMap,
    body: Vec<u8>,
    status: Option<u16>,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A local HTTP receiver standing in for Slack or a subscriber: records
/// every request, answers from a script, then 200 `ok`.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let answer = r.script.lock().unwrap().pop_front();
    let index = {
        let mut seen = r.seen.lock().unwrap();
        seen.push(Seen {
            headers,
            body: body.to_vec(),
            status: None,
        });
        seen.len() - 1
    };
    let (status, retry_after) = match answer {
        None => (200, None),
        Some(Answer::Status(status, retry_after)) => (status, retry_after),
        Some(Answer::Hold(gate)) => {
            let _permit = gate.acquire().await.expect("the gate stays");
            (200, None)
        }
    };
    r.seen.lock().unwrap()[index].status = Some(status);
    let mut response = (
        AxumStatus::from_u16(status).expect("a status"),
        if status == 200 {
            "ok"
        } else {
            "service_unavailable"
        },
    )
        .into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", secs.to_string().parse().expect("a header"));
    }
    response
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let receiver = Receiver {
            addr: listener.local_addr().expect("addr"),
            seen: Arc::default(),
            script: Arc::default(),
        };
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn answer(&self, answers: impl IntoIterator<Item = Answer>) {
        self.script.lock().unwrap().extend(answers);
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests answered 2xx.
    fn accepted(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.status.is_some_and(|c| (200..300).contains(&c)))
            .collect()
    }

    async fn until_accepted(&self, n: usize) -> Vec<Seen> {
        until(&format!("{n} deliveries accepted"), ARRIVAL, || {
            self.accepted().len() >= n
        })
        .await;
        self.accepted()
    }
}

/// The Slack message's text, blocks included, to look for words in.
fn text_of(seen: &Seen) -> String {
    seen.json().to_string()
}

/// Policy lines making the test leads (score 30: name, company, direct
/// channel) high priority.
const HIGH: &str = "[priority]\nhigh = 30\nmedium = 10\n";

/// A policy file of `text`.
fn policy_file(dir: &Path, text: &str) -> String {
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).expect("write policy");
    path.display().to_string()
}

/// A notifications file with one webhook subscriber at `hook` (a local
/// receiver: private addresses allowed for it).
fn notifications_file(dir: &Path, hook: Option<&Receiver>) -> String {
    let mut text = String::from(
        "[slack]\nevents = [\"high_priority_lead\", \"assigned\", \"stage_changed\", \"digest\"]\n",
    );
    if let Some(hook) = hook {
        text.push_str(&format!(
            "\n[[webhooks]]\nname = \"crm-bridge\"\nurl = \"{}\"\nsecret = \"{HOOK_SECRET}\"\nallow_private = true\nevents = [\"high_priority_lead\", \"assigned\", \"stage_changed\", \"digest\"]\n",
            hook.url("/hooks/leads")
        ));
    }
    let path = dir.join("notifications.toml");
    std::fs::write(&path, text).expect("write notifications file");
    path.display().to_string()
}

/// The server's variables: Slack at `slack`, two reps, fast polling and
/// retries.
fn settings(
    url: &str,
    dir: &Path,
    slack: &Receiver,
    hook: Option<&Receiver>,
    policy: &str,
) -> HashMap<String, String> {
    let mut vars = crate::crm_sync::vars(url, None);
    for (name, value) in [
        (
            "SLACK_WEBHOOK_URL",
            slack.url("/services/T000/B000/secretpath"),
        ),
        (
            "LEAD_LINK_URL",
            "https://crm.example.com/leads/{ext_id}".into(),
        ),
        ("LEAD_NOTIFY_POLL_SECS", "1".into()),
        ("LEAD_NOTIFY_RETRY_BASE_MS", "50".into()),
        ("LEAD_NOTIFICATIONS_FILE", notifications_file(dir, hook)),
        ("LEAD_POLICY", policy_file(dir, policy)),
        (
            "LEAD_REPS",
            reps_file(dir, &["rep1@sales.com", "rep2@sales.com"]),
        ),
        ("LEAD_JOBS", "on".into()),
    ] {
        vars.insert(name.to_owned(), value);
    }
    vars
}

async fn capture(server: &Running, email: &str, first: &str) -> (StatusCode, Value) {
    let answer = server
        .client
        .post(format!("http://{}/webhook/lead", server.addr))
        .bearer_auth(API_KEY)
        .json(&json!({
            "email": email,
            "first_name": first,
            "last_name": "López",
            "company": "Acme SL",
        }))
        .send()
        .await
        .expect("capture request");
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn put(server: &Running, path: &str, body: Value) -> (StatusCode, Value) {
    let answer = server
        .client
        .put(format!("http://{}{path}", server.addr))
        .bearer_auth(API_KEY)
        .json(&body)
        .send()
        .await
        .expect("PUT");
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// Checks a subscriber delivery's Standard Webhooks headers and signature
/// with lead-http's verifier; returns its `webhook-id`.
fn verified(seen: &Seen) -> String {
    let keys = lead_http::WebhookKeys::none()
        .with_standard(HOOK_SECRET)
        .expect("the secret");
    let checked = keys
        .verify(&seen.headers, &seen.body, chrono::Utc::now())
        .expect("a valid Standard Webhooks signature");
    let lead_http::Verified::Standard { id } = checked else {
        panic!("not checked as Standard Webhooks: {checked:?}");
    };
    assert_eq!(
        seen.headers["content-type"].to_str().unwrap(),
        "application/json"
    );
    assert!(id.starts_with("msg_") && !id.contains('.'), "{id}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_priority_capture_reaches_slack_and_the_subscriber_signed() {
    let (dir, url) = temp_db();
    let (slack, hook) = (Receiver::start().await, Receiver::start().await);
    let server = Running::start(&settings(&url, dir.path(), &slack, Some(&hook), HIGH)).await;

    let (status, body) = capture(&server, "ana@acme.com", "Ana").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let ext_id = body["lead_ext_id"].as_str().expect("an id").to_owned();

    let message = &slack.until_accepted(1).await[0];
    let blocks = message.json();
    assert!(
        blocks["text"].as_str().unwrap().contains("Ana López"),
        "{blocks}"
    );
    assert_eq!(blocks["blocks"][0]["type"], json!("header"), "{blocks}");
    let text = text_of(message);
    assert!(
        text.contains(&format!("https://crm.example.com/leads/{ext_id}")),
        "{text}"
    );
    assert_eq!(
        message.headers["content-type"].to_str().unwrap(),
        "application/json"
    );

    let delivery = &hook.until_accepted(1).await[0];
    verified(delivery);
    let payload = delivery.json();
    assert_eq!(payload["type"], json!("lead.high_priority"), "{payload}");
    assert_eq!(
        payload["data"]["lead"]["ext_id"],
        json!(ext_id),
        "{payload}"
    );
    assert!(payload["timestamp"].is_string(), "{payload}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_and_a_won_deal_are_told_once_each() {
    let (dir, url) = temp_db();
    let (slack, hook) = (Receiver::start().await, Receiver::start().await);
    // Score 30 is low priority by default: the capture tells its rep only.
    let server = Running::start(&settings(&url, dir.path(), &slack, Some(&hook), "")).await;
    let (status, body) = capture(&server, "bob@acme.com", "Bob").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let ext_id = body["lead_ext_id"].as_str().expect("an id").to_owned();
    let first = slack.until_accepted(1).await;
    let first_rep = body["assigned_to"].as_str().map(str::to_owned);
    let other = if first_rep.as_deref() == Some("rep1@sales.com") {
        "rep2@sales.com"
    } else {
        "rep1@sales.com"
    };
    assert!(!first.is_empty());

    let (status, answer) = put(
        &server,
        &format!("/api/leads/{ext_id}/assign"),
        json!({ "assigned_to": other }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let deliveries = hook.until_accepted(2).await;
    let assigned: Vec<Value> = deliveries
        .iter()
        .map(Seen::json)
        .filter(|p| p["type"] == json!("lead.assigned") && p["data"]["to"] == json!(other))
        .collect();
    assert_eq!(assigned.len(), 1, "{deliveries:?}");
    if let Some(rep) = &first_rep {
        assert_eq!(assigned[0]["data"]["from"], json!(rep), "{}", assigned[0]);
    }

    for stage in ["contacted", "qualified", "proposal", "negotiation", "won"] {
        let (status, answer) = put(
            &server,
            &format!("/api/leads/{ext_id}/stage"),
            json!({ "stage": stage }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{stage}: {answer}");
    }
    let deliveries = hook.until_accepted(3).await;
    let stages: Vec<Value> = deliveries
        .iter()
        .map(Seen::json)
        .filter(|p| p["type"] == json!("lead.stage_changed"))
        .collect();
    assert_eq!(stages.len(), 1, "only the critical stage: {stages:?}");
    assert_eq!(stages[0]["data"]["from"], json!("negotiation"));
    assert_eq!(stages[0]["data"]["to"], json!("won"));
    let won = slack
        .until_accepted(3)
        .await
        .iter()
        .filter(|m| text_of(m).contains("won"))
        .count();
    assert!(won >= 1, "Slack heard of the won deal: {:?}", slack.seen());
    let ids: Vec<String> = hook.accepted().iter().map(verified).collect();
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "each notification once: {ids:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_job_tells_each_rep_of_their_stale_leads_once() {
    let (dir, url) = temp_db();
    let (slack, hook) = (Receiver::start().await, Receiver::start().await);
    // Stale at once: every lead captured before the run crossed its
    // threshold within the digest's window.
    let server = Running::start(&settings(
        &url,
        dir.path(),
        &slack,
        Some(&hook),
        "[notifications]\ndue_soon_hours = 0\nstale_after_days = { high = 0, medium = 0, low = 0 }\n",
    ))
    .await;
    for (email, first) in [
        ("ana@acme.com", "Ana"),
        ("bob@beta.com", "Bob"),
        ("eva@gamma.com", "Eva"),
    ] {
        let (status, body) = capture(&server, email, first).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let before = hook.until_accepted(3).await.len();

    let run = crate::jobs::run_job(&server, "lead_notifications").await;
    assert_eq!(run["counts"]["stale_lead"], json!(3), "{run}");
    let digests_queued = run["counts"]["digests"].as_u64().expect("digests");
    assert!((1..=2).contains(&digests_queued), "one per rep: {run}");

    let deliveries = hook.until_accepted(before + digests_queued as usize).await;
    let digests: Vec<Value> = deliveries
        .iter()
        .map(Seen::json)
        .filter(|p| p["type"] == json!("rep.digest"))
        .collect();
    assert_eq!(digests.len() as u64, digests_queued);
    let lines: usize = digests
        .iter()
        .map(|d| d["data"]["items"].as_array().expect("items").len())
        .sum();
    assert_eq!(lines, 3, "{digests:?}");
    for digest in &digests {
        assert!(
            digest["data"]["rep"]
                .as_str()
                .is_some_and(|r| r.ends_with("@sales.com"))
        );
        for item in digest["data"]["items"].as_array().unwrap() {
            assert_eq!(item["item"], json!("stale_lead"), "{item}");
        }
    }
    until("the digests on Slack", ARRIVAL, || {
        slack
            .accepted()
            .iter()
            .filter(|m| text_of(m).to_lowercase().contains("digest"))
            .count() as u64
            == digests_queued
    })
    .await;

    // A second run right away has nothing new to tell.
    let again = crate::jobs::run_job(&server, "lead_notifications").await;
    assert_eq!(again["counts"]["digests"], json!(0), "{again}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_while_slack_is_down_is_accepted_and_the_alert_arrives_after() {
    let (dir, url) = temp_db();
    let slack = Receiver::start().await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    // Slack takes the request and does not answer until the test says.
    slack.answer([Answer::Hold(gate.clone())]);
    let server = Running::start(&settings(&url, dir.path(), &slack, None, HIGH)).await;

    // Answered while Slack holds the alert's request: the capture does not
    // wait on Slack (if it did, this would never return).
    let (status, body) = capture(&server, "ana@acme.com", "Ana").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    until("Slack is called", ARRIVAL, || !slack.seen().is_empty()).await;
    let (status, more) = capture(&server, "bob@acme.com", "Bob").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{more}");
    assert!(slack.accepted().is_empty(), "nothing answered yet");

    // Slack comes back with two errors first, then takes them.
    slack.answer([Answer::Status(503, None), Answer::Status(500, None)]);
    gate.add_permits(1);
    let accepted = slack.until_accepted(2).await;
    let texts: Vec<String> = accepted.iter().map(text_of).collect();
    for name in ["Ana", "Bob"] {
        assert_eq!(
            texts.iter().filter(|t| t.contains(name)).count(),
            1,
            "{name}'s alert once: {texts:?}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_429_and_5xx_delays_the_alerts_but_loses_none() {
    let (dir, url) = temp_db();
    let slack = Receiver::start().await;
    slack.answer((0..12).map(|i| match i % 3 {
        0 => Answer::Status(429, Some(1)),
        1 => Answer::Status(502, None),
        _ => Answer::Status(500, None),
    }));
    let server = Running::start(&settings(&url, dir.path(), &slack, None, HIGH)).await;
    let names: Vec<String> = (0..6).map(|i| format!("Lead{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let (status, body) = capture(&server, &format!("lead{i}@acme.com"), name).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let accepted = slack.until_accepted(6).await;
    let texts: Vec<String> = accepted.iter().map(text_of).collect();
    for name in &names {
        assert_eq!(
            texts.iter().filter(|t| t.contains(name.as_str())).count(),
            1,
            "{name} once: {texts:?}"
        );
    }
    assert!(
        slack.seen().len() >= 18,
        "the storm was answered: {}",
        slack.seen().len()
    );
    let (status, state) = server.api(Method::GET, "/api/notifications/status").await;
    assert_eq!(status, StatusCode::OK, "{state}");
    assert_eq!(state["queues"][0]["dead_letters"], json!(0), "{state}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_that_refuses_for_good_parks_the_alert_for_a_retry_from_the_api() {
    let (dir, url) = temp_db();
    let slack = Receiver::start().await;
    slack.answer([Answer::Status(404, None)]);
    let server = Running::start(&settings(&url, dir.path(), &slack, None, HIGH)).await;
    let (status, body) = capture(&server, "ana@acme.com", "Ana").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let deadline = tokio::time::Instant::now() + ARRIVAL;
    let dead = loop {
        let (status, list) = server
            .api(Method::GET, "/api/notifications/dead-letters")
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        if list["count"] == json!(1) {
            break list["dead_letters"][0].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "not parked: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(dead["destination"], json!("notify"), "{dead}");
    assert!(dead["error"].as_str().unwrap().contains("slack"), "{dead}");
    assert!(
        !dead["error"].as_str().unwrap().contains("secretpath"),
        "the webhook URL is a secret: {dead}"
    );
    let id = dead["id"].as_str().unwrap();
    let (status, answer) = server
        .api(
            Method::POST,
            &format!("/api/notifications/dead-letters/{id}/retry"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let accepted = slack.until_accepted(1).await;
    assert!(text_of(&accepted[0]).contains("Ana"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_mid_batch_sends_nothing_twice_after_the_restart() {
    let (dir, url) = temp_db();
    let hook = Receiver::start().await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    // Three taken, the fourth held while the process is killed.
    hook.answer([
        Answer::Status(200, None),
        Answer::Status(200, None),
        Answer::Status(200, None),
        Answer::Hold(gate.clone()),
    ]);
    let slack = Receiver::start().await;
    let vars = settings(&url, dir.path(), &slack, Some(&hook), HIGH);
    let env: Vec<(&str, &str)> = vars
        .iter()
        .filter(|(k, _)| {
            ![
                "WEBHOOK_PORT",
                "LEAD_BIND_ADDR",
                "LEAD_API_KEYS",
                "DATABASE_URL",
            ]
            .contains(&k.as_str())
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([("LEAD_NOTIFY_LEASE_SECS", "2")])
        .collect();
    let first = Server::start_with(&url, &env);
    // Captured before the first delivery: the consumer takes them in one
    // batch.
    for i in 0..6 {
        let (status, body) = first
            .capture(&json!({ "email": format!("p{i}@acme.com"), "first_name": format!("P{i}"), "last_name": "López", "company": "Acme SL" }))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    until("the fourth delivery held", ARRIVAL, || {
        hook.seen().len() >= 4
    })
    .await;
    // SIGKILL, as kill -9: no shutdown, the batch's lease stays taken.
    first.stop();

    let second = Server::start_with(&url, &env);
    let accepted = hook.until_accepted(6).await;
    let ids: Vec<String> = accepted.iter().map(verified).collect();
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        (ids.len(), distinct.len()),
        (6, 6),
        "each taken once: {ids:?}"
    );
    // Only the one in flight at the kill was sent again, with its id.
    let held = verified(&hook.seen()[3]);
    assert!(ids.contains(&held));
    assert_eq!(hook.seen().len(), 7, "{:?}", hook.seen().len());
    let metrics = second.metrics().await;
    assert!(
        metrics.contains("lead_notifications_total{channel=\"webhook:crm-bridge\",event=\"high_priority_lead\",outcome=\"sent\"}"),
        "{metrics}"
    );
    gate.add_permits(1);
}

#[tokio::test]
async fn a_subscriber_on_a_loopback_address_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notifications.toml");
    std::fs::write(
        &path,
        format!("[[webhooks]]\nname = \"internal\"\nurl = \"http://127.0.0.1:6379/\"\nsecret = \"{HOOK_SECRET}\"\n"),
    )
    .expect("write");
    let (code, log) = crate::common::refused_start(&[(
        "LEAD_NOTIFICATIONS_FILE",
        path.to_str().expect("a path"),
    )]);
    assert_ne!(code, Some(0), "{log}");
    assert!(log.contains("internal"), "names the subscriber: {log}");
    assert!(
        log.contains("127.0.0.1") || log.contains("loopback"),
        "{log}"
    );
    assert!(!log.contains(HOOK_SECRET), "no secret in the log: {log}");
}

/// The body of the part of type `mimetype`.
fn part(mail: &mailparse::ParsedMail<'_>, mimetype: &str) -> String {
    mail.subparts
        .iter()
        .find(|p| p.ctype.mimetype == mimetype)
        .unwrap_or_else(|| panic!("a {mimetype} part"))
        .get_body()
        .expect("a readable body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reps_get_their_high_priority_lead_and_assignment_by_email() {
    use mailparse::MailHeaderMap;
    let sink = Arc::new(lead_notify::testing::SmtpSink::start());
    let (dir, url) = temp_db();
    let slack = Receiver::start().await;
    let mut vars = settings(&url, dir.path(), &slack, None, HIGH);
    let port = sink.port().to_string();
    for (name, value) in [
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", port.as_str()),
        ("SMTP_TLS", "none"),
        ("SMTP_USERNAME", lead_notify::testing::USER),
        ("SMTP_PASSWORD", lead_notify::testing::PASSWORD),
        ("SMTP_FROM", "leads@example.com"),
    ] {
        vars.insert(name.to_owned(), value.to_owned());
    }
    let server = Running::start(&vars).await;

    let (status, body) = capture(&server, "ana@acme.com", "Ana").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let ext_id = body["lead_ext_id"].as_str().expect("an id").to_owned();
    let rep = body["assigned_to"].as_str().expect("a rep").to_owned();
    let other = if rep == "rep1@sales.com" {
        "rep2@sales.com"
    } else {
        "rep1@sales.com"
    };
    let (status, answer) = put(
        &server,
        &format!("/api/leads/{ext_id}/assign"),
        json!({ "assigned_to": other }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let messages = {
        let sink = sink.clone();
        tokio::task::spawn_blocking(move || sink.messages(2))
            .await
            .expect("the sink")
    };
    let mails: Vec<mailparse::ParsedMail<'_>> = messages
        .iter()
        .map(|raw| mailparse::parse_mail(raw).expect("a message"))
        .collect();
    let to = |m: &mailparse::ParsedMail<'_>| {
        m.headers
            .get_first_value("X-Sink-Rcpt-To")
            .unwrap_or_default()
    };
    let subject =
        |m: &mailparse::ParsedMail<'_>| m.headers.get_first_value("Subject").unwrap_or_default();

    let announced = mails
        .iter()
        .find(|m| to(m) == rep)
        .expect("the first rep's e-mail");
    assert!(
        subject(announced).contains("Ana López"),
        "{}",
        subject(announced)
    );
    let link = format!("https://crm.example.com/leads/{ext_id}");
    assert!(part(announced, "text/plain").contains(&link));
    assert!(part(announced, "text/html").contains("Ana López"));

    let assigned = mails
        .iter()
        .find(|m| to(m) == other)
        .expect("the new rep's e-mail");
    assert!(
        subject(assigned).to_lowercase().contains("assigned"),
        "{}",
        subject(assigned)
    );
    assert!(
        part(assigned, "text/plain").contains(&rep),
        "names the previous rep"
    );
    assert!(
        part(assigned, "text/html").contains(&ext_id)
            || part(assigned, "text/html").contains("crm.example.com")
    );
    let from = assigned.headers.get_first_value("From").unwrap_or_default();
    assert!(from.contains("leads@example.com"), "{from}");
    server.stop().await;
}
