//! [`OutboxStore`] and [`SyncState`] on SQLite: the CRM push queue, its
//! dead letters, watermarks and job leases. The outbox's flow is
//! `lead_store_sql::outbox`; here are its statements.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use lead_core::{Claimed, DeadLetter, Destination, OutboxStore, Result, SyncState};
use lead_store_sql::outbox::{self, LeasedRow, OutboxSql, ParkedRow};

use crate::codec::micros;
use crate::error::{SqliteDialect, StoreError};
use crate::store::SqliteStore;

type Sqlx<T> = std::result::Result<T, sqlx::Error>;

/// A claimed row: `id, destination, lead, kind, payload, created_at,
/// attempts, available_at, seq`.
type ClaimColumns = (String, String, String, String, String, i64, i64, i64, i64);

/// A parked row: `id, destination, lead, kind, payload, created_at,
/// attempts, error, parked_at`.
type DeadColumns = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    i64,
);

/// The outbox statements, on the store's pool.
struct Queue<'a>(&'a sqlx::SqlitePool);

#[async_trait]
impl OutboxSql for Queue<'_> {
    type Dialect = SqliteDialect;

    async fn lease_rows(
        &self,
        destination: &str,
        worker: &str,
        limit: i64,
        until: i64,
        now: i64,
    ) -> Sqlx<Vec<LeasedRow>> {
        // One statement: atomic, and SQLite's single writer means no two
        // claims ever see the same row as free.
        let rows: Vec<ClaimColumns> = sqlx::query_as(
            "UPDATE outbox SET leased_by = ?1, lease_until = ?2 \
             WHERE seq IN (SELECT seq FROM outbox \
                           WHERE destination = ?5 AND available_at <= ?3 \
                             AND (lease_until IS NULL OR lease_until <= ?3) \
                           ORDER BY available_at, seq LIMIT ?4) \
             RETURNING id, destination, lead, kind, payload, created_at, attempts, available_at, seq",
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
                        attempts,
                        available_at,
                        seq,
                    }
                },
            )
            .collect())
    }

    async fn delete_leased(&self, id: Uuid, worker: &str) -> Sqlx<u64> {
        let done = sqlx::query("DELETE FROM outbox WHERE id = ? AND leased_by = ?")
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
            "UPDATE outbox SET attempts = attempts + 1, available_at = ?, leased_by = NULL, \
             lease_until = NULL, last_error = ? WHERE id = ? AND leased_by = ?",
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
        let mut tx = self.0.begin_with("BEGIN IMMEDIATE").await?;
        let parked = sqlx::query(
            "INSERT INTO dead_letters \
             (id, destination, lead, kind, payload, created_at, attempts, error, parked_at) \
             SELECT id, destination, lead, kind, payload, created_at, attempts + 1, ?, ? \
             FROM outbox WHERE id = ? AND leased_by = ?",
        )
        .bind(error)
        .bind(parked_at)
        .bind(id.to_string())
        .bind(worker)
        .execute(&mut *tx)
        .await?;
        if parked.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(0);
        }
        sqlx::query("DELETE FROM outbox WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(parked.rows_affected())
    }

    async fn parked_rows(&self, destination: &str, limit: i64) -> Sqlx<Vec<ParkedRow>> {
        let rows: Vec<DeadColumns> = sqlx::query_as(
            "SELECT id, destination, lead, kind, payload, created_at, attempts, error, parked_at \
             FROM dead_letters WHERE destination = ? ORDER BY seq LIMIT ?",
        )
        .bind(destination)
        .bind(limit)
        .fetch_all(self.0)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, destination, lead, kind, payload, created_at, attempts, error, parked_at)| {
                    ParkedRow {
                        entry: (id, destination, lead, kind, payload, created_at),
                        attempts,
                        error,
                        parked_at,
                    }
                },
            )
            .collect())
    }

    async fn is_queued(&self, id: Uuid) -> Sqlx<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM outbox WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(self.0)
            .await?;
        Ok(found.is_some())
    }

    async fn queued_count(&self, destination: &str) -> Sqlx<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE destination = ?")
            .bind(destination)
            .fetch_one(self.0)
            .await
    }

    async fn parked_count(&self, destination: &str) -> Sqlx<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters WHERE destination = ?")
            .bind(destination)
            .fetch_one(self.0)
            .await
    }

    async fn unpark(&self, destination: &str, id: Uuid, now: i64) -> Sqlx<u64> {
        let mut tx = self.0.begin_with("BEGIN IMMEDIATE").await?;
        let moved = sqlx::query(
            "INSERT INTO outbox \
             (id, destination, lead, kind, payload, created_at, available_at, attempts, last_error) \
             SELECT id, destination, lead, kind, payload, created_at, ?, 0, error \
             FROM dead_letters WHERE id = ? AND destination = ?",
        )
        .bind(now)
        .bind(id.to_string())
        .bind(destination)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(0);
        }
        sqlx::query("DELETE FROM dead_letters WHERE id = ? AND destination = ?")
            .bind(id.to_string())
            .bind(destination)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(moved.rows_affected())
    }
}

#[async_trait]
impl OutboxStore for SqliteStore {
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
impl SyncState for SqliteStore {
    async fn watermark(&self, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM sync_watermarks WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::from)?,
        )
    }

    async fn set_watermark(&self, name: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO sync_watermarks (name, value, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
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
        // Taken when free, expired, or already ours (renewal).
        let done = sqlx::query(
            "INSERT INTO job_leases (name, holder, until) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE job_leases.holder = excluded.holder OR job_leases.until <= ?4",
        )
        .bind(name)
        .bind(holder)
        .bind(micros(until))
        .bind(micros(now))
        .execute(&self.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM job_leases WHERE name = ? AND holder = ?")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(())
    }
}
