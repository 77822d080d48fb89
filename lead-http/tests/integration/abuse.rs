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
async fn with_hsts_set_every_answer_carries_it_and_without_none_does() {
    let app = TestApp::spawn_with(Options::default().with_settings(|s| {
        s.hsts_max_age = Some(std::time::Duration::from_secs(31_536_000));
    }))
    .await;
    let capture = app.post_lead_json(&json!({"email": "hsts@acme.io"})).await;
    assert_eq!(capture.status, StatusCode::ACCEPTED, "{}", capture.body);
    let refused = app.get_leads(None, &[]).await;
    refused.error(StatusCode::UNAUTHORIZED, "unauthorized");
    let health = app.get_health().await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.body);
    for (what, reply) in [
        ("a capture", &capture),
        ("a refusal", &refused),
        ("GET /health", &health),
    ] {
        assert_eq!(
            reply.header("strict-transport-security"),
            Some("max-age=31536000"),
            "{what}"
        );
    }

    // The default (plain HTTP): no HSTS, which would promise HTTPS.
    let plain = TestApp::spawn().await;
    let health = plain.get_health().await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.body);
    assert_eq!(health.header("strict-transport-security"), None);
}

#[tokio::test]
async fn with_a_metrics_token_metrics_need_it_even_from_this_machine() {
    let app = TestApp::spawn_with(
        Options::default()
            .with_metrics()
            .with_metrics_token("prom-scrape-token"),
    )
    .await;

    let reply = app.get_metrics().await;
    reply.error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        reply.header("www-authenticate").is_some(),
        "{:?}",
        reply.headers
    );
    for wrong in ["prom-scrape-toke", "prom-scrape-token2", READER] {
        let reply = app.get_metrics_with_token(wrong).await;
        reply.error(StatusCode::UNAUTHORIZED, "unauthorized");
    }

    let reply = app.get_metrics_with_token("prom-scrape-token").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        reply.headers
    );
}

/// `GET /metrics` straight into the router (no network), from `peer`
/// (`None`: no `ConnectInfo` at all), with these headers.
async fn metrics_from(
    app: &axum::Router,
    peer: Option<&str>,
    headers: &[(&str, &str)],
) -> StatusCode {
    use tower::ServiceExt;
    let mut request = http::Request::builder().uri("/metrics");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(axum::body::Body::empty()).expect("a request");
    if let Some(peer) = peer {
        let peer: std::net::SocketAddr = peer.parse().expect("a socket address");
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
    }
    let response = app.clone().oneshot(request).await.expect("an answer");
    response.status()
}

#[tokio::test]
async fn without_a_metrics_token_metrics_answer_this_machine_only() {
    use lead_core::{Deps, InMemoryStore};
    use lead_http::{AppState, IpRange, router};
    let build = |trusted: Vec<IpRange>| {
        let mut settings = lead_http::HttpSettings::default();
        settings.rate_limit.trusted_proxies = trusted;
        router(
            AppState::builder(Deps::new(std::sync::Arc::new(InMemoryStore::new())))
                .metrics(crate::common::global_metrics())
                .settings(settings)
                .build(),
        )
    };
    let direct = build(Vec::new());
    for local in ["127.0.0.1:40000", "[::1]:40000", "[::ffff:127.0.0.1]:40000"] {
        assert_eq!(
            metrics_from(&direct, Some(local), &[]).await,
            StatusCode::OK,
            "{local}"
        );
    }
    for outside in ["203.0.113.9:4711", "[2001:db8::9]:4711", "10.0.0.5:4711"] {
        assert_eq!(
            metrics_from(&direct, Some(outside), &[]).await,
            StatusCode::UNAUTHORIZED,
            "{outside}"
        );
        // A forged X-Forwarded-For changes nothing.
        assert_eq!(
            metrics_from(&direct, Some(outside), &[("x-forwarded-for", "127.0.0.1")]).await,
            StatusCode::UNAUTHORIZED,
            "{outside} claiming to be local"
        );
    }
    assert_eq!(
        metrics_from(&direct, None, &[]).await,
        StatusCode::UNAUTHORIZED,
        "no peer address: origin unknown, refused"
    );

    // Through a reverse proxy on this machine: the client it names counts.
    let proxied = build(IpRange::loopback().to_vec());
    assert_eq!(
        metrics_from(
            &proxied,
            Some("127.0.0.1:40000"),
            &[("x-forwarded-for", "203.0.113.9")]
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "an outside client through the local proxy"
    );
    assert_eq!(
        metrics_from(
            &proxied,
            Some("127.0.0.1:40000"),
            &[("x-forwarded-for", "127.0.0.1")]
        )
        .await,
        StatusCode::OK,
        "a client on this machine through the local proxy"
    );
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
