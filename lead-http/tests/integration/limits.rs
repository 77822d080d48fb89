//! Rate limits answer 429 in the error shape with Retry-After, per client
//! address (X-Forwarded-For read only from trusted proxies, right to
//! left); CORS answers only the configured origins.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use lead_core::{Deps, InMemoryStore};
use lead_http::{ApiKeys, AppState, HttpSettings, IpRange, Rate, RateLimit, Scopes, router};
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

/// `app` served on a loopback port with the peer address (as the server
/// does); returns its base URL. The task ends with the test's runtime.
async fn serve(limit: RateLimit) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let app = app(limit, &[]).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// The status of `GET /health` with these `X-Forwarded-For` lines.
async fn health(base: &str, forwarded_for: &[&str]) -> StatusCode {
    let mut request = reqwest::Client::new().get(format!("{base}/health"));
    for line in forwarded_for {
        request = request.header("x-forwarded-for", *line);
    }
    let status = request.send().await.expect("request").status();
    StatusCode::from_u16(status.as_u16()).expect("status")
}

fn per_ip(burst: u32, trusted_proxies: &[&str]) -> RateLimit {
    let mut limit = RateLimit::off();
    limit.per_ip = Some(Rate {
        per_minute: 1,
        burst,
    });
    limit.trusted_proxies = trusted_proxies
        .iter()
        .map(|p| p.parse::<IpRange>().expect("range"))
        .collect();
    limit
}

#[tokio::test]
async fn a_client_forging_forwarded_for_is_limited_by_its_own_address() {
    // A proxy is configured, but this client (127.0.0.1) is not it.
    let base = serve(per_ip(3, &["10.0.0.0/8"])).await;
    for forged in ["203.0.113.1", "203.0.113.2", "203.0.113.3, 10.0.0.1"] {
        assert_eq!(health(&base, &[forged]).await, StatusCode::OK, "{forged}");
    }
    for forged in ["203.0.113.4", "198.51.100.1, 203.0.113.5", "10.0.0.1"] {
        assert_eq!(
            health(&base, &[forged]).await,
            StatusCode::TOO_MANY_REQUESTS,
            "{forged}: a new X-Forwarded-For is no new budget"
        );
    }
    assert_eq!(
        health(&base, &[]).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the same client without the header"
    );
}

#[tokio::test]
async fn through_a_trusted_proxy_the_right_most_untrusted_hop_is_limited() {
    // Connections come from 127.0.0.1: the proxy in front of the server;
    // 10.0.0.0/8 is the proxy tier in front of it.
    let base = serve(per_ip(3, &["127.0.0.1", "10.0.0.0/8"])).await;
    // The client writes whatever it likes on the left; the proxies append
    // the address they saw: 203.0.113.7, then 10.0.0.2.
    for forged in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        let line = format!("{forged}, 203.0.113.7, 10.0.0.2");
        assert_eq!(health(&base, &[&line]).await, StatusCode::OK, "{line}");
    }
    assert_eq!(
        health(&base, &["198.51.100.4, 203.0.113.7, 10.0.0.2"]).await,
        StatusCode::TOO_MANY_REQUESTS,
        "203.0.113.7 is over its burst, whatever it forges on the left"
    );
    assert_eq!(
        health(&base, &["198.51.100.5", "203.0.113.7"]).await,
        StatusCode::TOO_MANY_REQUESTS,
        "split over two header lines it is the same hop"
    );
    assert_eq!(
        health(&base, &["203.0.113.8, 10.0.0.2"]).await,
        StatusCode::OK,
        "another client has its own budget"
    );
    assert_eq!(
        health(&base, &["203.0.113.7:4711"]).await,
        StatusCode::TOO_MANY_REQUESTS,
        "a hop with a port is the same address"
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
