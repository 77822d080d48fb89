//! Turning domain values into columns and back, the same for every SQL
//! store: timestamps as microseconds since the epoch, enums as their wire
//! names, documents as JSON text.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A stored value that does not read back as the domain value it should be.
///
/// Stores convert it into their own error (it always means corrupt or
/// foreign data, never a temporary failure).
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// A JSON document or wire name did not (de)serialize.
    #[error("{what} is not valid JSON for its type")]
    Json {
        /// Which value.
        what: &'static str,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A column holds a value outside its type (bad timestamp, negative count).
    #[error("stored {0} is corrupt")]
    Corrupt(&'static str),
}

impl From<CodecError> for lead_core::Error {
    /// Unreadable stored data is a bug or foreign data, never temporary.
    fn from(err: CodecError) -> Self {
        lead_core::Error::internal(format!("SQL store: {err}"))
    }
}

fn json(what: &'static str) -> impl FnOnce(serde_json::Error) -> CodecError {
    move |source| CodecError::Json { what, source }
}

/// Microseconds since the epoch (sub-microsecond precision is dropped).
pub fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// The instant `micros` microseconds after the epoch.
pub fn instant(micros: i64) -> Result<DateTime<Utc>, CodecError> {
    DateTime::from_timestamp_micros(micros).ok_or(CodecError::Corrupt("timestamp"))
}

/// A date column read as text (`YYYY-MM-DD`).
pub fn date(text: &str) -> Result<NaiveDate, CodecError> {
    text.parse().map_err(|_| CodecError::Corrupt("date"))
}

/// A value as JSON text.
pub fn to_json<T: Serialize + ?Sized>(what: &'static str, value: &T) -> Result<String, CodecError> {
    serde_json::to_string(value).map_err(json(what))
}

/// A value from JSON text.
pub fn from_json<T: DeserializeOwned>(what: &'static str, text: &str) -> Result<T, CodecError> {
    serde_json::from_str(text).map_err(json(what))
}

/// The wire name of a unit enum variant (`"salesforce"`, `"lead_created"`).
pub fn wire_name<T: Serialize>(what: &'static str, value: &T) -> Result<String, CodecError> {
    match serde_json::to_value(value).map_err(json(what))? {
        serde_json::Value::String(name) => Ok(name),
        _ => Err(CodecError::Corrupt(what)),
    }
}

/// A unit enum variant from its wire name.
pub fn from_wire_name<T: DeserializeOwned>(
    what: &'static str,
    name: &str,
) -> Result<T, CodecError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).map_err(json(what))
}

/// A count column as `u32`/`u64`.
pub fn count<T: TryFrom<i64>>(what: &'static str, value: i64) -> Result<T, CodecError> {
    T::try_from(value).map_err(|_| CodecError::Corrupt(what))
}

/// `id, destination, lead, kind, payload, created_at` of an outbox or
/// dead-letter row.
pub type EntryColumns = (String, String, String, String, String, i64);

/// An outbox entry from its columns.
pub fn outbox_entry(
    (id, destination, lead, kind, payload, created_at): EntryColumns,
) -> Result<lead_core::OutboxEntry, CodecError> {
    Ok(lead_core::OutboxEntry {
        id: uuid::Uuid::parse_str(&id).map_err(|_| CodecError::Corrupt("outbox id"))?,
        destination: lead_core::Destination::parse(&destination)
            .map_err(|_| CodecError::Corrupt("outbox destination"))?,
        lead: lead_core::LeadExtId::parse(&lead).map_err(|_| CodecError::Corrupt("lead id"))?,
        kind: from_wire_name("outbox kind", &kind)?,
        payload: from_json("outbox payload", &payload)?,
        created_at: instant(created_at)?,
    })
}

/// `open_leads, assigned_today, today (YYYY-MM-DD), last_assigned_at (µs),
/// pass` of a `reps` row.
pub type LoadColumns = (i64, i64, Option<String>, Option<i64>, f64);

/// A rep's workload from its columns.
pub fn rep_load(
    (open_leads, assigned_today, today, last_assigned_at, pass): LoadColumns,
) -> Result<lead_core::RepLoad, CodecError> {
    Ok(lead_core::RepLoad {
        open_leads: count("open leads", open_leads)?,
        assigned_today: count("assigned today", assigned_today)?,
        today: today.as_deref().map(date).transpose()?,
        last_assigned_at: last_assigned_at.map(instant).transpose()?,
        pass,
    })
}

