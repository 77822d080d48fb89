//! The stores' capture write against raw single-row inserts, on the same
//! machine in one run (issue 4; numbers in `docs/perf.md`).
//!
//! A *capture write* is one `LeadStore::commit` holding what a capture
//! stores for a new lead that carries an idempotency key: the lead insert,
//! two outbox entries (`lead_created`, `follow_up_created`) and one
//! idempotency key, committed in one transaction. The leads are built
//! beforehand by `lead_core::usecase::capture` against an `InMemoryStore`
//! (realistic documents: normalized fields, score breakdown, BANT, routing
//! explanation), so only the commits are timed.
//!
//! The baseline is a raw single-row `INSERT` of the same lead (ext id,
//! e-mail, e-mail key, creation time and the same serialized lead JSON) into
//! a table with only a primary key, one row per statement in autocommit mode
//! (each insert its own transaction), on the same server or the same disk:
//!
//! - PostgreSQL: a pool of W connections with `synchronous_commit = on` set
//!   on each (shown with `SHOW synchronous_commit`); the store and the raw
//!   table each get a fresh database (`bench_<uuid>`) per measurement on the
//!   server of `DATABASE_URL`.
//! - SQLite: a separate file in WAL mode with `synchronous = FULL` (the
//!   store's default), over a pool of W connections.
//!
//! W concurrent tokio tasks (W = 1, 8, 32 by default) each await every
//! commit (durably committed) before issuing the next. Reported: leads/s,
//! p50 and p99 commit latency, and capture/raw.
//!
//! ```text
//! .ci/with-postgres cargo run --release -p lead-benches --example store_write -- \
//!     [--leads 4000] [--writers 1,8,32] [--backend postgres|sqlite|both] [--rounds 1] \
//!     [--group-commit on|off|both] [--batch-writers 1] [--max-wait-ms N] [--reps 0]
//! ```
//!
//! `--group-commit` measures the stores with their default group commit
//! (`on`, the default), with `with_group_commit(None)` (`off`: one
//! transaction per commit), or both in the same run.
//!
//! `--backend sqlite` needs no server.
//!
//! `--reps N` (default 0) gives the captures N always-available reps to be
//! routed to, so every commit also carries the rep's workload change
//! (`LoadChange::Assigned`); the stores under test hold the same reps.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::{Parser, ValueEnum};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use uuid::Uuid;

use lead_core::commit::{Commit, Destination, IdempotencyKey, LoadChange, OutboxEntry, OutboxKind};
use lead_core::{
    Deps, InMemoryStore, LeadInput, LeadStore, MatchKeys, Policy, Rep, RepId, RepStore,
    WorkingHours, usecase,
};
use lead_store_postgres::{PostgresConfig, PostgresStore, url_with_database};
use lead_store_sqlite::{GroupCommit, SqliteConfig, SqliteStore, Synchronous};

/// Which stores to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Postgres,
    Sqlite,
    Both,
}

/// Whether the stores batch concurrent commits into one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GroupMode {
    /// The stores' default group commit.
    On,
    /// `with_group_commit(None)`: one transaction per commit.
    Off,
    /// Both, one after the other.
    Both,
}

impl GroupMode {
    /// The settings measured: group commit with each number of batch
    /// writers, and/or without group commit.
    fn settings(
        self,
        batch_writers: &[usize],
        max_wait_ms: Option<u64>,
    ) -> Vec<Option<GroupCommit>> {
        let base = GroupCommit::default();
        let base = match max_wait_ms {
            Some(ms) => GroupCommit::new(base.max_batch, Duration::from_millis(ms)),
            None => base,
        };
        let on = batch_writers
            .iter()
            .map(move |&w| Some(base.with_writers(w)));
        match self {
            GroupMode::On => on.collect(),
            GroupMode::Off => vec![None],
            GroupMode::Both => on.chain([None]).collect(),
        }
    }
}

