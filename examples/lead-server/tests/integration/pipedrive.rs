//! `CRM_TYPE=pipedrive` through the whole server built in-process, against
//! the Pipedrive contract mock: 500 leads with no twin person, pacing
//! before any 429, a 429 and outage storm that loses nothing, webhooks
//! delivered three times and out of order, a person added in Pipedrive
//! becoming one lead; and the `pipedrive-webhooks` command.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use base64::Engine;
use lead_crm_pipedrive::mock::{API_TOKEN, Mock};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::crm_sync::{Running, temp_db, until};

const HOOK_USER: &str = "pipedrive";
const HOOK_PASSWORD: &str = "hook-password-0123456789";

/// The in-process server's variables on `url`, with Pipedrive at `mock`
/// and its webhooks on; retries come back after 10 ms (at most 1 s).
fn vars(url: &str, mock: &Mock) -> HashMap<String, String> {
    let mut vars = HashMap::from([
        ("DATABASE_URL".to_owned(), url.to_owned()),
        ("WEBHOOK_PORT".to_owned(), "0".to_owned()),
        ("LEAD_BIND_ADDR".to_owned(), "127.0.0.1".to_owned()),
        (
            "LEAD_API_KEYS".to_owned(),
            format!("{}:read,write", lead_http::hash_key(crate::common::API_KEY)),
        ),
    ]);
    for (name, value) in [
        ("CRM_TYPE", "pipedrive"),
        ("PIPEDRIVE_COMPANY_DOMAIN", mock.url.as_str()),
        ("PIPEDRIVE_API_TOKEN", API_TOKEN),
        ("PIPEDRIVE_WEBHOOK_PASSWORD", HOOK_PASSWORD),
        ("CRM_SYNC_INTERVAL_MS", "20"),
        ("CRM_SYNC_RETRY_BASE_MS", "10"),
        ("CRM_SYNC_RETRY_MAX_SECS", "1"),
        // A task waits for its lead with a budget of its own: at these
        // test-speed retries (not hours, as by default) a storm would
        // spend twelve attempts in seconds.
        ("CRM_SYNC_MAX_ATTEMPTS", "100"),
    ] {
        vars.insert(name.to_owned(), value.to_owned());
    }
    vars
}

/// A mock with room for a big backlog: Pipedrive's largest burst window
/// (Ultimate, 120 per 2 s) and a day of tokens to match.
async fn roomy_mock() -> Mock {
    let mock = Mock::start().await;
    {
        let mut company = mock.company();
        company.budget = 120;
        company.daily_tokens = 10_000_000;
    }
    mock
}

/// Persons by e-mail (lower case): more than one for an e-mail is a twin.
fn persons_by_email(mock: &Mock) -> BTreeMap<String, usize> {
    let company = mock.company();
    let mut by_email = BTreeMap::new();
    for person in company.persons.values() {
        for email in person["emails"].as_array().into_iter().flatten() {
            let email = email["value"].as_str().unwrap_or_default().to_lowercase();
            *by_email.entry(email).or_insert(0) += 1;
        }
    }
    by_email
}