/// `id, lead_a, lead_b, similarity, status, merge_id, found_at (µs),
/// decided_at (µs)` of a `review_pairs` row, ids as text.
pub type PairColumns = (
    String,
    String,
    String,
    Option<f64>,
    String,
    Option<String>,
    i64,
    Option<i64>,
);

/// A duplicate pair's columns.
pub fn pair_columns(pair: &lead_core::ReviewPair) -> PairColumns {
    let [a, b] = &pair.leads;
    (
        pair.id.to_string(),
        a.as_str().to_owned(),
        b.as_str().to_owned(),
        pair.similarity,
        pair.status.as_str().to_owned(),
        pair.merge_id.map(|id| id.to_string()),
        micros(pair.found_at),
        pair.decided_at.map(micros),
    )
}

/// A duplicate pair from its columns.
pub fn review_pair(
    (id, a, b, similarity, status, merge_id, found_at, decided_at): PairColumns,
) -> Result<lead_core::ReviewPair, CodecError> {
    let uuid =
        |text: &str, what| uuid::Uuid::parse_str(text).map_err(|_| CodecError::Corrupt(what));
    let lead =
        |text: &str| lead_core::LeadExtId::parse(text).map_err(|_| CodecError::Corrupt("lead id"));
    Ok(lead_core::ReviewPair {
        id: uuid(&id, "pair id")?,
        leads: [lead(&a)?, lead(&b)?],
        similarity,
        status: lead_core::ReviewStatus::parse(&status)
            .ok_or(CodecError::Corrupt("pair status"))?,
        merge_id: merge_id
            .as_deref()
            .map(|m| uuid(m, "merge id"))
            .transpose()?,
        found_at: instant(found_at)?,
        decided_at: decided_at.map(instant).transpose()?,
    })
}

/// One page of pairs from up to `size + 1` rows in id order (the extra
/// row only says whether another page follows).
pub fn pair_page(rows: Vec<PairColumns>, size: usize) -> Result<lead_core::PairPage, CodecError> {
    let mut pairs = rows
        .into_iter()
        .map(review_pair)
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = (pairs.len() > size).then(|| pairs[size - 1].id);
    pairs.truncate(size);
    Ok(lead_core::PairPage { pairs, next_cursor })
}

/// `id, lead, assigned_to, priority, due_at (µs), status, doc` of a
/// `sales_followup_tasks` row, the id as text: the columns filters and
/// order use, beside the document reads return.
pub type FollowUpColumns = (
    String,
    String,
    Option<String>,
    &'static str,
    i64,
    String,
    String,
);

/// A follow-up task's columns.
pub fn followup_columns(task: &lead_core::FollowUpTask) -> Result<FollowUpColumns, CodecError> {
    Ok((
        task.id.to_string(),
        task.lead.as_str().to_owned(),
        task.assigned_to.as_ref().map(|r| r.as_str().to_owned()),
        task.priority.as_str(),
        micros(task.due_at),
        wire_name("follow-up status", &task.status)?,
        to_json("follow-up task", task)?,
    ))
}

/// A follow-up task from its stored document.
pub fn followup_of(doc: &str) -> Result<lead_core::FollowUpTask, CodecError> {
    from_json("stored follow-up task", doc)
}

/// One page of follow-up tasks from up to `size + 1` documents in
/// `(due_at, id)` order (the extra one only says whether another page
/// follows).
pub fn followup_page(
    docs: Vec<String>,
    size: usize,
) -> Result<lead_core::FollowUpPage, CodecError> {
    let mut tasks = docs
        .iter()
        .map(|doc| followup_of(doc))
        .collect::<Result<Vec<_>, _>>()?;
    let more = tasks.len() > size;
    tasks.truncate(size);
    let next_cursor = if more {
        tasks.last().map(lead_core::FollowUpCursor::after)
    } else {
        None
    };
    Ok(lead_core::FollowUpPage { tasks, next_cursor })
}

/// `stage, probability_pct, currency, estimated_value` of a lead that has
/// a value, the last three read from its document, the value as the text
/// the document holds (`rust_decimal` writes it as a JSON string), never
/// through a float.
pub type DealColumns = (String, i64, Option<String>, String);

