//! [`OutboxStore`] and [`SyncState`] on PostgreSQL: the CRM push queue
//! shared by every instance's workers, its dead letters, watermarks and job
//! leases. The outbox's flow is `lead_store_sql::outbox`; here are its
//! statements.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use lead_core::{Claimed, DeadLetter, Destination, OutboxStore, Result, SyncState};
use lead_store_sql::outbox::{self, LeasedRow, OutboxSql, ParkedRow};

use crate::codec::micros;
use crate::error::{PostgresDialect, StoreError};
use crate::store::PostgresStore;

type Sqlx<T> = std::result::Result<T, sqlx::Error>;

/// A claimed row: `id, destination, lead, kind, payload, created_at,
/// attempts, available_at, seq`.
type ClaimColumns = (String, String, String, String, String, i64, i32, i64, i64);

/// A parked row: `id, destination, lead, kind, payload, created_at,
/// attempts, error, parked_at`.
type DeadColumns = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i32,
    String,
    i64,
);

/// The outbox statements, on the store's pool.
struct Queue<'a>(&'a sqlx::PgPool);

#[async_trait]
impl OutboxSql for Queue<'_> {
    type Dialect = PostgresDialect;

    async fn lease_rows(
        &self,
        destination: &str,
        worker: &str,
        limit: i64,
        until: i64,
        now: i64,
    ) -> Sqlx<Vec<LeasedRow>> {
        // One statement. Rows another claim has locked are skipped, not
        // waited for, and a row whose lease another claim just took is
        // re-checked after its lock is taken (READ COMMITTED re-evaluates
        // the WHERE clause), so concurrent claims from any instance get
        // disjoint batches.
        let rows: Vec<ClaimColumns> = sqlx::query_as(
            "WITH picked AS ( \
                 SELECT seq FROM outbox \
                 WHERE destination = $5 AND available_at <= $3 \
                   AND (lease_until IS NULL OR lease_until <= $3) \
                 ORDER BY available_at, seq \
                 LIMIT $4 \
                 FOR UPDATE SKIP LOCKED) \
             UPDATE outbox o SET leased_by = $1, lease_until = $2 \
             FROM picked WHERE o.seq = picked.seq \
             RETURNING o.id::text, o.destination, o.lead, o.kind, o.payload::text, o.created_at, \
                       o.attempts, o.available_at, o.seq",
        )
        .bind(worker)
        .bind(until)
        .bind(now)
        .bind(limit)
        .bind(destination)
        .fetch_all(self.0)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    destination,
                    lead,
                    kind,
                    payload,
                    created_at,
                    attempts,
                    available_at,
                    seq,
                )| {
                    LeasedRow {
                        entry: (id, destination, lead, kind, payload, created_at),
                        attempts: i64::from(attempts),
                        available_at,
                        seq,
                    }
                },
            )
            .collect())
    }

    async fn delete_leased(&self, id: Uuid, worker: &str) -> Sqlx<u64> {
        let done = sqlx::query("DELETE FROM outbox WHERE id = $1::uuid AND leased_by = $2")
            .bind(id.to_string())
            .bind(worker)
            .execute(self.0)
            .await?;
        Ok(done.rows_affected())
    }

    async fn reschedule_leased(
        &self,
        id: Uuid,
        worker: &str,
        available_at: i64,
        error: &str,
    ) -> Sqlx<u64> {
        let done = sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, available_at = $1, leased_by = NULL, \
             lease_until = NULL, last_error = $2 WHERE id = $3::uuid AND leased_by = $4",
        )
        .bind(available_at)
        .bind(error)
        .bind(id.to_string())
        .bind(worker)
        .execute(self.0)
        .await?;
        Ok(done.rows_affected())
    }

    async fn park_leased(&self, id: Uuid, worker: &str, error: &str, parked_at: i64) -> Sqlx<u64> {
        // Moved in one statement: the row leaves the queue exactly when it
        // is parked.
        let parked = sqlx::query(
            "WITH gone AS (DELETE FROM outbox WHERE id = $1::uuid AND leased_by = $2 \
                           RETURNING id, destination, lead, kind, payload, created_at, attempts) \
             INSERT INTO dead_letters \
             (id, destination, lead, kind, payload, created_at, attempts, error, parked_at) \
             SELECT id, destination, lead, kind, payload, created_at, attempts + 1, $3, $4 \
             FROM gone",
        )
        .bind(id.to_string())
        .bind(worker)
        .bind(error)
        .bind(parked_at)
        .execute(self.0)
        .await?;
        Ok(parked.rows_affected())
    }

    async fn parked_rows(&self, destination: &str, limit: i64) -> Sqlx<Vec<ParkedRow>> {
        let rows: Vec<DeadColumns> = sqlx::query_as(
            "SELECT id::text, destination, lead, kind, payload::text, created_at, attempts, error, \
                    parked_at \
             FROM dead_letters WHERE destination = $2 ORDER BY seq LIMIT $1",
        )
        .bind(limit)
        .bind(destination)
        .fetch_all(self.0)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, destination, lead, kind, payload, created_at, attempts, error, parked_at)| {
                    ParkedRow {
                        entry: (id, destination, lead, kind, payload, created_at),
                        attempts: i64::from(attempts),
                        error,
                        parked_at,
                    }
                },
            )
            .collect())
    }

    async fn is_queued(&self, id: Uuid) -> Sqlx<bool> {
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM outbox WHERE id = $1::uuid")
            .bind(id.to_string())
            .fetch_optional(self.0)
            .await?;
        Ok(found.is_some())
    }

    async fn queued_count(&self, destination: &str) -> Sqlx<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE destination = $1")
            .bind(destination)
            .fetch_one(self.0)
            .await
    }

    async fn parked_count(&self, destination: &str) -> Sqlx<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters WHERE destination = $1")
            .bind(destination)
            .fetch_one(self.0)
            .await
    }

    async fn unpark(&self, destination: &str, id: Uuid, now: i64) -> Sqlx<u64> {
        // Moved in one statement, like parking: the entry is in exactly
        // one of the two tables at any time.
        let moved = sqlx::query(
            "WITH back AS (DELETE FROM dead_letters WHERE id = $1::uuid AND destination = $2 \
                           RETURNING id, destination, lead, kind, payload, created_at, error) \
             INSERT INTO outbox \
             (id, destination, lead, kind, payload, created_at, available_at, attempts, last_error) \
             SELECT id, destination, lead, kind, payload, created_at, $3, 0, error FROM back",
        )
        .bind(id.to_string())
        .bind(destination)
        .bind(now)
        .execute(self.0)
        .await?;
        Ok(moved.rows_affected())
    }
}

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn claim(
        &self,
        destination: &Destination,
        worker: &str,
        limit: usize,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>> {
        outbox::claim(&Queue(&self.pool), destination, worker, limit, lease, now).await
    }

    async fn ack(&self, id: Uuid, worker: &str) -> Result<()> {
        outbox::ack(&Queue(&self.pool), id, worker).await
    }

    async fn retry(
        &self,
        id: Uuid,
        worker: &str,
        available_at: DateTime<Utc>,
        error: &str,
    ) -> Result<()> {
        outbox::retry(&Queue(&self.pool), id, worker, available_at, error).await
    }

    async fn dead_letter(
        &self,
        id: Uuid,
        worker: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        outbox::dead_letter(&Queue(&self.pool), id, worker, error, now).await
    }

    async fn dead_letters(
        &self,
        destination: &Destination,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        outbox::dead_letters(&Queue(&self.pool), destination, limit).await
    }

    async fn pending_count(&self, destination: &Destination) -> Result<u64> {
        outbox::pending_count(&Queue(&self.pool), destination).await
    }

    async fn dead_count(&self, destination: &Destination) -> Result<u64> {
        outbox::dead_count(&Queue(&self.pool), destination).await
    }

    async fn requeue(&self, destination: &Destination, id: Uuid, now: DateTime<Utc>) -> Result<()> {
        outbox::requeue(&Queue(&self.pool), destination, id, now).await
    }
}

#[async_trait]
impl SyncState for PostgresStore {
    async fn watermark(&self, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM sync_watermarks WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::from)?,
        )
    }

    async fn set_watermark(&self, name: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO sync_watermarks (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at",
        )
        .bind(name)
        .bind(value)
        .bind(micros(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(())
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        // Taken when free, expired, or already ours (renewal); one
        // statement, so instances racing for a lease get one winner.
        let taken: Option<i32> = sqlx::query_scalar(
            "INSERT INTO job_leases (name, holder, until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until \
             WHERE job_leases.holder = EXCLUDED.holder OR job_leases.until <= $4 \
             RETURNING 1",
        )
        .bind(name)
        .bind(holder)
        .bind(micros(until))
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(taken.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM job_leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(())
    }
}
