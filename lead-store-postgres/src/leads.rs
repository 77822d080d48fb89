//! [`LeadStore`] on PostgreSQL: the reads, and the commit through
//! [`crate::commit`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use lead_core::{
    AccountKey, CaptureContext, Commit, CrmLink, Dashboard, Error, FollowUpPage, FollowUpQuery,
    FollowUpTask, Lead, LeadExtId, LeadPage, LeadQuery, LeadReads, LeadStore, MergeRecord,
    PairPage, PairQuery, Rep, RepId, RepState, RepStore, Replay, Result, ReviewPair, ReviewStatus,
};

use crate::codec::{bigint, from_json, micros, rep_of, to_json, wire_name};
use crate::context::{ContextRequest, contexts_on};
use crate::error::StoreError;
use crate::store::PostgresStore;
use lead_store_sql::codec::{
    DealColumns, PairColumns, followup_of, followup_page, pair_page, rep_load, replay, review_pair,
};
use lead_store_sql::reads::{DashboardRows, dashboard, lead_of, lead_page};

type Fallible<T> = std::result::Result<T, StoreError>;

/// The columns of [`PairColumns`], ids as text.
macro_rules! pg_pair_columns {
    () => {
        "id::text, lead_a, lead_b, similarity, status, merge_id::text, found_at, decided_at"
    };
}

impl PostgresStore {
    async fn commit_tx(&self, commit: Commit) -> Fallible<Vec<Lead>> {
        self.stats.record(1);
        crate::commit::commit_on(&mut *self.pool.acquire().await?, commit, &self.stats).await
    }

    async fn one_lead(&self, sql: &'static str, arg: &str) -> Fallible<Option<Lead>> {
        let doc: Option<String> = sqlx::query_scalar(sql)
            .bind(arg)
            .fetch_optional(&self.pool)
            .await?;
        Ok(doc.as_deref().map(lead_of).transpose()?)
    }

    async fn list_rows(&self, query: &LeadQuery) -> Fallible<LeadPage> {
        let mut sql =
            QueryBuilder::<Postgres>::new("SELECT doc::text FROM leads WHERE merged_into IS NULL");
        if let Some(stage) = query.stage {
            sql.push(" AND stage = ").push_bind(stage.as_str());
        }
        if let Some(priority) = query.priority {
            sql.push(" AND priority = ").push_bind(priority.as_str());
        }
        if let Some(rep) = &query.assigned_to {
            sql.push(" AND assigned_to = ")
                .push_bind(rep.as_str().to_owned());
        }
        if let Some(source) = &query.source {
            // ASCII-only folding on both sides, exactly `eq_ignore_ascii_case`
            // (lower() would also fold non-ASCII letters).
            sql.push(
                " AND translate(source_raw, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', \
                 'abcdefghijklmnopqrstuvwxyz') = ",
            )
            .push_bind(source.to_ascii_lowercase());
        }
        if let Some(segment) = &query.segment {
            sql.push(" AND segments @> ARRAY[")
                .push_bind(segment.clone())
                .push("]::text[]");
        }
        if let Some(text) = &query.text {
            let text = text.to_lowercase();
            // The empty string is in every e-mail address.
            if !text.is_empty() {
                sql.push(
                    " AND EXISTS (SELECT 1 FROM unnest(leads.search_text) AS v WHERE strpos(v, ",
                )
                .push_bind(text)
                .push(") > 0)");
            }
        }
        if let Some(from) = query.created_from {
            sql.push(" AND created_at >= ").push_bind(micros(from));
        }
        if let Some(to) = query.created_to {
            sql.push(" AND created_at < ").push_bind(micros(to));
        }
        if let Some(cursor) = &query.cursor {
            sql.push(" AND (created_at, ext_id) < (")
                .push_bind(micros(cursor.created_at))
                .push(", ")
                .push_bind(cursor.ext_id.as_str().to_owned())
                .push(")");
        }
        let size = query.page_size();
        sql.push(" ORDER BY created_at DESC, ext_id DESC LIMIT ")
            .push_bind(bigint(size + 1));
        let docs: Vec<String> = sql.build_query_scalar().fetch_all(&self.pool).await?;
        Ok(lead_page(&docs, size)?)
    }

