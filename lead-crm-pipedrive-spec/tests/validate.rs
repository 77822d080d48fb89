//! The validator against Pipedrive's real documents, with requests from
//! CONTRACTS.md §2.4 (persons) and §2.5 (leads).

use std::time::Instant;

use lead_crm_pipedrive_spec::{
    ApiVersion, Coverage, Location, Problem, Recorded, Spec, describe, validate,
};
use serde_json::{Value, json};

const TOKEN: &str = "0123456789abcdef";

fn search_persons(limit: &str) -> Recorded {
    Recorded::new("GET", "/api/v2/persons/search")
        .with_query("term", "jane@acme.example")
        .with_query("fields", "email")
        .with_query("exact_match", "true")
        .with_query("limit", limit)
        .with_header("x-api-token", TOKEN)
}

/// CONTRACTS.md §2.4, create (v2).
fn person_body() -> Value {
    json!({"name":"Jane Doe","owner_id":7,"org_id":3,
        "emails":[{"value":"jane@acme.example","primary":true,"label":"work"}],
        "phones":[{"value":"+358401234567","primary":true,"label":"mobile"}],
        "visible_to":3,"label_ids":[1],"marketing_status":"subscribed","custom_fields":{}})
}

/// CONTRACTS.md §2.5, `POST /api/v1/leads`, without `"organization_id":null`
/// (see `lead_with_a_null_organization_id_is_refused`).
fn lead_body() -> Value {
    json!({"title":"Jane Doe – pricing form","person_id":1092,"owner_id":7,
        "label_ids":["f08b42a0-4e75-11ea-9643-03698ef1cfd6"],"value":{"amount":999,"currency":"USD"},
        "expected_close_date":"2026-06-30","visible_to":"3","was_seen":false,"origin_id":"web-form"})
}

fn post(path: &str, body: Value) -> Recorded {
    Recorded::new("POST", path)
        .with_header("x-api-token", TOKEN)
        .with_json_body(body)
}

fn problems(request: &Recorded) -> Vec<Problem> {
    match validate(request) {
        Ok(op) => panic!("expected problems, {} validated as {op}", request.path),
        Err(problems) => problems,
    }
}

fn assert_valid(request: &Recorded) {
    if let Err(problems) = validate(request) {
        panic!(
            "{} {} does not validate:\n{}",
            request.method,
            request.path,
            describe(&problems)
        );
    }
}

#[test]
fn both_documents_load_and_are_openapi_30() {
    for version in [ApiVersion::V1, ApiVersion::V2] {
        let started = Instant::now();
        let spec = Spec::get(version);
        println!(
            "{version}: openapi {}, base {}, {} operations, loaded in {:?}",
            spec.openapi_version(),
            spec.base_path(),
            spec.operation_count(),
            started.elapsed()
        );
        assert_eq!(spec.openapi_version(), "3.0.1");
        assert!(spec.operation_count() > 100, "{}", spec.operation_count());
    }
    assert_eq!(Spec::v1().base_path(), "/v1");
    assert_eq!(Spec::v2().base_path(), "/api/v2");
}

#[test]
fn person_search_by_email_validates() {
    let op = validate(&search_persons("10")).unwrap();
    assert_eq!(op.key(), "GET /api/v2/persons/search");
    assert_eq!(op.operation_id.as_deref(), Some("searchPersons"));
    assert_eq!(op.token_cost, Some(20));
}

#[test]
fn person_search_with_limit_900_is_refused_naming_limit() {
    let problems = problems(&search_persons("900"));
    assert_eq!(problems.len(), 1, "{}", describe(&problems));
    assert_eq!(problems[0].location, Location::Query("limit".into()));
    assert!(
        problems[0]
            .to_string()
            .starts_with("query `limit`: 900 is above maximum 500"),
        "{}",
        problems[0]
    );
}

