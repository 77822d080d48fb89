//! The OpenAPI document parses, lists exactly the product's routes, and
//! every route it lists is served by the router (and Swagger UI is there).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use lead_core::{Deps, InMemoryStore};
use lead_http::{AppState, router};
use tower::ServiceExt;

/// SPEC's HTTP surface as built so far (the CRM webhook receivers arrive
/// with the CRM adapters).
const ROUTES: [(&str, &str); 44] = [
    ("post", "/webhook/lead"),
    ("post", "/webhook/lead/batch"),
    ("get", "/api/leads"),
    ("get", "/api/leads/statistics"),
    ("get", "/api/leads/{lead_ext_id}"),
    ("patch", "/api/leads/{lead_ext_id}"),
    ("put", "/api/leads/{lead_ext_id}/stage"),
    ("put", "/api/leads/{lead_ext_id}/assign"),
    ("post", "/api/leads/{lead_ext_id}/events"),
    ("get", "/api/duplicates"),
    ("get", "/api/duplicates/{pair_id}"),
    ("post", "/api/duplicates/scan"),
    ("post", "/api/duplicates/{pair_id}/merge"),
    ("post", "/api/duplicates/{pair_id}/dismiss"),
    ("post", "/api/merges"),
    ("get", "/api/merges/{merge_id}"),
    ("post", "/api/merges/{merge_id}/undo"),
    ("get", "/api/reps"),
    ("put", "/api/reps"),
    ("get", "/api/reps/{rep_id}"),
    ("put", "/api/reps/{rep_id}"),
    ("post", "/api/routing/dry-run"),
    ("get", "/api/followups"),
    ("put", "/api/followups/{id}"),
    ("get", "/api/jobs"),
    ("get", "/api/jobs/{name}/runs"),
    ("post", "/api/jobs/{name}/run"),
    ("get", "/api/sync/status"),
    ("get", "/api/sync/dead-letters"),
    ("post", "/api/sync/dead-letters/{id}/retry"),
    ("get", "/api/notifications/status"),
    ("get", "/api/notifications/dead-letters"),
    ("post", "/api/notifications/dead-letters/{id}/retry"),
    ("get", "/api/dashboard/summary"),
    ("get", "/api/dashboard/funnel"),
    ("get", "/api/dashboard/recent-leads"),
    ("get", "/api/dashboard/top-performers"),
    ("get", "/api/dashboard/source-performance"),
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/metrics"),
    // Served beside the documented routes, not part of the document.
    ("get", "/openapi.json"),
    ("get", "/docs/"),
    ("get", "/docs/index.html"),
];

fn app() -> axum::Router {
    router(AppState::new(Deps::new(Arc::new(InMemoryStore::new()))))
}

async fn call(method: &str, path: &str) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(method.to_uppercase().as_str())
        .uri(path)
        .body(Body::empty())
        .expect("request");
    let response = app().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, body)
}

#[tokio::test]
async fn the_document_parses_and_lists_every_route_of_the_router() {
    let (status, body) = call("get", "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_slice(&body).expect("openapi.json is JSON");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document"
    );
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str()))
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .filter(|(_, p)| !p.starts_with("/openapi") && !p.starts_with("/docs"))
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        documented, expected,
        "documented routes = the product's routes"
    );
    // Every documented operation names its responses; errors use ErrorBody.
    for (method, path) in &documented {
        let op = &doc["paths"][path][method];
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path} lists its responses"
        );
    }
    // The shared error sets reach every route that uses them.
    let stage = &doc["paths"]["/api/leads/{lead_ext_id}/stage"]["put"]["responses"];
    for status in [
        "200", "400", "401", "403", "404", "409", "415", "422", "503",
    ] {
        assert!(stage[status].is_object(), "PUT stage documents {status}");
    }
    let funnel = &doc["paths"]["/api/dashboard/funnel"]["get"]["responses"];
    for status in ["200", "400", "401", "403", "422", "429", "503"] {
        assert!(funnel[status].is_object(), "GET funnel documents {status}");
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    // Operation ids are unique (OpenAPI requires it).
    let mut ids = BTreeSet::new();
    for (method, path) in &documented {
        let id = doc["paths"][path][method]["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has an operationId"));
        assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
    }
    // Any route may be rate limited or time out.
    for (method, path) in &documented {
        let responses = &doc["paths"][path][method]["responses"];
        assert!(
            responses["429"].is_object(),
            "{method} {path} documents 429"
        );
        assert!(
            responses["503"].is_object(),
            "{method} {path} documents 503"
        );
    }
    let built = serde_json::to_value(lead_http::openapi()).expect("serializes");
    assert_eq!(
        built["paths"], doc["paths"],
        "openapi() is the served document"
    );
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
}

#[tokio::test]
async fn every_listed_route_is_served() {
    for (method, path) in ROUTES {
        let concrete = path
            .replace("{lead_ext_id}", "WEB-ABCDEFGH")
            .replace("{merge_id}", "00000000-0000-0000-0000-000000000000")
            .replace("{rep_id}", "nobody@example.com")
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{pair_id}", "00000000-0000-0000-0000-000000000000");
        let (status, body) = call(method, &concrete).await;
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is routed"
        );
        if status == StatusCode::NOT_FOUND {
            // A route's own 404 names what is unknown; an unrouted path
            // says "no route". /metrics without a recorder is the exception.
            assert!(
                path == "/metrics"
                    || serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|v| {
                        v["error"] == "not_found"
                            && !v["message"].as_str().unwrap_or("").contains("no route")
                    }),
                "{method} {path} is routed (got an unrouted 404)"
            );
        }
    }
    let (status, body) = call("get", "/docs/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8_lossy(&body).contains("swagger"),
        "Swagger UI is served offline"
    );
}

#[tokio::test]
async fn a_listener_for_some_parts_serves_and_documents_only_those() {
    use lead_http::{Part, router_for};
    let app = router_for(
        AppState::new(Deps::new(Arc::new(InMemoryStore::new()))),
        &[Part::Leads, Part::Operations],
    );
    let send = |method: &str, path: &str| {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .expect("request");
        app.clone().oneshot(request)
    };
    let capture = send("POST", "/webhook/lead").await.expect("infallible");
    assert_eq!(capture.status(), StatusCode::NOT_FOUND, "no capture here");
    let leads = send("GET", "/api/leads").await.expect("infallible");
    assert_eq!(
        leads.status(),
        StatusCode::UNAUTHORIZED,
        "the lead API is here"
    );
    let doc = send("GET", "/openapi.json").await.expect("infallible");
    let body = doc.into_body().collect().await.expect("body").to_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let paths: Vec<&String> = doc["paths"].as_object().expect("paths").keys().collect();
    assert!(
        paths
            .iter()
            .all(|p| !p.starts_with("/webhook") && !p.starts_with("/api/dashboard"))
    );
    assert!(paths.iter().any(|p| *p == "/api/leads"));
}

/// The served document is, byte for byte, the one recorded in
/// `tests/data/openapi.json`: a refactoring must not change the API. A
/// change meant to change it records the new document by running this
/// test with `LEAD_UPDATE_OPENAPI=1`, and the diff shows in review.
#[tokio::test]
async fn the_served_document_is_the_recorded_one() {
    let (status, body) = call("get", "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/openapi.json");
    if std::env::var_os("LEAD_UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &body).expect("record the document");
    }
    let recorded = std::fs::read(path).expect("the recorded document");
    assert!(
        body == recorded,
        "/openapi.json differs from {path} ({} bytes served, {} recorded); if the API change is meant, run with LEAD_UPDATE_OPENAPI=1",
        body.len(),
        recorded.len()
    );
}
