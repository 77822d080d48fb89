//! Group commit: writer tasks gather concurrent commits into shared
//! database transactions, so a burst of N captures costs a few durable
//! COMMITs instead of N.
//!
//! Callers hand their [`Commit`] to the writers over a bounded channel and
//! wait on a oneshot for their own answer. A writer takes the first
//! request, everything already queued behind it (up to `max_batch`), and,
//! only when others were already queued, waits at most `max_wait` for more.
//! A lone caller never waits. With several writers, the next batch gathers
//! and starts while earlier ones are still being written. The batch runner
//! answers every caller only after the shared COMMIT.
//!
//! Shared by `lead-store-sqlite` and `lead-store-postgres`: the batching is
//! the same for both, only the batch runner (a fast path for new leads, a
//! savepoint per commit otherwise) is theirs.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use lead_core::{Commit, Error, Lead, LeadWrite, Result};

/// One caller's request (a commit, or a read a store batches the same way)
/// and where its answer goes.
type Request<Q, A> = (Q, oneshot::Sender<Result<A>>);

/// How many transactions ran, how many commits they carried, and how often
/// the fast path for new leads was refused (and the checked path ran).
#[derive(Debug, Default)]
pub struct Stats {
    batches: AtomicU64,
    commits: AtomicU64,
    refused: AtomicU64,
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

    /// Counts one batch of new leads the database refused as a whole (one
    /// of them broke a rule, or a statement failed): it was retried on the
    /// checked path. Rare in normal traffic; a steady rise means the fast
    /// path is failing for a reason worth a look.
    pub fn record_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Fast-path batches refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// `(transactions, commits)` so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.batches.load(Ordering::Relaxed),
            self.commits.load(Ordering::Relaxed),
        )
    }
}