fn group_label(group: Option<GroupCommit>) -> String {
    match group {
        Some(g) => format!(
            "group commit on (max_batch {}, max_wait_ms {}, writers {})",
            g.max_batch, g.max_wait_ms, g.writers
        ),
        None => "group commit off".to_owned(),
    }
}

/// Capture write vs raw single-row insert, leads/s at several writer counts.
#[derive(Debug, Parser)]
struct Args {
    /// Leads written per measurement (per writer count and kind).
    #[arg(long, default_value_t = 4000)]
    leads: usize,
    /// Concurrent writers, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    writers: Vec<usize>,
    /// Which backend(s) to measure.
    #[arg(long, value_enum, default_value = "both")]
    backend: Backend,
    /// Repetitions of every measurement (fresh database each); the median
    /// round (by leads/s) is reported.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// The stores' group commit: on, off, or both (SQLite defaults to on,
    /// PostgreSQL to off).
    #[arg(long, value_enum, default_value = "on")]
    group_commit: GroupMode,
    /// Batches in flight at once with group commit on (`GroupCommit::writers`),
    /// comma-separated to compare several.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    batch_writers: Vec<usize>,
    /// `GroupCommit::max_wait_ms` with group commit on (default: the
    /// stores' default).
    #[arg(long)]
    max_wait_ms: Option<u64>,
    /// Reps the captures are assigned to (0: none, every lead unassigned).
    #[arg(long, default_value_t = 0)]
    reps: usize,
}

/// `n` reps who take every lead at any hour.
fn bench_reps(n: usize) -> Vec<Rep> {
    (0..n)
        .map(|i| {
            let id = RepId::parse(&format!("rep{i}@example.com")).expect("rep id");
            Rep {
                working_hours: WorkingHours::always(),
                daily_capacity: u32::MAX,
                open_capacity: u32::MAX,
                ..Rep::new(id, format!("Rep {i}"))
            }
        })
        .collect()
}

async fn add_reps<S: RepStore>(store: &S, reps: &[Rep]) {
    for rep in reps {
        store.upsert_rep(rep).await.expect("upsert rep");
    }
}

/// One prebuilt lead: the store commit and the raw row.
#[derive(Debug, Clone)]
struct Item {
    commit: Commit,
    ext_id: String,
    email: String,
    email_key: String,
    created_at: i64,
    doc: String,
}

/// One measurement.
#[derive(Debug, Clone)]
struct Measured {
    leads: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.leads as f64 / self.elapsed.as_secs_f64()
    }
}

fn form(n: usize) -> LeadInput {
    let sources = ["web", "google", "linkedin", "referral", "organic"];
    LeadInput {
        email: Some(format!("person{n}@company{}.com", n % 97)),
        first_name: Some(format!("Name{n}")),
        last_name: Some(["López", "Smith", "Müller", "Rossi"][n % 4].to_owned()),
        phone: Some(format!("+3461234{:04}", n % 10_000)),
        company: Some(format!("Company{} SL", n % 97)),
        job_title: Some(["CTO", "Head of Sales", "Engineer"][n % 3].to_owned()),
        source: Some(sources[n % sources.len()].to_owned()),
        message: Some("We need a demo for 20 users, budget 12k this quarter".to_owned()),
        utm_campaign: Some("spring".to_owned()),
        utm_source: Some("google".to_owned()),
        landing_page: Some("https://example.com/landing".to_owned()),
        ..Default::default()
    }
}

