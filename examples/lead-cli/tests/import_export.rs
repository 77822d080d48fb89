//! `lead import` and `lead export`, run as the real binary against a fresh
//! SQLite file and a fresh PostgreSQL database (the server of
//! `DATABASE_URL`, as `.ci/with-postgres` starts it: required, never
//! skipped).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Map, Value};
use sqlx::Connection;

/// The fixture: rows 2-10 of a sales-ops spreadsheet.
///
/// | row | what | expected |
/// | --- | --- | --- |
/// | 2 | Ana, phone with spaces | created |
/// | 3 | Bob, phone "not a phone" | created, kept with a warning |
/// | 4 | "not-an-email" | refused (invalid_email) |
/// | 5 | Ana again, upper-case e-mail | merged into row 2's lead |
/// | 6 | no e-mail | refused (required) |
/// | 7 | Dan | created |
/// | 8 | Eve, notes `=HYPERLINK(…)` | created |
/// | 9 | Dan again, same e-mail | merged into row 7's lead |
/// | 10 | Fay | created |
const FIXTURE: &str = "\
Email Address,First Name,Last Name,Phone,Company,Notes,Vendor Id
ana@acme.com,Ana,Lopez,+34 612 345 678,Acme,first visit,V1
bob@beta.io,Bob,Smith,not a phone,Beta,,V2
not-an-email,Carl,,,,,V3
ANA@ACME.COM,Ana,López,,Acme SL,second visit,V4
,,NoEmail,,,,V5
dan@delta.com,Dan,Brown,,Delta,,V6
eve@echo.org,Eve,Stone,,Echo,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\",V7
dan@delta.com,Daniel,Brown,,Delta Inc,,V8
fay@fox.net,Fay,Green,,Fox,,V9
";

const FIXTURE_EMAILS: [&str; 5] = [
    "ana@acme.com",
    "bob@beta.io",
    "dan@delta.com",
    "eve@echo.org",
    "fay@fox.net",
];

/// A store for one test: a SQLite file in a temporary directory, or a
/// fresh PostgreSQL database dropped at the end.
struct TestStore {
    url: String,
    dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl TestStore {
    fn sqlite() -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        let url = common::sqlite_url(dir.path());
        TestStore {
            url,
            dir,
            postgres: None,
        }
    }

    async fn postgres(label: &str) -> TestStore {
        let admin = match std::env::var("DATABASE_URL") {
            Ok(url) if url.starts_with("postgres") => url,
            _ => panic!(
                "DATABASE_URL does not name a PostgreSQL server: run through .ci/with-postgres (the README's test command)"
            ),
        };
        let name = format!("cli_{label}_{}", uuid_suffix());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("admin connection");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let url = lead_store_postgres::url_with_database(&admin, &name);
        TestStore {
            url,
            dir: tempfile::tempdir().unwrap(),
            postgres: Some((admin, name)),
        }
    }

    async fn drop_database(self) {
        if let Some((admin, name)) = &self.postgres {
            let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `lead ARGS` on this store, in its directory, with nothing of
    /// this process's environment but the store.
    fn lead(&self, args: &[&str]) -> Output {
        common::lead_at(self.dir.path(), Some(&self.url), args)
    }

    /// Every lead, as `lead export --format jsonl` writes it, by e-mail.
    fn leads(&self) -> BTreeMap<String, Map<String, Value>> {
        common::exported(&self.lead(&["export", "--format", "jsonl"]))
    }
}

fn uuid_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}_{nanos}", std::process::id())
}

