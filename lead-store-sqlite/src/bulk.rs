//! The fast path for batches of new leads: one multi-row statement per
//! table for the whole batch.
//!
//! Insert-only commits ([`Commit::is_insert_only`]) need no facts read
//! first: plain INSERTs (no upserts) make SQLite reject everything
//! [`Commit::check`] would, with a constraint error: a taken id (primary
//! key), a taken address (the unique e-mail index), an idempotency key
//! already stored (primary key; an *expired* stored key is also refused
//! here, and the checked path then reuses it), a follow-up id already
//! stored. Workload changes must each update one rep row. When anything is
//! refused the caller rolls the transaction back and takes the checked
//! path, which tells each commit what is wrong.

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use lead_core::{Commit, Lead, LoadChange, RepId};

use crate::codec::{lead_row, micros, to_json, wire_name};
use crate::error::StoreError;
use crate::load::write_load;

type Fallible<T> = std::result::Result<T, StoreError>;

/// Rows per statement: at most 17 parameters a row, far below SQLite's
/// 32 766.
const ROWS_PER_STATEMENT: usize = 512;

/// Runs `INSERT INTO {head} VALUES (…), (…)` for `rows`, a chunk at a time;
/// `bind` pushes one row's values.
async fn insert_rows<T>(
    conn: &mut SqliteConnection,
    head: &str,
    rows: &[T],
    mut bind: impl FnMut(&mut sqlx::query_builder::Separated<'_, Sqlite, &'static str>, &T),
) -> Fallible<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::<Sqlite>::new(format!("INSERT INTO {head} "));
        sql.push_values(chunk, |mut b, row| bind(&mut b, row));
        sql.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Writes a batch of insert-only commits inside the caller's transaction,
/// `written` being each commit's leads as stored. `Ok(true)`: all written.
/// `Ok(false)`: SQLite refused something (a rule of [`Commit::check`] is
/// broken somewhere in the batch); the caller must roll back. `Err`: the
/// database could not be used.
pub(crate) async fn insert_all(
    conn: &mut SqliteConnection,
    commits: &[Commit],
    written: &[Vec<Lead>],
) -> Fallible<bool> {
    match write(conn, commits, written).await {
        Ok(applied) => Ok(applied),
        Err(StoreError::Sqlx(sqlx::Error::Database(_))) => Ok(false),
        Err(err) => Err(err),
    }
}

