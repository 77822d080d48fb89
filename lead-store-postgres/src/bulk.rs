//! The fast path for batches of new leads: the whole batch in one
//! statement.
//!
//! Insert-only commits ([`Commit::is_insert_only`]) need no facts read
//! first: plain INSERTs (no upserts) make the database reject everything
//! [`Commit::check`] would, with an error that aborts the statement and
//! leaves nothing behind: a taken id (primary key), a taken address (the
//! unique e-mail index), an idempotency key already stored (primary key;
//! an *expired* stored key is also refused here, and the checked path then
//! reuses it), a follow-up id already stored. One statement with a
//! data-modifying `WITH` per table writes the batch; the sibling inserts'
//! foreign keys are checked at the end of the statement, when the leads are
//! there. Every array has a fixed type, so the statement is prepared once
//! per connection and a batch costs one round trip.
//!
//! The reps' workloads are updated in the same statement
//! ([`load_update!`]). An unknown rep would update nothing, with no error,
//! so the statement also tries to insert every rep it cannot find without
//! a profile: the `NOT NULL` column refuses that, the statement aborts, and
//! the checked path answers that the rep does not exist.

use sqlx::PgConnection;

use lead_core::{Commit, FollowUpTask, IdempotencyKey, Lead, OutboxEntry, RepId};

use crate::codec::{bigint, lead_row, micros, to_json, wire_name};
use crate::error::StoreError;
use crate::load::{LoadColumns, PgQuery};
use lead_store_sql::Stats;

type Fallible<T> = std::result::Result<T, StoreError>;

/// The batch statement, after `WITH` and what `$reps` adds: one
/// data-modifying `WITH` per table.
macro_rules! insert_all {
    ($reps:expr) => {
        concat!(
            "WITH ",
            $reps,
            "new_leads AS (
    INSERT INTO leads (ext_id, email, email_key, company_key, corporate_domain, stage, priority,
        score, assigned_to, source, source_raw, search_text, segments, created_at, updated_at,
        version, doc)
    SELECT t.ext_id, t.email, t.email_key, t.company_key, t.corporate_domain, t.stage,
        t.priority, t.score, t.assigned_to, t.source, t.source_raw,
        t.search_text::text[], t.segments::text[],
        t.created_at, t.updated_at, 1, t.doc::json
    FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
        $7::text[], $8::int4[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
        $14::int8[], $15::int8[], $16::text[])
        AS t(ext_id, email, email_key, company_key, corporate_domain, stage, priority, score,
        assigned_to, source, source_raw, search_text, segments, created_at, updated_at, doc)
), new_events AS (
    INSERT INTO lead_events (lead, position, kind, at, properties)
    SELECT t.lead, t.position, t.kind, t.at, t.properties::json
    FROM UNNEST($17::text[], $18::int8[], $19::text[], $20::int8[], $21::text[])
        AS t(lead, position, kind, at, properties)
), new_history AS (
    INSERT INTO stage_history (lead, position, from_stage, to_stage, at, notes, origin)
    SELECT * FROM UNNEST($22::text[], $23::int8[], $24::text[], $25::text[], $26::int8[],
        $27::text[], $28::text[])
), new_links AS (
    INSERT INTO crm_links (lead, crm, object, crm_id)
    SELECT * FROM UNNEST($29::text[], $30::text[], $31::text[], $32::text[])
), new_outbox AS (
    INSERT INTO outbox (id, lead, kind, payload, created_at, available_at, destination)
    SELECT t.id::uuid, t.lead, t.kind, t.payload::json, t.created_at, t.created_at, t.destination
    FROM UNNEST($33::text[], $34::text[], $35::text[], $36::text[], $37::int8[], $50::text[])
        WITH ORDINALITY AS t(id, lead, kind, payload, created_at, destination, n)
    ORDER BY t.n
), new_tasks AS (
    INSERT INTO sales_followup_tasks (id, lead, assigned_to, priority, due_at, status, doc)
    SELECT t.id::uuid, t.lead, t.assigned_to, t.priority, t.due_at, t.status, t.doc::json
    FROM UNNEST($38::text[], $39::text[], $40::text[], $41::text[], $42::int8[], $43::text[],
        $44::text[]) AS t(id, lead, assigned_to, priority, due_at, status, doc)
)
INSERT INTO idempotency_keys (key, lead, created_at, expires_at, request_hash)
SELECT * FROM UNNEST($45::text[], $46::text[], $47::int8[], $48::int8[], $49::text[])"
        )
    };
}

/// Writes a batch that changes no rep's workload in one statement.
const INSERT_ALL: &str = insert_all!("");