    /// One page of follow-up tasks: only the filters given become WHERE
    /// clauses (each one an index can serve), and the cursor a keyset
    /// bound on `(due_at, id)`, the order of the page.
    async fn followup_rows(&self, query: &FollowUpQuery) -> Fallible<FollowUpPage> {
        let mut sql =
            QueryBuilder::<Postgres>::new("SELECT doc::text FROM sales_followup_tasks WHERE TRUE");
        if let Some(rep) = &query.assigned_to {
            sql.push(" AND assigned_to = ")
                .push_bind(rep.as_str().to_owned());
        }
        if let Some(status) = query.status {
            sql.push(" AND status = ")
                .push_bind(wire_name("follow-up status", &status)?);
        }
        if let Some(lead) = &query.lead {
            sql.push(" AND lead = ").push_bind(lead.as_str().to_owned());
        }
        if let Some(from) = query.due_from {
            sql.push(" AND due_at >= ").push_bind(micros(from));
        }
        if let Some(to) = query.due_to {
            sql.push(" AND due_at < ").push_bind(micros(to));
        }
        if let Some(cursor) = &query.cursor {
            sql.push(" AND (due_at, id) > (")
                .push_bind(micros(cursor.due_at))
                .push(", ")
                .push_bind(cursor.id.to_string())
                .push("::uuid)");
        }
        let size = query.page_size();
        sql.push(" ORDER BY due_at, id LIMIT ")
            .push_bind(bigint(size + 1));
        let docs: Vec<String> = sql.build_query_scalar().fetch_all(&self.pool).await?;
        Ok(followup_page(docs, size)?)
    }

    async fn dashboard_rows(&self, since: DateTime<Utc>, top: usize) -> Fallible<Dashboard> {
        let since = micros(since);
        // One snapshot for every figure: REPEATABLE READ, read only.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let totals: (i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(score), 0)::int8, \
             COUNT(*) FILTER (WHERE assigned_to IS NULL) \
             FROM leads WHERE merged_into IS NULL AND created_at >= $1",
        )
        .bind(since)
        .fetch_one(&mut *tx)
        .await?;

        // Deal values live only in the lead document (no column holds
        // them): read what the fold needs of the window's leads that have
        // one, the value as the document's text, and fold it with the
        // reference's own code so the figures cannot drift from it. The
        // document is `json` (text, maybe compressed): `json_to_record`
        // decompresses and parses it once per row, where one `->>` per key
        // would do it four times.
        let deals: Vec<DealColumns> = sqlx::query_as(
            "SELECT l.stage, d.probability_pct, d.currency, d.estimated_value \
             FROM leads l CROSS JOIN LATERAL json_to_record(l.doc) \
             AS d(probability_pct int8, currency text, estimated_value text) \
             WHERE l.merged_into IS NULL AND l.created_at >= $1 \
             AND d.estimated_value IS NOT NULL",
        )
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;

        let stages: Vec<(String, i64)> = sqlx::query_as(
            "SELECT stage, COUNT(*) FROM leads WHERE merged_into IS NULL AND created_at >= $1 \
             GROUP BY stage",
        )
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
        let priorities: Vec<(String, i64)> = sqlx::query_as(
            "SELECT priority, COUNT(*) FROM leads WHERE merged_into IS NULL AND created_at >= $1 \
             GROUP BY priority",
        )
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;

