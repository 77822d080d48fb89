//! The files a sales-ops team configures the server with: the reps
//! (`LEAD_REPS`) and the scoring rules (`LEAD_RULES`), read at start-up; a
//! bad file stops the start with a message naming it.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Server, refused_start, reps_file};

const RULES: &str = r#"
[[group]]
name = "everything"
cap = 100

[[group.rule]]
id = "has_email"
points = 77
when = { present = "email" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reps_and_rules_come_from_their_files_and_a_rep_left_out_stops_receiving_leads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("files.db").display());
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, RULES).expect("write rules");
    let rules = rules.display().to_string();
    let (ana, bob) = ("ana@empresa.com", "bob@empresa.com");

    let reps = reps_file(dir.path(), &[ana, bob]);
    let server = Server::start_with(&url, &[("LEAD_REPS", &reps), ("LEAD_RULES", &rules)]);
    let (status, first) = server
        .capture(&json!({"email": "uno@cliente.es", "first_name": "Uno"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(first["score"], 77, "the rule set of LEAD_RULES scored it");
    let owner = first["assigned_to"].as_str().expect("routed to a rep");
    assert!([ana, bob].contains(&owner), "{first}");
    let id = first["lead_ext_id"].as_str().expect("id").to_owned();
    let (status, moved) = server
        .api(
            Method::PUT,
            &format!("/api/leads/{id}/assign"),
            Some(&json!({"assigned_to": bob})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(
        moved["assigned_to"], bob,
        "a rep of the file can be assigned"
    );
    drop(server);

    // Ana, with no open lead, would be routed the next lead; once she is
    // left out of the file she is inactive and Bob gets it.
    let reps = reps_file(dir.path(), &[bob]);
    let server = Server::start_with(&url, &[("LEAD_REPS", &reps), ("LEAD_RULES", &rules)]);
    let (status, second) = server
        .capture(&json!({"email": "dos@otro.es", "first_name": "Dos"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{second}");
    assert_eq!(second["assigned_to"], bob, "{second}");
    let (status, kept) = server
        .api(Method::GET, &format!("/api/leads/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    assert_eq!(kept["assigned_to"], bob, "leads keep their owner");
}

#[test]
fn a_bad_reps_or_rules_file_stops_the_start_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reps = dir.path().join("reps.toml");
    std::fs::write(
        &reps,
        "[[rep]]\nid = \"ana@empresa.com\"\nname = \"Ana\"\ndaily_capcity = 5\n",
    )
    .expect("write");
    let reps = reps.display().to_string();
    let (code, log) = refused_start(&[("LEAD_REPS", &reps)]);
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains(&format!("LEAD_REPS ({reps})")), "{log}");
    assert!(log.contains("daily_capcity"), "{log}");

    let missing = dir.path().join("no-rules.toml").display().to_string();
    let (code, log) = refused_start(&[("LEAD_RULES", &missing)]);
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains(&format!("cannot read {missing}")), "{log}");
}
