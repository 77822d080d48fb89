//! The Airflow bridge: the DAGs in `airflow/dags/` parse with Airflow's own
//! package (`DagBag`, offline), one per job with the schedule
//! `lead-server jobs list --json` reports, and their HTTP trigger works
//! against a fake jobs API (`airflow/check_dags.py`). Airflow is installed
//! by `.ci/airflow-setup` (run by `.ci/run`) into `target/airflow-venv`;
//! without it this test fails and says so, it never skips.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

#[test]
fn the_dags_parse_with_airflow_and_follow_the_server_s_schedules() {
    let repo = repo();
    let python = std::env::var_os("LEAD_AIRFLOW_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target/airflow-venv/bin/python"));
    assert!(
        python.exists(),
        "no Airflow virtualenv at {}: run .ci/airflow-setup (what .ci/run does), or point LEAD_AIRFLOW_PYTHON at a Python with apache-airflow",
        python.display()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let listed = Command::new(env!("CARGO_BIN_EXE_lead-server"))
        .args(["jobs", "list", "--json"])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("leads.db").display()),
        )
        .env("RUST_LOG", "warn")
        .output()
        .expect("run lead-server jobs list");
    assert!(listed.status.success(), "{listed:?}");
    let jobs: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(jobs.as_array().map(Vec::len), Some(9), "{jobs}");
    let expected = dir.path().join("jobs.json");
    std::fs::write(&expected, &listed.stdout).expect("write");
    let checked = Command::new(&python)
        .arg(repo.join("airflow/check_dags.py"))
        .arg("--dags")
        .arg(repo.join("airflow/dags"))
        .arg("--expect")
        .arg(&expected)
        .output()
        .expect("run check_dags.py");
    let out = String::from_utf8_lossy(&checked.stdout);
    let err = String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "check_dags failed:\n{out}\n{err}");
    assert!(out.contains("OK: 9 DAGs"), "{out}");

    // The check fails when a schedule differs: it compares, not just parses.
    let mut changed = jobs.clone();
    changed[1]["schedule"] = serde_json::json!("5 4 * * *");
    std::fs::write(&expected, changed.to_string()).expect("write");
    let refused = Command::new(&python)
        .arg(repo.join("airflow/check_dags.py"))
        .arg("--dags")
        .arg(repo.join("airflow/dags"))
        .arg("--expect")
        .arg(&expected)
        .arg("--skip-trigger-tests")
        .output()
        .expect("run check_dags.py");
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("lead_deduplication"),
        "{refused:?}"
    );
}