#[test]
fn query_values_are_checked_by_type_and_enum() {
    let request = search_persons("ten")
        .with_query("exact_match", "yes")
        .with_query("fields", "mail");
    let text = describe(&problems(&request));
    assert!(
        text.contains("query `limit`: `ten` is not an integer"),
        "{text}"
    );
    assert!(text.contains("query `exact_match`: sent 2 times"), "{text}");
    assert!(text.contains("query `fields`: sent 2 times"), "{text}");

    let request = Recorded::new("GET", "/api/v2/persons/search")
        .with_query("term", "jane")
        .with_query("fields", "mail")
        .with_query("exact_match", "1")
        .with_header("x-api-token", TOKEN);
    let text = describe(&problems(&request));
    assert!(
        text.contains("query `fields`: \"mail\" is not one of"),
        "{text}"
    );
    assert!(
        text.contains("query `exact_match`: `1` is not a boolean"),
        "{text}"
    );
}

#[test]
fn unknown_and_missing_query_parameters_are_refused() {
    let request = Recorded::new("GET", "/api/v2/persons/search")
        .with_query("api_token", TOKEN)
        .with_header("x-api-token", TOKEN);
    let text = describe(&problems(&request));
    assert!(
        text.contains("query `api_token`: not a parameter of GET /persons/search"),
        "{text}"
    );
    assert!(text.contains("query `term`: required, missing"), "{text}");
}

#[test]
fn person_create_body_from_the_contract_validates() {
    let op = validate(&post("/api/v2/persons", person_body())).unwrap();
    assert_eq!(op.key(), "POST /api/v2/persons");
    assert_eq!(op.operation_id.as_deref(), Some("addPerson"));
}

#[test]
fn person_create_with_emails_as_a_string_is_refused() {
    let mut body = person_body();
    body["emails"] = json!("a@b");
    let problems = problems(&post("/api/v2/persons", body));
    assert_eq!(problems.len(), 1, "{}", describe(&problems));
    assert_eq!(problems[0].location, Location::Body("/emails".into()));
    assert_eq!(
        problems[0].to_string(),
        "body: /emails: \"a@b\" is a string, expected array"
    );
}

#[test]
fn lead_create_body_from_the_contract_validates() {
    let op = validate(&post("/api/v1/leads", lead_body())).unwrap();
    assert_eq!(op.key(), "POST /api/v1/leads");
    assert_eq!(op.version, ApiVersion::V1);
    assert_eq!(op.token_cost, Some(10));
}

#[test]
fn lead_create_with_visible_to_as_an_integer_is_refused() {
    let mut body = lead_body();
    body["visible_to"] = json!(3);
    let problems = problems(&post("/api/v1/leads", body));
    assert!(
        problems
            .iter()
            .all(|p| p.location == Location::Body("/visible_to".into())),
        "{}",
        describe(&problems)
    );
    assert!(
        problems
            .iter()
            .any(|p| p.message == "3 is an integer, expected string"),
        "{}",
        describe(&problems)
    );
}

/// The §2.5 example sends `"organization_id":null`, but the v1 document types
/// `organization_id` as a non-nullable integer: the adapter must leave the
/// key out instead.
#[test]
fn lead_with_a_null_organization_id_is_refused() {
    let mut body = lead_body();
    body["organization_id"] = Value::Null;
    let problems = problems(&post("/api/v1/leads", body));
    assert_eq!(
        describe(&problems),
        "  - body: /organization_id: null is null, expected integer"
    );
}

#[test]
fn nullable_body_fields_accept_null() {
    let mut body = lead_body();
    body["value"] = Value::Null;
    body["origin_id"] = Value::Null;
    assert_valid(&post("/api/v1/leads", body));
}