use common::{count, text};

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// Creates, merges and refuses exactly the fixture's rows, writes the
/// error file, and a second run creates nothing.
fn import_twice(store: &TestStore) {
    write(store.dir.path(), "leads.csv", FIXTURE);
    let dry = store.lead(&["import", "leads.csv", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(1), "{}", text(&dry.stderr));
    assert_eq!(count(&dry, "created"), 5);
    assert_eq!(count(&dry, "merged"), 2);
    assert_eq!(count(&dry, "refused"), 2);
    assert!(store.leads().is_empty(), "a dry run stored leads");

    let first = store.lead(&["import", "leads.csv"]);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stderr));
    assert_eq!(count(&first, "created"), 5);
    assert_eq!(count(&first, "merged"), 2);
    assert_eq!(count(&first, "already imported"), 0);
    assert_eq!(count(&first, "refused"), 2);
    assert_eq!(count(&first, "kept with warnings"), 1);
    let errors = std::fs::read_to_string(store.path("leads.csv.errors.csv")).unwrap();
    let lines: Vec<&str> = errors.lines().collect();
    assert_eq!(
        lines,
        [
            "row,status,column,field,code,reason,value",
            "3,kept_with_warning,Phone,phone,invalid_phone,phone is not a valid number,not a phone",
            "4,refused,Email Address,email,invalid_email,email is not a valid address,not-an-email",
            "6,refused,Email Address,email,required,email is required,",
        ],
        "{errors}"
    );
    let leads = store.leads();
    assert_eq!(leads.keys().cloned().collect::<Vec<_>>(), FIXTURE_EMAILS);
    // The merge kept both visits' values as the survivorship rules say;
    // the columns no field takes are in the metadata.
    assert_eq!(leads["bob@beta.io"]["phone"], "not a phone");
    assert_eq!(leads["eve@echo.org"]["metadata"]["Vendor Id"], "V7");
    assert_eq!(
        leads["eve@echo.org"]["message"],
        "=HYPERLINK(\"http://evil.example\",\"click\")"
    );

    let again = store.lead(&["import", "leads.csv"]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again.stderr));
    assert_eq!(count(&again, "created"), 0);
    assert_eq!(count(&again, "merged"), 0);
    assert_eq!(count(&again, "already imported"), 7);
    assert_eq!(count(&again, "refused"), 2);
    let after = store.leads();
    assert_eq!(after, leads, "a second import changed the leads");
    let dry_again = store.lead(&["import", "leads.csv", "--dry-run"]);
    assert_eq!(count(&dry_again, "created"), 0);
    assert_eq!(count(&dry_again, "already imported"), 7);

    // The same file read another way is another import: its rows merge
    // into the leads by e-mail, nothing is created twice.
    let remapped = store.lead(&["import", "leads.csv", "--map", "Vendor Id=-"]);
    assert_eq!(
        remapped.status.code(),
        Some(1),
        "{}",
        text(&remapped.stderr)
    );
    assert_eq!(count(&remapped, "created"), 0);
    assert_eq!(count(&remapped, "merged"), 7);
    assert_eq!(store.leads().len(), 5);
}

