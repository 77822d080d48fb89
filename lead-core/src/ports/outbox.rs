//! The outbox: changes waiting for their consumer (the CRM sync, and later
//! notifications and webhooks), shared safely by many workers, and the
//! small pieces of sync state (watermarks, job leases).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::commit::{Destination, OutboxEntry};
use crate::error::Result;

/// An outbox entry leased to one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claimed {
    /// The change to push.
    pub entry: OutboxEntry,
    /// Earlier failed attempts.
    pub attempts: u32,
    /// The lease ends here; after it, another worker may claim the entry.
    pub lease_until: DateTime<Utc>,
}

/// An entry given up on, kept for people to look at and replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The change.
    pub entry: OutboxEntry,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub error: String,
    /// When it was parked.
    pub parked_at: DateTime<Utc>,
}

/// The work queue of every consumer of changes, one queue per
/// [`Destination`].
///
/// # Contract
///
/// - [`claim`](OutboxStore::claim) hands each available entry of its
///   destination (not acked, not dead, `available_at <= now`, no live
///   lease) to exactly one caller until its lease ends, oldest first;
///   concurrent callers never receive the same entry while a lease lives,
///   and a claim never returns another destination's entries.
/// - [`ack`](OutboxStore::ack), [`retry`](OutboxStore::retry) and
///   [`dead_letter`](OutboxStore::dead_letter) only act for the worker
///   holding the lease; otherwise they answer
///   [`Error::Conflict`](crate::Error::Conflict) (the lease expired and
///   someone else may be working on it).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Leases up to `limit` available entries of `destination` to `worker`
    /// for `lease`.
    async fn claim(
        &self,
        destination: &Destination,
        worker: &str,
        limit: usize,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>>;

    /// The push succeeded: the entry is done.
    async fn ack(&self, id: Uuid, worker: &str) -> Result<()>;

    /// The push failed for a temporary reason: try again from `available_at`.
    async fn retry(
        &self,
        id: Uuid,
        worker: &str,
        available_at: DateTime<Utc>,
        error: &str,
    ) -> Result<()>;

    /// The push can never succeed: park the entry.
    async fn dead_letter(
        &self,
        id: Uuid,
        worker: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Parked entries of `destination`, oldest first.
    async fn dead_letters(
        &self,
        destination: &Destination,
        limit: usize,
    ) -> Result<Vec<DeadLetter>>;

    /// Entries of `destination` not yet done nor parked (for metrics and
    /// tests).
    async fn pending_count(&self, destination: &Destination) -> Result<u64>;

    /// Parked entries of `destination`.
    async fn dead_count(&self, destination: &Destination) -> Result<u64>;

    /// Puts the parked entry `id` of `destination` back in its queue,
    /// available from `now` with a fresh retry budget (someone fixed the
    /// cause and asks for another try); its last error is kept on the
    /// queued entry. [`Error::NotFound`](crate::Error::NotFound) when
    /// `destination` has no such dead letter.
    async fn requeue(&self, destination: &Destination, id: Uuid, now: DateTime<Utc>) -> Result<()>;
}

/// Small named pieces of state that several server instances share.
///
/// # Contract
///
/// [`try_lease`](SyncState::try_lease) gives a named lease to one holder at
/// a time: it succeeds when the lease is free, expired, or already held by
/// the same holder (renewal), and fails otherwise.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait SyncState: Send + Sync {
    /// The watermark stored under `name` (e.g. `salesforce.pull`).
    async fn watermark(&self, name: &str) -> Result<Option<String>>;

    /// Stores a watermark.
    async fn set_watermark(&self, name: &str, value: &str) -> Result<()>;

    /// Takes or renews the lease `name` for `holder` until `until`.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Gives a lease back early (only its holder can).
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;
}