#[test]
fn missing_required_body_properties_and_bad_formats_are_named() {
    let mut body = lead_body();
    body.as_object_mut().unwrap().remove("title");
    body["value"] = json!({"amount": 1});
    body["label_ids"] = json!(["not-a-uuid"]);
    body["expected_close_date"] = json!("30.06.2026");
    let text = describe(&problems(&post("/api/v1/leads", body)));
    assert!(text.contains("body: /title: required"), "{text}");
    assert!(text.contains("body: /value/currency: required"), "{text}");
    assert!(
        text.contains("body: /label_ids/0: \"not-a-uuid\" is not a valid `uuid`"),
        "{text}"
    );
    assert!(
        text.contains("body: /expected_close_date: \"30.06.2026\" is not a valid `date`"),
        "{text}"
    );
}

#[test]
fn unknown_body_properties_pass_where_the_schema_allows_them() {
    let mut body = person_body();
    body["nickname"] = json!("JD");
    assert_valid(&post("/api/v2/persons", body));
}

#[test]
fn a_json_body_needs_a_json_content_type() {
    let mut request = post("/api/v2/persons", person_body());
    request
        .headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
    let text = describe(&problems(&request));
    assert!(text.contains("header `content-type`: missing"), "{text}");

    let request = Recorded::new("POST", "/api/v2/persons")
        .with_header("x-api-token", TOKEN)
        .with_header("Content-Type", "text/plain")
        .with_json_body(person_body());
    let text = describe(&problems(&request));
    assert!(
        text.contains("header `content-type`: `text/plain`"),
        "{text}"
    );
}

#[test]
fn a_body_on_an_operation_without_one_is_refused() {
    let mut request = search_persons("10");
    request.body = Some(json!({}));
    let text = describe(&problems(&request));
    assert!(
        text.contains("body: GET /persons/search takes no request body"),
        "{text}"
    );
}

#[test]
fn an_unknown_path_is_refused() {
    let problems =
        problems(&Recorded::new("GET", "/api/v2/no-such-things").with_header("x-api-token", TOKEN));
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].location, Location::Path);
    assert!(
        problems[0]
            .message
            .contains("no operation in the v2 document matches GET /no-such-things"),
        "{}",
        problems[0]
    );

    let problems = problems_of_unversioned();
    assert_eq!(problems[0].location, Location::Path);
}

fn problems_of_unversioned() -> Vec<Problem> {
    problems(&Recorded::new("GET", "/api/v3/persons").with_header("x-api-token", TOKEN))
}

#[test]
fn a_known_path_with_the_wrong_method_is_refused() {
    let request = Recorded::new("PUT", "/api/v2/persons/5").with_header("x-api-token", TOKEN);
    let problems = problems(&request);
    assert_eq!(problems[0].location, Location::Method);
    assert!(
        problems[0].message.contains("GET /persons/{id}"),
        "{}",
        problems[0]
    );
}

#[test]
fn a_request_without_the_token_header_is_refused() {
    let mut request = search_persons("10");
    request.headers.clear();
    let problems = problems(&request);
    assert_eq!(problems.len(), 1, "{}", describe(&problems));
    assert_eq!(problems[0].location, Location::Credentials);
    assert!(
        problems[0]
            .message
            .contains("header `x-api-token` (api_key)"),
        "{}",
        problems[0]
    );
}

#[test]
fn an_oauth_bearer_token_also_satisfies_security() {
    let mut request = search_persons("10");
    request.headers = vec![("Authorization".into(), "Bearer abc".into())];
    assert_valid(&request);
}

#[test]
fn a_non_integer_person_id_is_refused() {
    let problems =
        problems(&Recorded::new("GET", "/api/v2/persons/abc").with_header("x-api-token", TOKEN));
    assert_eq!(problems.len(), 1, "{}", describe(&problems));
    assert_eq!(problems[0].location, Location::PathParam("id".into()));
    assert_eq!(
        problems[0].to_string(),
        "path `id`: `abc` is not an integer"
    );
}

