//! Group commit: one writer task gathers concurrent commits into one
//! database transaction, so a burst of N captures costs one durable COMMIT
//! instead of N.
//!
//! Callers hand their [`Commit`] to the writer over a bounded channel and
//! wait on a oneshot for their own answer. The writer takes the first
//! request, everything already queued behind it (up to `max_batch`), and,
//! only when others were already queued, waits at most `max_wait` for more.
//! A lone caller never waits. The batch runner applies each commit inside
//! its own savepoint and answers every caller only after the shared COMMIT.
//!
//! Shared by `lead-store-sqlite` and `lead-store-postgres`: the batching is
//! the same for both, only the batch runner (one transaction with a
//! savepoint per commit) is theirs.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use lead_core::{Commit, Error, Lead, Result};

/// One caller's commit and where its answer goes.
type Request = (Commit, oneshot::Sender<Result<Vec<Lead>>>);

/// How many transactions ran and how many commits they carried.
#[derive(Debug, Default)]
pub struct Stats {
    batches: AtomicU64,
    commits: AtomicU64,
}

impl Stats {
    /// Counts one transaction carrying `commits` commits.
    pub fn record(&self, commits: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.commits.fetch_add(
            u64::try_from(commits).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// `(transactions, commits)` so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.batches.load(Ordering::Relaxed),
            self.commits.load(Ordering::Relaxed),
        )
    }
}

