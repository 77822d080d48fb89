//! How job runs are scheduled and handed to workers: apalis.
//!
//! - **Schedule**: each enabled job's cron expression becomes a stream of
//!   due times (`apalis-cron`). Every instance runs the same streams.
//! - **Once per due time**: each due time is pushed into apalis' durable
//!   queue in the leads' own database (`apalis-postgres` or
//!   `apalis-sqlite`) with the idempotency key `<job>@<due time>`. The
//!   queue's table is unique by that key, so when several instances push
//!   the same due time only the first push stores a task (PostgreSQL
//!   refuses the others with a unique violation, SQLite ignores them).
//! - **One worker per run**: a worker locks a task before running it
//!   (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so one instance runs it.
//! - **Crashes**: workers send heartbeats; a task whose worker missed
//!   three is put back in the queue by the next heartbeat of any worker
//!   and run again (the same run record, its next attempt). A run that
//!   fails is retried up to [`MAX_ATTEMPTS`] times.
//!
//! apalis keeps its tables (`apalis.jobs` and `apalis.workers` on
//! PostgreSQL, `Jobs` and `Workers` on SQLite) and its own migration
//! history (`_apalis_migrations`), apart from the store's.

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use apalis_cron::CronScheduler;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use lead_core::ports::Trigger;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::jobs::{Job, JobsConfig, Runner};

/// The apalis queue (job type) every run goes through.
const QUEUE: &str = "lead_jobs";

/// Attempts of a run before it stays failed (a crash's re-enqueue counts
/// as one).
pub(crate) const MAX_ATTEMPTS: usize = 3;

/// How often an idle worker looks for queued runs (without it, apalis
/// looks once per heartbeat).
const POLL: Duration = Duration::from_secs(1);

/// Where apalis keeps its migration history, apart from the store's
/// `_sqlx_migrations` (one history per migrator).
const MIGRATIONS_TABLE: &str = "_apalis_migrations";

/// One queued run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct JobTask {
    pub(crate) job: Job,
    pub(crate) run_id: Uuid,
    pub(crate) trigger: Trigger,
    pub(crate) due_at: Option<DateTime<Utc>>,
}

/// apalis' queue in the leads' database.
#[derive(Clone)]
pub(crate) enum Queue {
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
}