/// The handle on the writer tasks, shared by every clone of a store.
///
/// Batches commits by default; a store may batch other requests `Q`
/// answered by `A` the same way (PostgreSQL batches the reads before a
/// capture).
#[derive(Debug)]
pub struct Batcher<Q = Commit, A = Vec<Lead>> {
    /// `None` once closing has begun: new commits are refused.
    tx: Mutex<Option<mpsc::Sender<Request<Q, A>>>>,
    /// The writers, awaited by `close`.
    writers: tokio::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl<Q: Send + 'static, A: Send + 'static> Batcher<Q, A> {
    /// Spawns the writers. Each gets its own runner from `new_runner` (so
    /// it may keep state, such as a connection, between its batches); a
    /// runner executes one batch and returns one answer per request, in
    /// order.
    pub fn start<N, F, Fut>(
        settings: GroupCommit,
        stats: std::sync::Arc<Stats>,
        new_runner: N,
    ) -> Self
    where
        N: Fn() -> F,
        F: FnMut(Vec<Q>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<Result<A>>> + Send + 'static,
    {
        let max_batch = settings.max_batch.max(1);
        let (tx, rx) = mpsc::channel(max_batch.saturating_mul(2));
        let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
        let writers = (0..settings.writers.max(1))
            .map(|_| {
                tokio::spawn(write_loop(
                    rx.clone(),
                    settings,
                    stats.clone(),
                    new_runner(),
                ))
            })
            .collect();
        Batcher {
            tx: Mutex::new(Some(tx)),
            writers: tokio::sync::Mutex::new(writers),
        }
    }

    /// Queues `commit` and waits for its own answer, which comes only after
    /// the transaction carrying it committed (or failed).
    pub async fn submit(&self, commit: Q) -> Result<A> {
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

    /// Stops accepting commits, lets the writers finish everything already
    /// queued (answering every caller) and waits for them to exit.
    pub async fn close(&self) {
        let mut writers = self.writers.lock().await;
        drop(
            self.tx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        for writer in writers.drain(..) {
            // A writer that panicked has already dropped its callers'
            // oneshots: they were answered `Unavailable`.
            let _ = writer.await;
        }
    }
}

fn closed() -> Error {
    Error::unavailable("the store is closed")
}

fn stopped() -> Error {
    Error::unavailable("the store's writer stopped before answering")
}

/// Most scheduler rounds a writer yields to let more callers queue.
const GATHER_ROUNDS: usize = 4;

/// Takes whatever is queued right now, up to `max_batch` in all.
fn drain<Q, A>(
    rx: &mut mpsc::Receiver<Request<Q, A>>,
    batch: &mut Vec<Request<Q, A>>,
    max_batch: usize,
) {
    while batch.len() < max_batch {
        match rx.try_recv() {
            Ok(request) => batch.push(request),
            Err(_) => break,
        }
    }
}

async fn write_loop<Q, A, F, Fut>(
    rx: std::sync::Arc<tokio::sync::Mutex<mpsc::Receiver<Request<Q, A>>>>,
    settings: GroupCommit,
    stats: std::sync::Arc<Stats>,
    mut run: F,
) where
    F: FnMut(Vec<Q>) -> Fut,
    Fut: Future<Output = Vec<Result<A>>>,
{
    let max_batch = settings.max_batch.max(1);
    let max_wait = settings.max_wait();
    // Ends when every sender is gone (store dropped or closed) and the
    // queue is empty: nothing queued is ever left unanswered.
    loop {
        // One writer gathers at a time; the others are running their own
        // batches meanwhile, so gathering overlaps with writing.
        let mut batch = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else {
                break;
            };
            let mut batch = vec![first];
            drain(&mut rx, &mut batch, max_batch);
            // Callers just answered are about to queue again: letting the
            // runtime run them first fills the transaction without any
            // timer. Stop as soon as a round brings nobody, so a lone
            // caller costs one yield, not a wait.
            for _ in 0..GATHER_ROUNDS {
                let before = batch.len();
                tokio::task::yield_now().await;
                drain(&mut rx, &mut batch, max_batch);
                if batch.len() == before || batch.len() >= max_batch {
                    break;
                }
            }
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
            batch
        };
        // A caller that gave up before its turn is not written for.
        batch.retain(|(_, reply)| !reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let (commits, replies): (Vec<Q>, Vec<_>) = batch.into_iter().unzip();
        stats.record(commits.len());
        let answers = run(commits).await;
        for (reply, answer) in replies.into_iter().zip(answers) {
            // The caller may have stopped waiting; its commit stands.
            let _ = reply.send(answer);
        }
    }
}

/// Turns a batch runner's result into one answer per commit, in order.
///
/// `result` is the batch transaction's outcome: its per-commit answers, or
/// the failure of the transaction itself (BEGIN, a savepoint, the COMMIT),
/// which every one of the `n` callers gets: an `Ok` is only ever given
/// after the shared COMMIT.
pub fn answer_batch<E>(
    n: usize,
    result: std::result::Result<Vec<std::result::Result<Vec<Lead>, E>>, E>,
) -> Vec<Result<Vec<Lead>>>
where
    Error: From<E>,
{
    match result {
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

/// A cause as its text (a cause is not `Clone`; every caller of a failed
/// batch logs the same words).
fn text_of(cause: &lead_core::Cause) -> lead_core::Cause {
    lead_core::error_chain(cause.as_ref()).into()
}

/// The same error again, for every caller of a failed batch, with the
/// cause's text.
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
        Error::Unavailable(m, cause) => Error::Unavailable(m.clone(), cause.as_ref().map(text_of)),
        Error::Internal(m, cause) => Error::Internal(m.clone(), cause.as_ref().map(text_of)),
        _ => Error::internal(err.to_string()),
    }
}

/// Group commit: concurrent commits share one transaction (and one durable
/// COMMIT).
///
/// A writer takes the first waiting commit and whatever is already
/// queued behind it, up to `max_batch`; only when others were already
/// queued does it wait up to `max_wait_ms` for more. A lone caller never
/// waits. New leads ([`Commit::is_insert_only`]) are written together
/// with one statement per table: a batch of nothing else on its own, in a
/// mixed batch ([`Parts`]) in a savepoint ahead of the rest. Every other
/// commit, and new leads the database refused there, runs in a savepoint
/// of its own, so one that fails (a stale version, a taken e-mail) fails
/// alone. Every caller is answered only after
/// the shared COMMIT, and if that COMMIT fails every caller in the batch gets
/// its error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct GroupCommit {
    /// Most commits in one transaction (at least 1). Default 64.
    pub max_batch: usize,
    /// Longest timed wait for more commits once others are already queued,
    /// in milliseconds. Default 0: a writer only yields to the scheduler a
    /// few times so callers that were just answered can queue again, which
    /// fills batches without a timer; a 1 ms wait measured 2× slower at 8
    /// writers on both stores (the wait adds to every batch's latency).
    pub max_wait_ms: u64,
    /// Batches in flight at once (at least 1), each on its own connection:
    /// while one batch is being written the next one gathers and starts,
    /// so a lone commit does not hold up the ones queued behind it. Default
    /// 1 on both stores: SQLite has one writer anyway, and on PostgreSQL
    /// more writers measured slower on a 2-core machine (`docs/perf.md`).
    pub writers: usize,
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self {
            max_batch: 64,
            max_wait_ms: 0,
            writers: 1,
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
            ..Self::default()
        }
    }

    /// The same settings with `writers` batches in flight at once.
    pub fn with_writers(self, writers: usize) -> Self {
        Self { writers, ..self }
    }

    /// The wait as a duration.
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }
}

/// A mixed batch in two parts: its new leads only
/// ([`Commit::is_insert_only`]), which a store writes together on its fast
/// path, and the rest, each checked in a savepoint. Both parts run in the
/// batch's one transaction; the places let the answers go back in the
/// batch's order.
///
/// Without the split, one merge among sixty new leads sent all of them
/// down the checked path, a dozen round trips each (`docs/perf.md`, the
/// import of a million leads).
#[derive(Debug, Default)]
pub struct Parts {
    /// Places in the batch of the insert-only commits.
    pub insert_at: Vec<usize>,
    /// The insert-only commits.
    pub inserts: Vec<Commit>,
    /// Each insert-only commit's leads as stored.
    pub written: Vec<Vec<Lead>>,
    /// Places in the batch of the commits to check.
    pub checked_at: Vec<usize>,
    /// The commits to check one by one.
    pub checked: Vec<Commit>,
}

impl Parts {
    /// Splits `commits`, keeping their order within each part.
    pub fn of(commits: Vec<Commit>) -> Parts {
        let mut parts = Parts::default();
        for (at, commit) in commits.into_iter().enumerate() {
            if commit.is_insert_only() {
                parts.written.push(written_of(&commit));
                parts.insert_at.push(at);
                parts.inserts.push(commit);
            } else {
                parts.checked_at.push(at);
                parts.checked.push(commit);
            }
        }
        parts
    }

