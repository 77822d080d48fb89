//! [`JobStore`] on SQLite: the record of job runs (each run's whole
//! record as JSON in `detail`, with the columns listings sort and purge
//! by) and housekeeping.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use lead_core::Result;
use lead_core::ports::{DELIVERY_MARK, JobRun, JobStore, Purged, Retention};
use lead_store_sql::codec;

use crate::codec::micros;
use crate::error::StoreError;
use crate::store::SqliteStore;

fn decode(doc: &str) -> Result<JobRun> {
    Ok(codec::job_run(doc).map_err(StoreError::from)?)
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn save_run(&self, run: &JobRun) -> Result<()> {
        let doc = codec::job_run_doc(run).map_err(StoreError::from)?;
        sqlx::query(
            "INSERT INTO job_runs (id, job, started_at, finished_at, status, detail) \
             VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET job = EXCLUDED.job, started_at = EXCLUDED.started_at, \
             finished_at = EXCLUDED.finished_at, status = EXCLUDED.status, detail = EXCLUDED.detail",
        )
        .bind(run.id.to_string())
        .bind(&run.job)
        .bind(micros(run.queued_at))
        .bind(run.finished_at.map(micros))
        .bind(run.status.as_str())
        .bind(doc)
        .execute(&self.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(())
    }

    async fn get_run(&self, id: Uuid) -> Result<Option<JobRun>> {
        let doc: Option<String> = sqlx::query_scalar("SELECT detail FROM job_runs WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)?;
        doc.as_deref().map(decode).transpose()
    }

    async fn runs(&self, job: &str, limit: usize) -> Result<Vec<JobRun>> {
        let docs: Vec<String> = sqlx::query_scalar(
            "SELECT detail FROM job_runs WHERE job = ? ORDER BY started_at DESC, id DESC LIMIT ?",
        )
        .bind(job)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)?;
        docs.iter().map(|d| decode(d)).collect()
    }

    async fn purge(&self, now: DateTime<Utc>, retention: &Retention) -> Result<Purged> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let keys = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= ?")
            .bind(micros(now))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?
            .rows_affected();
        let marks =
            sqlx::query("DELETE FROM sync_watermarks WHERE instr(name, ?) > 0 AND updated_at < ?")
                .bind(DELIVERY_MARK)
                .bind(micros(retention.before(now, retention.delivery_marks)))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?
                .rows_affected();
        let runs = sqlx::query("DELETE FROM job_runs WHERE finished_at < ?")
            .bind(micros(retention.before(now, retention.job_runs)))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?
            .rows_affected();
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Purged {
            idempotency_keys: keys,
            delivery_marks: marks,
            job_runs: runs,
        })
    }
}
