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

/// The keys of a JSON object, sorted.
fn keys_of(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = body
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    names.sort_unstable();
    names
}

#[tokio::test]
async fn a_thousand_varied_anonymous_posts_change_no_field_nor_consent_of_a_known_lead() {
    let app = TestApp::spawn_with(Options::default().with_settings(|s| {
        s.rate_limit.per_ip = None;
    }))
    .await;
    let first = app
        .create_lead(&json!({
            "email": "ana@acme.io", "first_name": "Ana", "phone": "+34 612 345 678",
            "company": "Acme", "consent_marketing": "false",
        }))
        .await;
    let before = app.stored(&first.lead_ext_id);
    let size = |lead: &lead_core::Lead| serde_json::to_vec(lead).expect("serializes").len();

    for n in 0..1_000 {
        let mut metadata = serde_json::Map::new();
        metadata.insert(format!("k{n}"), Value::from("v".repeat(n % 4 * 3_000)));
        metadata.insert(
            "pending_changes".into(),
            json!([{ "fields": { "phone": "forged" } }]),
        );
        metadata.insert("alternate_emails".into(), json!([format!("x{n}@evil.io")]));
        let reply = app
            .post_lead_json(&json!({
                "email": if n % 2 == 0 { "ANA@acme.io" } else { "ana@acme.io" },
                "first_name": format!("Mallory {n}"),
                "phone": format!("+1 415 555 {n:04}"),
                "company": format!("Evil {n}"),
                "consent_marketing": if n % 3 == 0 { "yes" } else { "no" },
                "consent_text": "x".repeat(n % 5 * 2_000),
                "message": "m".repeat(n % 7 * 1_000),
                "metadata": metadata,
            }))
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        assert_eq!(
            keys_of(&reply.body),
            ["message", "success", "warnings"],
            "an unverified caller learns nothing about the lead: {}",
            reply.body
        );
    }

    let after = app.stored(&first.lead_ext_id);
    let mut fields = after.fields.clone();
    let pending = fields
        .metadata
        .remove(lead_core::dedup::PENDING_CHANGES)
        .expect("the submissions are kept as pending changes");
    assert_eq!(fields, before.fields, "no field nor consent changed");
    assert_eq!(after.fields.consent_marketing, Some(false));
    assert!(pending.as_array().is_some_and(|l| {
        (1..=lead_core::dedup::MAX_PENDING_CHANGES).contains(&l.len())
            && l.iter().all(|entry| entry["fields"]["phone"] != "forged")
    }));
    assert!(
        size(&after) <= size(&before) + lead_core::dedup::MAX_PENDING_BYTES,
        "the document stays under the cap: {} bytes, {} before",
        size(&after),
        size(&before)
    );
    assert_eq!(app.live_leads().len(), 1);
}

#[tokio::test]
async fn every_unverified_caller_gets_the_minimal_answer_and_a_write_key_the_full_one() {
    let app = TestApp::spawn().await;
    let lead = json!({ "email": "known@acme.io", "company": "Acme" });
    let created = app.create_lead(&lead).await;

    // No secret configured: unsigned posts are taken, and told nothing.
    let unsigned = app.post_lead_json(&lead).await;
    assert_eq!(unsigned.status, StatusCode::ACCEPTED);
    assert_eq!(keys_of(&unsigned.body), ["message", "success", "warnings"]);
    let batch = app
        .post_batch(&[lead.clone(), json!({ "email": "new@acme.io" })], &[])
        .await;
    assert_eq!(batch.status, StatusCode::ACCEPTED, "{}", batch.body);
    for item in batch.body["results"].as_array().expect("results") {
        assert_eq!(item["status"], 202);
        assert!(item.get("lead").is_none(), "{item}");
    }
    assert_eq!(batch.body["accepted"], 2);

    // A write-scoped key is a verified sender: the full answer.
    let keyed = app
        .post_lead_json_with(&lead, &[("x-api-key", crate::common::WRITER.to_owned())])
        .await;
    assert_eq!(keyed.status, StatusCode::ACCEPTED);
    assert_eq!(keyed.body["lead_ext_id"], created.lead_ext_id.as_str());
    // A key that cannot write, or no known key, is refused: a caller that
    // presents a key expects it to count.
    app.post_lead_json_with(&lead, &[("x-api-key", READER.to_owned())])
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    app.post_lead_json_with(&lead, &[("x-api-key", "nobody".to_owned())])
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
}
