//! [`OutboxStore`] and [`SyncState`] on SQLite: the CRM push queue, its
//! dead letters, watermarks and job leases.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use lead_core::{
    Claimed, DeadLetter, Destination, Error, OutboxEntry, OutboxStore, Result, SyncState,
};

use crate::codec::{count, instant, micros};
use lead_store_sql::codec::{EntryColumns, outbox_entry};

use crate::error::StoreError;
use crate::store::SqliteStore;

type Fallible<T> = std::result::Result<T, StoreError>;

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

fn entry_of(columns: EntryColumns) -> Fallible<OutboxEntry> {
    Ok(outbox_entry(columns)?)
}

impl SqliteStore {
    /// Why an ack, retry or dead-letter of `id` by `worker` touched no row.
    async fn not_leased(&self, id: Uuid, worker: &str) -> StoreError {
        let exists: std::result::Result<Option<i64>, sqlx::Error> =
            sqlx::query_scalar("SELECT 1 FROM outbox WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await;
        match exists {
            Ok(Some(_)) => {
                Error::Conflict(format!("outbox entry {id} is not leased to {worker}")).into()
            }
            Ok(None) => Error::NotFound(format!("outbox entry {id}")).into(),
            Err(err) => err.into(),
        }
    }

    async fn claim_rows(
        &self,
        destination: &Destination,
        worker: &str,
        limit: usize,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Fallible<Vec<Claimed>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
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
        .bind(micros(until))
        .bind(micros(now))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(destination.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut rows = rows;
        // RETURNING has no order of its own: oldest first.
        rows.sort_by_key(|row| (row.7, row.8));
        rows.into_iter()
            .map(
                |(id, destination, lead, kind, payload, created_at, attempts, _, _)| {
                    Ok(Claimed {
                        entry: entry_of((id, destination, lead, kind, payload, created_at))?,
                        attempts: count("outbox attempts", attempts)?,
                        lease_until: until,
                    })
                },
            )
            .collect()
    }

    async fn ack_row(&self, id: Uuid, worker: &str) -> Fallible<()> {
        let done = sqlx::query("DELETE FROM outbox WHERE id = ? AND leased_by = ?")
            .bind(id.to_string())
            .bind(worker)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(self.not_leased(id, worker).await);
        }
        Ok(())
    }

    async fn retry_row(
        &self,
        id: Uuid,
        worker: &str,
        available_at: DateTime<Utc>,
        error: &str,
    ) -> Fallible<()> {
        let done = sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, available_at = ?, leased_by = NULL, \
             lease_until = NULL, last_error = ? WHERE id = ? AND leased_by = ?",
        )
        .bind(micros(available_at))
        .bind(error)
        .bind(id.to_string())
        .bind(worker)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(self.not_leased(id, worker).await);
        }
        Ok(())
    }

    async fn dead_letter_row(
        &self,
        id: Uuid,
        worker: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Fallible<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let parked = sqlx::query(
            "INSERT INTO dead_letters \
             (id, destination, lead, kind, payload, created_at, attempts, error, parked_at) \
             SELECT id, destination, lead, kind, payload, created_at, attempts + 1, ?, ? \
             FROM outbox WHERE id = ? AND leased_by = ?",
        )
        .bind(error)
        .bind(micros(now))
        .bind(id.to_string())
        .bind(worker)
        .execute(&mut *tx)
        .await?;
        if parked.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(self.not_leased(id, worker).await);
        }
        sqlx::query("DELETE FROM outbox WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn dead_letter_rows(
        &self,
        destination: &Destination,
        limit: usize,
    ) -> Fallible<Vec<DeadLetter>> {
        let rows: Vec<DeadColumns> = sqlx::query_as(
            "SELECT id, destination, lead, kind, payload, created_at, attempts, error, parked_at \
             FROM dead_letters WHERE destination = ? ORDER BY seq LIMIT ?",
        )
        .bind(destination.as_str())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(
                |(id, destination, lead, kind, payload, created_at, attempts, error, parked_at)| {
                    Ok(DeadLetter {
                        entry: entry_of((id, destination, lead, kind, payload, created_at))?,
                        attempts: count("dead letter attempts", attempts)?,
                        error,
                        parked_at: instant(parked_at)?,
                    })
                },
            )
            .collect()
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
        Ok(self
            .claim_rows(destination, worker, limit, lease, now)
            .await?)
    }

    async fn ack(&self, id: Uuid, worker: &str) -> Result<()> {
        Ok(self.ack_row(id, worker).await?)
    }

    async fn retry(
        &self,
        id: Uuid,
        worker: &str,
        available_at: DateTime<Utc>,
        error: &str,
    ) -> Result<()> {
        Ok(self.retry_row(id, worker, available_at, error).await?)
    }

    async fn dead_letter(
        &self,
        id: Uuid,
        worker: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        Ok(self.dead_letter_row(id, worker, error, now).await?)
    }

    async fn dead_letters(
        &self,
        destination: &Destination,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        Ok(self.dead_letter_rows(destination, limit).await?)
    }

    async fn pending_count(&self, destination: &Destination) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE destination = ?")
            .bind(destination.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(count("outbox count", n)?)
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
            "INSERT INTO sync_watermarks (name, value) VALUES (?, ?) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
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
