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
