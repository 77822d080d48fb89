//! What the PostgreSQL store adds to the shared contract: outages answer
//! `Unavailable`, several instances share one database safely (outbox,
//! leases, idempotency keys, captures), migrations run once, and the
//! projection tables follow the leads they come from.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::TestDb;
use chrono::{DateTime, TimeZone, Utc};
use lead_core::LeadReads;
use lead_core::{
    ChangeOrigin, Commit, CrmKind, CrmLink, Deps, Destination, Email, Error, IdempotencyKey, Lead,
    LeadInput, LeadStore, ManualClock, OutboxEntry, OutboxKind, OutboxStore, Policy, RandomIds,
    SequentialIds, Stage, SyncState, usecase,
};
use lead_store_postgres::{PostgresConfig, PostgresStore};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0)
        .single()
        .expect("valid instant")
}

fn deps(store: Arc<PostgresStore>) -> Deps {
    Deps::with(
        store,
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

/// `n` instances (pools) over one database, as `n` server instances would be.
async fn instances(db: &TestDb, n: usize) -> Vec<Arc<PostgresStore>> {
    let mut stores = Vec::with_capacity(n);
    for _ in 0..n {
        stores.push(db.store().await);
    }
    stores
}

async fn rows(db: &TestDb, table: &str, lead: &str) -> i64 {
    let mut conn = db.inspect().await;
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE lead = $1");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(lead)
        .fetch_one(&mut conn)
        .await
        .expect("count rows")
}

#[tokio::test]
async fn a_closed_store_answers_unavailable_and_never_succeeds_silently() {
    let db = TestDb::create().await;
    let store = db.store().await;
    store.close().await;

    let err = usecase::capture(
        &form("ana@acme.de"),
        &Policy::default(),
        &deps(store.clone()),
    )
    .await
    .expect_err("the store is closed");
    assert!(matches!(err, Error::Unavailable(..)), "{err:?}");
    assert!(err.is_temporary());
    let err = store
        .pending_count(&Destination::CRM)
        .await
        .expect_err("closed");
    assert!(matches!(err, Error::Unavailable(..)), "{err:?}");
    let err = store
        .claim(&Destination::CRM, "w", 5, Duration::from_secs(30), t0())
        .await
        .expect_err("closed");
    assert!(matches!(err, Error::Unavailable(..)), "{err:?}");
    let err = store.watermark("x").await.expect_err("closed");
    assert!(matches!(err, Error::Unavailable(..)), "{err:?}");
    db.drop_db().await;
}

#[tokio::test]
async fn connecting_where_nothing_listens_is_unavailable_quickly() {
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        socket.local_addr().expect("address").port()
    };
    let config = PostgresConfig::from_url(format!(
        "postgres://leads:secret-password@127.0.0.1:{port}/leads"
    ))
    .with_connect_timeout(Duration::from_millis(500))
    .with_acquire_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let err = PostgresStore::connect(&config)
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, Error::Unavailable(..)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "gave up after {:?}",
        started.elapsed()
    );
    assert!(!err.to_string().contains("secret-password"), "{err}");
}

