//! The atomic commit on PostgreSQL: a commit checked against the state
//! its transaction sees and applied in it, and the group-commit writer
//! ([`BatchWriter`]). It holds no store handle, only connections, so the
//! store (which owns the writer) and the reads both depend on it and it on
//! neither.

use std::sync::Arc;

use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use lead_core::{
    Commit, Error, FollowUpTask, IdempotencyKey, Lead, OutboxEntry, RepId, Result, ReviewStatus,
};

use crate::codec::{LeadRow, bigint, lead_row, micros, to_json, wire_name};
use crate::error::StoreError;
use crate::held::HeldConnection;
use crate::load::write_load;
use lead_store_sql::codec::{FactRows, commit_facts};
use lead_store_sql::codec::{followup_columns, last_update_per_task, pair_columns};
use lead_store_sql::{Parts, Stats, answer_batch, in_batch_order, insert_only};

type Fallible<T> = std::result::Result<T, StoreError>;

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
    let ext_ids: Vec<String> = keys
        .ext_ids
        .iter()
        .map(|id| id.as_str().to_owned())
        .collect();
    let versions = sqlx::query_as("SELECT ext_id, version FROM leads WHERE ext_id = ANY($1)")
        .bind(&ext_ids)
        .fetch_all(&mut *conn)
        .await?;
    let email_holders = sqlx::query_as(
        "SELECT email_key, ext_id FROM leads WHERE merged_into IS NULL AND email_key = ANY($1)",
    )
    .bind(&keys.email_keys)
    .fetch_all(&mut *conn)
    .await?;
    let mut rows = FactRows {
        versions,
        email_holders,
        ..FactRows::default()
    };
    // Most commits carry no idempotency key or workload change: skip those round trips.
    if !keys.idempotency_keys.is_empty() {
        rows.idempotency_expiry =
            sqlx::query_as("SELECT key, expires_at FROM idempotency_keys WHERE key = ANY($1)")
                .bind(&keys.idempotency_keys)
                .fetch_all(&mut *conn)
                .await?;
    }
    if !keys.reps.is_empty() {
        let rep_ids: Vec<String> = keys.reps.iter().map(|r| r.as_str().to_owned()).collect();
        rows.reps = sqlx::query_scalar("SELECT id FROM reps WHERE id = ANY($1)")
            .bind(&rep_ids)
            .fetch_all(&mut *conn)
            .await?;
    }
    if !keys.followups.is_empty() {
        let ids: Vec<String> = keys.followups.iter().map(Uuid::to_string).collect();
        rows.followups = sqlx::query_scalar(
            "SELECT id::text FROM sales_followup_tasks WHERE id = ANY($1::uuid[])",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
    }
    if !keys.guarded_followups.is_empty() {
        let ids: Vec<String> = keys.guarded_followups.iter().map(Uuid::to_string).collect();
        rows.guarded_followups = sqlx::query_scalar(
            "SELECT doc::text FROM sales_followup_tasks WHERE id = ANY($1::uuid[])",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
    }
    Ok(commit.check(&commit_facts(rows)?)?)
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
        write_lead(conn, &lead_row(&lead)?, expected).await?;
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

/// One commit on `conn`: new leads through the fast path
/// ([`crate::bulk`]), anything else (or what the fast path refused)
/// checked and applied in a transaction of its own.
pub(crate) async fn commit_on(
    conn: &mut PgConnection,
    commit: Commit,
    stats: &Stats,
) -> Fallible<Vec<Lead>> {
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

/// Several commits on `conn`, sharing transactions. New leads take the
/// fast path ([`crate::bulk`]): a batch of nothing else in one statement;
/// in a mixed batch ([`Parts`]), together in a savepoint of the batch's
/// transaction, ahead of the other commits, each checked in a savepoint of
/// its own so one that fails (and aborts its statements) is rolled back
/// alone. New leads the fast path refuses are checked with the rest. The
/// outer result is the transaction's own failure (begin, savepoint
/// bookkeeping, COMMIT), which every commit shares.
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
    let n = commits.len();
    let mut parts = Parts::of(commits);
    if parts.checked.is_empty() {
        if crate::bulk::insert_all(conn, &parts.inserts, &parts.written, stats).await? {
            return Ok(parts.written.into_iter().map(Ok).collect());
        }
        parts.check_inserts_too();
    }
    let mut tx = conn.begin().await?;
    let mut answered = Vec::with_capacity(n);
    if !parts.inserts.is_empty() {
        sqlx::query("SAVEPOINT new_leads").execute(&mut *tx).await?;
        if crate::bulk::insert_all(&mut tx, &parts.inserts, &parts.written, stats).await? {
            answered.extend(parts.take_written());
        } else {
            sqlx::query("ROLLBACK TO SAVEPOINT new_leads")
                .execute(&mut *tx)
                .await?;
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
        answered.push((at, answer));
    }
    tx.commit().await?;
    Ok(in_batch_order(n, answered))
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
            .any(|a| matches!(a, Err(Error::Unavailable(..) | Error::Internal(..))))
        {
            checkout.keep();
        }
        answers
    }
}