        let sources: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT COALESCE(source, 'unknown') AS name, COUNT(*) AS n, SUM(score)::int8, \
             COUNT(*) FILTER (WHERE priority = 'high'), COUNT(*) FILTER (WHERE stage = 'won') \
             FROM leads WHERE merged_into IS NULL AND created_at >= $1 \
             GROUP BY name ORDER BY n DESC, name ASC",
        )
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;

        let reps: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT assigned_to, COUNT(*) AS n, COUNT(*) FILTER (WHERE stage = 'won') AS won \
             FROM leads \
             WHERE merged_into IS NULL AND created_at >= $1 AND assigned_to IS NOT NULL \
             GROUP BY assigned_to \
             ORDER BY won DESC, \
             (COUNT(*) FILTER (WHERE stage = 'won'))::float8 / COUNT(*) DESC, \
             assigned_to ASC LIMIT $2",
        )
        .bind(since)
        .bind(bigint(top))
        .fetch_all(&mut *tx)
        .await?;

        // How far along the pipeline each lead got: its current stage or any
        // stage its history moved it to, ranked in `FUNNEL` order (other
        // stages rank NULL).
        let ranks: Vec<(i32, i64)> = sqlx::query_as(
            "WITH w AS (SELECT ext_id, stage FROM leads \
                        WHERE merged_into IS NULL AND created_at >= $1), \
             reached AS (SELECT ext_id AS lead, stage FROM w \
                         UNION ALL \
                         SELECT h.lead, h.to_stage FROM stage_history h \
                         JOIN w ON w.ext_id = h.lead), \
             furthest AS (SELECT lead, MAX(CASE stage WHEN 'new' THEN 0 WHEN 'contacted' THEN 1 \
                          WHEN 'qualified' THEN 2 WHEN 'proposal' THEN 3 \
                          WHEN 'negotiation' THEN 4 WHEN 'won' THEN 5 END) AS rank \
                          FROM reached GROUP BY lead) \
             SELECT rank, COUNT(*) FROM furthest WHERE rank IS NOT NULL GROUP BY rank",
        )
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(dashboard(DashboardRows {
            totals,
            deals,
            stages,
            priorities,
            sources,
            reps,
            ranks: ranks
                .into_iter()
                .map(|(rank, n)| (i64::from(rank), n))
                .collect(),
        })?)
    }

    async fn rep_rows(&self) -> Fallible<Vec<RepState>> {
        type RepColumns = (String, i64, i64, Option<String>, Option<i64>, f64);
        let rows: Vec<RepColumns> = sqlx::query_as(
            "SELECT profile::text, open_leads, assigned_today, today::text, last_assigned_at, pass \
             FROM reps ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(profile, open, today_count, today, last, pass)| {
                Ok(RepState {
                    rep: from_json("rep profile", &profile)?,
                    load: rep_load((open, today_count, today, last, pass))?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl LeadStore for PostgresStore {
    async fn commit(&self, commit: Commit) -> Result<Vec<Lead>> {
        match &self.batcher {
            Some(batcher) => batcher.submit(commit).await,
            None => Ok(self.commit_tx(commit).await?),
        }
    }

    async fn capture_context<'a>(
        &self,
        idempotency_key: Option<&'a str>,
        email_key: &str,
        account: &AccountKey,
        now: DateTime<Utc>,
    ) -> Result<CaptureContext> {
        let request = ContextRequest {
            idempotency_key: idempotency_key.map(str::to_owned),
            email_key: email_key.to_owned(),
            account: account.clone(),
            now,
        };
        match &self.reader {
            Some(reader) => reader.submit(request).await,
            None => {
                let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
                let mut contexts = contexts_on(&mut conn, &[request]).await?;
                Ok(contexts
                    .pop()
                    .ok_or_else(|| Error::internal("no capture context read"))??)
            }
        }
    }

    async fn get(&self, ext_id: &LeadExtId) -> Result<Option<Lead>> {
        Ok(self
            .one_lead(
                "SELECT doc::text FROM leads WHERE ext_id = $1",
                ext_id.as_str(),
            )
            .await?)
    }

    async fn account_owner(&self, key: &AccountKey) -> Result<Option<RepId>> {
        if key.company.is_none() && key.domain.is_none() {
            return Ok(None);
        }
        let owner: Option<String> = sqlx::query_scalar(owner_query!("$1", "$2"))
            .bind(&key.company)
            .bind(&key.domain)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(owner.as_deref().map(rep_of).transpose()?)
    }

    async fn get_merge(&self, id: Uuid) -> Result<Option<MergeRecord>> {
        let doc: Option<String> =
            sqlx::query_scalar("SELECT doc::text FROM merge_records WHERE id = $1::uuid")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::from)?;
        Ok(doc
            .as_deref()
            .map(|doc| from_json("merge record", doc))
            .transpose()?)
    }

    async fn find_by_crm_link(&self, link: &CrmLink) -> Result<Option<Lead>> {
        let doc: Option<String> = sqlx::query_scalar(
            "SELECT l.doc::text FROM crm_links c JOIN leads l ON l.ext_id = c.lead \
             WHERE c.crm = $1 AND c.object = $2 AND c.crm_id = $3 ORDER BY l.ext_id LIMIT 1",
        )
        .bind(wire_name("CRM kind", &link.crm)?)
        .bind(&link.object)
        .bind(&link.id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(doc.as_deref().map(lead_of).transpose()?)
    }
}

#[async_trait]
impl RepStore for PostgresStore {
    async fn rep_states(&self) -> Result<Vec<RepState>> {
        Ok(self.rep_rows().await?)
    }

    async fn upsert_rep(&self, rep: &Rep) -> Result<()> {
        sqlx::query(
            "INSERT INTO reps (id, profile) VALUES ($1, $2::json) \
             ON CONFLICT (id) DO UPDATE SET profile = EXCLUDED.profile",
        )
        .bind(rep.id.as_str())
        .bind(to_json("rep profile", rep)?)
        .execute(&self.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(())
    }
}

#[async_trait]
impl LeadReads for PostgresStore {
    async fn list(&self, query: &LeadQuery) -> Result<LeadPage> {
        Ok(self.list_rows(query).await?)
    }

    async fn dashboard(&self, since: DateTime<Utc>, top: usize) -> Result<Dashboard> {
        Ok(self.dashboard_rows(since, top).await?)
    }

    async fn review_pairs(&self, query: &PairQuery) -> Result<PairPage> {
        let size = query.page_size();
        let rows: Vec<PairColumns> = sqlx::query_as(concat!(
            "SELECT ",
            pg_pair_columns!(),
            " FROM review_pairs WHERE ($1::text IS NULL OR status = $1) \
             AND ($2::uuid IS NULL OR id > $2::uuid) \
             AND ($4::text IS NULL OR lead_a = $4 OR lead_b = $4) ORDER BY id LIMIT $3",
        ))
        .bind(query.status.map(ReviewStatus::as_str))
        .bind(query.after.map(|id| id.to_string()))
        .bind(bigint(size + 1))
        .bind(query.lead.as_ref().map(LeadExtId::as_str))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(pair_page(rows, size)?)
    }

    async fn get_review_pair(&self, id: Uuid) -> Result<Option<ReviewPair>> {
        let row: Option<PairColumns> = sqlx::query_as(concat!(
            "SELECT ",
            pg_pair_columns!(),
            " FROM review_pairs WHERE id = $1::uuid"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(row.map(review_pair).transpose()?)
    }

    async fn followups(&self, query: &FollowUpQuery) -> Result<FollowUpPage> {
        Ok(self.followup_rows(query).await?)
    }

    async fn get_followup(&self, id: Uuid) -> Result<Option<FollowUpTask>> {
        let doc: Option<String> =
            sqlx::query_scalar("SELECT doc::text FROM sales_followup_tasks WHERE id = $1::uuid")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::from)?;
        Ok(doc.as_deref().map(followup_of).transpose()?)
    }

    async fn find_by_email_key(&self, email_key: &str) -> Result<Option<Lead>> {
        Ok(self
            .one_lead(
                "SELECT doc::text FROM leads WHERE email_key = $1 AND merged_into IS NULL",
                email_key,
            )
            .await?)
    }

    async fn find_by_idempotency_key(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Replay>> {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT lead, request_hash FROM idempotency_keys WHERE key = $1 AND expires_at > $2",
        )
        .bind(key)
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(row.map(replay).transpose()?)
    }
}
