//! `lead dedup`, run as the real binary: on a file with known duplicates
//! and a truth column (no database), and on a fresh SQLite store.

use std::path::Path;
use std::process::Output;

/// Leads with known duplicates; `person` is the truth.
///
/// | rows | person | what | found? |
/// | --- | --- | --- | --- |
/// | 2, 3 | p1 | the same e-mail up to case and a `+tag` | yes |
/// | 4, 5 | p2 | Bob / Robert, another e-mail, the same phone written two ways | yes |
/// | 6, 7 | p3 | the same name, nothing else in common | no (nothing tells them from namesakes) |
/// | 8, 9 | p4, p5 | two people sharing one family mailbox | yes: a wrong pair |
/// | 10 | (empty) | a person of its own | no |
///
/// So 3 true pairs (p1, p2, p3), 3 pairs found of which 2 right:
/// precision 2/3, recall 2/3, F1 2/3, for pairs and clusters alike.
const LEADS: &str = "\
email,first_name,last_name,phone,company,country,person
ana.lopez@gmail.com,Ana,López,+34 611 222 333,Acme SL,ES,p1
Ana.Lopez+promo@GMAIL.com,Ana,Lopez,,Acme,ES,p1
robert.smith@initech.com,Robert,Smith,+1 415 555 0100,Initech,US,p2
bob.smith@outlook.com,Bob,Smith,(415) 555-0100,,US,p2
carol.jones@globex.com,Carol,Jones,+44 20 7946 0958,Globex,GB,p3
cj1987@yahoo.com,Carol,Jones,,,GB,p3
home@taylor-family.net,Sam,Taylor,,,US,p4
home@taylor-family.net,Alex,Taylor,,,US,p5
dave@example.org,Dave,Brown,+1 212 555 0199,Umbrella,US,
";

mod common;

use common::{count_in as count, text};

fn lead(dir: &Path, args: &[&str]) -> Output {
    common::lead_at(dir, None, args)
}

/// The numbers of a quality line (`  pairwise  precision P  recall R  F1 F  (...)`).
fn quality_line(stdout: &str, what: &str) -> [f64; 3] {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(what))
        .unwrap_or_else(|| panic!("no {what} line in:\n{stdout}"));
    let number = |label: &str| -> f64 {
        let rest = &line[line.find(label).unwrap_or_else(|| panic!("{line}")) + label.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    [number("precision "), number("recall "), number("F1 ")]
}

#[test]
fn dedup_of_a_file_clusters_the_known_duplicates_and_scores_them_against_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leads.csv"), LEADS).unwrap();

    let out = lead(
        dir.path(),
        &[
            "dedup",
            "--input",
            "leads.csv",
            "--output",
            "clusters.csv",
            "--pairs",
            "pairs.csv",
            "--truth",
            "person",
        ],
    );

    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert_eq!(count(&stdout, "rows read"), 9, "{stdout}");
    assert_eq!(count(&stdout, "refused"), 0);
    assert_eq!(count(&stdout, "pairs found"), 3);
    assert_eq!(count(&stdout, "clusters"), 3);
    let clusters = std::fs::read_to_string(dir.path().join("clusters.csv")).unwrap();
    let lines: Vec<&str> = clusters.lines().collect();
    assert_eq!(
        lines,
        [
            "cluster,row,email,first_name,last_name,phone,company,person",
            "1,2,ana.lopez@gmail.com,Ana,López,'+34 611 222 333,Acme SL,p1",
            "1,3,Ana.Lopez+promo@GMAIL.com,Ana,Lopez,,Acme,p1",
            "2,4,robert.smith@initech.com,Robert,Smith,'+1 415 555 0100,Initech,p2",
            "2,5,bob.smith@outlook.com,Bob,Smith,(415) 555-0100,,p2",
            "3,8,home@taylor-family.net,Sam,Taylor,,,p4",
            "3,9,home@taylor-family.net,Alex,Taylor,,,p5",
        ],
        "{clusters}"
    );
    let pairs = std::fs::read_to_string(dir.path().join("pairs.csv")).unwrap();
    let rows: Vec<(&str, &str)> = pairs
        .lines()
        .skip(1)
        .map(|l| {
            let mut cells = l.split(',');
            (cells.next().unwrap(), cells.next().unwrap())
        })
        .collect();
    assert_eq!(rows, [("2", "3"), ("4", "5"), ("8", "9")], "{pairs}");
    // By hand: 3 true pairs, 3 found, 2 of them right.
    let two_thirds = 2.0 / 3.0;
    for what in ["pairwise", "by cluster"] {
        let [p, r, f1] = quality_line(&stdout, what);
        for (got, want) in [(p, two_thirds), (r, two_thirds), (f1, two_thirds)] {
            assert!(
                (got - want).abs() < 5e-5,
                "{what}: {got} for {want}\n{stdout}"
            );
        }
    }
    assert!(stdout.contains("(right 2, wrong 1, missed 1)"), "{stdout}");
}

#[test]
fn a_missing_truth_column_is_a_usage_error_naming_it_and_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leads.csv"), LEADS).unwrap();

    let out = lead(
        dir.path(),
        &["dedup", "--input", "leads.csv", "--truth", "person_id"],
    );

    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("\"person_id\""), "{stderr}");
    assert!(
        stderr.contains("email, first_name, last_name, phone, company, country, person"),
        "{stderr}"
    );
}