async fn post_lead(server: &Running, body: Value) -> StatusCode {
    server
        .client
        .post(format!("http://{}/webhook/lead", server.addr))
        .bearer_auth(crate::common::API_KEY)
        .json(&body)
        .send()
        .await
        .expect("capture request")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_leads_reach_pipedrive_with_no_twin_person_even_when_an_email_comes_twice_at_once()
 {
    let (_dir, url) = temp_db();
    let mock = roomy_mock().await;
    // A salesperson entered one of them by hand before.
    let entered = reqwest::Client::new()
        .post(format!("{}/api/v2/persons", mock.url))
        .header("x-api-token", API_TOKEN)
        .json(&json!({"name": "Ana L.", "emails": [{"value": "person7@company7.com", "primary": true}]}))
        .send()
        .await
        .expect("a person entered by hand");
    assert!(entered.status().is_success());
    let server = Running::start(&vars(&url, &mock)).await;
    let twice = json!({"email": "twice@example.com", "first_name": "Eva", "last_name": "Doble"});
    let (batches, first, second) = tokio::join!(
        server.capture(0, 499),
        post_lead(&server, twice.clone()),
        post_lead(&server, twice),
    );
    let () = batches;
    assert!(
        first.is_success() && second.is_success(),
        "{first} {second}"
    );
    server.drained(Duration::from_secs(120)).await;

    let persons = persons_by_email(&mock);
    let twins: Vec<_> = persons.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twins.is_empty(), "twin persons: {twins:?}");
    assert_eq!(
        persons.len(),
        500,
        "499 e-mails of the batch and one sent twice"
    );
    {
        let company = mock.company();
        assert_eq!(company.persons.len(), 500);
        assert_eq!(company.leads.len(), 500, "one Pipedrive lead per lead");
        assert_eq!(company.notes.len(), 500, "one score note per lead");
        assert_eq!(company.activities.len(), 500, "one follow-up each");
        let twice_written: Vec<_> = company
            .writes
            .iter()
            .filter(|(key, n)| key.starts_with("lead/") && **n != 1)
            .collect();
        assert!(twice_written.is_empty(), "{twice_written:?}");
        // For docs/perf.md: what the backlog cost.
        let mut by_call: BTreeMap<&str, usize> = BTreeMap::new();
        for call in &company.calls {
            *by_call.entry(call.as_str()).or_default() += 1;
        }
        println!(
            "500 leads with their follow-ups: {} calls, {} tokens: {by_call:?}",
            company.calls.len(),
            company.tokens_used
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearly_spent_window_slows_the_server_before_any_429_and_a_storm_loses_nothing() {
    let (_dir, url) = temp_db();
    let mock = Mock::start().await;
    // Six calls per two seconds (others share the token); ten leads
    // cost about forty.
    mock.company().budget = 6;
    let server = Running::start(&vars(&url, &mock)).await;
    server.capture(0, 10).await;
    server.drained(Duration::from_secs(120)).await;
    assert_eq!(mock.company().limited, 0, "paced: Pipedrive never said 429");
    assert_eq!(mock.company().leads.len(), 10);

    // Then a storm: limits and outages in a row, on every call.
    {
        let mut company = mock.company();
        company.budget = 120;
        for n in 0..8 {
            let answer = if n % 2 == 0 {
                (
                    reqwest::StatusCode::TOO_MANY_REQUESTS.as_u16(),
                    json!({"success": false, "error": "Request over limit", "errorCode": 429}),
                )
            } else {
                (
                    503,
                    json!({"success": false, "error": "Service unavailable", "errorCode": 503}),
                )
            };
            let status = axum::http::StatusCode::from_u16(answer.0).expect("a status");
            company.failures.push_back((status, answer.1));
        }
    }
    server.capture(10, 20).await;
    let status = server.drained(Duration::from_secs(120)).await;
    let (_, dead) = server
        .api(reqwest::Method::GET, "/api/sync/dead-letters")
        .await;
    assert_eq!(status["dead_letters"], json!(0), "{status} {dead}");
    assert!(mock.company().failures.is_empty(), "the storm was met");
    let persons = persons_by_email(&mock);
    assert_eq!(persons.len(), 20, "every lead arrived");
    assert!(persons.values().all(|n| *n == 1), "no twin: {persons:?}");
    assert_eq!(mock.company().leads.len(), 20);
    server.stop().await;
}

/// Posts a webhook payload with basic auth `user:password`: the status
/// (what Pipedrive reads) and the text (what the receiver did).
async fn deliver_saying(server: &Running, payload: &Value, password: &str) -> (StatusCode, String) {
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{HOOK_USER}:{password}"));
    let answer = server
        .client
        .post(format!("http://{}/webhook/crm/pipedrive", server.addr))
        .header("Authorization", format!("Basic {credentials}"))
        .json(payload)
        .send()
        .await
        .expect("webhook delivery");
    let status = answer.status();
    (status, answer.text().await.unwrap_or_default())
}

async fn deliver(server: &Running, payload: &Value, password: &str) -> StatusCode {
    deliver_saying(server, payload, password).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_delivered_three_times_and_out_of_order_end_with_the_newest_applied_once() {
    let (_dir, url) = temp_db();
    let mock = Mock::start().await;
    let server = Running::start(&vars(&url, &mock)).await;
    server.capture(0, 1).await;
    server.drained(Duration::from_secs(30)).await;
    let (_, list) = server.api(reqwest::Method::GET, "/api/leads").await;
    let lead = list["leads"][0]["lead_ext_id"]
        .as_str()
        .expect("a lead")
        .to_owned();
    let person = *mock.company().persons.keys().next().expect("its person");

    // Three changes of the phone in Pipedrive, a second apart, each with
    // its webhook.
    let mut events = Vec::new();
    for (n, phone) in ["+34600000001", "+34600000002", "+34600000003"]
        .iter()
        .enumerate()
    {
        let mut company = mock.company();
        let at = chrono::Utc::now() + chrono::Duration::seconds(n as i64 + 1);
        company.clock = Some(at);
        company.change_person(
            person,
            json!({"phones": [{"value": phone, "primary": true, "label": "mobile"}]}),
        );
        let payload = company.webhook_v2(
            "change",
            "person",
            &person.to_string(),
            json!({"phones": [{"value": "+34000000000", "primary": true}]}),
        );
        company.clock = None;
        events.push(payload);
    }
    assert_eq!(
        deliver(&server, &events[2], "wrong-password-0123456789").await,
        StatusCode::UNAUTHORIZED
    );
    // The newest first; then the rest, each three times, out of order.
    assert_eq!(
        deliver(&server, &events[2], HOOK_PASSWORD).await,
        StatusCode::OK
    );
    let (_, after_first) = server
        .api(reqwest::Method::GET, &format!("/api/leads/{lead}"))
        .await;
    assert_eq!(after_first["phone"], json!("+34600000003"), "{after_first}");
    for n in [0, 1, 2, 1, 0, 0, 2, 1] {
        let mut retry = events[n].clone();
        retry["meta"]["attempt"] = json!(2);
        assert_eq!(
            deliver(&server, &retry, HOOK_PASSWORD).await,
            StatusCode::OK
        );
    }
    let (_, after_all) = server
        .api(reqwest::Method::GET, &format!("/api/leads/{lead}"))
        .await;
    assert_eq!(
        after_all, after_first,
        "the newest applied once: the repeats and the older ones changed nothing"
    );
    // A webhook subscribed with version 1.0 sends v1 payloads: read the
    // same way, and its repeats change nothing either.
    let v1 = {
        let mut company = mock.company();
        company.clock = Some(chrono::Utc::now() + chrono::Duration::seconds(10));
        company.change_person(
            person,
            json!({"phones": [{"value": "+34600000004", "primary": true, "label": "mobile"}]}),
        );
        let payload = company.webhook_v1("updated", "person", &person.to_string(), Value::Null);
        company.clock = None;
        payload
    };
    let (status, said) = deliver_saying(&server, &v1, HOOK_PASSWORD).await;
    assert_eq!((status, said.as_str()), (StatusCode::OK, "applied"));
    let (_, after_v1) = server
        .api(reqwest::Method::GET, &format!("/api/leads/{lead}"))
        .await;
    assert_eq!(after_v1["phone"], json!("+34600000004"));
    for _ in 0..2 {
        let (status, said) = deliver_saying(&server, &v1, HOOK_PASSWORD).await;
        assert_eq!((status, said.as_str()), (StatusCode::OK, "applied before"));
    }
    let status = server.drained(Duration::from_secs(30)).await;
    assert_eq!(status["dead_letters"], json!(0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_added_in_pipedrive_becomes_one_lead_when_its_create_and_change_come_together() {
    let (_dir, url) = temp_db();
    let mock = Mock::start().await;
    let server = Running::start(&vars(&url, &mock)).await;
    let (create, change) = {
        let mut company = mock.company();
        let body =
            json!({"name": "Nora Vidal", "emails": [{"value": "nora@vidal.es", "primary": true}]});
        drop(company);
        let made: Value = reqwest::Client::new()
            .post(format!("{}/api/v2/persons", mock.url))
            .header("x-api-token", API_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("a person added in the app")
            .json()
            .await
            .expect("json");
        let id = made["data"]["id"].as_u64().expect("an id").to_string();
        company = mock.company();
        let create = company.webhook_v2("create", "person", &id, Value::Null);
        company.change_person(id.parse().expect("id"), json!({"name": "Nora Vidal Ruiz"}));
        let change = company.webhook_v2("change", "person", &id, json!({"name": "Nora Vidal"}));
        (create, change)
    };
    let (a, b) = tokio::join!(
        deliver_saying(&server, &change, HOOK_PASSWORD),
        deliver_saying(&server, &create, HOOK_PASSWORD)
    );
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK), "{a:?} {b:?}");
    let said = [a.1, b.1];
    assert!(
        said.iter()
            .any(|s| s.contains("a lead from a person added in Pipedrive")),
        "{said:?}"
    );
    // Pipedrive's retries of both.
    assert_eq!(
        deliver(&server, &create, HOOK_PASSWORD).await,
        StatusCode::OK
    );
    assert_eq!(
        deliver(&server, &change, HOOK_PASSWORD).await,
        StatusCode::OK
    );
    let (_, list) = server
        .api(reqwest::Method::GET, "/api/leads?q=nora@vidal.es")
        .await;
    let leads = list["leads"].as_array().expect("a list");
    assert_eq!(leads.len(), 1, "{list}");
    assert_eq!(leads[0]["source"], json!("pipedrive"));
    // Pushed back as a Pipedrive lead on the same person: no twin.
    server.drained(Duration::from_secs(30)).await;
    until("its Pipedrive lead", Duration::from_secs(30), || {
        mock.company().leads.len() == 1
    })
    .await;
    assert_eq!(persons_by_email(&mock)["nora@vidal.es"], 1);
    server.stop().await;
}

#[test]
fn the_pipedrive_webhooks_command_subscribes_once() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let mock = runtime.block_on(Mock::start());
    let dir = tempfile::tempdir().expect("temp dir");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_lead-server"))
            .arg("pipedrive-webhooks")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", dir.path().join("l.db").display()),
            )
            .env("CRM_TYPE", "pipedrive")
            .env("PIPEDRIVE_COMPANY_DOMAIN", &mock.url)
            .env("PIPEDRIVE_API_TOKEN", API_TOKEN)
            .env("PIPEDRIVE_WEBHOOK_PASSWORD", HOOK_PASSWORD)
            .env(
                "PIPEDRIVE_WEBHOOK_URL",
                "https://leads.example.com/webhook/crm/pipedrive",
            )
            .output()
            .expect("lead-server runs")
    };
    // The runtime's own threads serve the mock meanwhile.
    let first = run();
    let said = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        first.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(said.contains("subscribed: webhooks"), "{said}");
    let hooks = mock.company().webhooks.clone();
    assert_eq!(hooks.len(), 3, "persons, leads and deals");
    for hook in hooks.values() {
        assert_eq!(hook["http_auth_user"], json!(HOOK_USER));
        assert_eq!(hook["version"], json!("2.0"));
        assert_eq!(hook["event_action"], json!("*"));
    }
    let again = run();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already"));
    assert_eq!(mock.company().webhooks.len(), 3, "nothing twice");
    let logged = String::from_utf8_lossy(&again.stderr);
    assert!(
        !logged.contains(HOOK_PASSWORD) && !logged.contains(API_TOKEN),
        "{logged}"
    );
}

/// A person added in the app at T0 and given a phone at T0+5 s; both
/// webhooks arrive a few seconds later (create first). The lead captured
/// from the create is dated at T0, not at our "now", so the change is
/// newer and its phone arrives (also while the push records the new
/// lead's ids at the same moment: a change meeting a newer version of the
/// lead is judged again, not dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_right_after_a_persons_create_is_not_lost() {
    let (_dir, url) = temp_db();
    let mock = Mock::start().await;
    let server = Running::start(&vars(&url, &mock)).await;
    let t0 = chrono::Utc::now() - chrono::Duration::seconds(10);
    mock.company().clock = Some(t0);
    let id = {
        let made: Value = reqwest::Client::new()
            .post(format!("{}/api/v2/persons", mock.url))
            .header("x-api-token", API_TOKEN)
            .json(&json!({"name": "Nora Vidal", "emails": [{"value": "nora@vidal.es", "primary": true}]}))
            .send()
            .await
            .expect("a person added in the app")
            .json()
            .await
            .expect("json");
        made["data"]["id"].as_u64().expect("an id")
    };
    let (create, change) = {
        let mut company = mock.company();
        let create = company.webhook_v2("create", "person", &id.to_string(), Value::Null);
        company.clock = Some(t0 + chrono::Duration::seconds(5));
        company.change_person(
            id,
            json!({"phones": [{"value": "+34612999888", "primary": true, "label": "mobile"}]}),
        );
        let change = company.webhook_v2("change", "person", &id.to_string(), json!({"phones": []}));
        company.clock = None;
        (create, change)
    };
    let first = deliver_saying(&server, &create, HOOK_PASSWORD).await;
    let second = deliver_saying(&server, &change, HOOK_PASSWORD).await;
    let (_, list) = server
        .api(reqwest::Method::GET, "/api/leads?q=nora@vidal.es")
        .await;
    let lead = &list["leads"][0];
    assert_eq!(
        lead["phone"],
        json!("+34612999888"),
        "create: {first:?}, change: {second:?}, lead: {lead}"
    );
    server.stop().await;
}
