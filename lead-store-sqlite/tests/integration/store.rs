//! What the SQLite store adds to the shared contract: outages answer
//! `Unavailable`, data survives restarts, migrations run once, and the
//! projection tables follow the leads they come from.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use lead_core::LeadReads;
use lead_core::{
    ChangeOrigin, Commit, CrmKind, CrmLink, Deps, Destination, Email, Error, Lead, LeadInput,
    LeadStore, ManualClock, OutboxStore, Policy, SequentialIds, Stage, SyncState, usecase,
};
use lead_store_sqlite::{SqliteConfig, SqliteStore};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0)
        .single()
        .expect("valid instant")
}

fn deps(store: &SqliteStore) -> Deps {
    Deps::with(
        Arc::new(store.clone()),
        Arc::new(ManualClock::new(t0())),
        Arc::new(SequentialIds::default()),
    )
}

fn form(email: &str) -> LeadInput {
    LeadInput {
        email: Some(email.into()),
        first_name: Some("Jürgen".into()),
        last_name: Some("Müller".into()),
        company: Some("Acme GmbH".into()),
        source: Some("web".into()),
        ..Default::default()
    }
}

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::connect(&SqliteConfig::from_url(path.to_string_lossy().into_owned()))
        .await
        .expect("connect")
}

/// Counts rows of a projection table for one lead, over a separate connection.
async fn rows(path: &Path, table: &str, lead: &str) -> i64 {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .expect("inspect connection");
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE lead = ?");
    let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(lead)
        .fetch_one(&mut conn)
        .await
        .expect("count rows");
    conn.close().await.expect("close");
    n
}

#[tokio::test]
async fn connecting_to_a_file_in_a_missing_directory_is_unavailable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}",
        dir.path().join("no/such/dir/leads.db").display()
    );
    let err = SqliteStore::from_url(&url)
        .await
        .expect_err("the directory does not exist");
    assert!(matches!(err, Error::Unavailable(..)), "{err:?}");
    assert!(err.is_temporary());
}

#[tokio::test]
async fn a_malformed_url_is_invalid_configuration() {
    let err = SqliteStore::from_url("sqlite://x.db?mode=sideways")
        .await
        .expect_err("unknown mode");
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
}

#[tokio::test]
async fn a_closed_store_answers_unavailable_and_never_succeeds_silently() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir.path().join("leads.db")).await;
    store.close().await;

    let err = usecase::capture(&form("ana@acme.de"), &Policy::default(), &deps(&store))
        .await
        .expect_err("the store is closed");
    assert!(matches!(err, Error::Unavailable(..)), "{err:?}");
    assert!(err.is_temporary());
    let err = store
        .pending_count(&Destination::CRM)
        .await
        .expect_err("closed");
    assert!(err.is_temporary(), "{err:?}");
    let err = store.watermark("x").await.expect_err("closed");
    assert!(err.is_temporary(), "{err:?}");
}

#[tokio::test]
async fn leads_survive_closing_and_reopening_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("leads.db");
    let store = open(&path).await;
    let lead = usecase::capture(&form("ana@acme.de"), &Policy::default(), &deps(&store))
        .await
        .expect("capture")
        .lead;
    store
        .set_watermark("salesforce.pull", "w-1")
        .await
        .expect("watermark");
    let pending = store
        .pending_count(&Destination::CRM)
        .await
        .expect("pending");
    store.close().await;
    drop(store);

    let reopened = open(&path).await;
    assert_eq!(
        reopened.get(&lead.ext_id).await.expect("get"),
        Some(lead),
        "the lead reads back exactly after a restart"
    );
    assert_eq!(
        reopened
            .pending_count(&Destination::CRM)
            .await
            .expect("pending"),
        pending
    );
    assert!(pending > 0, "capture queued CRM pushes");
    assert_eq!(
        reopened
            .watermark("salesforce.pull")
            .await
            .expect("get")
            .as_deref(),
        Some("w-1")
    );
}