#[test]
fn path_parameters_and_literal_segments_are_matched() {
    let op =
        validate(&Recorded::new("GET", "/api/v2/persons/42").with_header("x-api-token", TOKEN))
            .unwrap();
    assert_eq!(op.template, "/persons/{id}");
    let op = validate(
        &Recorded::new("GET", "/api/v1/leads/adf21080-0e10-11eb-879b-05d71fb426ec")
            .with_header("x-api-token", TOKEN),
    )
    .unwrap();
    assert_eq!(op.key(), "GET /api/v1/leads/{id}");
    // The v1 server's own path works too.
    let op =
        validate(&Recorded::new("GET", "/v1/users/me").with_header("x-api-token", TOKEN)).unwrap();
    assert_eq!(op.key(), "GET /api/v1/users/me");
}

#[test]
fn lead_conversion_and_recorded_http_requests_validate() {
    let convert = Recorded::from_http(
        "POST",
        "/api/v2/leads/adf21080-0e10-11eb-879b-05d71fb426ec/convert/deal",
        [
            ("x-api-token", TOKEN),
            ("content-type", "application/json; charset=utf-8"),
        ],
        br#"{"stage_id":3}"#,
    )
    .unwrap();
    let op = validate(&convert).unwrap();
    assert_eq!(op.token_cost, Some(40));

    let changed = Recorded::from_http(
        "GET",
        "/api/v2/persons?updated_since=2026-05-15T18%3A00%3A00Z&sort_by=update_time&sort_direction=asc&limit=500",
        [("x-api-token", TOKEN)],
        b"",
    )
    .unwrap();
    assert_valid(&changed);
}

#[test]
fn coverage_counts_requests_and_operations() {
    let requests = vec![
        search_persons("10"),
        search_persons("100"),
        post("/api/v2/persons", person_body()),
        post("/api/v1/leads", lead_body()),
        Recorded::new("GET", "/api/v1/users").with_header("x-api-token", TOKEN),
    ];
    let mut coverage = Coverage::new();
    coverage.validate_all(&requests).unwrap();
    println!("{coverage}");
    assert_eq!(coverage.requests(), 5);
    assert_eq!(coverage.operation_count(), 4);
    assert!(coverage.covers("searchPersons"));
    assert!(coverage.covers("POST /api/v1/leads"));
    assert!(
        coverage
            .to_string()
            .starts_with("validated 5 requests over 4 operations: POST /api/v1/leads (addLead), GET /api/v1/users"),
        "{coverage}"
    );
    assert!(
        coverage
            .to_string()
            .contains("GET /api/v2/persons/search (searchPersons) ×2"),
        "{coverage}"
    );

    let bad = [search_persons("900")];
    let report = coverage.validate_all(&bad).unwrap_err();
    assert!(
        report.starts_with("GET /api/v2/persons/search:\n  - query `limit`"),
        "{report}"
    );
    assert_eq!(coverage.requests(), 5, "an invalid request is not counted");
}

#[test]
fn odd_requests_give_problems_not_panics() {
    let deep = (0..200).fold(json!(1), |inner, _| json!({ "a": inner }));
    let odd = [
        Recorded::new("", ""),
        Recorded::new("GET", "/api/v2"),
        Recorded::new("GET", "/api/v2/"),
        Recorded::new("GET", "/api/v2//persons"),
        Recorded::new("get", "/api/v2/persons/%FF%00"),
        Recorded::new("GET", "/api/v2/persons/99999999999999999999999"),
        Recorded::new("GET", "/api/v2/persons")
            .with_query("", "")
            .with_query("limit", "-1e309"),
        post("/api/v2/persons", deep),
        post("/api/v2/persons", json!([1, "x", null])),
    ];
    for request in &odd {
        let _ = validate(request);
    }
    let lowercase = Recorded::new("get", "/api/v2/persons/1").with_header("X-API-TOKEN", TOKEN);
    assert_eq!(validate(&lowercase).unwrap().method, "GET");
}