/// `n` distinct leads, as a capture with an idempotency key would commit them.
async fn build_items(n: usize, reps: &[Rep]) -> Vec<Item> {
    let memory = Arc::new(InMemoryStore::new());
    add_reps(memory.as_ref(), reps).await;
    let deps = Deps::new(memory);
    let policy = Policy::default();
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        let outcome = usecase::capture(&form(i), &policy, &deps)
            .await
            .expect("in-memory capture");
        let mut lead = outcome.lead;
        lead.version = 0;
        let now = Utc::now();
        let ext_id = lead.ext_id.clone();
        let outbox = |kind, payload| OutboxEntry {
            id: Uuid::now_v7(),
            destination: Destination::CRM,
            lead: ext_id.clone(),
            kind,
            payload,
            created_at: now,
        };
        let task_id = outcome.followup.map_or_else(Uuid::now_v7, |t| t.id);
        let raw = Item {
            ext_id: ext_id.as_str().to_owned(),
            email: lead.fields.email.as_str().to_owned(),
            email_key: MatchKeys::of(&lead.fields).email,
            created_at: lead.created_at.timestamp_micros(),
            doc: serde_json::to_string(&lead).expect("lead JSON"),
            commit: Commit::new(),
        };
        let assigned = lead.assigned_to.clone().map(|rep| LoadChange::Assigned {
            rep,
            at: now,
            local_day: now.date_naive(),
            pass: i as f64,
        });
        let mut commit = Commit::new().write(lead, None);
        commit.load.extend(assigned);
        commit
            .outbox
            .push(outbox(OutboxKind::LeadCreated, json!({})));
        commit.outbox.push(outbox(
            OutboxKind::FollowUpCreated,
            json!({ "task_id": task_id }),
        ));
        commit.idempotency.push(IdempotencyKey {
            key: format!("bench-{}", Uuid::new_v4().simple()),
            lead: ext_id.clone(),
            created_at: now,
            expires_at: now + chrono::Duration::hours(24),
            request_hash: Some(format!("{:064x}", 0)),
        });
        items.push(Item { commit, ..raw });
    }
    items
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Runs `op` on every item from `writers` concurrent tasks, each awaiting
/// one operation before the next.
async fn run<F, Fut>(items: Vec<Item>, writers: usize, op: F) -> Measured
where
    F: Fn(Item) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let leads = items.len();
    let mut chunks: Vec<Vec<Item>> = (0..writers).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        chunks[i % writers].push(item);
    }
    let start = Instant::now();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(chunk.len());
                for item in chunk {
                    let t = Instant::now();
                    op(item).await;
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(leads);
    for task in tasks {
        latencies.extend(task.await.expect("writer task"));
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    Measured {
        leads,
        elapsed,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
    }
}

/// Warm-up (pool connections opened, statements prepared), then the timed run.
async fn measure<F, Fut>(items: &[Item], warm: &[Item], writers: usize, op: F) -> Measured
where
    F: Fn(Item) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    run(warm.to_vec(), writers, op.clone()).await;
    run(items.to_vec(), writers, op).await
}

fn store_op<S: LeadStore + 'static>(
    store: Arc<S>,
) -> impl Fn(Item) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Clone + Send + 'static {
    move |item: Item| {
        let store = store.clone();
        Box::pin(async move {
            store.commit(item.commit).await.expect("store commit");
        })
    }
}

// ---------------------------------------------------------------- PostgreSQL

