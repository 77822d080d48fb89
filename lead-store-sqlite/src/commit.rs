//! The atomic commit on SQLite: a commit checked against the stored facts
//! and applied in one transaction, and the group-commit writer's batches.
//! It reads no store handle, only a pool, so the store (which owns the
//! writer) and the reads both depend on it and it on neither.

use sqlx::{SqliteConnection, SqlitePool};

use uuid::Uuid;

use lead_core::{Commit, Error, FollowUpTask, Lead, RepId, Result, ReviewStatus};

use crate::codec::{LeadRow, lead_row, micros, to_json, wire_name};
use crate::error::StoreError;
use crate::load::write_load;
use lead_store_sql::codec::{FactRows, commit_facts};
use lead_store_sql::codec::{followup_columns, last_update_per_task, pair_columns};
use lead_store_sql::{Parts, Stats, answer_batch, in_batch_order, insert_only};

type Fallible<T> = std::result::Result<T, StoreError>;

/// Checks a commit against the contract of [`LeadStore::commit`]: reads
/// the stored facts it touches (one query per kind, before any of its
/// writes) and applies the rules in [`Commit::check`].
async fn check(conn: &mut SqliteConnection, commit: &Commit) -> Fallible<()> {
    let keys = commit.fact_keys();
    let list = |items: Vec<String>| to_json("fact keys", &items);
    let ext_ids = list(
        keys.ext_ids
            .iter()
            .map(|id| id.as_str().to_owned())
            .collect(),
    )?;
    let versions = sqlx::query_as(
        "SELECT ext_id, version FROM leads WHERE ext_id IN (SELECT value FROM json_each(?))",
    )
    .bind(ext_ids)
    .fetch_all(&mut *conn)
    .await?;
    let email_holders = sqlx::query_as(
        "SELECT email_key, ext_id FROM leads \
         WHERE merged_into IS NULL AND email_key IN (SELECT value FROM json_each(?))",
    )
    .bind(list(keys.email_keys)?)
    .fetch_all(&mut *conn)
    .await?;
    let mut rows = FactRows {
        versions,
        email_holders,
        ..FactRows::default()
    };
    // Most commits carry no idempotency key or workload change: skip those round trips.
    if !keys.idempotency_keys.is_empty() {
        rows.idempotency_expiry = sqlx::query_as(
            "SELECT key, expires_at FROM idempotency_keys WHERE key IN (SELECT value FROM json_each(?))",
        )
        .bind(list(keys.idempotency_keys)?)
        .fetch_all(&mut *conn)
        .await?;
    }
    if !keys.reps.is_empty() {
        rows.reps =
            sqlx::query_scalar("SELECT id FROM reps WHERE id IN (SELECT value FROM json_each(?))")
                .bind(list(
                    keys.reps.iter().map(|r| r.as_str().to_owned()).collect(),
                )?)
                .fetch_all(&mut *conn)
                .await?;
    }
    if !keys.followups.is_empty() {
        rows.followups = sqlx::query_scalar(
            "SELECT id FROM sales_followup_tasks WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(list(keys.followups.iter().map(Uuid::to_string).collect())?)
        .fetch_all(&mut *conn)
        .await?;
    }
    if !keys.guarded_followups.is_empty() {
        rows.guarded_followups = sqlx::query_scalar(
            "SELECT doc FROM sales_followup_tasks WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(list(
            keys.guarded_followups.iter().map(Uuid::to_string).collect(),
        )?)
        .fetch_all(&mut *conn)
        .await?;
    }
    Ok(commit.check(&commit_facts(rows)?)?)
}