/// Writes a batch and its reps' workloads in one statement. Its two
/// sub-statements on `reps` cost every execution a little (measured at
/// half load), so batches without workload changes use [`INSERT_ALL`].
const INSERT_ALL_WITH_LOAD: &str = insert_all!(concat!(
    "updated_reps AS (",
    load_update!("$51", "$52", "$53", "$54", "$55", "$56", "$57", "$58"),
    "), missing_reps AS (
    INSERT INTO reps (id, profile)
    SELECT t.id, NULL FROM UNNEST($51::text[]) AS t(id)
    WHERE NOT EXISTS (SELECT 1 FROM reps WHERE reps.id = t.id)
), "
));

/// The batch as one array per column.
#[derive(Default)]
struct Columns<'a> {
    ext_id: Vec<String>,
    email: Vec<String>,
    email_key: Vec<String>,
    company_key: Vec<Option<String>>,
    corporate_domain: Vec<Option<String>>,
    stage: Vec<&'static str>,
    priority: Vec<&'static str>,
    score: Vec<i32>,
    assigned_to: Vec<Option<String>>,
    source: Vec<Option<String>>,
    source_raw: Vec<Option<String>>,
    search_text: Vec<String>,
    segments: Vec<String>,
    created_at: Vec<i64>,
    updated_at: Vec<i64>,
    doc: Vec<String>,

    event_lead: Vec<&'a str>,
    event_position: Vec<i64>,
    event_kind: Vec<&'static str>,
    event_at: Vec<i64>,
    event_properties: Vec<String>,

    history_lead: Vec<&'a str>,
    history_position: Vec<i64>,
    history_from: Vec<&'static str>,
    history_to: Vec<&'static str>,
    history_at: Vec<i64>,
    history_notes: Vec<Option<&'a str>>,
    history_origin: Vec<String>,

    link_lead: Vec<&'a str>,
    link_crm: Vec<String>,
    link_object: Vec<&'a str>,
    link_id: Vec<&'a str>,

    outbox_id: Vec<String>,
    outbox_lead: Vec<&'a str>,
    outbox_kind: Vec<String>,
    outbox_payload: Vec<String>,
    outbox_created: Vec<i64>,
    outbox_destination: Vec<&'a str>,

    task_id: Vec<String>,
    task_lead: Vec<&'a str>,
    task_rep: Vec<Option<&'a str>>,
    task_priority: Vec<&'static str>,
    task_due: Vec<i64>,
    task_status: Vec<String>,
    task_doc: Vec<String>,

    key: Vec<&'a str>,
    key_lead: Vec<&'a str>,
    key_created: Vec<i64>,
    key_expires: Vec<i64>,
    key_hash: Vec<Option<&'a str>>,

    load: LoadColumns,
}

impl<'a> Columns<'a> {
    fn lead(&mut self, lead: &'a Lead) -> Fallible<()> {
        let row = lead_row(lead)?;
        self.ext_id.push(row.ext_id);
        self.email.push(row.email);
        self.email_key.push(row.email_key);
        self.company_key.push(row.company_key);
        self.corporate_domain.push(row.corporate_domain);
        self.stage.push(row.stage);
        self.priority.push(row.priority);
        self.score.push(row.score);
        self.assigned_to.push(row.assigned_to);
        self.source.push(row.source);
        self.source_raw.push(row.source_raw);
        self.search_text.push(array_literal(&row.search_text));
        self.segments.push(array_literal(&row.segments));
        self.created_at.push(row.created_at);
        self.updated_at.push(row.updated_at);
        self.doc.push(row.doc);

        let id = lead.ext_id.as_str();
        for (n, event) in lead.events.iter().enumerate() {
            self.event_lead.push(id);
            self.event_position.push(bigint(n));
            self.event_kind.push(event.kind.as_str());
            self.event_at.push(micros(event.at));
            self.event_properties
                .push(to_json("event properties", &event.properties)?);
        }
        for (n, change) in lead.history.iter().enumerate() {
            self.history_lead.push(id);
            self.history_position.push(bigint(n));
            self.history_from.push(change.from.as_str());
            self.history_to.push(change.to.as_str());
            self.history_at.push(micros(change.at));
            self.history_notes.push(change.notes.as_deref());
            self.history_origin
                .push(wire_name("change origin", &change.origin)?);
        }
        for link in &lead.crm_links {
            self.link_lead.push(id);
            self.link_crm.push(wire_name("CRM kind", &link.crm)?);
            self.link_object.push(&link.object);
            self.link_id.push(&link.id);
        }
        Ok(())
    }

    fn outbox(&mut self, entry: &'a OutboxEntry) -> Fallible<()> {
        self.outbox_id.push(entry.id.to_string());
        self.outbox_lead.push(entry.lead.as_str());
        self.outbox_kind
            .push(wire_name("outbox kind", &entry.kind)?);
        self.outbox_payload
            .push(to_json("outbox payload", &entry.payload)?);
        self.outbox_created.push(micros(entry.created_at));
        self.outbox_destination.push(entry.destination.as_str());
        Ok(())
    }

