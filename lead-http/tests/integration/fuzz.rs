//! Property tests over raw capture requests: arbitrary bodies, content
//! types and signature headers never panic the server, never answer a
//! server error while the store is up, and never answer `202` without a
//! stored lead (but for a filled honeypot, answered as a stored public-form
//! post while nothing is stored).

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use lead_core::{Deps, InMemoryStore, LeadExtId, LeadStore};
use lead_http::{AppState, WebhookKeys, router};
use proptest::prelude::*;
use secrecy::SecretString;
use tower::ServiceExt;

const CONTENT_TYPES: [&str; 7] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "application/json; charset=utf-8",
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/problem+json",
    "",
];

fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Raw bytes.
        proptest::collection::vec(any::<u8>(), 0..512),
        // JSON-ish text with lead field names.
        proptest::string::string_regex(
            r#"\{("(email|first_name|phone|company|metadata|leads|_hp|_redirect)": ?("[^"\\]{0,40}"|[0-9]{1,20}|null|true|\[\]|\{\}),? ?){0,6}\}"#
        )
        .expect("regex")
        .prop_map(String::into_bytes),
        // Form-ish text.
        proptest::string::string_regex(r"((email|fname|your-email|_hp|_redirect|%[0-9A-F]{2})=[a-z0-9%@.+&=]{0,30}){0,5}")
            .expect("regex")
            .prop_map(String::into_bytes),
    ]
}

fn header_strategy() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    proptest::collection::vec(
        (
            prop_oneof![
                Just("x-webhook-signature"),
                Just("webhook-id"),
                Just("webhook-timestamp"),
                Just("webhook-signature"),
                Just("idempotency-key"),
                Just("origin"),
                Just("referer"),
            ],
            "[ -~]{0,80}",
        ),
        0..5,
    )
}

async fn send(
    app: axum::Router,
    path: &str,
    content_type: &str,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    let mut request = Request::post(path);
    if !content_type.is_empty() {
        request = request.header("content-type", content_type);
    }
    for (name, value) in headers {
        if let Ok(value) = http::HeaderValue::from_str(value) {
            request = request.header(*name, value);
        }
    }
    let request = request.body(Body::from(body)).expect("request");
    let response = app.oneshot(request).await.expect("infallible service");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

fn check(
    signed: bool,
    path: &'static str,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = Arc::new(InMemoryStore::new());
        let keys = if signed {
            WebhookKeys::none()
                .with_legacy(SecretString::from("s3cret"))
                .with_standard("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .expect("key")
        } else {
            WebhookKeys::none()
        };
        let state = AppState::builder(Deps::new(store.clone()))
            .webhook_keys(keys)
            .build();
        let sent = String::from_utf8_lossy(&body).into_owned();
        let (status, json) = send(router(state), path, content_type, &headers, body).await;
        prop_assert!(
            !status.is_server_error(),
            "{status} for a store that is up: {json}"
        );
        prop_assert!(json.is_object(), "every answer is JSON ({status}): {json}");
        if status.is_client_error() {
            prop_assert!(json.get("error").is_some_and(|e| e.is_string()), "{json}");
            prop_assert!(json.get("fields").is_some_and(|f| f.is_array()), "{json}");
        }
        if status == StatusCode::ACCEPTED && path == "/webhook/lead" {
            if let Some(id) = json.get("lead_ext_id").and_then(|v| v.as_str()) {
                let id = LeadExtId::parse(id).expect("a 202 names a valid lead id");
                prop_assert!(
                    store.get(&id).await.expect("get").is_some(),
                    "a 202 lead is stored"
                );
            } else {
                // Unverified callers (no signature, no key) get the minimal
                // answer: the lead was stored, or the honeypot was filled
                // and nothing was.
                let mut names: Vec<&str> = json
                    .as_object()
                    .map(|o| o.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                names.sort_unstable();
                prop_assert_eq!(names, ["message", "success", "warnings"], "{}", json);
                let stored = store.leads().len();
                prop_assert!(stored <= 1, "one capture, {stored} leads");
                prop_assert!(
                    stored == 1 || sent.to_lowercase().contains("hp"),
                    "a 202 that stored nothing must be a filled honeypot: {sent}"
                );
            }
        }
        if signed {
            prop_assert!(
                status != StatusCode::ACCEPTED && status != StatusCode::MULTI_STATUS,
                "random headers never carry a valid signature"
            );
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_unsigned_captures_never_panic_or_fail_the_server(
        content_type in proptest::sample::select(&CONTENT_TYPES[..]),
        headers in header_strategy(),
        body in body_strategy(),
        batch in any::<bool>(),
    ) {
        let path = if batch { "/webhook/lead/batch" } else { "/webhook/lead" };
        check(false, path, content_type, headers, body)?;
    }

    #[test]
    fn arbitrary_signature_headers_are_refused_without_panicking(
        content_type in proptest::sample::select(&CONTENT_TYPES[..]),
        headers in header_strategy(),
        body in body_strategy(),
    ) {
        check(true, "/webhook/lead", content_type, headers, body)?;
    }
}

#[test]
fn the_harness_accepts_a_valid_lead_and_refuses_a_tampered_signature() {
    // The properties above are only as good as the harness: a valid lead
    // must reach 202 through it, and a signed one must be refused once
    // its body changes.
    check(
        false,
        "/webhook/lead",
        "application/json",
        Vec::new(),
        br#"{"email":"ana@acme.com"}"#.to_vec(),
    )
    .expect("a valid lead passes every property");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let state = AppState::builder(Deps::new(Arc::new(InMemoryStore::new())))
            .webhook_keys(WebhookKeys::none().with_legacy(SecretString::from("s3cret")))
            .build();
        let body = br#"{"email":"ana@acme.com"}"#;
        let sig = lead_http::signature::sign_legacy("s3cret", body);
        let (status, json) = send(
            router(state.clone()),
            "/webhook/lead",
            "application/json",
            &[("x-webhook-signature", sig.clone())],
            body.to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{json}");
        let (status, _) = send(
            router(state),
            "/webhook/lead",
            "application/json",
            &[("x-webhook-signature", sig)],
            br#"{"email":"eve@acme.com"}"#.to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    });
}
