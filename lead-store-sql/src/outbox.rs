//! The outbox flow, once for both SQL stores: claiming in lease order,
//! acknowledging, retrying and parking only what the caller holds, and
//! reading entries back. A store supplies [`OutboxSql`], one statement (or
//! one short transaction) per step in its dialect, and forwards its
//! `lead_core::OutboxStore` methods to the functions here.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lead_core::{Claimed, DeadLetter, Destination, Error, Result};
use uuid::Uuid;

use crate::codec::{EntryColumns, count, instant, micros, outbox_entry};
use crate::error::{Dialect, from_sqlx};

/// A row a claim leased: the entry's columns, its attempts so far, and
/// the `available_at` and `seq` it is ordered by.
#[derive(Debug)]
pub struct LeasedRow {
    /// `id, destination, lead, kind, payload, created_at`.
    pub entry: EntryColumns,
    /// Failed attempts so far.
    pub attempts: i64,
    /// When the entry became available (microseconds).
    pub available_at: i64,
    /// Insertion order.
    pub seq: i64,
}

/// A parked row: the entry's columns, attempts, the last error and when
/// it was parked (microseconds).
#[derive(Debug)]
pub struct ParkedRow {
    /// `id, destination, lead, kind, payload, created_at`.
    pub entry: EntryColumns,
    /// Attempts, the last one included.
    pub attempts: i64,
    /// Why it was parked.
    pub error: String,
    /// When (microseconds).
    pub parked_at: i64,
}

/// One database's outbox statements. Each is atomic on its own; the
/// rules (who may touch a row, the order, what an untouched row means)
/// are in this module's functions.
#[async_trait]
pub trait OutboxSql: Send + Sync {
    /// How the database's errors read.
    type Dialect: Dialect;

    /// Leases to `worker` until `until` at most `limit` entries of
    /// `destination` that are available at `now` and not leased (or whose
    /// lease ended by `now`), oldest `available_at, seq` first; no entry
    /// may go to two concurrent claims.
    async fn lease_rows(
        &self,
        destination: &str,
        worker: &str,
        limit: i64,
        until: i64,
        now: i64,
    ) -> std::result::Result<Vec<LeasedRow>, sqlx::Error>;

    /// Deletes entry `id` if it is leased to `worker`; rows deleted.
    async fn delete_leased(&self, id: Uuid, worker: &str) -> std::result::Result<u64, sqlx::Error>;

    /// Counts one more attempt on entry `id` leased to `worker`, frees it
    /// until `available_at` and records `error`; rows changed.
    async fn reschedule_leased(
        &self,
        id: Uuid,
        worker: &str,
        available_at: i64,
        error: &str,
    ) -> std::result::Result<u64, sqlx::Error>;

    /// Moves entry `id` leased to `worker` to the dead letters with one
    /// more attempt, `error` and `parked_at`, atomically; rows moved.
    async fn park_leased(
        &self,
        id: Uuid,
        worker: &str,
        error: &str,
        parked_at: i64,
    ) -> std::result::Result<u64, sqlx::Error>;

    /// At most `limit` dead letters of `destination`, in parking order.
    async fn parked_rows(
        &self,
        destination: &str,
        limit: i64,
    ) -> std::result::Result<Vec<ParkedRow>, sqlx::Error>;

    /// Whether entry `id` is still queued.
    async fn is_queued(&self, id: Uuid) -> std::result::Result<bool, sqlx::Error>;

    /// How many entries of `destination` are queued.
    async fn queued_count(&self, destination: &str) -> std::result::Result<i64, sqlx::Error>;

    /// How many entries of `destination` are parked.
    async fn parked_count(&self, destination: &str) -> std::result::Result<i64, sqlx::Error>;

    /// Moves the dead letter `id` of `destination` back to the queue,
    /// available at `now` with no attempts and its error as the last one,
    /// atomically; rows moved.
    async fn unpark(
        &self,
        destination: &str,
        id: Uuid,
        now: i64,
    ) -> std::result::Result<u64, sqlx::Error>;
}

fn driver<S: OutboxSql + ?Sized>(err: sqlx::Error) -> Error {
    from_sqlx::<S::Dialect>(err)
}

fn stored<S: OutboxSql + ?Sized>(err: crate::codec::CodecError) -> Error {
    crate::error::StoreError::<S::Dialect>::from(err).into()
}

fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// `lead_core::OutboxStore::claim`.
pub async fn claim<S: OutboxSql + ?Sized>(
    sql: &S,
    destination: &Destination,
    worker: &str,
    limit: usize,
    lease: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<Claimed>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    let mut rows = sql
        .lease_rows(
            destination.as_str(),
            worker,
            limit_of(limit),
            micros(until),
            micros(now),
        )
        .await
        .map_err(driver::<S>)?;
    // RETURNING has no order of its own: oldest first.
    rows.sort_by_key(|row| (row.available_at, row.seq));
    rows.into_iter()
        .map(|row| {
            Ok(Claimed {
                entry: outbox_entry(row.entry).map_err(stored::<S>)?,
                attempts: count("outbox attempts", row.attempts).map_err(stored::<S>)?,
                lease_until: until,
            })
        })
        .collect()
}

/// Why a change to entry `id` by `worker` touched no row: it is gone, or
/// it is not `worker`'s.
async fn not_leased<S: OutboxSql + ?Sized>(sql: &S, id: Uuid, worker: &str) -> Error {
    match sql.is_queued(id).await {
        Ok(true) => Error::Conflict(format!("outbox entry {id} is not leased to {worker}")),
        Ok(false) => Error::NotFound(format!("outbox entry {id}")),
        Err(err) => driver::<S>(err),
    }
}

/// `Ok` when one row was touched, else why not.
async fn touched<S: OutboxSql + ?Sized>(
    sql: &S,
    rows: std::result::Result<u64, sqlx::Error>,
    id: Uuid,
    worker: &str,
) -> Result<()> {
    match rows.map_err(driver::<S>)? {
        0 => Err(not_leased(sql, id, worker).await),
        _ => Ok(()),
    }
}

/// `lead_core::OutboxStore::ack`.
pub async fn ack<S: OutboxSql + ?Sized>(sql: &S, id: Uuid, worker: &str) -> Result<()> {
    touched(sql, sql.delete_leased(id, worker).await, id, worker).await
}

/// `lead_core::OutboxStore::retry`.
pub async fn retry<S: OutboxSql + ?Sized>(
    sql: &S,
    id: Uuid,
    worker: &str,
    available_at: DateTime<Utc>,
    error: &str,
) -> Result<()> {
    let rows = sql
        .reschedule_leased(id, worker, micros(available_at), error)
        .await;
    touched(sql, rows, id, worker).await
}

/// `lead_core::OutboxStore::dead_letter`.
pub async fn dead_letter<S: OutboxSql + ?Sized>(
    sql: &S,
    id: Uuid,
    worker: &str,
    error: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let rows = sql.park_leased(id, worker, error, micros(now)).await;
    touched(sql, rows, id, worker).await
}

/// `lead_core::OutboxStore::dead_letters`.
pub async fn dead_letters<S: OutboxSql + ?Sized>(
    sql: &S,
    destination: &Destination,
    limit: usize,
) -> Result<Vec<DeadLetter>> {
    let rows = sql
        .parked_rows(destination.as_str(), limit_of(limit))
        .await
        .map_err(driver::<S>)?;
    rows.into_iter()
        .map(|row| {
            Ok(DeadLetter {
                entry: outbox_entry(row.entry).map_err(stored::<S>)?,
                attempts: count("dead letter attempts", row.attempts).map_err(stored::<S>)?,
                error: row.error,
                parked_at: instant(row.parked_at).map_err(stored::<S>)?,
            })
        })
        .collect()
}

/// `lead_core::OutboxStore::pending_count`.
pub async fn pending_count<S: OutboxSql + ?Sized>(
    sql: &S,
    destination: &Destination,
) -> Result<u64> {
    let n = sql
        .queued_count(destination.as_str())
        .await
        .map_err(driver::<S>)?;
    count("outbox count", n).map_err(stored::<S>)
}

/// `lead_core::OutboxStore::dead_count`.
pub async fn dead_count<S: OutboxSql + ?Sized>(sql: &S, destination: &Destination) -> Result<u64> {
    let n = sql
        .parked_count(destination.as_str())
        .await
        .map_err(driver::<S>)?;
    count("dead letter count", n).map_err(stored::<S>)
}

/// `lead_core::OutboxStore::requeue`.
pub async fn requeue<S: OutboxSql + ?Sized>(
    sql: &S,
    destination: &Destination,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    let moved = sql
        .unpark(destination.as_str(), id, micros(now))
        .await
        .map_err(driver::<S>)?;
    match moved {
        0 => Err(Error::NotFound(format!("dead letter {id}"))),
        _ => Ok(()),
    }
}