async fn admin_exec(admin: &str, sql: String) {
    let mut conn = PgConnection::connect(admin)
        .await
        .expect("cannot reach the server of DATABASE_URL (run under .ci/with-postgres)");
    sqlx::query(AssertSqlSafe(sql.clone()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

/// A fresh database; returns its name and URL.
async fn create_db(admin: &str) -> (String, String) {
    let name = format!("bench_{}", Uuid::new_v4().simple());
    admin_exec(admin, format!("CREATE DATABASE \"{name}\"")).await;
    let url = url_with_database(admin, &name);
    (name, url)
}

async fn drop_db(admin: &str, name: &str) {
    admin_exec(admin, format!("DROP DATABASE \"{name}\" WITH (FORCE)")).await;
}

async fn raw_pg_pool(url: &str, writers: usize) -> PgPool {
    let options = PgConnectOptions::from_str(url)
        .expect("DATABASE_URL")
        .options([("synchronous_commit", "on")]);
    PgPoolOptions::new()
        .max_connections(u32::try_from(writers).expect("writers"))
        .connect_with(options)
        .await
        .expect("raw pool")
}

async fn pg_capture(
    admin: &str,
    items: &[Item],
    warm: &[Item],
    writers: usize,
    group: Option<GroupCommit>,
    reps: &[Rep],
) -> Measured {
    let (name, url) = create_db(admin).await;
    // W connections like the raw pool, plus one per group-commit writer
    // and one for the capture reader (each holds one while busy).
    let pool = writers + group.map_or(0, |g| g.writers + 1);
    let config = PostgresConfig::from_url(url)
        .with_max_connections(u32::try_from(pool).expect("pool size"))
        .with_acquire_timeout(Duration::from_secs(60))
        .with_group_commit(group);
    let store = Arc::new(PostgresStore::connect(&config).await.expect("store"));
    add_reps(store.as_ref(), reps).await;
    let m = measure(items, warm, writers, store_op(store.clone())).await;
    store.close().await;
    drop_db(admin, &name).await;
    m
}

async fn pg_raw(admin: &str, items: &[Item], warm: &[Item], writers: usize) -> Measured {
    let (name, url) = create_db(admin).await;
    let pool = raw_pg_pool(&url, writers).await;
    sqlx::query(
        "CREATE TABLE raw_leads (ext_id TEXT PRIMARY KEY, email TEXT NOT NULL, \
         email_key TEXT NOT NULL, created_at BIGINT NOT NULL, doc JSON NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("create raw_leads");
    // The document stored as the store stores it (`json`, LZ4 where the
    // server has it: migrations postgres/0002 and 0005), so the baseline
    // pays for the same bytes the same way.
    let _ = sqlx::query("ALTER TABLE raw_leads ALTER COLUMN doc SET COMPRESSION lz4")
        .execute(&pool)
        .await;
    let op = {
        let pool = pool.clone();
        move |item: Item| {
            let pool = pool.clone();
            async move {
                sqlx::query(
                    "INSERT INTO raw_leads (ext_id, email, email_key, created_at, doc) \
                     VALUES ($1, $2, $3, $4, $5::json)",
                )
                .bind(item.ext_id)
                .bind(item.email)
                .bind(item.email_key)
                .bind(item.created_at)
                .bind(item.doc)
                .execute(&pool)
                .await
                .expect("raw insert");
            }
        }
    };
    let m = measure(items, warm, writers, op).await;
    pool.close().await;
    drop_db(admin, &name).await;
    m
}

async fn pg_settings(admin: &str) {
    let (name, url) = create_db(admin).await;
    let pool = raw_pg_pool(&url, 1).await;
    let show = |what: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(AssertSqlSafe(format!("SHOW {what}")))
                .fetch_one(&pool)
                .await
                .expect("SHOW")
        }
    };
    println!(
        "PostgreSQL {}; raw pool: synchronous_commit = {}; fsync = {}; wal_sync_method = {}; \
         commit_delay = {}",
        show("server_version").await,
        show("synchronous_commit").await,
        show("fsync").await,
        show("wal_sync_method").await,
        show("commit_delay").await,
    );
    pool.close().await;
    let mut conn = PgConnection::connect(admin).await.expect("admin");
    let default: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&mut conn)
        .await
        .expect("SHOW");
    println!("server default (what the store's connections use): synchronous_commit = {default}");
    let _ = conn.close().await;
    drop_db(admin, &name).await;
}

// -------------------------------------------------------------------- SQLite

async fn sqlite_capture(
    dir: &std::path::Path,
    items: &[Item],
    warm: &[Item],
    writers: usize,
    group: Option<GroupCommit>,
    reps: &[Rep],
) -> Measured {
    let path = dir.join(format!("store-{}.db", Uuid::new_v4().simple()));
    let config = SqliteConfig::from_url(path.display().to_string())
        .with_max_connections(u32::try_from(writers).expect("writers"))
        .with_busy_timeout(Duration::from_secs(60))
        .with_acquire_timeout(Duration::from_secs(60))
        .with_synchronous(Synchronous::Full)
        .with_group_commit(group);
    let store = Arc::new(SqliteStore::connect(&config).await.expect("store"));
    add_reps(store.as_ref(), reps).await;
    let m = measure(items, warm, writers, store_op(store.clone())).await;
    store.close().await;
    m
}

async fn raw_sqlite_pool(dir: &std::path::Path, writers: usize) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(dir.join(format!("raw-{}.db", Uuid::new_v4().simple())))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(60));
    SqlitePoolOptions::new()
        .max_connections(u32::try_from(writers).expect("writers"))
        .acquire_timeout(Duration::from_secs(60))
        .connect_with(options)
        .await
        .expect("raw SQLite pool")
}

