//! The whole server started in-process through `Application::build`, as
//! background workers will be tested: capture, read and list a lead on a
//! temporary SQLite file, then stop cleanly and find the lead on disk.

use std::collections::HashMap;

use lead_core::{LeadQuery, LeadReads};
use lead_server::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{API_KEY, reps_file};

fn vars(database_url: &str) -> HashMap<String, String> {
    HashMap::from([
        ("DATABASE_URL".to_owned(), database_url.to_owned()),
        ("WEBHOOK_PORT".to_owned(), "0".to_owned()),
        ("LEAD_BIND_ADDR".to_owned(), "127.0.0.1".to_owned()),
        (
            "LEAD_API_KEYS".to_owned(),
            format!("{}:read,write", lead_http::hash_key(API_KEY)),
        ),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_built_in_process_captures_reads_and_lists_a_lead() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("leads.db").display());
    let app = Application::build(&vars(&url))
        .await
        .expect("the app starts");
    let addr = *app.addrs().first().expect("one listener");
    assert_ne!(addr.port(), 0, "port 0 is replaced by the bound port");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let captured = client
        .post(format!("http://{addr}/webhook/lead"))
        .bearer_auth(API_KEY)
        .json(&json!({
            "email": "Ana.Lopez@Acme.io",
            "first_name": "Ana",
            "last_name": "López",
            "company": "Acme SL",
            "source": "web"
        }))
        .send()
        .await
        .expect("capture request");
    assert_eq!(captured.status(), StatusCode::ACCEPTED);
    let body: Value = captured.json().await.expect("capture answer");
    let id = body["lead_ext_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a lead id in {body}"))
        .to_owned();

    let lead: Value = client
        .get(format!("http://{addr}/api/leads/{id}"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .expect("read request")
        .json()
        .await
        .expect("lead");
    assert_eq!(lead["email"], "ana.lopez@acme.io", "{lead}");
    assert_eq!(lead["company"], "Acme SL", "{lead}");

    let list: Value = client
        .get(format!("http://{addr}/api/leads"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .expect("list request")
        .json()
        .await
        .expect("list");
    let ids: Vec<&str> = list["leads"]
        .as_array()
        .unwrap_or_else(|| panic!("leads in {list}"))
        .iter()
        .filter_map(|l| l["lead_ext_id"].as_str())
        .collect();
    assert_eq!(ids, [id.as_str()], "{list}");

    let _ = stop.send(());
    running
        .await
        .expect("the server task")
        .expect("a clean stop");
    // Stopped means the store is closed and the lead is in the file.
    let store = lead_store_sqlite::SqliteStore::from_url(&url)
        .await
        .expect("reopen the file");
    let page = store.list(&LeadQuery::default()).await.expect("list");
    assert_eq!(page.leads.len(), 1);
    assert_eq!(page.leads[0].ext_id.as_str(), id);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_setting_stops_the_build_with_the_variable_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("leads.db").display());
    let mut vars = vars(&url);
    vars.insert("WEBHOOK_PORT".to_owned(), "not-a-port".to_owned());
    let err = Application::build(&vars)
        .await
        .err()
        .expect("a bad port refuses to start");
    assert!(err.contains("WEBHOOK_PORT"), "{err}");
}

/// With `CRM_TYPE=salesforce` the server pushes what it captures to the
/// org (here the contract mock): each lead and its follow-up task exactly
/// once, after one login, and nothing is left queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_leads_reach_salesforce_through_the_sync_worker() {
    use lead_core::{Destination, OutboxStore};
    use lead_crm_salesforce::mock::{CLIENT_ID, CLIENT_SECRET, Mock};

    let mock = Mock::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("leads.db");
    let url = format!("sqlite://{}", path.display());
    let mut settings = vars(&url);
    for (name, value) in [
        ("CRM_TYPE", "salesforce"),
        ("SALESFORCE_LOGIN_URL", mock.url.as_str()),
        ("SALESFORCE_CLIENT_ID", CLIENT_ID),
        ("SALESFORCE_CLIENT_SECRET", CLIENT_SECRET),
        ("CRM_SYNC_INTERVAL_MS", "20"),
    ] {
        settings.insert(name.to_owned(), value.to_owned());
    }
    settings.insert(
        "LEAD_REPS".to_owned(),
        reps_file(dir.path(), &["rep@sales.com"]),
    );
    let app = Application::build(&settings).await.expect("the app starts");
    let addr = *app.addrs().first().expect("one listener");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    for n in 0..3 {
        let answer = client
            .post(format!("http://{addr}/webhook/lead"))
            .bearer_auth(API_KEY)
            .json(&json!({
                "email": format!("person{n}@company{n}.com"),
                "first_name": "Ana",
                "last_name": format!("López {n}"),
                "company": format!("Company {n}"),
            }))
            .send()
            .await
            .expect("capture request");
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
    }

    // The worker pushes on its own; wait for the org to hold the leads.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (leads, tasks) = {
            let org = mock.org();
            (org.leads.len(), org.tasks.len())
        };
        if leads == 3 && tasks == 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the org holds {leads} leads and {tasks} tasks after 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    running.await.expect("join").expect("clean stop");
    {
        let org = mock.org();
        assert_eq!(org.logins, 1, "one login for the whole run");
        let upserts = org
            .calls
            .iter()
            .filter(|c| c.starts_with("PATCH /composite"))
            .count();
        assert!(upserts <= 3, "{:?}", org.calls);
    }
    let store = lead_store_sqlite::SqliteStore::from_url(&url)
        .await
        .expect("reopen");
    assert_eq!(
        store
            .pending_count(&Destination::CRM)
            .await
            .expect("backlog"),
        0,
        "every entry acknowledged"
    );
    store.close().await;
}
