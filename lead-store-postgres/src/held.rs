//! A pooled connection a batch runner keeps between its batches.
//!
//! Under load it never goes back to the pool, which spares the pool's two
//! liveness round trips (on acquire and on release) per batch: about a
//! fifth of a small batch's time. Once the runner has been idle for
//! [`HOLD_IDLE`], a reaper hands the connection back, so the pool checks
//! it before its next use and it is never kept from other operations for
//! long.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::{Mutex, MutexGuard};

/// How long a runner may keep its connection between batches.
const HOLD_IDLE: Duration = Duration::from_secs(1);

/// A connection kept between batches, and since when it is idle.
type Slot = Option<(PoolConnection<Postgres>, Instant)>;

/// The connection one batch runner holds (at most one batch at a time).
#[derive(Debug, Clone)]
pub(crate) struct HeldConnection {
    pool: PgPool,
    slot: Arc<Mutex<Slot>>,
}

/// The connection, lent to one batch.
pub(crate) struct Checkout<'a> {
    slot: MutexGuard<'a, Slot>,
    /// The connection to run the batch on.
    pub(crate) conn: PoolConnection<Postgres>,
}

impl Checkout<'_> {
    /// Keeps the connection for the next batch. A checkout dropped without
    /// `keep` (after an error that may have broken the connection) returns
    /// it to the pool, which checks it on release.
    pub(crate) fn keep(mut self) {
        *self.slot = Some((self.conn, Instant::now()));
    }
}

impl HeldConnection {
    /// A holder over `pool`, with a reaper task that returns the connection
    /// once idle for [`HOLD_IDLE`] and stops when the holder is gone.
    pub(crate) fn new(pool: PgPool) -> Self {
        let slot: Arc<Mutex<Slot>> = Arc::default();
        let watched = Arc::downgrade(&slot);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HOLD_IDLE);
            loop {
                tick.tick().await;
                let Some(slot) = watched.upgrade() else {
                    break;
                };
                let mut slot = slot.lock().await;
                if slot
                    .as_ref()
                    .is_some_and(|(_, since)| since.elapsed() >= HOLD_IDLE)
                {
                    *slot = None;
                }
            }
        });
        Self { pool, slot }
    }

    /// The held connection, or a fresh one from the pool.
    pub(crate) async fn checkout(&self) -> Result<Checkout<'_>, sqlx::Error> {
        let mut slot = self.slot.lock().await;
        let conn = match slot.take() {
            Some((conn, since)) if since.elapsed() < HOLD_IDLE => conn,
            _ => self.pool.acquire().await?,
        };
        Ok(Checkout { slot, conn })
    }
}