async fn sqlite_raw(
    dir: &std::path::Path,
    items: &[Item],
    warm: &[Item],
    writers: usize,
) -> Measured {
    let pool = raw_sqlite_pool(dir, writers).await;
    sqlx::query(
        "CREATE TABLE raw_leads (ext_id TEXT PRIMARY KEY, email TEXT NOT NULL, \
         email_key TEXT NOT NULL, created_at INTEGER NOT NULL, doc TEXT NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("create raw_leads");
    let op = {
        let pool = pool.clone();
        move |item: Item| {
            let pool = pool.clone();
            async move {
                sqlx::query(
                    "INSERT INTO raw_leads (ext_id, email, email_key, created_at, doc) \
                     VALUES (?, ?, ?, ?, ?)",
                )
                .bind(item.ext_id)
                .bind(item.email)
                .bind(item.email_key)
                .bind(item.created_at)
                .bind(item.doc)
                .execute(&pool)
                .await
                .expect("raw insert");
            }
        }
    };
    let m = measure(items, warm, writers, op).await;
    pool.close().await;
    m
}

async fn sqlite_settings(dir: &std::path::Path) {
    let pool = raw_sqlite_pool(dir, 1).await;
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .expect("PRAGMA");
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&pool)
        .await
        .expect("PRAGMA");
    let version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&pool)
        .await
        .expect("version");
    println!(
        "SQLite {version}; raw pool: journal_mode = {journal}, synchronous = {sync} (2 = FULL); \
         store: SqliteConfig synchronous = Full (its default), WAL, BEGIN IMMEDIATE; files in {}",
        dir.display()
    );
    pool.close().await;
}

// ---------------------------------------------------------------------- main

