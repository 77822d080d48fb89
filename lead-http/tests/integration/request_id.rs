//! `X-Request-Id` on every answer: the client's when sane, else a new one.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::TestApp;

#[tokio::test]
async fn every_answer_carries_a_request_id_the_clients_when_sane() {
    let app = TestApp::spawn().await;

    // A sane id comes back as sent, on a success and on a refusal.
    let sent = "req-42_abc.DEF:0f8fad5b";
    let reply = app
        .get_with_headers("/health", &[("x-request-id", sent.to_owned())])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-request-id"), Some(sent));
    let reply = app
        .get_with_headers("/api/leads", &[("x-request-id", sent.to_owned())])
        .await;
    reply.error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(reply.header("x-request-id"), Some(sent));
    let longest = "a".repeat(lead_http::MAX_REQUEST_ID_LEN);
    let reply = app
        .get_with_headers("/health", &[("x-request-id", longest.clone())])
        .await;
    assert_eq!(reply.header("x-request-id"), Some(longest.as_str()));

    // None sent: a new UUID, another on each request.
    let first = app.get_health().await;
    let second = app
        .post_lead_json(&json!({"email": "not an address"}))
        .await;
    second.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let ids: Vec<String> = [&first, &second]
        .iter()
        .map(|reply| {
            let id = reply.header("x-request-id").expect("a request id");
            uuid::Uuid::parse_str(id).unwrap_or_else(|_| panic!("{id} is no UUID"));
            id.to_owned()
        })
        .collect();
    assert_ne!(ids[0], ids[1]);

    // Not sane (spaces, too long, not ASCII, empty): replaced by a new one.
    for insane in [
        "two words".to_owned(),
        "a".repeat(lead_http::MAX_REQUEST_ID_LEN + 1),
        "caf\u{e9}".to_owned(),
        String::new(),
        "<script>alert(1)</script> x".to_owned(),
    ] {
        let request = app
            .client
            .get(format!("http://{}/health", app.addr))
            .header(
                "x-request-id",
                reqwest::header::HeaderValue::from_bytes(insane.as_bytes()).expect("header value"),
            );
        let reply = app.send(request).await;
        let id = reply.header("x-request-id").expect("a request id");
        assert_ne!(id, insane);
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{insane:?} gave {id}");
    }
}