async fn write(
    conn: &mut SqliteConnection,
    commits: &[Commit],
    written: &[Vec<Lead>],
) -> Fallible<bool> {
    let leads: Vec<&Lead> = written.iter().flatten().collect();
    let rows = leads
        .iter()
        .map(|lead| lead_row(lead))
        .collect::<Fallible<Vec<_>>>()?;
    insert_rows(
        conn,
        "leads (ext_id, email, email_key, company_key, corporate_domain, stage, priority, \
         score, assigned_to, source, source_raw, search_text, segments, created_at, updated_at, \
         version, doc)",
        &rows,
        |b, row| {
            b.push_bind(row.ext_id.clone())
                .push_bind(row.email.clone())
                .push_bind(row.email_key.clone())
                .push_bind(row.company_key.clone())
                .push_bind(row.corporate_domain.clone())
                .push_bind(row.stage)
                .push_bind(row.priority)
                .push_bind(row.score)
                .push_bind(row.assigned_to.clone())
                .push_bind(row.source.clone())
                .push_bind(row.source_raw.clone())
                .push_bind(row.search_text.clone())
                .push_bind(row.segments.clone())
                .push_bind(row.created_at)
                .push_bind(row.updated_at)
                .push_bind(1_i64)
                .push_bind(row.doc.clone());
        },
    )
    .await?;

    let mut events = Vec::new();
    let mut history = Vec::new();
    let mut links = Vec::new();
    for lead in &leads {
        let id = lead.ext_id.as_str();
        for (n, event) in lead.events.iter().enumerate() {
            events.push((
                id,
                n as i64,
                event.kind.as_str(),
                micros(event.at),
                to_json("event properties", &event.properties)?,
            ));
        }
        for (n, change) in lead.history.iter().enumerate() {
            history.push((
                id,
                n as i64,
                change.from.as_str(),
                change.to.as_str(),
                micros(change.at),
                change.notes.clone(),
                wire_name("change origin", &change.origin)?,
            ));
        }
        for link in &lead.crm_links {
            links.push((
                id,
                wire_name("CRM kind", &link.crm)?,
                link.object.as_str(),
                link.id.as_str(),
            ));
        }
    }
    insert_rows(
        conn,
        "lead_events (lead, position, kind, at, properties)",
        &events,
        |b, e| {
            b.push_bind(e.0.to_owned())
                .push_bind(e.1)
                .push_bind(e.2)
                .push_bind(e.3)
                .push_bind(e.4.clone());
        },
    )
    .await?;
    insert_rows(
        conn,
        "stage_history (lead, position, from_stage, to_stage, at, notes, origin)",
        &history,
        |b, h| {
            b.push_bind(h.0.to_owned())
                .push_bind(h.1)
                .push_bind(h.2)
                .push_bind(h.3)
                .push_bind(h.4)
                .push_bind(h.5.clone())
                .push_bind(h.6.clone());
        },
    )
    .await?;
    insert_rows(
        conn,
        "crm_links (lead, crm, object, crm_id)",
        &links,
        |b, l| {
            b.push_bind(l.0.to_owned())
                .push_bind(l.1.clone())
                .push_bind(l.2.to_owned())
                .push_bind(l.3.to_owned());
        },
    )
    .await?;

    let mut outbox = Vec::new();
    let mut tasks = Vec::new();
    let mut keys = Vec::new();
    for commit in commits {
        for entry in &commit.outbox {
            outbox.push((
                entry.id.to_string(),
                entry.lead.as_str(),
                wire_name("outbox kind", &entry.kind)?,
                to_json("outbox payload", &entry.payload)?,
                micros(entry.created_at),
                entry.destination.as_str(),
            ));
        }
        for task in &commit.followups {
            tasks.push((
                task.id.to_string(),
                task.lead.as_str(),
                task.assigned_to.as_ref().map(RepId::as_str),
                task.priority.as_str(),
                micros(task.due_at),
                wire_name("follow-up status", &task.status)?,
                to_json("follow-up task", task)?,
            ));
        }
        for key in &commit.idempotency {
            keys.push((
                key.key.as_str(),
                key.lead.as_str(),
                micros(key.created_at),
                micros(key.expires_at),
                key.request_hash.as_deref(),
            ));
        }
    }
    // VALUES order is `seq` order: the commits' order.
    insert_rows(
        conn,
        "outbox (id, lead, kind, payload, created_at, available_at, destination)",
        &outbox,
        |b, o| {
            b.push_bind(o.0.clone())
                .push_bind(o.1.to_owned())
                .push_bind(o.2.clone())
                .push_bind(o.3.clone())
                .push_bind(o.4)
                .push_bind(o.4)
                .push_bind(o.5.to_owned());
        },
    )
    .await?;
    insert_rows(
        conn,
        "sales_followup_tasks (id, lead, assigned_to, priority, due_at, status, doc)",
        &tasks,
        |b, t| {
            b.push_bind(t.0.clone())
                .push_bind(t.1.to_owned())
                .push_bind(t.2.map(str::to_owned))
                .push_bind(t.3)
                .push_bind(t.4)
                .push_bind(t.5.clone())
                .push_bind(t.6.clone());
        },
    )
    .await?;
    insert_rows(
        conn,
        "idempotency_keys (key, lead, created_at, expires_at, request_hash)",
        &keys,
        |b, k| {
            b.push_bind(k.0.to_owned())
                .push_bind(k.1.to_owned())
                .push_bind(k.2)
                .push_bind(k.3)
                .push_bind(k.4.map(str::to_owned));
        },
    )
    .await?;
    let load: Vec<&LoadChange> = commits.iter().flat_map(|c| &c.load).collect();
    write_load(conn, load).await
}