/// A lead's deal from its columns, for
/// [`PipelineStats::set_deal_values`](lead_core::query::PipelineStats::set_deal_values).
/// The value is read by the same deserializer that reads the lead
/// document, so it is exactly the `estimated_value` the stored lead has.
pub fn deal_value(
    (stage, probability_pct, currency, value): DealColumns,
) -> Result<lead_core::query::DealValue, CodecError> {
    Ok(lead_core::query::DealValue {
        stage: from_wire_name("stage", &stage)?,
        probability_pct: u8::try_from(probability_pct)
            .map_err(|_| CodecError::Corrupt("probability_pct"))?,
        currency,
        value: serde_json::from_value(serde_json::Value::String(value))
            .map_err(json("estimated_value"))?,
    })
}

/// A commit's follow-up updates as applying them in order would leave
/// them: the last one per task, each task once (in the order first named),
/// so one statement can write them all and count one row per task.
pub fn last_update_per_task(updates: &[lead_core::FollowUpTask]) -> Vec<&lead_core::FollowUpTask> {
    let mut last: Vec<&lead_core::FollowUpTask> = Vec::with_capacity(updates.len());
    for task in updates {
        match last.iter_mut().find(|t| t.id == task.id) {
            Some(slot) => *slot = task,
            None => last.push(task),
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(n: u128, hour: i64) -> lead_core::FollowUpTask {
        let at = DateTime::from_timestamp_micros(1_764_000_000_123_456).expect("valid");
        lead_core::FollowUpTask {
            id: uuid::Uuid::from_u128(n),
            lead: lead_core::LeadExtId::from_random(9),
            assigned_to: None,
            priority: lead_core::Priority::Low,
            due_at: at + chrono::Duration::hours(hour),
            subject: format!("task {n}"),
            status: lead_core::FollowUpStatus::Open,
            created_at: at,
            completed_at: None,
            overdue_at: None,
            notes: None,
        }
    }

    #[test]
    fn followup_pages_say_whether_more_follow() {
        let tasks = [task(1, 1), task(2, 2), task(3, 3)];
        let docs = |n: usize| {
            tasks[..n]
                .iter()
                .map(|t| followup_columns(t).expect("columns").6)
                .collect::<Vec<_>>()
        };
        let page = followup_page(docs(3), 2).expect("valid");
        assert_eq!(page.tasks, tasks[..2]);
        assert_eq!(
            page.next_cursor,
            Some(lead_core::FollowUpCursor::after(&tasks[1]))
        );
        let last = followup_page(docs(2), 2).expect("valid");
        assert_eq!((last.tasks.len(), last.next_cursor), (2, None));
        let (id, _, rep, priority, due, status, _) = followup_columns(&tasks[0]).expect("columns");
        assert_eq!(
            (id.as_str(), rep, priority, due, status.as_str()),
            (
                "00000000-0000-0000-0000-000000000001",
                None,
                "low",
                micros(tasks[0].due_at),
                "open"
            )
        );
    }

    #[test]
    fn the_last_update_of_each_task_wins() {
        let (a1, b, a2) = (task(1, 1), task(2, 2), task(1, 5));
        let updates = [a1, b.clone(), a2.clone()];
        assert_eq!(last_update_per_task(&updates), [&a2, &b]);
    }

    #[test]
    fn values_round_trip_through_their_columns() {
        let at = DateTime::from_timestamp_micros(1_764_000_000_123_456).expect("valid");
        assert_eq!(instant(micros(at)).expect("valid"), at);
        assert_eq!(
            wire_name("stage", &lead_core::Stage::Qualified).expect("unit variant"),
            "qualified"
        );
        let stage: lead_core::Stage = from_wire_name("stage", "won").expect("known name");
        assert_eq!(stage, lead_core::Stage::Won);
        assert!(matches!(
            count::<u32>("open leads", -1),
            Err(CodecError::Corrupt("open leads"))
        ));
        assert!(matches!(
            from_json::<Vec<u8>>("doc", "{"),
            Err(CodecError::Json { what: "doc", .. })
        ));
        assert_eq!(date("2026-11-25").expect("valid").to_string(), "2026-11-25");
    }

    #[test]
    fn review_pairs_round_trip_through_their_columns() {
        let at = DateTime::from_timestamp_micros(1_764_000_000_123_456).expect("valid");
        let pair = lead_core::ReviewPair::new(
            uuid::Uuid::from_u128(7),
            lead_core::LeadExtId::from_random(9),
            lead_core::LeadExtId::from_random(3),
            Some(0.91),
            at,
        )
        .decided(
            lead_core::ReviewStatus::Merged,
            Some(uuid::Uuid::from_u128(8)),
            at,
        );
        assert_eq!(review_pair(pair_columns(&pair)).expect("valid"), pair);
        let mut bad = pair_columns(&pair);
        bad.4 = "maybe".into();
        assert!(matches!(
            review_pair(bad),
            Err(CodecError::Corrupt("pair status"))
        ));
    }

    #[test]
    fn deal_values_read_exactly_from_their_columns() {
        let deal = deal_value((
            "negotiation".into(),
            60,
            Some("EUR".into()),
            "12345678901234567890.0123".into(),
        ))
        .expect("valid");
        assert_eq!(deal.stage, lead_core::Stage::Negotiation);
        assert_eq!(deal.probability_pct, 60);
        assert_eq!(deal.currency.as_deref(), Some("EUR"));
        // More digits than an f64 holds, and the scale kept.
        assert_eq!(deal.value.to_string(), "12345678901234567890.0123");
        assert!(matches!(
            deal_value(("won".into(), 300, None, "1".into())),
            Err(CodecError::Corrupt("probability_pct"))
        ));
        assert!(matches!(
            deal_value(("won".into(), 100, None, "a lot".into())),
            Err(CodecError::Json {
                what: "estimated_value",
                ..
            })
        ));
    }

    #[test]
    fn timestamps_round_trip_at_microsecond_precision() {
        let at = DateTime::from_timestamp_micros(1_795_000_000_123_456).expect("in range");
        assert_eq!(instant(micros(at)).expect("valid"), at);
    }

    #[test]
    fn enums_are_stored_by_wire_name() {
        let name = wire_name("kind", &lead_core::OutboxKind::LeadCreated).expect("unit variant");
        assert_eq!(name, "lead_created");
        let back: lead_core::OutboxKind = from_wire_name("kind", &name).expect("known name");
        assert_eq!(back, lead_core::OutboxKind::LeadCreated);
    }
}

/// The columns of `leads` that SQL filters, orders or aggregates on, all
/// derived from the lead itself, plus the lead as a document. `L` is how
/// the store keeps a list of strings (JSON text in SQLite, `text[]` in
/// PostgreSQL).
#[derive(Debug)]
pub struct LeadRow<L> {
    /// Public id.
    pub ext_id: String,
    /// The e-mail as written.
    pub email: String,
    /// [`lead_core::email_match_key`] of the e-mail.
    pub email_key: String,
    /// [`lead_core::MatchKeys::company_key`].
    pub company_key: Option<String>,
    /// [`lead_core::MatchKeys::corporate_domain`].
    pub corporate_domain: Option<String>,
    /// Stage name.
    pub stage: &'static str,
    /// Priority name.
    pub priority: &'static str,
    /// Rule score.
    pub score: i32,
    /// The rep's id.
    pub assigned_to: Option<String>,
    /// The source, lower-cased (what the source filter compares).
    pub source: Option<String>,
    /// The source as written.
    pub source_raw: Option<String>,
    /// [`lead_core::LeadQuery::searched_text`], lower-cased here (not by
    /// the database), so the search filter means exactly what
    /// `LeadQuery::matches` means.
    pub search_text: L,
    /// Segment names.
    pub segments: L,
    /// Creation time (µs).
    pub created_at: i64,
    /// Last change (µs).
    pub updated_at: i64,
    /// The lead it was merged into.
    pub merged_into: Option<String>,
    /// The version to store.
    pub version: i64,
    /// The lead as JSON.
    pub doc: String,
}

impl<L> LeadRow<L> {
    /// The row for `lead` (whose `version` is the one to store), each list
    /// of strings turned into the store's form by `list`.
    pub fn of(
        lead: &lead_core::Lead,
        list: impl Fn(&'static str, Vec<String>) -> Result<L, CodecError>,
    ) -> Result<Self, CodecError> {
        let fields = &lead.fields;
        let keys = lead_core::MatchKeys::of(fields);
        let search_text: Vec<String> = lead_core::LeadQuery::searched_text(lead)
            .map(str::to_lowercase)
            .collect();
        Ok(LeadRow {
            ext_id: lead.ext_id.as_str().to_owned(),
            email: fields.email.as_str().to_owned(),
            email_key: lead_core::email_match_key(&fields.email),
            company_key: keys.company_key(),
            corporate_domain: keys.corporate_domain().map(str::to_owned),
            stage: lead.stage.as_str(),
            priority: lead.priority.as_str(),
            score: i32::from(lead.score.value()),
            assigned_to: lead.assigned_to.as_ref().map(|r| r.as_str().to_owned()),
            source: fields.source.as_deref().map(str::to_lowercase),
            source_raw: fields.source.clone(),
            search_text: list("search text", search_text)?,
            segments: list("segments", lead.segments.clone())?,
            created_at: micros(lead.created_at),
            updated_at: micros(lead.updated_at),
            merged_into: lead.merged_into.as_ref().map(|m| m.as_str().to_owned()),
            version: i64::try_from(lead.version)
                .map_err(|_| CodecError::Corrupt("lead version"))?,
            doc: to_json("lead", lead)?,
        })
    }
}

/// What a store read of the facts a commit touches
/// ([`lead_core::FactKeys`]), as columns; [`commit_facts`] decodes them.
#[derive(Debug, Default)]
pub struct FactRows {
    /// `ext_id, version` of the stored leads among the commit's.
    pub versions: Vec<(String, i64)>,
    /// `email_key, ext_id` of the unmerged leads holding the commit's keys.
    pub email_holders: Vec<(String, String)>,
    /// `key, expires_at` (µs) of the stored idempotency keys among the commit's.
    pub idempotency_expiry: Vec<(String, i64)>,
    /// Ids of the stored reps among the commit's.
    pub reps: Vec<String>,
    /// Ids of the stored follow-up tasks among the commit's.
    pub followups: Vec<String>,
    /// Documents of the stored follow-up tasks the commit guards.
    pub guarded_followups: Vec<String>,
}

/// The facts a commit is checked against ([`lead_core::Commit::check`]).
pub fn commit_facts(rows: FactRows) -> Result<lead_core::CommitFacts, CodecError> {
    let mut facts = lead_core::CommitFacts::default();
    for (ext_id, version) in rows.versions {
        facts
            .versions
            .insert(lead_id(&ext_id)?, count("version", version)?);
    }
    for (email_key, ext_id) in rows.email_holders {
        facts.email_holders.insert(email_key, lead_id(&ext_id)?);
    }
    for (key, expires_at) in rows.idempotency_expiry {
        facts.idempotency_expiry.insert(key, instant(expires_at)?);
    }
    for rep in rows.reps {
        let rep = lead_core::RepId::parse(&rep).map_err(|_| CodecError::Corrupt("rep id"))?;
        facts.known_reps.insert(rep);
    }
    for id in rows.followups {
        let id = uuid::Uuid::parse_str(&id).map_err(|_| CodecError::Corrupt("follow-up id"))?;
        facts.known_followups.insert(id);
    }
    for doc in rows.guarded_followups {
        let task: lead_core::FollowUpTask = from_json("follow-up task", &doc)?;
        facts.stored_followups.insert(task.id, task);
    }
    Ok(facts)
}

/// A job run's record as stored in `job_runs.detail` (the whole record;
/// the columns beside it are for ordering and purging).
pub fn job_run_doc(run: &lead_core::ports::JobRun) -> Result<String, CodecError> {
    to_json("job run", run)
}

/// A job run from `job_runs.detail`.
pub fn job_run(doc: &str) -> Result<lead_core::ports::JobRun, CodecError> {
    from_json("job run", doc)
}

/// A lead id from its column.
pub fn lead_id(text: &str) -> Result<lead_core::LeadExtId, CodecError> {
    lead_core::LeadExtId::parse(text).map_err(|_| CodecError::Corrupt("lead id"))
}

/// What a live idempotency key points at, from `lead, request_hash`.
pub fn replay(
    (lead, request_hash): (String, Option<String>),
) -> Result<lead_core::Replay, CodecError> {
    Ok(lead_core::Replay {
        lead: lead_id(&lead)?,
        request_hash,
    })
}