    fn task(&mut self, task: &'a FollowUpTask) -> Fallible<()> {
        self.task_id.push(task.id.to_string());
        self.task_lead.push(task.lead.as_str());
        self.task_rep
            .push(task.assigned_to.as_ref().map(RepId::as_str));
        self.task_priority.push(task.priority.as_str());
        self.task_due.push(micros(task.due_at));
        self.task_status
            .push(wire_name("follow-up status", &task.status)?);
        self.task_doc.push(to_json("follow-up task", task)?);
        Ok(())
    }

    fn key(&mut self, key: &'a IdempotencyKey) {
        self.key.push(&key.key);
        self.key_lead.push(key.lead.as_str());
        self.key_created.push(micros(key.created_at));
        self.key_expires.push(micros(key.expires_at));
        self.key_hash.push(key.request_hash.as_deref());
    }

    async fn insert(self, conn: &mut PgConnection) -> Fallible<()> {
        let with_load = self.load.reps() > 0;
        let query: PgQuery<'_> = sqlx::query(if with_load {
            INSERT_ALL_WITH_LOAD
        } else {
            INSERT_ALL
        })
        .bind(self.ext_id)
        .bind(self.email)
        .bind(self.email_key)
        .bind(self.company_key)
        .bind(self.corporate_domain)
        .bind(self.stage)
        .bind(self.priority)
        .bind(self.score)
        .bind(self.assigned_to)
        .bind(self.source)
        .bind(self.source_raw)
        .bind(self.search_text)
        .bind(self.segments)
        .bind(self.created_at)
        .bind(self.updated_at)
        .bind(self.doc)
        .bind(self.event_lead)
        .bind(self.event_position)
        .bind(self.event_kind)
        .bind(self.event_at)
        .bind(self.event_properties)
        .bind(self.history_lead)
        .bind(self.history_position)
        .bind(self.history_from)
        .bind(self.history_to)
        .bind(self.history_at)
        .bind(self.history_notes)
        .bind(self.history_origin)
        .bind(self.link_lead)
        .bind(self.link_crm)
        .bind(self.link_object)
        .bind(self.link_id)
        .bind(self.outbox_id)
        .bind(self.outbox_lead)
        .bind(self.outbox_kind)
        .bind(self.outbox_payload)
        .bind(self.outbox_created)
        .bind(self.task_id)
        .bind(self.task_lead)
        .bind(self.task_rep)
        .bind(self.task_priority)
        .bind(self.task_due)
        .bind(self.task_status)
        .bind(self.task_doc)
        .bind(self.key)
        .bind(self.key_lead)
        .bind(self.key_created)
        .bind(self.key_expires)
        .bind(self.key_hash)
        .bind(self.outbox_destination);
        let query = if with_load {
            self.load.bind(query)
        } else {
            query
        };
        query.execute(conn).await?;
        Ok(())
    }
}

/// Writes a batch of insert-only commits, `written` being each commit's
/// leads as stored. `Ok(true)`: committed. `Ok(false)`: the database
/// refused it (a rule of [`Commit::check`] is broken somewhere in the
/// batch) and nothing was written: the checked path must decide, commit by
/// commit. `Err`: the database could not be used (or a COMMIT's outcome is
/// unknown); that is every caller's answer, never retried another way.
pub(crate) async fn insert_all(
    conn: &mut PgConnection,
    commits: &[Commit],
    written: &[Vec<Lead>],
    stats: &Stats,
) -> Fallible<bool> {
    let applied = write(conn, commits, written).await?;
    if !applied {
        stats.record_refused();
    }
    Ok(applied)
}

async fn write(
    conn: &mut PgConnection,
    commits: &[Commit],
    written: &[Vec<Lead>],
) -> Fallible<bool> {
    let mut columns = Columns::default();
    for lead in written.iter().flatten() {
        columns.lead(lead)?;
    }
    for commit in commits {
        for entry in &commit.outbox {
            columns.outbox(entry)?;
        }
        for task in &commit.followups {
            columns.task(task)?;
        }
        for key in &commit.idempotency {
            columns.key(key);
        }
    }
    columns.load = LoadColumns::of(commits.iter().flat_map(|c| &c.load));
    // One statement is its own transaction: committed or not at all.
    refused(columns.insert(conn).await)
}

/// `values` as a PostgreSQL array literal (`{"a","b \\"c\\""}`), so a
/// column of arrays travels as one `text[]` and is cast back per row:
/// every element quoted, backslash and double quote escaped.
fn array_literal(values: &[String]) -> String {
    let mut out = String::from("{");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in value.chars() {
            if matches!(c, '"' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// A statement the database refused (its answer is an error response, so
/// the statement did not commit) is `Ok(false)`; anything else stands.
fn refused(result: Fallible<()>) -> Fallible<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(StoreError::Sqlx(sqlx::Error::Database(_))) => Ok(false),
        Err(err) => Err(err),
    }
}