    /// The fast path wrote the inserts: their answers (place, leads as
    /// stored); only the commits to check are left.
    pub fn take_written<E>(&mut self) -> Vec<(usize, std::result::Result<Vec<Lead>, E>)> {
        self.inserts.clear();
        let written = std::mem::take(&mut self.written);
        std::mem::take(&mut self.insert_at)
            .into_iter()
            .zip(written.into_iter().map(Ok))
            .collect()
    }

    /// The fast path refused the inserts: they are checked one by one
    /// with the rest, in the batch's order.
    pub fn check_inserts_too(&mut self) {
        let inserts = std::mem::take(&mut self.inserts);
        let at = std::mem::take(&mut self.insert_at);
        self.written.clear();
        let checked = std::mem::take(&mut self.checked);
        let checked_at = std::mem::take(&mut self.checked_at);
        let mut all: Vec<(usize, Commit)> = at
            .into_iter()
            .zip(inserts)
            .chain(checked_at.into_iter().zip(checked))
            .collect();
        all.sort_by_key(|(at, _)| *at);
        (self.checked_at, self.checked) = all.into_iter().unzip();
    }
}

/// Answers given part by part (place in the batch, answer), back in the
/// batch's order: `n` answers, one per place. A place left unanswered (a
/// store's bug, never the input) is an internal error rather than a panic
/// of the writer every caller waits on.
pub fn in_batch_order<E: From<Error>>(
    n: usize,
    answered: impl IntoIterator<Item = (usize, std::result::Result<Vec<Lead>, E>)>,
) -> Vec<std::result::Result<Vec<Lead>, E>> {
    let mut slots: Vec<Option<std::result::Result<Vec<Lead>, E>>> = (0..n).map(|_| None).collect();
    for (at, answer) in answered {
        if let Some(slot) = slots.get_mut(at) {
            *slot = Some(answer);
        }
    }
    slots
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| {
                Err(Error::internal("a commit of the batch was not answered").into())
            })
        })
        .collect()
}