/// Inserts or updates one `leads` row.
async fn write_lead(
    conn: &mut SqliteConnection,
    row: &LeadRow,
    expected: Option<u64>,
) -> Fallible<()> {
    let sql = if expected.is_none() {
        "INSERT INTO leads (email, email_key, company_key, corporate_domain, stage, priority, \
         score, assigned_to, source, source_raw, search_text, segments, created_at, updated_at, \
         merged_into, version, doc, ext_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    } else {
        "UPDATE leads SET email = ?, email_key = ?, company_key = ?, corporate_domain = ?, \
         stage = ?, priority = ?, score = ?, assigned_to = ?, source = ?, source_raw = ?, \
         search_text = ?, segments = ?, created_at = ?, updated_at = ?, merged_into = ?, \
         version = ?, doc = ? WHERE ext_id = ? AND version = ?"
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

/// Writes the projections of a lead's events, history and CRM links (the
/// old rows are already gone).
async fn write_projections(conn: &mut SqliteConnection, lead: &Lead) -> Fallible<()> {
    let id = lead.ext_id.as_str();
    for (position, event) in lead.events.iter().enumerate() {
        sqlx::query(
            "INSERT INTO lead_events (lead, position, kind, at, properties) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(position as i64)
        .bind(event.kind.as_str())
        .bind(micros(event.at))
        .bind(to_json("event properties", &event.properties)?)
        .execute(&mut *conn)
        .await?;
    }
    for (position, change) in lead.history.iter().enumerate() {
        sqlx::query(
            "INSERT INTO stage_history (lead, position, from_stage, to_stage, at, notes, origin) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(position as i64)
        .bind(change.from.as_str())
        .bind(change.to.as_str())
        .bind(micros(change.at))
        .bind(&change.notes)
        .bind(wire_name("change origin", &change.origin)?)
        .execute(&mut *conn)
        .await?;
    }
    // A merged lead's links belong to its survivor, which carries them too.
    if lead.merged_into.is_none() {
        for link in &lead.crm_links {
            sqlx::query("INSERT INTO crm_links (lead, crm, object, crm_id) VALUES (?, ?, ?, ?)")
                .bind(id)
                .bind(wire_name("CRM kind", &link.crm)?)
                .bind(&link.object)
                .bind(&link.id)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Stores duplicate pairs: a new pair is inserted; over the stored pair of
/// the same two leads only a decision is written
/// ([`lead_core::ReviewPair::merged_with`]).
async fn write_reviews(
    conn: &mut SqliteConnection,
    pairs: &[lead_core::ReviewPair],
) -> Fallible<()> {
    for pair in pairs {
        let (id, a, b, similarity, status, merge_id, found_at, decided_at) = pair_columns(pair);
        let done = sqlx::query(
            "INSERT INTO review_pairs \
             (id, lead_a, lead_b, similarity, status, merge_id, found_at, decided_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (lead_a, lead_b) DO UPDATE SET status = excluded.status, \
             merge_id = excluded.merge_id, decided_at = excluded.decided_at \
             WHERE excluded.status <> 'open' AND NOT (review_pairs.status = 'merged' \
             AND excluded.status = 'dismissed' AND review_pairs.merge_id IS NOT excluded.merge_id)",
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

/// Replaces stored follow-up tasks whole, every column and the document.
/// [`Commit::check`] found each one stored; a task missing anyway fails
/// the commit rather than being created by an update.
async fn write_followup_updates(
    conn: &mut SqliteConnection,
    updates: &[FollowUpTask],
) -> Fallible<()> {
    for task in last_update_per_task(updates) {
        let (id, lead, rep, priority, due_at, status, doc) = followup_columns(task)?;
        let done = sqlx::query(
            "UPDATE sales_followup_tasks SET lead = ?, assigned_to = ?, priority = ?, \
             due_at = ?, status = ?, doc = ? WHERE id = ?",
        )
        .bind(lead)
        .bind(rep)
        .bind(priority)
        .bind(due_at)
        .bind(status)
        .bind(doc)
        .bind(&id)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Err(Error::NotFound(format!("follow-up task {id}")).into());
        }
    }
    Ok(())
}

/// Applies a checked commit; returns the leads with their new versions.
async fn apply(conn: &mut SqliteConnection, commit: Commit) -> Fallible<Vec<Lead>> {
    let mut written = Vec::with_capacity(commit.leads.len());
    let updates: Vec<&str> = commit
        .leads
        .iter()
        .filter(|w| w.expected_version.is_some())
        .map(|w| w.lead.ext_id.as_str())
        .collect();
    if commit.leads.len() > 1 {
        // Leads of one commit may trade addresses (a merge undone, an
        // address moved): park the rewritten leads' keys first so the
        // unique index only ever sees the final state. A parked key has no
        // `@`, so it never equals a real one.
        for id in &updates {
            sqlx::query("UPDATE leads SET email_key = 'parked:' || ext_id WHERE ext_id = ?")
                .bind(*id)
                .execute(&mut *conn)
                .await?;
        }
    }
    for id in &updates {
        for sql in [
            "DELETE FROM lead_events WHERE lead = ?",
            "DELETE FROM stage_history WHERE lead = ?",
            "DELETE FROM crm_links WHERE lead = ?",
        ] {
            sqlx::query(sql).bind(*id).execute(&mut *conn).await?;
        }
    }
    for write in commit.leads {
        let expected = write.expected_version;
        let lead = write.into_written();
        write_lead(conn, &lead_row(&lead)?, expected).await?;
        written.push(lead);
    }
    for lead in &written {
        write_projections(conn, lead).await?;
    }
    for entry in &commit.outbox {
        sqlx::query(
            "INSERT INTO outbox (id, destination, lead, kind, payload, created_at, available_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(entry.id.to_string())
        .bind(entry.destination.as_str())
        .bind(entry.lead.as_str())
        .bind(wire_name("outbox kind", &entry.kind)?)
        .bind(to_json("outbox payload", &entry.payload)?)
        .bind(micros(entry.created_at))
        .bind(micros(entry.created_at))
        .execute(&mut *conn)
        .await?;
    }
    for task in &commit.followups {
        sqlx::query(
            "INSERT INTO sales_followup_tasks (id, lead, assigned_to, priority, due_at, status, doc) \
             VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET lead = excluded.lead, \
             assigned_to = excluded.assigned_to, priority = excluded.priority, \
             due_at = excluded.due_at, status = excluded.status, doc = excluded.doc",
        )
        .bind(task.id.to_string())
        .bind(task.lead.as_str())
        .bind(task.assigned_to.as_ref().map(RepId::as_str))
        .bind(task.priority.as_str())
        .bind(micros(task.due_at))
        .bind(wire_name("follow-up status", &task.status)?)
        .bind(to_json("follow-up task", task)?)
        .execute(&mut *conn)
        .await?;
    }
    write_followup_updates(conn, &commit.followup_updates).await?;
    for merge in &commit.merges {
        sqlx::query("INSERT OR REPLACE INTO merge_records (id, doc) VALUES (?, ?)")
            .bind(merge.id.to_string())
            .bind(to_json("merge record", merge)?)
            .execute(&mut *conn)
            .await?;
    }
    write_reviews(conn, &commit.reviews).await?;
    if !write_load(conn, &commit.load).await? {
        return Err(Error::NotFound("rep of a workload change".into()).into());
    }
    for key in &commit.idempotency {
        sqlx::query(
            "INSERT INTO idempotency_keys (key, lead, created_at, expires_at, request_hash) \
             VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (key) DO UPDATE SET lead = excluded.lead, \
             created_at = excluded.created_at, expires_at = excluded.expires_at, \
             request_hash = excluded.request_hash",
        )
        .bind(&key.key)
        .bind(key.lead.as_str())
        .bind(micros(key.created_at))
        .bind(micros(key.expires_at))
        .bind(key.request_hash.as_deref())
        .execute(&mut *conn)
        .await?;
    }
    Ok(written)
}

/// Writes a batch of new leads ([`insert_only`]) in one transaction with
/// the fast path. `Ok(true)`: committed. `Ok(false)`: SQLite refused
/// something and nothing was written; the checked path must decide.
async fn insert_tx(
    pool: &SqlitePool,
    commits: &[Commit],
    written: &[Vec<Lead>],
    stats: &Stats,
) -> Fallible<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    if crate::bulk::insert_all(&mut tx, commits, written).await? {
        tx.commit().await?;
        return Ok(true);
    }
    tx.rollback().await?;
    stats.record_refused();
    Ok(false)
}

/// One commit checked and applied in the caller's transaction.
async fn checked(conn: &mut SqliteConnection, commit: Commit) -> Fallible<Vec<Lead>> {
    check(conn, &commit).await?;
    apply(conn, commit).await
}

/// One commit in a transaction of its own.
pub(crate) async fn commit_tx(
    pool: &SqlitePool,
    commit: Commit,
    stats: &Stats,
) -> Fallible<Vec<Lead>> {
    if let Some(written) = insert_only(std::slice::from_ref(&commit))
        && insert_tx(pool, std::slice::from_ref(&commit), &written, stats).await?
    {
        return Ok(written.into_iter().flatten().collect());
    }
    // SQLite has one writer: taking the write lock up front makes
    // concurrent commits queue (busy timeout) instead of failing when a
    // read transaction tries to become a write transaction.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let written = checked(&mut tx, commit).await?;
    tx.commit().await?;
    Ok(written)
}

/// Several commits in one transaction. New leads take the fast path
/// ([`crate::bulk`]): a batch of nothing else in a transaction of its own;
/// in a mixed batch ([`Parts`]), together in a savepoint ahead of the other
/// commits, each checked in a savepoint of its own so one that fails is
/// rolled back alone. New leads SQLite refuses on the fast path are
/// checked with the rest. The outer result is the transaction's own
/// failure (begin, savepoint bookkeeping, COMMIT), which every commit
/// shares.
async fn batch_tx(
    pool: &SqlitePool,
    mut commits: Vec<Commit>,
    stats: &Stats,
) -> Fallible<Vec<Fallible<Vec<Lead>>>> {
    if commits.len() == 1
        && let Some(commit) = commits.pop()
    {
        return Ok(vec![commit_tx(pool, commit, stats).await]);
    }
    let n = commits.len();
    let mut parts = Parts::of(commits);
    if parts.checked.is_empty() {
        if insert_tx(pool, &parts.inserts, &parts.written, stats).await? {
            return Ok(parts.written.into_iter().map(Ok).collect());
        }
        parts.check_inserts_too();
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut answered = Vec::with_capacity(n);
    if !parts.inserts.is_empty() {
        sqlx::query("SAVEPOINT new_leads").execute(&mut *tx).await?;
        if crate::bulk::insert_all(&mut tx, &parts.inserts, &parts.written).await? {
            answered.extend(parts.take_written());
        } else {
            sqlx::query("ROLLBACK TO SAVEPOINT new_leads")
                .execute(&mut *tx)
                .await?;
            stats.record_refused();
            parts.check_inserts_too();
        }
        sqlx::query("RELEASE SAVEPOINT new_leads")
            .execute(&mut *tx)
            .await?;
    }
    for (at, commit) in parts.checked_at.into_iter().zip(parts.checked) {
        sqlx::query("SAVEPOINT group_commit")
            .execute(&mut *tx)
            .await?;
        let answer = checked(&mut tx, commit).await;
        if answer.is_err() {
            sqlx::query("ROLLBACK TO SAVEPOINT group_commit")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("RELEASE SAVEPOINT group_commit")
            .execute(&mut *tx)
            .await?;
        answered.push((at, answer));
    }
    tx.commit().await?;
    Ok(in_batch_order(n, answered))
}

/// Runs a batch gathered by the group-commit writer: one answer per commit,
/// in order. An `Ok` is only ever given after the shared COMMIT succeeded.
pub(crate) async fn commit_batch(
    pool: &SqlitePool,
    stats: &Stats,
    commits: Vec<Commit>,
) -> Vec<Result<Vec<Lead>>> {
    answer_batch(commits.len(), batch_tx(pool, commits, stats).await)
}