/// The median round by rate.
fn median(mut rounds: Vec<Measured>) -> Measured {
    rounds.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    rounds.swap_remove(rounds.len() / 2)
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn report(backend: &str, group: Option<GroupCommit>, rows: &[(usize, Measured, Measured)]) {
    println!();
    println!(
        "{backend}, {}: capture write (lead + 2 outbox + 1 idempotency key) vs raw single-row INSERT",
        group_label(group)
    );
    println!(
        "| writers | capture leads/s | capture p50 ms | capture p99 ms | raw leads/s | raw p50 ms | raw p99 ms | capture / raw |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (w, capture, raw) in rows {
        println!(
            "| {w} | {:.0} | {} | {} | {:.0} | {} | {} | **{:.2}×** |",
            capture.rate(),
            ms(capture.p50),
            ms(capture.p99),
            raw.rate(),
            ms(raw.p50),
            ms(raw.p99),
            capture.rate() / raw.rate()
        );
    }
}

fn line(backend: &str, kind: &str, w: usize, round: usize, m: &Measured) {
    println!(
        "  {backend:<8} {kind:<13} writers={w:<3} round={round} leads={} {:.2}s {:.0} leads/s p50={}ms p99={}ms",
        m.leads,
        m.elapsed.as_secs_f64(),
        m.rate(),
        ms(m.p50),
        ms(m.p99)
    );
}

/// Per writer count: the raw baseline and the capture write in each group
/// mode, `rounds` times each (fresh database every time), then one table
/// per group mode.
async fn compare<R, RF, C, CF>(backend: &str, args: &Args, raw: R, capture: C)
where
    R: Fn(usize) -> RF,
    RF: Future<Output = Measured>,
    C: Fn(usize, Option<GroupCommit>) -> CF,
    CF: Future<Output = Measured>,
{
    let groups = args
        .group_commit
        .settings(&args.batch_writers, args.max_wait_ms);
    let mut rows: Vec<Vec<(usize, Measured, Measured)>> =
        groups.iter().map(|_| Vec::new()).collect();
    for &w in &args.writers {
        let mut raws = Vec::new();
        let mut caps: Vec<Vec<Measured>> = groups.iter().map(|_| Vec::new()).collect();
        for round in 1..=args.rounds {
            let m = raw(w).await;
            line(backend, "raw", w, round, &m);
            raws.push(m);
            for (g, &group) in groups.iter().enumerate() {
                let m = capture(w, group).await;
                let kind = match group {
                    Some(g) => format!("capture+gc/{}", g.writers),
                    None => "capture".to_owned(),
                };
                line(backend, &kind, w, round, &m);
                caps[g].push(m);
            }
        }
        let raw = median(raws);
        for (g, caps) in caps.into_iter().enumerate() {
            rows[g].push((w, median(caps), raw.clone()));
        }
    }
    for (g, &group) in groups.iter().enumerate() {
        report(backend, group, &rows[g]);
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    assert!(args.leads > 0, "--leads must be positive");
    assert!(args.rounds > 0, "--rounds must be positive");
    assert!(
        args.writers.iter().all(|&w| w > 0),
        "--writers must be positive"
    );
    let max_w = args.writers.iter().copied().max().unwrap_or(1);
    let warm_n = 2 * max_w;
    let t = Instant::now();
    let reps = bench_reps(args.reps);
    let all = build_items(args.leads + warm_n, &reps).await;
    let (items, warm) = all.split_at(args.leads);
    let assigned = items.iter().filter(|i| !i.commit.load.is_empty()).count();
    println!(
        "{assigned} of {} leads assigned to {} reps",
        items.len(),
        reps.len()
    );
    let doc_bytes = items.iter().map(|i| i.doc.len()).sum::<usize>() / items.len();
    println!(
        "{} leads built in {:.1}s (mean lead JSON {doc_bytes} bytes); warm-up 2×W leads per measurement, not timed",
        items.len(),
        t.elapsed().as_secs_f64()
    );

    if matches!(args.backend, Backend::Postgres | Backend::Both) {
        let admin = std::env::var("DATABASE_URL").expect(
            "DATABASE_URL is not set: run under .ci/with-postgres (or use --backend sqlite)",
        );
        pg_settings(&admin).await;
        let admin = admin.as_str();
        compare(
            "postgres",
            &args,
            |w| pg_raw(admin, items, &warm[..2 * w], w),
            |w, group| pg_capture(admin, items, &warm[..2 * w], w, group, &reps),
        )
        .await;
    }

    if matches!(args.backend, Backend::Sqlite | Backend::Both) {
        let dir = tempfile::Builder::new()
            .prefix("store-write-bench")
            .tempdir_in(std::env::temp_dir())
            .expect("temp dir");
        sqlite_settings(dir.path()).await;
        let path = dir.path();
        compare(
            "sqlite",
            &args,
            |w| sqlite_raw(path, items, &warm[..2 * w], w),
            |w, group| sqlite_capture(path, items, &warm[..2 * w], w, group, &reps),
        )
        .await;
    }
}