/// The leads each commit stores, when every commit only adds
/// ([`Commit::is_insert_only`]): such a batch may take a store's fast path,
/// which writes without reading facts first and leaves the rules to the
/// database's guards. `None` when any commit updates or merges.
pub fn insert_only(commits: &[Commit]) -> Option<Vec<Vec<Lead>>> {
    commits
        .iter()
        .all(Commit::is_insert_only)
        .then(|| commits.iter().map(written_of).collect())
}

/// The leads `commit` stores, as stored (version set).
fn written_of(commit: &Commit) -> Vec<Lead> {
    commit
        .leads
        .iter()
        .cloned()
        .map(LeadWrite::into_written)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use lead_core::{LeadExtId, LoadChange, RepId, ReviewPair, ReviewStatus};

    /// A commit tagged `tag` (its workload change's pass), insert-only or
    /// not (a review pair makes it one to check).
    fn commit(tag: f64, insert_only: bool) -> Commit {
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap();
        let mut commit = Commit::new();
        commit.load.push(LoadChange::Assigned {
            rep: RepId::parse("ana@acme.com").unwrap(),
            at,
            local_day: at.date_naive(),
            pass: tag,
        });
        if !insert_only {
            commit.reviews.push(ReviewPair {
                id: uuid::Uuid::nil(),
                leads: [LeadExtId::from_random(1), LeadExtId::from_random(2)],
                similarity: None,
                status: ReviewStatus::Open,
                merge_id: None,
                found_at: at,
                decided_at: None,
            });
        }
        commit
    }

    fn tags(commits: &[Commit]) -> Vec<f64> {
        commits
            .iter()
            .map(|c| match c.load[0] {
                LoadChange::Assigned { pass, .. } => pass,
                _ => f64::NAN,
            })
            .collect()
    }

    #[test]
    fn a_mixed_batch_splits_into_its_inserts_and_the_rest_keeping_places() {
        let batch = vec![
            commit(0.0, true),
            commit(1.0, false),
            commit(2.0, true),
            commit(3.0, false),
            commit(4.0, true),
        ];
        let mut parts = Parts::of(batch);
        assert_eq!(parts.insert_at, [0, 2, 4]);
        assert_eq!(tags(&parts.inserts), [0.0, 2.0, 4.0]);
        assert_eq!(parts.written.len(), 3);
        assert_eq!(parts.checked_at, [1, 3]);
        assert_eq!(tags(&parts.checked), [1.0, 3.0]);

        let mut written = Parts::of(vec![commit(0.0, true), commit(1.0, false)]);
        let answers = written.take_written::<Error>();
        assert_eq!(answers.len(), 1);
        assert!(matches!(&answers[0], (0, Ok(leads)) if leads.is_empty()));
        assert!(written.inserts.is_empty() && written.written.is_empty());
        assert_eq!(written.checked_at, [1]);

        parts.check_inserts_too();
        assert!(parts.inserts.is_empty() && parts.insert_at.is_empty());
        assert!(parts.written.is_empty());
        assert_eq!(parts.checked_at, [0, 1, 2, 3, 4]);
        assert_eq!(tags(&parts.checked), [0.0, 1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn answers_go_back_in_batch_order_and_a_missing_one_is_an_internal_error() {
        let answered: Vec<(usize, Result<Vec<Lead>>)> = vec![
            (2, Err(Error::Conflict("two".into()))),
            (0, Ok(Vec::new())),
            (7, Err(Error::Conflict("out of range, ignored".into()))),
        ];
        let answers = in_batch_order(3, answered);
        assert_eq!(answers.len(), 3);
        assert!(matches!(&answers[0], Ok(leads) if leads.is_empty()));
        assert!(
            matches!(&answers[1], Err(Error::Internal(..))),
            "{:?}",
            answers[1]
        );
        assert!(matches!(&answers[2], Err(Error::Conflict(m)) if m == "two"));
    }
}
