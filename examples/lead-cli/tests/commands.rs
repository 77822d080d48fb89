//! The smaller commands and the promises every command keeps (help with an
//! example, exit codes, errors that name the file), run as the real binary.

use std::path::Path;
use std::process::Output;

mod common;

use common::text;

fn lead(dir: &Path, args: &[&str]) -> Output {
    common::lead_at(dir, Some(&common::sqlite_url(dir)), args)
}

#[test]
fn api_key_create_prints_a_key_once_and_the_entry_the_server_accepts_it_by() {
    let dir = tempfile::tempdir().unwrap();
    let out = lead(dir.path(), &["api-key", "create", "--scopes", "read,write"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let (key, entry) = (lines[0], lines[1]);
    assert!(key.starts_with("lk_") && key.len() == 67, "{key}");
    assert!(text(&out.stderr).contains("LEAD_API_KEYS"));
    // The entry is what the server reads: the key's hash and its scopes.
    let (hash, scopes) = entry.split_once(':').unwrap();
    assert_eq!(scopes, "read,write");
    let keys = lead_http::ApiKeys::default()
        .with_hash(hash, lead_http::Scopes::parse(scopes).unwrap())
        .unwrap();
    let granted = keys.scopes_of(key).expect("the key is accepted");
    assert!(granted.read && granted.write);
    assert!(keys.scopes_of("lk_other").is_none());
    // A second key is another key.
    let again = lead(dir.path(), &["api-key", "create"]);
    assert!(!text(&again.stdout).contains(key));
    assert!(
        text(&again.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .ends_with(":read")
    );

    let bad = lead(dir.path(), &["api-key", "create", "--scopes", "admin"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("--scopes"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn jobs_are_listed_and_run_by_the_servers_runner() {
    let dir = tempfile::tempdir().unwrap();
    let list = lead(dir.path(), &["jobs", "list"]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let listed = text(&list.stdout);
    for job in ["lead_deduplication", "lead_notifications", "housekeeping"] {
        assert!(listed.contains(job), "{listed}");
    }
    let run = lead(dir.path(), &["jobs", "run", "lead_deduplication"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(text(&run.stdout).contains("lead_deduplication succeeded"));
    // The run is recorded where the server keeps its runs.
    let json = lead(dir.path(), &["jobs", "list", "--json"]);
    let views: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let dedup = views
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "lead_deduplication")
        .unwrap();
    assert_eq!(dedup["last_run"]["status"], "succeeded", "{dedup}");

    let unknown = lead(dir.path(), &["jobs", "run", "no_such_job"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no job \"no_such_job\""));
}

#[test]
fn every_command_has_help_with_an_example() {
    let dir = tempfile::tempdir().unwrap();
    for command in [
        &["import", "--help"][..],
        &["export", "--help"],
        &["dedup", "--help"],
        &["api-key", "create", "--help"],
        &["migrate", "--help"],
        &["jobs", "list", "--help"],
        &["jobs", "run", "--help"],
        &["score", "--help"],
        &["--help"],
    ] {
        let out = lead(dir.path(), command);
        assert!(out.status.success(), "{command:?}");
        let help = text(&out.stdout);
        assert!(
            help.contains("Example"),
            "{command:?} has no example:\n{help}"
        );
    }
    // No command, or an unknown option: usage, exit 2.
    assert_eq!(lead(dir.path(), &[]).status.code(), Some(2));
    assert_eq!(
        lead(dir.path(), &["import", "x.csv", "--frobnicate"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn usage_and_configuration_errors_exit_2_naming_the_file_or_option() {
    let dir = tempfile::tempdir().unwrap();
    let missing = lead(dir.path(), &["import", "nowhere.csv"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("nowhere.csv"));

    std::fs::write(dir.path().join("leads.dat"), "email\na@b.com\n").unwrap();
    let unknown = lead(dir.path(), &["import", "leads.dat"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("--format"));

    std::fs::write(dir.path().join("empty.csv"), ",,\n").unwrap();
    let headless = lead(dir.path(), &["import", "empty.csv"]);
    assert_eq!(headless.status.code(), Some(2));
    assert!(text(&headless.stderr).contains("name the columns"));

    let stage = lead(dir.path(), &["export", "--stage", "dreaming"]);
    assert_eq!(stage.status.code(), Some(2));
    assert!(text(&stage.stderr).contains("--stage"));

    let map = lead(
        dir.path(),
        &[
            "import",
            "leads.dat",
            "--format",
            "csv",
            "--map",
            "email=colour",
        ],
    );
    assert_eq!(map.status.code(), Some(2));
    assert!(text(&map.stderr).contains("\"colour\" is not a lead field"));

    let xlsx = lead(dir.path(), &["export", "--format", "xlsx"]);
    assert_eq!(xlsx.status.code(), Some(2));
    assert!(text(&xlsx.stderr).contains("--output"));

    let bad_config = assert_cmd::Command::cargo_bin("lead")
        .unwrap()
        .env_clear()
        .env("DATABASE_URL", "sqlite://leads.db")
        .env("LEAD_POLICY", dir.path().join("nope.toml"))
        .current_dir(dir.path())
        .args(["export"])
        .output()
        .unwrap();
    assert_eq!(bad_config.status.code(), Some(2));
    assert!(text(&bad_config.stderr).contains("LEAD_POLICY"));
}

#[test]
fn json_lines_rows_are_numbered_by_line_and_numbers_read_as_text() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leads.jsonl"),
        "{\"email\":\"a@acme.com\",\"company_size\":250}\nnot json\n\n{\"Email Address\":\"b@beta.io\",\"budget\":5000}\n[]\n",
    )
    .unwrap();
    let out = lead(dir.path(), &["import", "leads.jsonl"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let errors = std::fs::read_to_string(dir.path().join("leads.jsonl.errors.csv")).unwrap();
    let rows: Vec<&str> = errors
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(rows, ["2", "5"], "{errors}");
    assert!(errors.contains("unreadable_row"));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("created                    2"), "{stdout}");
    let export = lead(dir.path(), &["export", "--format", "jsonl"]);
    let exported = text(&export.stdout);
    assert!(exported.contains("\"company_size\":250"), "{exported}");
    assert!(exported.contains("\"budget\":\"5000\""), "{exported}");

    // An error file of an earlier run is not left behind by a clean one,
    // but a file that is no error file is never removed.
    std::fs::write(dir.path().join("ok.jsonl"), "{\"email\":\"c@cat.com\"}\n").unwrap();
    std::fs::write(
        dir.path().join("ok.jsonl.errors.csv"),
        "row,status,column,field,code,reason,value\n2,refused,,,,,\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("mine.csv"), "precious\n").unwrap();
    let clean = lead(dir.path(), &["import", "ok.jsonl"]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean.stderr));
    assert!(!dir.path().join("ok.jsonl.errors.csv").exists());
    let kept = lead(dir.path(), &["import", "ok.jsonl", "--errors", "mine.csv"]);
    assert_eq!(kept.status.code(), Some(0), "{}", text(&kept.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mine.csv")).unwrap(),
        "precious\n"
    );
}

#[test]
fn score_reports_a_rule_set_on_a_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leads.csv"),
        "Email Address,fname,utm_source,utm_medium,won\n\
         ana@acme.com,Ana,google,organic,1\n\
         bob@beta.io,,,,0\n\
         not-an-email,,,,0\n",
    )
    .unwrap();
    let out = lead(
        dir.path(),
        &["score", "--input", "leads.csv", "--converted", "won"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("leads: 3 (1 invalid, skipped)"), "{report}");
    assert!(report.contains("AUC: 1.000"), "{report}");
    let missing = lead(dir.path(), &["score", "--input", "nope.csv"]);
    assert_eq!(missing.status.code(), Some(2));
}