#[test]
fn sqlite_import_creates_merges_and_refuses_exactly_and_a_rerun_creates_nothing() {
    import_twice(&TestStore::sqlite());
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_import_creates_merges_and_refuses_exactly_and_a_rerun_creates_nothing() {
    let store = TestStore::postgres("twice").await;
    let store = tokio::task::spawn_blocking(move || {
        import_twice(&store);
        store
    })
    .await
    .unwrap();
    store.drop_database().await;
}

/// What an import reads back from an export: the lead's own fields and
/// what the rules concluded from them.
fn comparable(leads: &BTreeMap<String, Map<String, Value>>) -> Vec<Map<String, Value>> {
    let skip = ["ext_id", "created_at", "updated_at"];
    leads
        .values()
        .map(|lead| {
            lead.iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .collect()
}

fn round_trip(from: &TestStore, to: &TestStore, format: &str) {
    let name = format!("export.{format}");
    let out = from.lead(&["export", "--output", &name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let exported = from.path(&name);
    let copy = to.path(&name);
    std::fs::copy(&exported, &copy).unwrap();
    let import = to.lead(&["import", &name]);
    assert_eq!(import.status.code(), Some(0), "{}", text(&import.stderr));
    assert_eq!(count(&import, "created"), 5);
    assert_eq!(count(&import, "refused"), 0);
    assert_eq!(count(&import, "kept with warnings"), 1);
    assert_eq!(
        comparable(&to.leads()),
        comparable(&from.leads()),
        "{format}"
    );
}

fn export_round_trips(from: &TestStore, csv_to: &TestStore, xlsx_to: &TestStore) {
    write(from.dir.path(), "leads.csv", FIXTURE);
    let out = from.lead(&["import", "leads.csv"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));

    let csv = from.lead(&["export", "--output", "all.csv"]);
    assert!(csv.status.success(), "{}", text(&csv.stderr));
    let written = std::fs::read_to_string(from.path("all.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(written.as_bytes());
    let cells: Vec<String> = reader
        .records()
        .flat_map(|r| r.unwrap().iter().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert!(
        cells
            .iter()
            .any(|c| c == "'=HYPERLINK(\"http://evil.example\",\"click\")"),
        "{written}"
    );
    assert!(cells.iter().any(|c| c == "'+34612345678"), "{written}");
    let risky = ['=', '+', '-', '@', '\t', '\r'];
    assert!(
        !cells.iter().any(|c| c.starts_with(risky)),
        "a cell a spreadsheet would run: {written}"
    );

    round_trip(from, csv_to, "csv");
    round_trip(from, xlsx_to, "xlsx");
}

#[test]
fn sqlite_export_round_trips_through_import_in_csv_and_xlsx_with_formulas_neutralised() {
    let (a, b, c) = (
        TestStore::sqlite(),
        TestStore::sqlite(),
        TestStore::sqlite(),
    );
    export_round_trips(&a, &b, &c);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_export_round_trips_through_import_in_csv_and_xlsx() {
    let a = TestStore::postgres("rt_a").await;
    let b = TestStore::postgres("rt_b").await;
    let c = TestStore::postgres("rt_c").await;
    let (a, b, c) = tokio::task::spawn_blocking(move || {
        export_round_trips(&a, &b, &c);
        (a, b, c)
    })
    .await
    .unwrap();
    for store in [a, b, c] {
        store.drop_database().await;
    }
}

/// `rows` leads, every tenth one a repeat of the e-mail five rows before:
/// the file and its number of distinct e-mails.
fn big_file(dir: &Path, rows: usize) -> (PathBuf, u64) {
    let mut text = String::from("email,first_name,last_name,company\n");
    let mut distinct = 0;
    for i in 0..rows {
        let j = if i % 10 == 9 { i - 5 } else { i };
        if j == i {
            distinct += 1;
        }
        text.push_str(&format!(
            "person{j}@company{}.com,First{j},Last{j},Company {}\n",
            j % 97,
            j % 97
        ));
    }
    (write(dir, "big.csv", &text), distinct)
}

/// Leads stored, read straight from the database while an import writes.
async fn stored(url: &str) -> i64 {
    let query = "SELECT count(*) FROM leads";
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=ro"))
            .await
            .unwrap();
        sqlx::query_scalar(query)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(query)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }
}

/// How an import is stopped.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    /// SIGKILL: no checkpoint written at the end, rows in flight lost.
    Kill,
    /// SIGINT (Ctrl-C): rows in flight finished, checkpoint saved.
    Interrupt,
}

async fn interrupted_import_resumes_without_twins(store: &TestStore, stop: Stop) {
    const ROWS: usize = 3_000;
    let (_, distinct) = big_file(store.dir.path(), ROWS);
    let migrated = store.lead(&["migrate"]);
    assert!(migrated.status.success(), "{}", text(&migrated.stderr));
    assert!(text(&migrated.stdout).contains("schema at migration"));
    assert_eq!(stored(&store.url).await, 0);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("lead"))
        .env_clear()
        .env("DATABASE_URL", &store.url)
        .current_dir(store.dir.path())
        .args(["import", "big.csv"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the import is under way: some leads stored, the file far
    // from done (polled, with a deadline).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import finished before it could be stopped: make the file bigger"
        );
        if stored(&store.url).await >= 100 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no lead stored in 120 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    match stop {
        Stop::Kill => child.kill().unwrap(),
        Stop::Interrupt => {
            let sent = std::process::Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(sent.success());
        }
    }
    let stopped = child.wait_with_output().unwrap();
    let before = stored(&store.url).await;
    assert!(
        before > 0 && (before as u64) < distinct,
        "{before} of {distinct}"
    );
    if stop == Stop::Interrupt {
        assert_eq!(stopped.status.code(), Some(1));
        assert!(
            text(&stopped.stderr).contains("interrupted"),
            "{}",
            text(&stopped.stderr)
        );
    }

    let url = store.url.clone();
    let dir = store.dir.path().to_owned();
    let resumed = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("lead")
            .unwrap()
            .env_clear()
            .env("DATABASE_URL", &url)
            .current_dir(dir)
            .args(["import", "big.csv"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    if stop == Stop::Interrupt {
        // Ctrl-C saved where it stopped: the rerun starts there.
        assert!(
            text(&resumed.stderr).contains("an earlier run of this file finished its first"),
            "{}",
            text(&resumed.stderr)
        );
    }
    let rows = count(&resumed, "created")
        + count(&resumed, "merged")
        + count(&resumed, "already imported");
    assert_eq!(rows, ROWS as u64);
    assert!(count(&resumed, "already imported") > 0);
    assert_eq!(
        stored(&store.url).await as u64,
        distinct,
        "twins after resuming"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_import_killed_mid_file_resumes_without_twins() {
    interrupted_import_resumes_without_twins(&TestStore::sqlite(), Stop::Kill).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_import_interrupted_by_ctrl_c_saves_its_place_and_resumes() {
    interrupted_import_resumes_without_twins(&TestStore::sqlite(), Stop::Interrupt).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_import_killed_mid_file_resumes_without_twins() {
    let store = TestStore::postgres("kill").await;
    interrupted_import_resumes_without_twins(&store, Stop::Kill).await;
    store.drop_database().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_import_interrupted_by_ctrl_c_saves_its_place_and_resumes() {
    let store = TestStore::postgres("int").await;
    interrupted_import_resumes_without_twins(&store, Stop::Interrupt).await;
    store.drop_database().await;
}