#[test]
fn a_jsonl_file_without_the_truth_field_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leads.jsonl"),
        "{\"email\":\"a@x.com\",\"id\":1}\n{\"email\":\"b@y.com\",\"id\":2}\n",
    )
    .unwrap();

    let out = lead(
        dir.path(),
        &["dedup", "--input", "leads.jsonl", "--truth", "person"],
    );

    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("\"person\"") && stderr.contains("email, id"),
        "{stderr}"
    );
}

#[test]
fn a_row_with_a_bad_email_is_reported_with_its_row_number_and_the_rest_compared() {
    let dir = tempfile::tempdir().unwrap();
    let file = LEADS.replace("robert.smith@initech.com", "robert.smith@@initech");
    std::fs::write(dir.path().join("leads.csv"), file).unwrap();

    let out = lead(
        dir.path(),
        &["dedup", "--input", "leads.csv", "--output", "clusters.csv"],
    );

    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("leads.csv, row 4: refused: email:")
            && stderr.contains("\"robert.smith@@initech\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 of 9 rows of leads.csv refused"),
        "{stderr}"
    );
    assert_eq!(count(&stdout, "refused"), 1, "{stdout}");
    assert_eq!(count(&stdout, "leads compared"), 8);
    // Bob alone no longer has a duplicate; Ana's and the mailbox's remain.
    assert_eq!(count(&stdout, "pairs found"), 2, "{stdout}");
    let clusters = std::fs::read_to_string(dir.path().join("clusters.csv")).unwrap();
    let rows: Vec<&str> = clusters
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(rows, ["2", "3", "8", "9"], "{clusters}");
}

#[test]
fn apply_with_an_input_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = lead(dir.path(), &["dedup", "--input", "leads.csv", "--apply"]);
    assert_eq!(out.status.code(), Some(2));
    let out = lead(dir.path(), &["dedup", "--truth", "person"]);
    assert_eq!(out.status.code(), Some(2), "--truth needs --input");
}

#[test]
fn the_help_shows_an_example() {
    let dir = tempfile::tempdir().unwrap();
    let out = lead(dir.path(), &["dedup", "--help"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "Example:\n  lead dedup --input leads.csv --output clusters.csv --truth person_id"
        ),
        "{stdout}"
    );
}

fn on_store(dir: &Path, args: &[&str]) -> Output {
    common::lead_at(dir, Some(&common::sqlite_url(dir)), args)
}

#[test]
fn dedup_of_an_empty_store_reports_no_leads_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();

    let out = on_store(dir.path(), &["dedup", "--output", "clusters.csv"]);

    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert_eq!(count(&stdout, "leads compared"), 0, "{stdout}");
    assert_eq!(count(&stdout, "pairs found"), 0);
    assert!(stdout.contains("nothing was changed"), "{stdout}");
    let clusters = std::fs::read_to_string(dir.path().join("clusters.csv")).unwrap();
    assert_eq!(clusters, "cluster,ext_id,email\n");
}

#[test]
fn dedup_apply_on_an_empty_store_reports_the_scan() {
    let dir = tempfile::tempdir().unwrap();

    let out = on_store(dir.path(), &["dedup", "--apply"]);

    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert_eq!(count(&stdout, "leads compared"), 0, "{stdout}");
    assert_eq!(count(&stdout, "merged"), 0);
    assert_eq!(count(&stdout, "marked for review"), 0);
}

/// `lead dedup --input` with `LEAD_CONFIG` naming `LEAD_POLICY`: the
/// file is read with the server's policy, not the built-in one.
fn lead_with_policy(dir: &Path, args: &[&str]) -> Output {
    std::fs::write(dir.join("lead.env"), "LEAD_POLICY = \"policy.toml\"\n").unwrap();
    assert_cmd::Command::cargo_bin("lead")
        .unwrap()
        .env_clear()
        .env("LEAD_CONFIG", dir.join("lead.env"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn dedup_of_a_file_reads_it_with_the_servers_field_aliases() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leads.csv"),
        "contact_mail,first_name,person\n\
         ana@acme.com,Ana,p1\n\
         ANA@acme.com,Ana,p1\n\
         bo@initech.com,Bo,p2\n",
    )
    .unwrap();
    let args = ["dedup", "--input", "leads.csv", "--truth", "person"];

    // The built-in map does not know `contact_mail`: no row has an e-mail.
    let out = lead(dir.path(), &args);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(count(&stdout, "refused"), 3, "{stdout}");

    std::fs::write(
        dir.path().join("policy.toml"),
        "[field_aliases]\ncontact_mail = \"email\"\n",
    )
    .unwrap();
    let out = lead_with_policy(dir.path(), &args);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert_eq!(count(&stdout, "rows read"), 3, "{stdout}");
    assert_eq!(count(&stdout, "refused"), 0, "{stdout}");
    assert_eq!(count(&stdout, "pairs found"), 1, "{stdout}");
    let [p, r, f1] = quality_line(&stdout, "pairwise");
    assert_eq!([p, r, f1], [1.0, 1.0, 1.0], "{stdout}");
}

#[test]
fn dedup_of_a_file_with_a_broken_policy_is_a_configuration_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leads.csv"), LEADS).unwrap();
    std::fs::write(
        dir.path().join("policy.toml"),
        "[field_aliases]\ncontact_mail = \"no_such_field\"\n",
    )
    .unwrap();
    let out = lead_with_policy(dir.path(), &["dedup", "--input", "leads.csv"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("LEAD_POLICY (policy.toml)"), "{stderr}");
    assert!(
        stderr.contains("`no_such_field` (for `contact_mail`)"),
        "{stderr}"
    );
}
