//! Rate limits answer 429 in the error shape with Retry-After; CORS
//! answers only the configured origins.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use lead_core::{Deps, InMemoryStore};
use lead_http::{ApiKeys, AppState, HttpSettings, Rate, RateLimit, Scopes, router};
use tower::ServiceExt;

fn app(limit: RateLimit, cors: &[&str]) -> axum::Router {
    let mut settings = HttpSettings::default();
    settings.rate_limit = limit;
    settings.cors_origins = cors.iter().map(|o| (*o).to_owned()).collect();
    router(
        AppState::builder(Deps::new(Arc::new(InMemoryStore::new())))
            .api_keys(
                ApiKeys::default()
                    .with_key("k1", Scopes::READ)
                    .with_key("k2", Scopes::READ),
            )
            .settings(settings)
            .build(),
    )
}

async fn get(
    app: &axum::Router,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    let mut request = Request::get(path);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn an_api_key_over_its_burst_gets_429_with_retry_after_and_others_do_not() {
    let mut limit = RateLimit::off();
    limit.per_key = Some(Rate {
        per_minute: 1,
        burst: 2,
    });
    let app = app(limit, &[]);
    for _ in 0..2 {
        let (status, _, _) = get(&app, "/api/leads", &[("authorization", "Bearer k1")]).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, headers, body) = get(&app, "/api/leads", &[("authorization", "Bearer k1")]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry >= 1, "Retry-After {retry}");
    assert_eq!(body["error"], "rate_limited");
    assert!(body["fields"].is_array());
    // The same key through the other header is the same key.
    let (status, _, _) = get(&app, "/api/leads", &[("x-api-key", "k1")]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _, _) = get(&app, "/api/leads", &[("authorization", "Bearer k2")]).await;
    assert_eq!(status, StatusCode::OK, "another key has its own budget");
}

#[tokio::test]
async fn a_client_ip_over_its_burst_gets_429_and_other_ips_do_not() {
    let mut limit = RateLimit::off();
    limit.per_ip = Some(Rate {
        per_minute: 1,
        burst: 3,
    });
    limit.trust_forwarded_for = true;
    let app = app(limit, &[]);
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    for _ in 0..3 {
        assert_eq!(
            get(&app, "/health", &from("203.0.113.7")).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        get(&app, "/health", &from("203.0.113.7")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        get(&app, "/health", &from("198.51.100.1, 10.0.0.1"))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn limits_off_never_answer_429() {
    let app = app(RateLimit::off(), &[]);
    for _ in 0..50 {
        assert_eq!(
            get(&app, "/api/leads", &[("authorization", "Bearer k1")])
                .await
                .0,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn cors_answers_configured_origins_only() {
    let app = app(RateLimit::off(), &["https://app.example.com"]);
    let preflight = |origin: &'static str| {
        Request::options("/api/leads")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .body(Body::empty())
            .expect("request")
    };
    let ok = app
        .clone()
        .oneshot(preflight("https://app.example.com"))
        .await
        .expect("infallible");
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let other = app
        .clone()
        .oneshot(preflight("https://evil.example"))
        .await
        .expect("infallible");
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let none = self::app(RateLimit::off(), &[]);
    let (_, headers, _) = get(&none, "/health", &[("origin", "https://app.example.com")]).await;
    assert!(
        headers.get("access-control-allow-origin").is_none(),
        "no CORS unless configured"
    );
}