/// The handle on the writer task, shared by every clone of a store.
#[derive(Debug)]
pub struct Batcher {
    /// `None` once closing has begun: new commits are refused.
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    /// The writer, awaited by `close`.
    writer: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Batcher {
    /// Spawns the writer; `run` executes one batch and returns one answer
    /// per commit, in order.
    pub fn start<F, Fut>(settings: GroupCommit, stats: std::sync::Arc<Stats>, run: F) -> Self
    where
        F: FnMut(Vec<Commit>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<Result<Vec<Lead>>>> + Send + 'static,
    {
        let max_batch = settings.max_batch.max(1);
        let (tx, rx) = mpsc::channel(max_batch.saturating_mul(2));
        let writer = tokio::spawn(write_loop(rx, settings, stats, run));
        Batcher {
            tx: Mutex::new(Some(tx)),
            writer: tokio::sync::Mutex::new(Some(writer)),
        }
    }

    /// Queues `commit` and waits for its own answer, which comes only after
    /// the transaction carrying it committed (or failed).
    pub async fn submit(&self, commit: Commit) -> Result<Vec<Lead>> {
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(closed)?;
        let (reply, answer) = oneshot::channel();
        tx.send((commit, reply)).await.map_err(|_| closed())?;
        drop(tx);
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Stops accepting commits, lets the writer finish everything already
    /// queued (answering every caller) and waits for it to exit.
    pub async fn close(&self) {
        let mut writer = self.writer.lock().await;
        drop(
            self.tx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        if let Some(writer) = writer.take() {
            // A writer that panicked has already dropped its callers'
            // oneshots: they were answered `Unavailable`.
            let _ = writer.await;
        }
    }
}

fn closed() -> Error {
    Error::Unavailable("the store is closed".into())
}

fn stopped() -> Error {
    Error::Unavailable("the store's writer stopped before answering".into())
}

/// Takes whatever is queued right now, up to `max_batch` in all.
fn drain(rx: &mut mpsc::Receiver<Request>, batch: &mut Vec<Request>, max_batch: usize) {
    while batch.len() < max_batch {
        match rx.try_recv() {
            Ok(request) => batch.push(request),
            Err(_) => break,
        }
    }
}

async fn write_loop<F, Fut>(
    mut rx: mpsc::Receiver<Request>,
    settings: GroupCommit,
    stats: std::sync::Arc<Stats>,
    mut run: F,
) where
    F: FnMut(Vec<Commit>) -> Fut,
    Fut: Future<Output = Vec<Result<Vec<Lead>>>>,
{
    let max_batch = settings.max_batch.max(1);
    let max_wait = settings.max_wait();
    // Ends when every sender is gone (store dropped or closed) and the
    // queue is empty: nothing queued is ever left unanswered.
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        drain(&mut rx, &mut batch, max_batch);
        // Others were already waiting: the store is under load, so a short
        // wait fills the transaction further. A lone caller never waits.
        if batch.len() > 1 && batch.len() < max_batch && !max_wait.is_zero() {
            let deadline = tokio::time::Instant::now() + max_wait;
            while batch.len() < max_batch {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(request)) => {
                        batch.push(request);
                        drain(&mut rx, &mut batch, max_batch);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        // A caller that gave up before its turn is not written for.
        batch.retain(|(_, reply)| !reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let (commits, replies): (Vec<Commit>, Vec<_>) = batch.into_iter().unzip();
        stats.record(commits.len());
        let answers = run(commits).await;
        for (reply, answer) in replies.into_iter().zip(answers) {
            // The caller may have stopped waiting; its commit stands.
            let _ = reply.send(answer);
        }
    }
}

/// Answers a batch gathered by the writer: one answer per commit, in order.
///
/// A lone commit runs on its own (`one`: no savepoint needed); a larger
/// batch runs as one transaction (`many`: a savepoint per commit, one
/// COMMIT), whose per-commit answers are passed on. When the batch's
/// transaction itself fails (BEGIN, a savepoint, the COMMIT), every caller
/// gets that error: an `Ok` is only ever given after the shared COMMIT.
pub async fn answer_batch<E, One, Many>(
    mut commits: Vec<Commit>,
    one: impl FnOnce(Commit) -> One,
    many: impl FnOnce(Vec<Commit>) -> Many,
) -> Vec<Result<Vec<Lead>>>
where
    Error: From<E>,
    One: Future<Output = std::result::Result<Vec<Lead>, E>>,
    Many: Future<Output = std::result::Result<Vec<std::result::Result<Vec<Lead>, E>>, E>>,
{
    let n = commits.len();
    if n == 1
        && let Some(commit) = commits.pop()
    {
        return vec![one(commit).await.map_err(Error::from)];
    }
    match many(commits).await {
        Ok(answers) => answers
            .into_iter()
            .map(|answer| answer.map_err(Error::from))
            .collect(),
        Err(err) => {
            let err = Error::from(err);
            (0..n).map(|_| Err(replicate(&err))).collect()
        }
    }
}

/// The same error again, for every caller of a failed batch.
pub fn replicate(err: &Error) -> Error {
    match err {
        Error::Invalid { fields } => Error::Invalid {
            fields: fields.clone(),
        },
        Error::NotFound(m) => Error::NotFound(m.clone()),
        Error::Conflict(m) => Error::Conflict(m.clone()),
        Error::NotAllowed(m) => Error::NotAllowed(m.clone()),
        Error::Unauthorized(m) => Error::Unauthorized(m.clone()),
        Error::RateLimited { retry_after } => Error::RateLimited {
            retry_after: *retry_after,
        },
        Error::Unavailable(m) => Error::Unavailable(m.clone()),
        Error::Internal(m) => Error::Internal(m.clone()),
        _ => Error::Internal(err.to_string()),
    }
}

/// Group commit: concurrent commits share one transaction (and one durable
/// COMMIT).
///
/// A single writer takes the first waiting commit and whatever is already
/// queued behind it, up to `max_batch`; only when others were already
/// queued does it wait up to `max_wait_ms` for more. A lone caller never
/// waits. Each commit runs in its own savepoint, so one that fails (a stale
/// version, a taken e-mail) fails alone; every caller is answered only after
/// the shared COMMIT, and if that COMMIT fails every caller in the batch gets
/// its error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct GroupCommit {
    /// Most commits in one transaction (at least 1). Default 64.
    pub max_batch: usize,
    /// Longest extra wait for more commits once others are already queued,
    /// in milliseconds; 0 takes only what is queued. Default 1 (the
    /// smallest timer step: well under one fsync or network round trip,
    /// and never paid by a lone caller).
    pub max_wait_ms: u64,
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self {
            max_batch: 64,
            max_wait_ms: 1,
        }
    }
}

impl GroupCommit {
    /// At most `max_batch` commits per transaction, gathered for at most
    /// `max_wait` once others are queued.
    pub fn new(max_batch: usize, max_wait: Duration) -> Self {
        Self {
            max_batch,
            max_wait_ms: u64::try_from(max_wait.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The wait as a duration.
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }
}