impl Queue {
    /// Opens the queue in the database `url` names (the store's), setting
    /// up apalis' tables on first use.
    pub(crate) async fn open(url: &str) -> Result<Queue, String> {
        let failed = |e: &dyn std::fmt::Display| format!("cannot open the job queue: {e}");
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .connect(url)
                    .await
                    .map_err(|e| failed(&e))?;
                let mut migrations = apalis_postgres::PostgresStorage::<()>::migrations();
                migrations.dangerous_set_table_name(MIGRATIONS_TABLE);
                migrations.run(&pool).await.map_err(|e| failed(&e))?;
                return Ok(Queue::Postgres(pool));
            }
            #[cfg(not(feature = "postgres"))]
            return Err("PostgreSQL support is not built in".into());
        }
        #[cfg(feature = "sqlite")]
        {
            use std::str::FromStr;
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .map_err(|e| failed(&e))?
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10));
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(2)
                .connect_with(options)
                .await
                .map_err(|e| failed(&e))?;
            let mut migrations = apalis_sqlite::SqliteStorage::<()>::migrations();
            migrations.dangerous_set_table_name(MIGRATIONS_TABLE);
            migrations.run(&pool).await.map_err(|e| failed(&e))?;
            Ok(Queue::Sqlite(pool))
        }
        #[cfg(not(feature = "sqlite"))]
        Err("SQLite support is not built in".into())
    }

    /// Queues `task`; with `key`, only if no task with that key was ever
    /// queued (`false`: another instance queued it first).
    pub(crate) async fn push(&self, task: &JobTask, key: Option<String>) -> Result<bool, String> {
        let args = serde_json::to_vec(task).map_err(|e| e.to_string())?;
        let mut builder = TaskBuilder::new(args).max_attempts(MAX_ATTEMPTS);
        if let Some(key) = &key {
            builder = builder.idempotency_key(key);
        }
        let built = builder.build();
        match self {
            #[cfg(feature = "postgres")]
            Queue::Postgres(pool) => {
                let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
                match apalis_postgres::queries::push_tasks(&mut *conn, QUEUE, vec![built]).await {
                    Ok(()) => Ok(true),
                    Err(apalis_postgres::Error::Database(sqlx::Error::Database(db)))
                        if db.is_unique_violation() =>
                    {
                        Ok(false)
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            #[cfg(feature = "sqlite")]
            Queue::Sqlite(pool) => {
                let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
                let before = count_key(&mut conn, key.as_deref()).await?;
                apalis_sqlite::queries::push_tasks(&mut *conn, QUEUE, &[built])
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(key.is_none() || before == 0)
            }
        }
    }

    /// Deletes apalis' rows of this queue that ended before `before`
    /// (tasks done, killed, or failed for good) and workers last seen
    /// before it; returns how many of each. A due time's key goes with
    /// its task, long after any instance could push that due time again.
    pub(crate) async fn vacuum(&self, before: DateTime<Utc>) -> Result<(u64, u64), String> {
        let secs = before.timestamp();
        let ended =
            "(status IN ('Done', 'Killed') OR (status = 'Failed' AND max_attempts <= attempts))";
        match self {
            #[cfg(feature = "postgres")]
            Queue::Postgres(pool) => {
                let tasks = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM apalis.jobs WHERE job_type = $1 AND {ended} AND done_at < to_timestamp($2)"
                )))
                .bind(QUEUE)
                .bind(secs as f64)
                .execute(pool)
                .await
                .map_err(|e| e.to_string())?
                .rows_affected();
                let workers = sqlx::query(
                    "DELETE FROM apalis.workers WHERE worker_type = $1 AND last_seen < to_timestamp($2)",
                )
                .bind(QUEUE)
                .bind(secs as f64)
                .execute(pool)
                .await
                .map_err(|e| e.to_string())?
                .rows_affected();
                Ok((tasks, workers))
            }
            #[cfg(feature = "sqlite")]
            Queue::Sqlite(pool) => {
                let tasks = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM Jobs WHERE job_type = ? AND {ended} AND done_at < ?"
                )))
                .bind(QUEUE)
                .bind(secs)
                .execute(pool)
                .await
                .map_err(|e| e.to_string())?
                .rows_affected();
                let workers =
                    sqlx::query("DELETE FROM Workers WHERE worker_type = ? AND last_seen < ?")
                        .bind(QUEUE)
                        .bind(secs)
                        .execute(pool)
                        .await
                        .map_err(|e| e.to_string())?
                        .rows_affected();
                Ok((tasks, workers))
            }
        }
    }

    /// Starts this instance's worker and, for every enabled job, its
    /// schedule; both stop when `stopped` turns true.
    pub(crate) fn spawn(
        &self,
        runner: Arc<Runner>,
        config: &JobsConfig,
        stopped: watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        let mut handles = Vec::new();
        for plan in config.plans.iter().filter(|p| p.enabled) {
            let schedule = match plan.cron() {
                Ok(schedule) => schedule,
                Err(e) => {
                    tracing::error!(job = plan.job.name(), error = %e, "job not scheduled");
                    continue;
                }
            };
            handles.push(tokio::spawn(schedule_loop(
                self.clone(),
                plan.job,
                schedule,
                stopped.clone(),
            )));
        }
        handles.push(tokio::spawn(work(
            self.clone(),
            runner,
            config.heartbeat,
            stopped,
        )));
        handles
    }
}

/// How many tasks with `key` the SQLite queue holds (its insert ignores a
/// second one silently).
#[cfg(feature = "sqlite")]
async fn count_key(conn: &mut sqlx::SqliteConnection, key: Option<&str>) -> Result<i64, String> {
    let Some(key) = key else { return Ok(0) };
    sqlx::query_scalar("SELECT COUNT(*) FROM Jobs WHERE job_type = ? AND idempotency_key = ?")
        .bind(QUEUE)
        .bind(key)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| e.to_string())
}

/// Queues each due time of `job` as it comes.
async fn schedule_loop(
    queue: Queue,
    job: Job,
    schedule: cron::Schedule,
    mut stopped: watch::Receiver<bool>,
) {
    // apalis-cron ends its stream with an error when a due time is missed
    // (a push that blocked past the next one): the schedule starts again
    // from the next due time rather than stopping for good.
    'schedule: loop {
        let ticks = CronScheduler::new(schedule.clone()).into_stream();
        tokio::pin!(ticks);
        loop {
            let tick = tokio::select! {
                tick = ticks.next() => tick,
                _ = stopped.wait_for(|s| *s) => return,
            };
            let Some(tick) = tick else { return };
            let due = match tick {
                Ok(tick) => DateTime::from_timestamp(tick.get_timestamp() as i64, 0),
                Err(e) => {
                    tracing::warn!(job = job.name(), error = %e, "the job's schedule missed a due time; it goes on from the next");
                    continue 'schedule;
                }
            };
            let Some(due) = due else { continue };
            let task = JobTask {
                job,
                run_id: Uuid::new_v4(),
                trigger: Trigger::Schedule,
                due_at: Some(due),
            };
            let key = format!("{}@{}", job.name(), due.to_rfc3339());
            match queue.push(&task, Some(key)).await {
                Ok(true) => {
                    tracing::info!(job = job.name(), due = %due, run = %task.run_id, "job run queued")
                }
                Ok(false) => {
                    tracing::debug!(job = job.name(), due = %due, "job run already queued by another instance")
                }
                Err(e) => {
                    tracing::error!(job = job.name(), due = %due, error = %e, "cannot queue a job run")
                }
            }
        }
    }
}