#[tokio::test]
async fn connecting_twice_to_one_file_applies_migrations_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("leads.db");
    let first = open(&path).await;
    let second = open(&path).await;
    second
        .set_watermark("w", "1")
        .await
        .expect("the second handle works");
    assert_eq!(
        first.watermark("w").await.expect("get").as_deref(),
        Some("1")
    );
    first.close().await;
    second.close().await;
    let third = open(&path).await;
    assert_eq!(
        third.watermark("w").await.expect("get").as_deref(),
        Some("1")
    );
}

#[tokio::test]
async fn rewriting_a_lead_replaces_its_history_events_and_links_instead_of_duplicating_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("leads.db");
    let store = open(&path).await;
    let d = deps(&store);
    let policy = Policy::default();
    let lead = usecase::capture(&form("ana@acme.de"), &policy, &d)
        .await
        .expect("capture")
        .lead;
    let lead = usecase::change_stage(
        &lead.ext_id,
        Stage::Contacted,
        None,
        ChangeOrigin::Local,
        None,
        &policy,
        &d,
    )
    .await
    .expect("stage");
    let mut linked: Lead = lead.clone();
    linked.crm_links.push(CrmLink {
        crm: CrmKind::Pipedrive,
        object: "person".into(),
        id: "42".into(),
    });
    let written = store
        .commit(Commit::new().write(linked.clone(), Some(linked.version)))
        .await
        .expect("link");
    let mut again = written[0].clone();
    again.fields.company = Some("Acme AG".into());
    store
        .commit(Commit::new().write(again.clone(), Some(again.version)))
        .await
        .expect("rewrite");

    let id = lead.ext_id.as_str();
    assert_eq!(rows(&path, "stage_history", id).await, 1);
    assert_eq!(rows(&path, "crm_links", id).await, 1);
    assert_eq!(
        rows(&path, "lead_events", id).await,
        i64::try_from(lead.events.len()).expect("small")
    );
    assert_eq!(
        store
            .find_by_crm_link(&CrmLink {
                crm: CrmKind::Pipedrive,
                object: "person".into(),
                id: "42".into(),
            })
            .await
            .expect("by link")
            .map(|l| l.ext_id),
        Some(lead.ext_id)
    );
}

#[tokio::test]
async fn two_leads_may_trade_addresses_in_one_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir.path().join("leads.db")).await;
    let d = deps(&store);
    let policy = Policy::default();
    let a = usecase::capture(&form("ana@acme.de"), &policy, &d)
        .await
        .expect("capture a")
        .lead;
    let b = usecase::capture(&form("ben@acme.de"), &policy, &d)
        .await
        .expect("capture b")
        .lead;
    let (mut a2, mut b2) = (a.clone(), b.clone());
    std::mem::swap(&mut a2.fields.email, &mut b2.fields.email);
    store
        .commit(
            Commit::new()
                .write(a2, Some(a.version))
                .write(b2, Some(b.version)),
        )
        .await
        .expect("a swap leaves every address with one lead");
    let holder = store
        .find_by_email_key("ana@acme.de")
        .await
        .expect("find")
        .map(|l| l.ext_id);
    assert_eq!(holder, Some(b.ext_id));

    let mut clash = a.clone();
    clash.ext_id = lead_core::LeadExtId::from_random(5);
    clash.fields.email = Email::parse("ANA@acme.de").expect("valid");
    let err = store
        .commit(Commit::new().write(clash, None))
        .await
        .expect_err("the address is taken");
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
}

#[tokio::test]
async fn an_in_memory_database_is_one_database_for_the_whole_pool() {
    let store = SqliteStore::from_url("sqlite::memory:")
        .await
        .expect("in-memory store");
    let lead = usecase::capture(&form("ana@acme.de"), &Policy::default(), &deps(&store))
        .await
        .expect("capture")
        .lead;
    let reads = read_concurrently(&store, &lead).await;
    assert!(
        reads.iter().all(|found| *found),
        "every connection sees the lead"
    );
}

/// Reads the lead over several connections at once.
async fn read_concurrently(store: &SqliteStore, lead: &Lead) -> Vec<bool> {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, id) = (store.clone(), lead.ext_id.clone());
        tasks.push(tokio::spawn(async move {
            store.get(&id).await.expect("get").is_some()
        }));
    }
    let mut found = Vec::new();
    for task in tasks {
        found.push(task.await.expect("task"));
    }
    found
}
