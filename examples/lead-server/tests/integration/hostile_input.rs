//! Hostile text against the real server on each real store: control
//! characters (NUL above all, which PostgreSQL's text columns refuse),
//! quoting and SQL syntax, bidi marks, emoji, values at and over the length
//! limit, in every lead field, in list parameters, stage notes and event
//! properties. The in-process tests run on the in-memory store, which
//! accepts anything; a write only a real store refuses shows up here. No
//! answer may be a server error; every capture (its e-mail is valid) is a
//! `202` whose lead reads back; a `422` (list parameters, stage notes)
//! must name the field.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{API_KEY, FreshPostgres, Server};

/// The lead fields a form can send as free text.
const FIELDS: [&str; 12] = [
    "first_name",
    "last_name",
    "company",
    "message",
    "source",
    "utm_source",
    "utm_campaign",
    "job_title",
    "country",
    "industry",
    "timeline",
    "consent_text",
];

fn hostile_values() -> Vec<String> {
    vec![
        "a\u{0}b".into(),
        "\u{1}\u{8}\u{1b}[31m\u{7f}".into(),
        "\u{202e}dlrow\u{202c} \u{200b}".into(),
        "😀 ünïcødé 中文".into(),
        r#"quote" back\slash {brace} 'single' %s %n"#.into(),
        "'); DROP TABLE leads; --".into(),
        "é".repeat(5_000),                 // 10 000 bytes: the limit
        format!("{}x", "é".repeat(5_000)), // one byte over it
    ]
}

/// The fields a `422` names.
fn named(error: &Value) -> Vec<String> {
    error["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| f["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn hostile_text_is_stored_or_named(database_url: &str, label: &str) {
    let server = Server::start(database_url);
    let (mut stored, mut refused) = (0, 0);
    let mut some_lead = None;
    for (f, field) in FIELDS.iter().enumerate() {
        for (v, value) in hostile_values().iter().enumerate() {
            let body = json!({
                "email": format!("hostile.{f}.{v}@example.com"),
                (*field): value,
                "metadata": {"raw": value},
            });
            let (status, answer) = server.capture(&body).await;
            let case = format!(
                "{label}: {field} = {:?}",
                value.chars().take(40).collect::<String>()
            );
            match status {
                StatusCode::ACCEPTED => {
                    stored += 1;
                    let id = answer["lead_ext_id"]
                        .as_str()
                        .expect("a 202 names its lead");
                    let (status, lead) = server
                        .api(reqwest::Method::GET, &format!("/api/leads/{id}"), None)
                        .await;
                    assert_eq!(status, StatusCode::OK, "{case}: a 202 lead reads back");
                    assert_eq!(lead["metadata"]["raw"], value.as_str(), "{case}");
                    if *field == "message" {
                        // What a store keeps: no NUL, at most
                        // MAX_FIELD_LEN bytes; a warning keeps the rest.
                        let written = value.trim();
                        let mut kept: String = written.chars().filter(|c| *c != '\0').collect();
                        let mut cut = kept.len().min(lead_core::MAX_FIELD_LEN);
                        while !kept.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        kept.truncate(cut);
                        assert_eq!(lead["message"], kept.as_str(), "{case}");
                        if kept != written {
                            assert!(
                                lead["warnings"].as_array().is_some_and(|w| w
                                    .iter()
                                    .any(|w| w["field"] == "message" && w["value"].is_string())),
                                "{case}: what was written is kept in a warning"
                            );
                        }
                    }
                    some_lead = Some(id.to_owned());
                }
                StatusCode::UNPROCESSABLE_ENTITY => {
                    refused += 1;
                    assert!(
                        named(&answer).contains(&field.to_string()),
                        "{case}: {answer}"
                    );
                }
                other => panic!("{case}: answered {other}: {answer}"),
            }
        }
    }
    // Only the e-mail, the lead's identity, can make a capture refused
    // (SPEC "The lead"): a NUL or an over-long value is stored as a store
    // can keep it, with what was written in a warning.
    assert_eq!(refused, 0, "{label}: {refused} refused");
    assert_eq!(
        stored,
        FIELDS.len() * hostile_values().len(),
        "{label}: every capture is stored"
    );

    let id = some_lead.expect("a stored lead");
    for (v, value) in hostile_values().iter().enumerate() {
        for param in [
            "source",
            "segment",
            "q",
            "assigned_to",
            "stage",
            "priority",
            "cursor",
        ] {
            let response = server
                .client
                .get(format!("http://{}/api/leads", server.addr))
                .query(&[(param, value.as_str())])
                .bearer_auth(API_KEY)
                .send()
                .await
                .expect("list request");
            let status = response.status();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            match status {
                StatusCode::OK => {}
                StatusCode::UNPROCESSABLE_ENTITY => {
                    assert!(
                        named(&answer).contains(&param.to_owned()),
                        "{label}: {answer}"
                    );
                }
                other => panic!("{label}: ?{param}= answered {other}: {answer}"),
            }
        }
        let (status, answer) = server
            .api(
                reqwest::Method::POST,
                &format!("/api/leads/{id}/events"),
                Some(&json!({"kind": "page_visit", "properties": {"raw": value}})),
            )
            .await;
        assert!(
            status.is_success(),
            "{label}: event answered {status}: {answer}"
        );

        // Notes on a fresh lead's first move, so the transition is allowed.
        let (status, answer) = server
            .capture(&json!({"email": format!("notes.{v}@example.com")}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        let fresh = answer["lead_ext_id"].as_str().expect("lead id");
        let (status, answer) = server
            .api(
                reqwest::Method::PUT,
                &format!("/api/leads/{fresh}/stage"),
                Some(&json!({"stage": "contacted", "notes": value})),
            )
            .await;
        match status {
            StatusCode::OK => assert_eq!(answer["stage"], "contacted", "{answer}"),
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert_eq!(named(&answer), ["notes"], "{label}: {answer}");
            }
            other => panic!("{label}: stage notes answered {other}: {answer}"),
        }
    }
    println!(
        "{label}: {stored} hostile captures stored and read back, {refused} refused naming the field"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_is_stored_or_named_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("hostile.db").display());
    hostile_text_is_stored_or_named(&url, "SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_is_stored_or_named_on_postgres() {
    let db = FreshPostgres::create("hostile").await;
    hostile_text_is_stored_or_named(&db.url, "PostgreSQL").await;
    db.drop().await;
}
