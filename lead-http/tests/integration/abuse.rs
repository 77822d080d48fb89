//! Attacks on the server, one test each: the answer it gives and that the
//! attack costs it only bounded work (checked by structure, never by time);
//! and the security headers every answer carries.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use lead_http::signature::{MAX_SIGNATURE_HEADER_LEN, MAX_SIGNATURES};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    JSON, Options, PUBLIC_ORIGIN, READER, Reply, STANDARD_SECRET, TestApp, standard_signature,
    start_time,
};

/// `n` Standard Webhooks entries that decode to 32 bytes, none right.
fn wrong_signatures(n: usize) -> String {
    let wrong = format!("v1,{}", BASE64.encode([7u8; 32]));
    vec![wrong; n].join(" ")
}

#[tokio::test]
async fn a_ten_thousand_entry_signature_header_with_a_one_mib_body_is_refused() {
    // A body limit that lets 1 MiB reach the signature check.
    let app = TestApp::spawn_with(
        Options::signed().with_settings(|s| s.max_lead_bytes = 2 * 1024 * 1024),
    )
    .await;
    let now = start_time().timestamp();
    let mut body = br#"{"email":"flood@acme.io","message":""#.to_vec();
    body.resize(1024 * 1024 - 2, b'x');
    body.extend_from_slice(br#""}"#);
    assert_eq!(body.len(), 1024 * 1024);

    // 10 000 entries (the real one among them): over both caps.
    let mut headers = standard_signature(STANDARD_SECRET, "msg_flood", now, &body);
    let flood = format!("{} {}", wrong_signatures(9_999), headers[2].1);
    assert!(flood.len() > MAX_SIGNATURE_HEADER_LEN);
    headers[2].1 = flood;
    let reply = app.post_lead_bytes(JSON, body.clone(), &headers).await;
    let error = reply.error(StatusCode::UNAUTHORIZED, "bad_signature");
    assert!(error.message.contains("over its limits"), "{}", reply.body);

    // Within the length cap but one entry too many: refused the same way.
    let mut headers = standard_signature(STANDARD_SECRET, "msg_many", now, &body);
    let many = format!("{} {}", wrong_signatures(MAX_SIGNATURES), headers[2].1);
    assert!(many.len() <= MAX_SIGNATURE_HEADER_LEN);
    headers[2].1 = many;
    let reply = app.post_lead_bytes(JSON, body.clone(), &headers).await;
    let error = reply.error(StatusCode::UNAUTHORIZED, "bad_signature");
    assert!(error.message.contains("over its limits"), "{}", reply.body);
    assert!(app.store.leads().is_empty());

    // At the cap, the real signature still gets the lead in.
    let mut headers = standard_signature(STANDARD_SECRET, "msg_at_cap", now, &body);
    headers[2].1 = format!("{} {}", wrong_signatures(MAX_SIGNATURES - 1), headers[2].1);
    let reply = app.post_lead_bytes(JSON, body, &headers).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(app.store.leads().len(), 1);
}

#[tokio::test]
async fn an_invented_http_method_makes_no_metric_series_of_its_own() {
    let app = TestApp::spawn_with(Options::default().with_metrics()).await;
    let method = reqwest::Method::from_bytes(b"FOOBAR").expect("a method token");

    let request = app
        .client
        .request(method, format!("http://{}/webhook/lead", app.addr));
    let reply = app.send(request).await;
    reply.error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");

    let metrics = app.get_metrics().await;
    assert_eq!(metrics.status, StatusCode::OK);
    let Value::String(text) = &metrics.body else {
        panic!("the metrics are text: {}", metrics.body);
    };
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains(r#"method="other""#)
            && l.contains(r#"status="405""#)),
        "{text}"
    );
    assert!(!text.contains("FOOBAR"), "{text}");
}

/// Fails unless `reply` carries `nosniff`, and `no-store` exactly when
/// `no_store`.
fn assert_security_headers(what: &str, reply: &Reply, no_store: bool) {
    assert_eq!(
        reply.header("x-content-type-options"),
        Some("nosniff"),
        "{what}: {:?}",
        reply.headers
    );
    let cache = reply.header("cache-control");
    if no_store {
        assert_eq!(cache, Some("no-store"), "{what}: {:?}", reply.headers);
    } else {
        assert_ne!(cache, Some("no-store"), "{what}: {:?}", reply.headers);
    }
}

#[tokio::test]
async fn every_answer_is_nosniff_and_lead_data_is_not_stored_by_caches() {
    let app = TestApp::spawn().await;

    let reply = app.post_lead_json(&json!({"email": "cache@acme.io"})).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_security_headers("POST /webhook/lead", &reply, true);

    let reply = app.get_leads(Some(READER), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_security_headers("GET /api/leads", &reply, true);

    // Refusals too: no key, an unknown lead route.
    let reply = app.get_leads(None, &[]).await;
    reply.error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_security_headers("GET /api/leads without a key", &reply, true);
    let reply = app
        .post_lead_json(&json!({"email": "not an address"}))
        .await;
    reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_security_headers("a refused capture", &reply, true);

    let reply = app.get_health().await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_security_headers("GET /health", &reply, false);
}

#[tokio::test]
async fn a_thank_you_page_keeps_its_own_csp_and_gains_nosniff() {
    let app = TestApp::spawn_with(Options::public_form()).await;
    let headers = vec![
        ("origin", PUBLIC_ORIGIN.to_owned()),
        ("accept", "text/html,application/xhtml+xml".to_owned()),
    ];
    let reply = app
        .post_lead_form(&[("email", "page@acme.io")], &headers)
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_security_headers("the thank-you page", &reply, true);
    let csp = reply.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'none'"), "{csp}");
}

#[tokio::test]
async fn a_filled_honeypot_is_counted_in_the_capture_metrics() {
    let app = TestApp::spawn_with(Options::public_form().with_metrics()).await;

    let reply = app
        .post_lead_form(
            &[("email", "counted.bot@acme.io"), ("_hp", "filled")],
            &[("origin", PUBLIC_ORIGIN.to_owned())],
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert!(app.store.leads().is_empty());

    let metrics = app.get_metrics().await;
    let Value::String(text) = &metrics.body else {
        panic!("the metrics are text: {}", metrics.body);
    };
    // Other tests of this binary may count honeypots too: at least ours.
    let count: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"lead_captures_total{outcome="honeypot"} "#))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no honeypot count: {text}"));
    assert!(count >= 1.0, "{text}");
}