#[tokio::test]
async fn a_database_that_does_not_exist_is_refused_without_showing_the_url() {
    let admin = crate::common::admin_url();
    let url = lead_store_postgres::url_with_database(&admin, "lead_no_such_database");
    let err = PostgresStore::connect(
        &PostgresConfig::from_url(url).with_connect_timeout(Duration::from_secs(5)),
    )
    .await
    .expect_err("no such database");
    assert!(!err.to_string().contains("postgres://"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_apply_migrations_once() {
    let db = TestDb::create().await;
    let config = db.config();
    let starts = futures_util::future::join_all(
        (0..4).map(|_| async { PostgresStore::connect(&config).await }),
    )
    .await;
    let stores: Vec<PostgresStore> = starts
        .into_iter()
        .map(|s| s.expect("every instance starts"))
        .collect();
    stores[0].set_watermark("w", "1").await.expect("set");
    assert_eq!(
        stores[3].watermark("w").await.expect("get").as_deref(),
        Some("1")
    );
    let mut conn = db.inspect().await;
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .expect("count migrations");
    let files = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../migrations/postgres"
    ))
    .expect("migrations directory")
    .filter(|f| {
        f.as_ref()
            .is_ok_and(|f| f.path().extension().is_some_and(|e| e == "sql"))
    })
    .count();
    assert_eq!(
        usize::try_from(applied).ok(),
        Some(files),
        "each migration once"
    );
    // Debian's PostgreSQL is built with LZ4: migration 0002 switched the
    // lead documents to it.
    let compression: String = sqlx::query_scalar(
        "SELECT attcompression::text FROM pg_attribute \
         WHERE attrelid = 'leads'::regclass AND attname = 'doc'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("doc column");
    assert_eq!(compression, "l", "lead documents are compressed with LZ4");
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_of_four_instances_claim_disjoint_batches() {
    let db = TestDb::create().await;
    let stores = instances(&db, 4).await;
    let lead = usecase::capture(
        &form("ana@acme.de"),
        &Policy::default(),
        &deps(stores[0].clone()),
    )
    .await
    .expect("capture")
    .lead;
    let mut commit = Commit::new();
    commit.outbox = (0..120)
        .map(|i| OutboxEntry {
            id: uuid::Uuid::from_u128(10_000 + i),
            destination: Destination::CRM,
            lead: lead.ext_id.clone(),
            kind: OutboxKind::LeadUpdated,
            payload: serde_json::json!({ "n": i }),
            created_at: t0(),
        })
        .collect();
    stores[0].commit(commit).await.expect("queue");
    let expected = stores[0]
        .pending_count(&Destination::CRM)
        .await
        .expect("pending");

    let now = t0() + chrono::Duration::seconds(1);
    let mut tasks = Vec::new();
    for (w, store) in stores.iter().enumerate() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let worker = format!("instance-{w}");
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim(&Destination::CRM, &worker, 7, Duration::from_secs(60), now)
                    .await
                    .expect("claim");
                if batch.is_empty() {
                    break mine;
                }
                for c in batch {
                    store.ack(c.entry.id, &worker).await.expect("ack");
                    mine.push(c.entry.id);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("worker"));
    }
    let unique: BTreeSet<_> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "no entry was handled twice");
    assert_eq!(all.len() as u64, expected, "every entry was handled");
    assert_eq!(
        stores[1]
            .pending_count(&Destination::CRM)
            .await
            .expect("pending"),
        0
    );
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_eight_instances_gets_a_job_lease() {
    let db = TestDb::create().await;
    let stores = instances(&db, 8).await;
    let until = t0() + chrono::Duration::minutes(5);
    let mut tasks = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .try_lease("job.lead_deduplication", &format!("node-{i}"), until, t0())
                .await
                .expect("try lease")
        }));
    }
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.expect("task"));
    }
    assert_eq!(winners, 1);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_is_won_by_one_of_many_instances() {
    let db = TestDb::create().await;
    let stores = instances(&db, 6).await;
    let lead = usecase::capture(
        &form("ana@acme.de"),
        &Policy::default(),
        &deps(stores[0].clone()),
    )
    .await
    .expect("capture")
    .lead;
    let mut tasks = Vec::new();
    for store in &stores {
        let (store, lead) = (store.clone(), lead.ext_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut commit = Commit::new();
            commit.idempotency.push(IdempotencyKey {
                key: "webhook-1".into(),
                lead,
                created_at: t0(),
                expires_at: t0() + chrono::Duration::hours(1),
                request_hash: None,
            });
            store.commit(commit).await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => ok += 1,
            Err(Error::Conflict(_)) => {}
            Err(err) => panic!("unexpected {err:?}"),
        }
    }
    assert_eq!(ok, 1, "exactly one commit takes the key");
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_of_one_address_on_several_instances_store_one_lead() {
    let db = TestDb::create().await;
    let stores = instances(&db, 4).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let d = Deps::with(
            stores[i % stores.len()].clone(),
            Arc::new(ManualClock::new(t0())),
            Arc::new(RandomIds),
        );
        tasks.push(tokio::spawn(async move {
            let mut input = form("Ana.Lopez@acme.de");
            input.message = Some(format!("submission {i}"));
            usecase::capture(&input, &Policy::default(), &d).await
        }));
    }
    let mut ids = BTreeSet::new();
    for task in tasks {
        ids.insert(task.await.expect("task").expect("capture").lead.ext_id);
    }
    assert_eq!(ids.len(), 1, "all captures end in the same lead");
    let page = stores[0]
        .list(&lead_core::LeadQuery::default())
        .await
        .expect("list");
    assert_eq!(page.leads.len(), 1);
    db.drop_db().await;
}

