//! `LEAD_LOG_FORMAT=json`: every log line is a JSON object, and a request's
//! lines carry the request id its answer names.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::Server;

fn sqlite() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("logs.db").display());
    (dir, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_objects_and_a_refused_request_logs_its_request_id() {
    let (_dir, url) = sqlite();
    let server = Server::start_with(
        &url,
        &[
            ("LEAD_LOG_FORMAT", "json"),
            ("RUST_LOG", "info,lead_http=debug"),
        ],
    );
    let start_up = server.log.text();
    assert!(start_up.lines().count() >= 2, "{start_up}");
    for line in start_up.lines() {
        let value: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value.is_object(), "{line}");
        assert!(value["level"].is_string(), "{line}");
        assert!(value["fields"]["message"].is_string(), "{line}");
    }
    assert!(start_up.contains(r#""message":"listening""#), "{start_up}");

    // Unsigned, to a server with a secret: refused, logged at debug.
    let response = server
        .client
        .post(format!("http://{}/webhook/lead", server.addr))
        .header("content-type", "application/json")
        .body(r#"{"email":"hidden-lead@acme.io","phone":"+34 600 111 222"}"#)
        .send()
        .await
        .expect("capture request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("a request id")
        .to_owned();

    let log = server.stop();
    let refused: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .filter(|v| v["fields"]["message"] == "request refused")
        .collect();
    assert_eq!(refused.len(), 1, "{log}");
    assert_eq!(refused[0]["level"], "DEBUG", "{log}");
    assert_eq!(refused[0]["span"]["request_id"], id.as_str(), "{log}");
    assert_eq!(refused[0]["span"]["path"], "/webhook/lead", "{log}");
    for secret in ["hidden-lead", "600 111 222"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lead_email_nor_phone_reaches_the_log_above_debug() {
    let (_dir, url) = sqlite();
    // Every target at info: what an operator runs in production.
    let server = Server::start_with(&url, &[("LEAD_LOG_FORMAT", "json"), ("RUST_LOG", "info")]);
    let lead = serde_json::json!({
        "email": "private.person@acme.io", "phone": "+34 600 111 222",
        "first_name": "Priv", "company": "Acme",
    });
    let (status, created) = server.capture(&lead).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["lead_ext_id"].as_str().expect("an id").to_owned();
    // A merge, a refusal naming a bad e-mail, reads, a stage change, a bad
    // phone kept as written.
    let (status, _) = server
        .capture(&serde_json::json!({ "email": "private.person@acme.io", "phone": "600 999 888 not a phone" }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = server
        .capture(&serde_json::json!({ "email": "not-an-address@", "phone": "+34 600 333 444" }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for path in [
        format!("/api/leads/{id}"),
        "/api/leads?search=private.person".to_owned(),
    ] {
        let (status, body) = server.api(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (status, body) = server
        .api(
            reqwest::Method::PUT,
            &format!("/api/leads/{id}/stage"),
            Some(&serde_json::json!({ "stage": "contacted" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let log = server.stop();
    assert!(log.lines().count() >= 2, "the server logged: {log}");
    for secret in [
        "private.person",
        "600 111 222",
        "600111222",
        "999 888",
        "not-an-address",
        "600 333 444",
    ] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}
