//! Safe by default: without a capture secret the server is reachable from
//! this machine only, and refuses a public address unless told to accept
//! unsigned captures from anyone; `/metrics` asks for its token when one
//! is set.

use reqwest::StatusCode;

use crate::common::{Server, refused_start_unset};

/// The variables a server without a secret and without an address lacks.
const NO_SECRET_NO_ADDR: [&str; 3] = [
    "WEBHOOK_SECRET_KEY",
    "WEBHOOK_STANDARD_SECRETS",
    "LEAD_BIND_ADDR",
];

fn sqlite() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("safe.db").display());
    (dir, url)
}

#[test]
fn without_a_secret_a_public_address_stops_the_start_naming_the_variable() {
    let (code, log) =
        refused_start_unset(&[("LEAD_BIND_ADDR", "0.0.0.0")], &NO_SECRET_NO_ADDR[..2]);
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("LEAD_BIND_ADDR"), "{log}");
    assert!(log.contains("LEAD_ALLOW_UNSIGNED_PUBLIC"), "{log}");
    assert!(!log.contains("listening"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_or_an_address_the_server_serves_on_loopback_only() {
    let (_dir, url) = sqlite();
    let server = Server::start_unset(&url, &[], &NO_SECRET_NO_ADDR);
    let log = server.log.text();
    let listening = log
        .lines()
        .find(|l| l.contains("listening"))
        .unwrap_or_else(|| panic!("no listening line: {log}"));
    assert!(
        listening.contains("addr=127.0.0.1:"),
        "not on loopback: {listening}"
    );
    assert!(server.addr.starts_with("127.0.0.1:"), "{}", server.addr);
    assert!(log.contains("bound to loopback only"), "{log}");
    let health = server
        .client
        .get(format!("http://{}/health", server.addr))
        .send()
        .await
        .expect("health request");
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_a_public_address_needs_the_opt_in() {
    let (_dir, url) = sqlite();
    let server = Server::start_unset(
        &url,
        &[
            ("LEAD_BIND_ADDR", "0.0.0.0"),
            ("LEAD_ALLOW_UNSIGNED_PUBLIC", "true"),
        ],
        &NO_SECRET_NO_ADDR[..2],
    );
    assert!(server.addr.starts_with("0.0.0.0:"), "{}", server.addr);
    let log = server.log.text();
    assert!(log.contains("LEAD_ALLOW_UNSIGNED_PUBLIC"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_metrics_token_the_server_asks_for_it_on_metrics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("metrics.db").display());
    let server = Server::start_with(&url, &[("LEAD_METRICS_TOKEN", "prom-scrape-token")]);
    let metrics = format!("http://{}/metrics", server.addr);

    let anonymous = server
        .client
        .get(&metrics)
        .send()
        .await
        .expect("metrics request");
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
    let wrong = server
        .client
        .get(&metrics)
        .bearer_auth("guess")
        .send()
        .await
        .expect("metrics request");
    assert_eq!(wrong.status(), reqwest::StatusCode::UNAUTHORIZED);
    let scrape = server
        .client
        .get(&metrics)
        .bearer_auth("prom-scrape-token")
        .send()
        .await
        .expect("metrics request");
    assert_eq!(scrape.status(), reqwest::StatusCode::OK);
    let text = scrape.text().await.expect("the metrics");
    assert!(text.contains("sales_routing_assigned_total"), "{text}");
}