#[tokio::test]
async fn rewriting_a_lead_replaces_its_history_events_and_links_instead_of_duplicating_them() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let d = deps(store.clone());
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
    assert_eq!(rows(&db, "stage_history", id).await, 1);
    assert_eq!(rows(&db, "crm_links", id).await, 1);
    assert_eq!(
        rows(&db, "lead_events", id).await,
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
    db.drop_db().await;
}

#[tokio::test]
async fn two_leads_may_trade_addresses_in_one_commit() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let d = deps(store.clone());
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
    db.drop_db().await;
}

#[tokio::test]
async fn metadata_numbers_and_text_round_trip_through_the_json_document() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let mut input = form("ana@acme.de");
    input.metadata.insert(
        "mixed".into(),
        serde_json::json!({"zeta": 1, "alpha": [0.1, 2.5, -3, 1e-7, "ü ✓ \"q\""], "big": 18446744073709551615u64}),
    );
    let lead = usecase::capture(&input, &Policy::default(), &deps(store.clone()))
        .await
        .expect("capture")
        .lead;
    assert_eq!(store.get(&lead.ext_id).await.expect("get"), Some(lead));
    db.drop_db().await;
}

#[tokio::test]
async fn quotes_backslashes_and_braces_in_names_survive_the_batch_insert_and_filter() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let mut input = form("ana@acme.de");
    // Array-literal syntax in the values the fast path sends as `text[]`.
    input.company = Some(r#"Acme "Quoted" \ {Braces}, Ltd"#.into());
    input.last_name = Some("O'Brien, \"Jr\"".into());
    let lead = usecase::capture(&input, &Policy::default(), &deps(store.clone()))
        .await
        .expect("capture")
        .lead;
    assert_eq!(
        store.get(&lead.ext_id).await.expect("get"),
        Some(lead.clone())
    );
    assert_eq!(
        store.fast_path_refusals(),
        0,
        "the batch insert took the values itself, with no fallback"
    );
    for text in [r#""quoted" \ {braces}"#, "o'brien, \"jr\""] {
        let page = store
            .list(&lead_core::LeadQuery {
                text: Some(text.into()),
                ..Default::default()
            })
            .await
            .expect("list");
        assert_eq!(
            page.leads.iter().map(|l| &l.ext_id).collect::<Vec<_>>(),
            vec![&lead.ext_id],
            "the text filter finds {text:?}"
        );
    }
    if let Some(segment) = lead.segments.first() {
        let page = store
            .list(&lead_core::LeadQuery {
                segment: Some(segment.clone()),
                ..Default::default()
            })
            .await
            .expect("list");
        assert_eq!(page.leads.len(), 1, "the segment filter finds {segment}");
    }
    db.drop_db().await;
}

/// A statement stuck on a lock fails with `Unavailable` after the
/// configured `statement_timeout` instead of holding the group-commit
/// writer, and every capture queued behind it, for ever; the store
/// serves again once the lock is gone. Without a statement timeout
/// (`with_statement_timeout(None)`, the old default) this test fails: the
/// commit still waits when the test's own deadline ends.
#[tokio::test]
async fn a_statement_stuck_on_a_lock_is_cancelled_by_the_statement_timeout() {
    use sqlx::Connection;
    let db = TestDb::create().await;
    assert_eq!(
        PostgresConfig::default().statement_timeout(),
        Some(Duration::from_secs(30)),
        "on by default"
    );
    let store = Arc::new(
        PostgresStore::connect(
            &db.config()
                .with_statement_timeout(Some(Duration::from_millis(300))),
        )
        .await
        .expect("connect"),
    );
    let deps = deps(store.clone());
    let mut locker = db.inspect().await;
    let mut tx = locker.begin().await.expect("begin");
    sqlx::query("LOCK TABLE leads IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .expect("lock");
    let stuck = tokio::time::timeout(
        Duration::from_secs(10),
        usecase::capture(&form("stuck@acme.de"), &Policy::default(), &deps),
    )
    .await
    .expect("the statement timeout ends the wait, not the test's deadline");
    assert!(
        matches!(stuck, Err(Error::Unavailable(..))),
        "a cancelled statement is Unavailable: {stuck:?}"
    );
    tx.rollback().await.expect("unlock");
    let out = usecase::capture(&form("after@acme.de"), &Policy::default(), &deps)
        .await
        .expect("the store serves again");
    assert!(store.get(&out.lead.ext_id).await.expect("read").is_some());
    db.drop_db().await;
}
