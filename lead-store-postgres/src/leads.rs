//! [`LeadStore`] on PostgreSQL: the atomic commit and the reads.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

use sqlx::{Connection, PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use lead_core::ports::{PipelineStats, RepPerformance, SourcePerformance};
use lead_core::{
    AccountKey, CaptureContext, Commit, CommitFacts, CrmKind, Cursor, Dashboard, Error,
    FollowUpPage, FollowUpQuery, FollowUpTask, IdempotencyKey, Lead, LeadExtId, LeadPage,
    LeadQuery, LeadStore, MergeRecord, OutboxEntry, PairPage, PairQuery, Priority, Rep, RepId,
    RepState, Replay, Result, ReviewPair, ReviewStatus, Stage,
};

use crate::codec::{
    LeadRow, bigint, count, from_json, instant, lead_of, micros, rep_of, to_json, wire_name,
};
use crate::context::{ContextRequest, contexts_on};
use crate::error::StoreError;
use crate::held::HeldConnection;
use crate::load::write_load;
use crate::store::PostgresStore;
use lead_store_sql::codec::{
    DealColumns, PairColumns, deal_value, followup_columns, followup_of, followup_page,
    last_update_per_task, pair_columns, pair_page, rep_load, review_pair,
};
use lead_store_sql::{Stats, answer_batch, insert_only};

type Fallible<T> = std::result::Result<T, StoreError>;

/// The columns of [`PairColumns`], ids as text.
macro_rules! pg_pair_columns {
    () => {
        "id::text, lead_a, lead_b, similarity, status, merge_id::text, found_at, decided_at"
    };
}

/// Open stages in pipeline order: the funnel's steps.
const FUNNEL: [Stage; 6] = [
    Stage::New,
    Stage::Contacted,
    Stage::Qualified,
    Stage::Proposal,
    Stage::Negotiation,
    Stage::Won,
];

/// Checks a commit against the contract of [`LeadStore::commit`] using the
/// state its transaction sees (the same rules as the in-memory store).
///
/// This catches the common cases early with a clear message; the writes
/// themselves enforce every rule again against concurrent transactions
/// (unique indexes, `WHERE version = …`, conditional upserts), so a commit
/// that races another one still fails with `Conflict`, never half-applied.
async fn check(conn: &mut PgConnection, commit: &Commit) -> Fallible<()> {
    // The stored facts the commit touches, one query per kind; the rules
    // themselves are `Commit::check`, shared by every store.
    let keys = commit.fact_keys();
    let mut facts = CommitFacts::default();
    let ext_ids: Vec<String> = keys
        .ext_ids
        .iter()
        .map(|id| id.as_str().to_owned())
        .collect();
    let versions: Vec<(String, i64)> =
        sqlx::query_as("SELECT ext_id, version FROM leads WHERE ext_id = ANY($1)")
            .bind(&ext_ids)
            .fetch_all(&mut *conn)
            .await?;
    for (ext_id, version) in versions {
        let ext_id = LeadExtId::parse(&ext_id).map_err(|_| StoreError::Corrupt("ext_id"))?;
        let version = u64::try_from(version).map_err(|_| StoreError::Corrupt("version"))?;
        facts.versions.insert(ext_id, version);
    }
    let holders: Vec<(String, String)> = sqlx::query_as(
        "SELECT email_key, ext_id FROM leads WHERE merged_into IS NULL AND email_key = ANY($1)",
    )
    .bind(&keys.email_keys)
    .fetch_all(&mut *conn)
    .await?;
    for (email_key, ext_id) in holders {
        let ext_id = LeadExtId::parse(&ext_id).map_err(|_| StoreError::Corrupt("ext_id"))?;
        facts.email_holders.insert(email_key, ext_id);
    }
    // Most commits carry no idempotency key or workload change: skip those round trips.
    if !keys.idempotency_keys.is_empty() {
        let expiries: Vec<(String, i64)> =
            sqlx::query_as("SELECT key, expires_at FROM idempotency_keys WHERE key = ANY($1)")
                .bind(&keys.idempotency_keys)
                .fetch_all(&mut *conn)
                .await?;
        for (key, expires_at) in expiries {
            facts.idempotency_expiry.insert(key, instant(expires_at)?);
        }
    }
    if !keys.reps.is_empty() {
        let rep_ids: Vec<String> = keys.reps.iter().map(|r| r.as_str().to_owned()).collect();
        let reps: Vec<String> = sqlx::query_scalar("SELECT id FROM reps WHERE id = ANY($1)")
            .bind(&rep_ids)
            .fetch_all(&mut *conn)
            .await?;
        for rep in reps {
            facts
                .known_reps
                .insert(RepId::parse(&rep).map_err(|_| StoreError::Corrupt("rep id"))?);
        }
    }
    if !keys.followups.is_empty() {
        let ids: Vec<String> = keys.followups.iter().map(Uuid::to_string).collect();
        let tasks: Vec<String> = sqlx::query_scalar(
            "SELECT id::text FROM sales_followup_tasks WHERE id = ANY($1::uuid[])",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        for id in tasks {
            facts
                .known_followups
                .insert(Uuid::parse_str(&id).map_err(|_| StoreError::Corrupt("follow-up id"))?);
        }
    }
    Ok(commit.check(&facts)?)
}

/// Inserts or updates one `leads` row. An update only touches the row at
/// the expected version: a concurrent writer that got there first leaves
/// zero rows to update, which is a `Conflict`.
async fn write_lead(conn: &mut PgConnection, row: &LeadRow, expected: Option<u64>) -> Fallible<()> {
    let sql = if expected.is_none() {
        "INSERT INTO leads (email, email_key, company_key, corporate_domain, stage, priority, \
         score, assigned_to, source, source_raw, search_text, segments, created_at, updated_at, \
         merged_into, version, doc, ext_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
         $17::json, $18)"
    } else {
        "UPDATE leads SET email = $1, email_key = $2, company_key = $3, corporate_domain = $4, \
         stage = $5, priority = $6, score = $7, assigned_to = $8, source = $9, source_raw = $10, \
         search_text = $11, segments = $12, created_at = $13, updated_at = $14, \
         merged_into = $15, version = $16, doc = $17::json WHERE ext_id = $18 AND version = $19"
    };
    let query = sqlx::query(sql)
        .bind(&row.email)
        .bind(&row.email_key)
        .bind(&row.company_key)
        .bind(&row.corporate_domain)
        .bind(row.stage)
        .bind(row.priority)
        .bind(row.score)
        .bind(&row.assigned_to)
        .bind(&row.source)
        .bind(&row.source_raw)
        .bind(&row.search_text)
        .bind(&row.segments)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(&row.merged_into)
        .bind(row.version)
        .bind(&row.doc)
        .bind(&row.ext_id);
    let query = match expected {
        Some(_) => query.bind(row.version - 1),
        None => query,
    };
    let done = query.execute(&mut *conn).await?;
    if done.rows_affected() != 1 {
        return Err(Error::Conflict(format!("lead {} changed concurrently", row.ext_id)).into());
    }
    Ok(())
}

/// Writes the projections of leads' events, history and CRM links (the old
/// rows are already gone), one statement per table for all of them.
async fn write_projections(conn: &mut PgConnection, leads: &[&Lead]) -> Fallible<()> {
    let (mut lead, mut position, mut kind, mut at, mut properties) =
        (vec![], vec![], vec![], vec![], vec![]);
    for l in leads {
        for (n, event) in l.events.iter().enumerate() {
            lead.push(l.ext_id.as_str());
            position.push(bigint(n));
            kind.push(event.kind.as_str());
            at.push(micros(event.at));
            properties.push(to_json("event properties", &event.properties)?);
        }
    }
    if !lead.is_empty() {
        sqlx::query(
            "INSERT INTO lead_events (lead, position, kind, at, properties) \
             SELECT t.lead, t.position, t.kind, t.at, t.properties::json \
             FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::int8[], $5::text[]) \
             AS t(lead, position, kind, at, properties)",
        )
        .bind(lead)
        .bind(position)
        .bind(kind)
        .bind(at)
        .bind(properties)
        .execute(&mut *conn)
        .await?;
    }

    let (mut lead, mut position, mut from, mut to, mut at, mut notes, mut origin) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for l in leads {
        for (n, change) in l.history.iter().enumerate() {
            lead.push(l.ext_id.as_str());
            position.push(bigint(n));
            from.push(change.from.as_str());
            to.push(change.to.as_str());
            at.push(micros(change.at));
            notes.push(change.notes.as_deref());
            origin.push(wire_name("change origin", &change.origin)?);
        }
    }
    if !lead.is_empty() {
        sqlx::query(
            "INSERT INTO stage_history (lead, position, from_stage, to_stage, at, notes, origin) \
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::int8[], \
             $6::text[], $7::text[])",
        )
        .bind(lead)
        .bind(position)
        .bind(from)
        .bind(to)
        .bind(at)
        .bind(notes)
        .bind(origin)
        .execute(&mut *conn)
        .await?;
    }

    let (mut lead, mut crm, mut object, mut crm_id) = (vec![], vec![], vec![], vec![]);
    // A merged lead's links belong to its survivor, which carries them too.
    for l in leads.iter().filter(|l| l.merged_into.is_none()) {
        for link in &l.crm_links {
            lead.push(l.ext_id.as_str());
            crm.push(wire_name("CRM kind", &link.crm)?);
            object.push(link.object.as_str());
            crm_id.push(link.id.as_str());
        }
    }
    if !lead.is_empty() {
        sqlx::query(
            "INSERT INTO crm_links (lead, crm, object, crm_id) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[])",
        )
        .bind(lead)
        .bind(crm)
        .bind(object)
        .bind(crm_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Queues outbox entries in one statement, in the order given.
async fn write_outbox(
    conn: &mut PgConnection,
    entries: impl IntoIterator<Item = &OutboxEntry>,
) -> Fallible<()> {
    let (mut ids, mut leads, mut kinds, mut payloads, mut created, mut destinations) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for entry in entries {
        ids.push(entry.id.to_string());
        destinations.push(entry.destination.as_str());
        leads.push(entry.lead.as_str());
        kinds.push(wire_name("outbox kind", &entry.kind)?);
        payloads.push(to_json("outbox payload", &entry.payload)?);
        created.push(micros(entry.created_at));
    }
    if ids.is_empty() {
        return Ok(());
    }
    // WITH ORDINALITY keeps the given order in `seq`.
    sqlx::query(
        "INSERT INTO outbox (id, lead, kind, payload, created_at, available_at, destination) \
         SELECT t.id::uuid, t.lead, t.kind, t.payload::json, t.created_at, t.created_at, \
                t.destination \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[]) \
         WITH ORDINALITY AS t(id, lead, kind, payload, created_at, destination, n) ORDER BY t.n",
    )
    .bind(ids)
    .bind(leads)
    .bind(kinds)
    .bind(payloads)
    .bind(created)
    .bind(destinations)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Stores follow-up tasks (new or replaced) in one statement.
async fn write_followups(
    conn: &mut PgConnection,
    tasks: impl IntoIterator<Item = &FollowUpTask>,
) -> Fallible<()> {
    let (mut ids, mut leads, mut reps, mut priorities, mut due, mut statuses, mut docs) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for task in tasks {
        ids.push(task.id.to_string());
        leads.push(task.lead.as_str());
        reps.push(task.assigned_to.as_ref().map(RepId::as_str));
        priorities.push(task.priority.as_str());
        due.push(micros(task.due_at));
        statuses.push(wire_name("follow-up status", &task.status)?);
        docs.push(to_json("follow-up task", task)?);
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO sales_followup_tasks (id, lead, assigned_to, priority, due_at, status, doc) \
         SELECT t.id::uuid, t.lead, t.assigned_to, t.priority, t.due_at, t.status, t.doc::json \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], \
         $7::text[]) AS t(id, lead, assigned_to, priority, due_at, status, doc) \
         ON CONFLICT (id) DO UPDATE SET lead = EXCLUDED.lead, \
         assigned_to = EXCLUDED.assigned_to, priority = EXCLUDED.priority, \
         due_at = EXCLUDED.due_at, status = EXCLUDED.status, doc = EXCLUDED.doc",
    )
    .bind(ids)
    .bind(leads)
    .bind(reps)
    .bind(priorities)
    .bind(due)
    .bind(statuses)
    .bind(docs)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Replaces stored follow-up tasks whole (every column and the document)
/// in one statement. [`Commit::check`] found each one stored; a task
/// missing anyway fails the commit rather than being created by an update.
async fn write_followup_updates(conn: &mut PgConnection, updates: &[FollowUpTask]) -> Fallible<()> {
    // One row per task: UPDATE … FROM would pick an arbitrary one of two.
    let updates = last_update_per_task(updates);
    if updates.is_empty() {
        return Ok(());
    }
    let (mut ids, mut leads, mut reps, mut priorities, mut due, mut statuses, mut docs) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for task in &updates {
        let (id, lead, rep, priority, due_at, status, doc) = followup_columns(task)?;
        ids.push(id);
        leads.push(lead);
        reps.push(rep);
        priorities.push(priority);
        due.push(due_at);
        statuses.push(status);
        docs.push(doc);
    }
    let done = sqlx::query(
        "UPDATE sales_followup_tasks AS s SET lead = t.lead, assigned_to = t.assigned_to, \
         priority = t.priority, due_at = t.due_at, status = t.status, doc = t.doc::json \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], \
         $7::text[]) AS t(id, lead, assigned_to, priority, due_at, status, doc) \
         WHERE s.id = t.id::uuid",
    )
    .bind(ids)
    .bind(leads)
    .bind(reps)
    .bind(priorities)
    .bind(due)
    .bind(statuses)
    .bind(docs)
    .execute(&mut *conn)
    .await?;
    if usize::try_from(done.rows_affected()).ok() != Some(updates.len()) {
        return Err(Error::NotFound("a follow-up task to update".into()).into());
    }
    Ok(())
}

/// Stores duplicate pairs: a new pair is inserted; over the stored pair of
/// the same two leads only a decision is written
/// ([`lead_core::ReviewPair::merged_with`]).
async fn write_reviews(conn: &mut PgConnection, pairs: &[lead_core::ReviewPair]) -> Fallible<()> {
    for pair in pairs {
        let (id, a, b, similarity, status, merge_id, found_at, decided_at) = pair_columns(pair);
        let done = sqlx::query(
            "INSERT INTO review_pairs \
             (id, lead_a, lead_b, similarity, status, merge_id, found_at, decided_at) \
             VALUES ($1::uuid, $2, $3, $4, $5, $6::uuid, $7, $8) \
             ON CONFLICT (lead_a, lead_b) DO UPDATE SET status = EXCLUDED.status, \
             merge_id = EXCLUDED.merge_id, decided_at = EXCLUDED.decided_at \
             WHERE EXCLUDED.status <> 'open' AND NOT (review_pairs.status = 'merged' \
             AND EXCLUDED.status = 'dismissed' \
             AND review_pairs.merge_id IS DISTINCT FROM EXCLUDED.merge_id)",
        )
        .bind(id)
        .bind(a)
        .bind(b)
        .bind(similarity)
        .bind(status)
        .bind(merge_id)
        .bind(found_at)
        .bind(decided_at)
        .execute(&mut *conn)
        .await?;
        if pair.status != ReviewStatus::Open && done.rows_affected() == 0 {
            // The rule of `ReviewPair::merged_with`: only the undo of a
            // merge may dismiss a merged pair.
            return Err(pair.dismissal_refused().into());
        }
    }
    Ok(())
}

/// Takes idempotency keys, each only when new or expired at the writer's
/// instant, in one statement: checked and written at once, so two
/// instances racing for one key cannot both win. `false` when any key was
/// still live (nothing to undo here: the caller rolls back).
async fn write_idempotency(
    conn: &mut PgConnection,
    keys: impl IntoIterator<Item = &IdempotencyKey>,
) -> Fallible<bool> {
    let (mut names, mut leads, mut created, mut expires, mut hashes) =
        (vec![], vec![], vec![], vec![], vec![]);
    for key in keys {
        names.push(key.key.as_str());
        leads.push(key.lead.as_str());
        created.push(micros(key.created_at));
        expires.push(micros(key.expires_at));
        hashes.push(key.request_hash.as_deref());
    }
    if names.is_empty() {
        return Ok(true);
    }
    let wanted = names.len();
    let done = sqlx::query(
        "INSERT INTO idempotency_keys (key, lead, created_at, expires_at, request_hash) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[]) \
         ON CONFLICT (key) DO UPDATE SET lead = EXCLUDED.lead, \
         created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, \
         request_hash = EXCLUDED.request_hash \
         WHERE idempotency_keys.expires_at <= EXCLUDED.created_at",
    )
    .bind(names)
    .bind(leads)
    .bind(created)
    .bind(expires)
    .bind(hashes)
    .execute(&mut *conn)
    .await?;
    Ok(usize::try_from(done.rows_affected()).ok() == Some(wanted))
}

/// Applies a checked commit; returns the leads with their new versions.
async fn apply(conn: &mut PgConnection, commit: Commit) -> Fallible<Vec<Lead>> {
    let updates: Vec<String> = commit
        .leads
        .iter()
        .filter(|w| w.expected_version.is_some())
        .map(|w| w.lead.ext_id.as_str().to_owned())
        .collect();
    if commit.leads.len() > 1 && !updates.is_empty() {
        // Leads of one commit may trade addresses (a merge undone, an
        // address moved), and a partial unique index is checked row by row:
        // park the rewritten leads' keys first so it only ever sees the
        // final state. A parked key has no `@`, so it never equals a real one.
        sqlx::query("UPDATE leads SET email_key = 'parked:' || ext_id WHERE ext_id = ANY($1)")
            .bind(&updates)
            .execute(&mut *conn)
            .await?;
    }
    if !updates.is_empty() {
        for sql in [
            "DELETE FROM lead_events WHERE lead = ANY($1)",
            "DELETE FROM stage_history WHERE lead = ANY($1)",
            "DELETE FROM crm_links WHERE lead = ANY($1)",
        ] {
            sqlx::query(sql).bind(&updates).execute(&mut *conn).await?;
        }
    }
    let mut written = Vec::with_capacity(commit.leads.len());
    for write in commit.leads {
        let expected = write.expected_version;
        let lead = write.into_written();
        write_lead(conn, &LeadRow::of(&lead)?, expected).await?;
        written.push(lead);
    }
    write_projections(conn, &written.iter().collect::<Vec<_>>()).await?;
    write_outbox(conn, &commit.outbox).await?;
    write_followups(conn, &commit.followups).await?;
    write_followup_updates(conn, &commit.followup_updates).await?;
    for merge in &commit.merges {
        sqlx::query(
            "INSERT INTO merge_records (id, doc) VALUES ($1::uuid, $2::json) \
             ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc",
        )
        .bind(merge.id.to_string())
        .bind(to_json("merge record", merge)?)
        .execute(&mut *conn)
        .await?;
    }
    write_reviews(conn, &commit.reviews).await?;
    if !write_load(conn, &commit.load).await? {
        return Err(Error::NotFound("rep of a workload change".into()).into());
    }
    if !write_idempotency(conn, &commit.idempotency).await? {
        return Err(Error::Conflict("an idempotency key is already used".into()).into());
    }
    Ok(written)
}

fn stage_of(name: &str) -> Fallible<Stage> {
    Stage::parse(name).map_err(|_| StoreError::Corrupt("stage"))
}

/// One commit on `conn`: new leads through the fast path
/// ([`crate::bulk`]), anything else (or what the fast path refused)
/// checked and applied in a transaction of its own.
async fn commit_on(conn: &mut PgConnection, commit: Commit, stats: &Stats) -> Fallible<Vec<Lead>> {
    if let Some(written) = insert_only(std::slice::from_ref(&commit))
        && crate::bulk::insert_all(conn, std::slice::from_ref(&commit), &written, stats).await?
    {
        return Ok(written.into_iter().flatten().collect());
    }
    // READ COMMITTED: the writes carry their own guards (versioned
    // updates, unique indexes, conditional upserts, increments), so no
    // stricter isolation is needed. Dropping `tx` on an error rolls back.
    let mut tx = conn.begin().await?;
    check(&mut tx, &commit).await?;
    let written = apply(&mut tx, commit).await?;
    tx.commit().await?;
    Ok(written)
}

/// Several commits on `conn`, sharing transactions. A batch of new leads
/// takes the fast path first; otherwise (or when it is refused) the
/// commits run in one transaction, each in its own savepoint, so one that
/// fails (and aborts its statements) is rolled back alone. The outer
/// result is the transaction's own failure (begin, savepoint bookkeeping,
/// COMMIT), which every commit shares.
async fn batch_on(
    conn: &mut PgConnection,
    mut commits: Vec<Commit>,
    stats: &Stats,
) -> Fallible<Vec<Fallible<Vec<Lead>>>> {
    if commits.len() == 1
        && let Some(commit) = commits.pop()
    {
        return Ok(vec![commit_on(conn, commit, stats).await]);
    }
    if let Some(written) = insert_only(&commits)
        && crate::bulk::insert_all(conn, &commits, &written, stats).await?
    {
        return Ok(written.into_iter().map(Ok).collect());
    }
    let mut tx = conn.begin().await?;
    let mut answers = Vec::with_capacity(commits.len());
    for commit in commits {
        sqlx::query("SAVEPOINT group_commit")
            .execute(&mut *tx)
            .await?;
        let answer = match check(&mut tx, &commit).await {
            Ok(()) => apply(&mut tx, commit).await,
            Err(err) => Err(err),
        };
        if answer.is_err() {
            sqlx::query("ROLLBACK TO SAVEPOINT group_commit")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("RELEASE SAVEPOINT group_commit")
            .execute(&mut *tx)
            .await?;
        answers.push(answer);
    }
    tx.commit().await?;
    Ok(answers)
}

/// One group-commit writer: the connection it holds between batches
/// ([`HeldConnection`]).
#[derive(Debug, Clone)]
pub(crate) struct BatchWriter {
    conn: HeldConnection,
    stats: Arc<Stats>,
}

impl BatchWriter {
    /// A writer over `pool`.
    pub(crate) fn new(pool: PgPool, stats: Arc<Stats>) -> Self {
        Self {
            conn: HeldConnection::new(pool),
            stats,
        }
    }

    /// Runs a batch gathered by the writer: one answer per commit, in
    /// order. An `Ok` is only ever given after the shared COMMIT succeeded.
    pub(crate) async fn commit_batch(&self, commits: Vec<Commit>) -> Vec<Result<Vec<Lead>>> {
        let n = commits.len();
        let mut checkout = match self.conn.checkout().await {
            Ok(checkout) => checkout,
            Err(err) => return answer_batch(n, Err(StoreError::from(err))),
        };
        let answers = answer_batch(n, batch_on(&mut checkout.conn, commits, &self.stats).await);
        if !answers
            .iter()
            .any(|a| matches!(a, Err(Error::Unavailable(_) | Error::Internal(_))))
        {
            checkout.keep();
        }
        answers
    }
}

impl PostgresStore {
    async fn commit_tx(&self, commit: Commit) -> Fallible<Vec<Lead>> {
        self.stats.record(1);
        commit_on(&mut *self.pool.acquire().await?, commit, &self.stats).await
    }

    async fn one_lead(&self, sql: &'static str, arg: &str) -> Fallible<Option<Lead>> {
        let doc: Option<String> = sqlx::query_scalar(sql)
            .bind(arg)
            .fetch_optional(&self.pool)
            .await?;
        doc.as_deref().map(lead_of).transpose()
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
        let mut leads = docs
            .iter()
            .map(|doc| lead_of(doc))
            .collect::<Fallible<Vec<Lead>>>()?;
        let more = leads.len() > size;
        leads.truncate(size);
        let next_cursor = if more {
            leads.last().map(Cursor::after)
        } else {
            None
        };
        Ok(LeadPage { leads, next_cursor })
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
        let (total, score_sum, unassigned): (i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(score), 0)::int8, \
             COUNT(*) FILTER (WHERE assigned_to IS NULL) \
             FROM leads WHERE merged_into IS NULL AND created_at >= $1",
        )
        .bind(since)
        .fetch_one(&mut *tx)
        .await?;
        let total: u64 = count("lead count", total)?;
        let mut stats = PipelineStats {
            total,
            unassigned: count("unassigned count", unassigned)?,
            average_score: if total == 0 {
                0.0
            } else {
                count::<u64>("score sum", score_sum)? as f64 / total as f64
            },
            ..PipelineStats::default()
        };

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
        stats.set_deal_values(
            deals
                .into_iter()
                .map(deal_value)
                .collect::<std::result::Result<Vec<_>, _>>()?,
        );

        let stages: Vec<(String, i64)> = sqlx::query_as(
            "SELECT stage, COUNT(*) FROM leads WHERE merged_into IS NULL AND created_at >= $1 \
             GROUP BY stage",
        )
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
        for (stage, n) in stages {
            stats
                .by_stage
                .insert(stage_of(&stage)?, count("stage count", n)?);
        }
        let priorities: Vec<(String, i64)> = sqlx::query_as(
            "SELECT priority, COUNT(*) FROM leads WHERE merged_into IS NULL AND created_at >= $1 \
             GROUP BY priority",
        )
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
        for (priority, n) in priorities {
            let priority =
                Priority::parse(&priority).map_err(|_| StoreError::Corrupt("priority"))?;
            stats
                .by_priority
                .insert(priority, count("priority count", n)?);
        }

        let sources: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT COALESCE(source, 'unknown') AS name, COUNT(*) AS n, SUM(score)::int8, \
             COUNT(*) FILTER (WHERE priority = 'high'), COUNT(*) FILTER (WHERE stage = 'won') \
             FROM leads WHERE merged_into IS NULL AND created_at >= $1 \
             GROUP BY name ORDER BY n DESC, name ASC",
        )
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
        let mut source_performance = Vec::with_capacity(sources.len());
        for (source, n, score, high, won) in sources {
            let leads: u64 = count("source count", n)?;
            stats.by_source.insert(source.clone(), leads);
            source_performance.push(SourcePerformance {
                source,
                leads,
                average_score: count::<u64>("score sum", score)? as f64 / leads as f64,
                high_priority: count("high-priority count", high)?,
                won: count("won count", won)?,
            });
        }

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
        let top_performers = reps
            .into_iter()
            .map(|(rep, assigned, won)| {
                let assigned: u64 = count("assigned count", assigned)?;
                let won: u64 = count("won count", won)?;
                Ok(RepPerformance {
                    rep: rep_of(&rep)?,
                    assigned,
                    won,
                    conversion_rate: if assigned == 0 {
                        0.0
                    } else {
                        won as f64 / assigned as f64
                    },
                })
            })
            .collect::<Fallible<Vec<_>>>()?;

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
        let mut reached_at_least = [0u64; FUNNEL.len()];
        for (rank, n) in ranks {
            let rank: usize = count("funnel rank", i64::from(rank))?;
            let n: u64 = count("funnel count", n)?;
            for slot in reached_at_least.iter_mut().take(rank + 1) {
                *slot += n;
            }
        }
        // Every lead is at least new.
        reached_at_least[0] = stats.total;
        let funnel = FUNNEL.iter().copied().zip(reached_at_least).collect();

        Ok(Dashboard {
            stats,
            funnel,
            top_performers,
            source_performance,
        })
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

    async fn get(&self, ext_id: &LeadExtId) -> Result<Option<Lead>> {
        Ok(self
            .one_lead(
                "SELECT doc::text FROM leads WHERE ext_id = $1",
                ext_id.as_str(),
            )
            .await?)
    }

    async fn find_by_email_key(&self, email_key: &str) -> Result<Option<Lead>> {
        Ok(self
            .one_lead(
                "SELECT doc::text FROM leads WHERE email_key = $1 AND merged_into IS NULL",
                email_key,
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

    async fn rep_states(&self) -> Result<Vec<RepState>> {
        Ok(self.rep_rows().await?)
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
        Ok(row
            .map(|(id, request_hash)| {
                Ok::<_, StoreError>(Replay {
                    lead: LeadExtId::parse(&id).map_err(|_| StoreError::Corrupt("lead id"))?,
                    request_hash,
                })
            })
            .transpose()?)
    }

    async fn find_by_crm_link(&self, crm: CrmKind, id: &str) -> Result<Option<Lead>> {
        let doc: Option<String> = sqlx::query_scalar(
            "SELECT l.doc::text FROM crm_links c JOIN leads l ON l.ext_id = c.lead \
             WHERE c.crm = $1 AND c.crm_id = $2",
        )
        .bind(wire_name("CRM kind", &crm)?)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(doc.as_deref().map(lead_of).transpose()?)
    }

    async fn list(&self, query: &LeadQuery) -> Result<LeadPage> {
        Ok(self.list_rows(query).await?)
    }

    async fn dashboard(&self, since: DateTime<Utc>, top: usize) -> Result<Dashboard> {
        Ok(self.dashboard_rows(since, top).await?)
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
                    .ok_or_else(|| Error::Internal("no capture context read".into()))??)
            }
        }
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