/// This instance's worker: runs queued tasks until `stopped`. apalis
/// ends a worker on a backend error (a failed heartbeat or fetch: the
/// database restarting, SQLite busy); it is started again, after a pause
/// that grows to a minute while the errors go on.
async fn work(
    queue: Queue,
    runner: Arc<Runner>,
    heartbeat: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut pause = Duration::from_secs(1);
    loop {
        let started = std::time::Instant::now();
        let ran = run_worker(&queue, runner.clone(), heartbeat, stopped.clone()).await;
        if *stopped.borrow() {
            return;
        }
        match ran {
            Ok(()) => tracing::warn!("the job worker stopped; starting it again"),
            Err(e) => tracing::error!(error = %e, "the job worker stopped; starting it again"),
        }
        if started.elapsed() > Duration::from_secs(300) {
            pause = Duration::from_secs(1);
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        pause = (pause * 2).min(Duration::from_secs(60));
    }
}

/// One life of the worker (a name of its own: apalis registers each).
async fn run_worker(
    queue: &Queue,
    runner: Arc<Runner>,
    heartbeat: Duration,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), String> {
    let name = format!("{}-{}", runner.instance, Uuid::new_v4().simple());
    let stop = async move {
        let _ = stopped.wait_for(|s| *s).await;
        Ok::<(), std::io::Error>(())
    };
    let ran = match queue.clone() {
        #[cfg(feature = "postgres")]
        Queue::Postgres(pool) => {
            let config = apalis_postgres::Config::default()
                .queue(QUEUE)
                .heartbeat_interval(heartbeat)
                .missed_heartbeats(3)
                .batch_size(1);
            let backend = apalis_postgres::PostgresStorage::<JobTask>::new(&pool)
                .with_config(config)
                .poll_with_interval(POLL);
            WorkerBuilder::new(name.as_str())
                .backend(backend)
                .data(runner)
                .build(handle)
                .run_until(stop)
                .await
        }
        #[cfg(feature = "sqlite")]
        Queue::Sqlite(pool) => {
            let config = apalis_sqlite::Config::default()
                .queue(QUEUE)
                .heartbeat_interval(heartbeat)
                .missed_heartbeats(3)
                .batch_size(1);
            let backend = apalis_sqlite::SqliteStorage::<JobTask>::new(&pool)
                .with_config(config)
                .poll_with_interval(POLL);
            WorkerBuilder::new(name.as_str())
                .backend(backend)
                .data(runner)
                .build(handle)
                .run_until(stop)
                .await
        }
    };
    ran.map_err(|e| e.to_string())
}

/// Runs one queued task: its record's next attempt. A run already
/// succeeded (its acknowledgement was lost) is not run again; a run
/// whose attempts are used up (its process kept dying: apalis re-enqueues
/// an orphaned task without counting it against the limit) is recorded
/// failed and not run again.
async fn handle(task: JobTask, runner: Data<Arc<Runner>>) -> Result<(), BoxDynError> {
    let record = runner
        .run_record(task.job, task.run_id, task.trigger, task.due_at)
        .await?;
    if record.status == lead_core::ports::RunStatus::Succeeded {
        return Ok(());
    }
    if record.attempts >= MAX_ATTEMPTS as u32 {
        let attempts = record.attempts;
        let gave_up = record.finished(
            Err(format!(
                "gave up after {attempts} attempts; the last one did not finish (its process stopped)"
            )),
            runner.deps.clock.now(),
        );
        runner.jobs.save_run(&gave_up).await?;
        tracing::error!(job = task.job.name(), run = %task.run_id, "job run given up");
        return Ok(());
    }
    let run = runner
        .run(task.job, record, Arc::new(lead_core::usecase::NoProgress))
        .await?;
    match run {
        None => Ok(()),
        Some(run) if crate::jobs::succeeded(&run) => Ok(()),
        Some(run) => Err(run.error.unwrap_or_else(|| "failed".into()).into()),
    }
}
