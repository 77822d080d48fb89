//! Merging two leads by the survivorship rules, and undoing a merge.
//!
//! # Survivorship (SPEC "Duplicates")
//!
//! | what | rule |
//! | --- | --- |
//! | which lead survives | the oldest (`created_at`; on a tie the smaller `ext_id`); the other is *absorbed* and points at it through `merged_into` |
//! | contact fields: e-mail, names, phone, company, job title, website, country, consent | the value of the most recently updated lead (`updated_at`; on a tie the survivor's); an empty value never wins |
//! | other form fields (source, UTM, message, budget, ...) | the survivor's, filled from the absorbed lead when empty |
//! | a value that lost | kept: a replaced e-mail in `metadata["alternate_emails"]` (array), any other replaced value in `metadata["alternate_values"][field]` (array); nothing is dropped |
//! | metadata | both objects united; on a key clash the most recent lead's value wins and the other goes to `alternate_values["metadata.<key>"]`; over [`MAX_METADATA_BYTES`] the largest keys only the older lead had go there too |
//! | caps | alternates: [`MAX_ALTERNATES`] per field and [`MAX_ALTERNATES_BYTES`] in all (oldest first out); values kept as written: [`MAX_WARNINGS`], the most recent lead's first; pending changes united and capped ([`pending`]) |
//! | events, stage history | united, sorted by time (stable), exact duplicates dropped |
//! | score, priority, score breakdown | together, from the lead with the higher score (tie: survivor) |
//! | BANT | the one with more letters met (tie: survivor); filled when one is missing |
//! | behavioral score, ML score, last contact | the highest / latest |
//! | segments, CRM links | united, survivor's first |
//! | stage | see below |
//! | version | unchanged: the store bumps it when it writes |
//!
//! ## Stage (a judgement call)
//!
//! The stage of the lead *further along* wins, with this order:
//!
//! `won` > `negotiation` > `proposal` > `qualified` > `contacted` > `new` >
//! `nurturing` > `lost` > `unqualified`.
//!
//! A won deal must never be reopened
//! by a merge; an open lead outranks a closed-lost or nurturing one
//! because a new capture of the same person is renewed interest; and
//! `new` outranks `nurturing` for the same reason. `stage_changed_at` and
//! `probability_pct` come with the stage, and so do `assigned_to` and the
//! estimated value: the rep working the further-along lead keeps it (each
//! filled from the other lead when empty). On a tie the survivor's stage
//! stays.
//!
//! # Undo
//!
//! A [`MergeRecord`] keeps the values the merge changed on the survivor
//! and the absorbed lead as it was (see [`record`](super::record)).
//! [`undo`](super::undo) returns the two leads as they were; the store writes them back
//! with new versions. [`MergeRecord::can_undo`] says whether the survivor
//! is still as the merge wrote it: undoing after a later edit would
//! silently drop that edit.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::pending::{self, PENDING_CHANGES};
use super::record::MergeRecord;
use crate::lead::Lead;
use crate::model::{LeadFields, Stage};

pub use crate::model::{ALTERNATE_EMAILS, ALTERNATE_VALUES};

/// Most earlier values kept per field (and e-mails) in the alternates: a
/// person who posts again and again must not grow the lead without bound;
/// the oldest go first.
pub const MAX_ALTERNATES: usize = 20;

/// Most bytes of JSON the alternates of a lead (e-mails and values
/// together) may take: [`MAX_ALTERNATES`] long values of every field would
/// be megabytes. The oldest entries of the largest lists go first.
pub const MAX_ALTERNATES_BYTES: usize = 32 * 1024;

/// Most bytes of JSON a lead's metadata may take, the merge's bookkeeping
/// aside: the size of one capture's body, so merges of many submissions
/// cannot grow it without bound. Over it, the largest keys only older
/// submissions had move to the alternates.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// Most values kept as written (warnings) on a lead; the most recent
/// submission's come first.
pub const MAX_WARNINGS: usize = 50;

/// Metadata keys the merge keeps itself: never taken from a clash.
const BOOKKEEPING: [&str; 3] = [ALTERNATE_EMAILS, ALTERNATE_VALUES, PENDING_CHANGES];

/// Drops the oldest entries of an alternates list over [`MAX_ALTERNATES`].
fn keep_latest(list: &mut Vec<Value>) {
    if list.len() > MAX_ALTERNATES {
        let excess = list.len() - MAX_ALTERNATES;
        list.drain(..excess);
    }
}

/// The outcome of [`merge`].
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The surviving lead, with both leads' data.
    pub survivor: Lead,
    /// The absorbed lead, unchanged except `merged_into` and `updated_at`.
    pub absorbed: Lead,
    /// What is needed to undo the merge.
    pub record: MergeRecord,
}

/// Merges two leads by the survivorship rules in the [module docs](self).
///
/// `at` becomes `updated_at` of both leads and `merged_at` of the record;
/// `id` identifies the record (pass a fresh UUID v7; there is no hidden
/// clock or random source here). `record.similarity` is `None`: set it
/// when the merge comes from duplicate detection. The argument order does
/// not matter.
///
/// # Example
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use lead_core::dedup::{merge, undo};
/// # use lead_core::*;
/// # fn lead(id: &str, email: &str, day: u32) -> Lead {
/// #     let at = Utc.with_ymd_and_hms(2025, 1, day, 0, 0, 0).unwrap();
/// #     Lead { ext_id: LeadExtId::parse(id).unwrap(), fields: LeadFields::new(Email::parse(email).unwrap()),
/// #         score: Score::MIN, priority: Priority::Low, score_breakdown: vec![], stage: Stage::New,
/// #         assigned_to: None, estimated_value: None, currency: None, probability_pct: 5, segments: vec![],
/// #         bant: None, behavioral_score: Score::MIN, ml_score: None, crm_links: vec![], created_at: at,
/// #         updated_at: at, stage_changed_at: at, last_contacted_at: None, merged_into: None, version: 1,
/// #         history: vec![], events: vec![], routing: None, crm_applied: None }
/// # }
/// let old = lead("WEB-AAAAAAAA", "ana@acme.com", 1);
/// let new = lead("WEB-BBBBBBBB", "ana.lopez@gmail.com", 9);
/// let at = Utc.with_ymd_and_hms(2025, 2, 1, 0, 0, 0).unwrap();
/// let m = merge(&new, &old, at, uuid::Uuid::nil());
/// assert_eq!(m.survivor.ext_id, old.ext_id);                   // oldest survives
/// assert_eq!(m.survivor.fields.email.as_str(), "ana.lopez@gmail.com"); // most recent e-mail
/// assert_eq!(m.survivor.fields.metadata["alternate_emails"][0], "ana@acme.com");
/// assert_eq!(m.absorbed.merged_into, Some(old.ext_id.clone()));
/// let mut stored = m.survivor.clone();
/// stored.version += 1; // as the store writes it
/// assert_eq!(undo(&m.record, &stored).unwrap(), (old, new));
/// ```
pub fn merge(a: &Lead, b: &Lead, at: DateTime<Utc>, id: Uuid) -> Merged {
    let (old, young) = if (a.created_at, &a.ext_id) <= (b.created_at, &b.ext_id) {
        (a, b)
    } else {
        (b, a)
    };
    merge_into(old, young, at, id)
}

/// Merges `absorbed` into `survivor`, which keeps its identity whatever the
/// creation times say; every other survivorship rule is as in [`merge`].
///
/// Capture uses this: a submission whose e-mail is already stored always
/// folds into the stored lead, even when clocks make the two look equally old.
pub fn merge_into(survivor: &Lead, absorbed: &Lead, at: DateTime<Utc>, id: Uuid) -> Merged {
    let (old, young) = (survivor, absorbed);
    // Most recently updated lead first; the survivor on a tie.
    let (recent, stale) = if young.updated_at > old.updated_at {
        (young, old)
    } else {
        (old, young)
    };

    let mut survivor = old.clone();
    survivor.fields = merge_fields(&old.fields, &young.fields, &recent.fields, &stale.fields);

    let (scored, _) = prefer(old, young, |l| l.score);
    survivor.score = scored.score;
    survivor.priority = scored.priority;
    survivor.score_breakdown = scored.score_breakdown.clone();

    let (staged, other) = prefer(old, young, |l| stage_rank(l.stage));
    survivor.stage = staged.stage;
    survivor.stage_changed_at = staged.stage_changed_at;
    survivor.probability_pct = staged.probability_pct;
    survivor.assigned_to = staged
        .assigned_to
        .clone()
        .or_else(|| other.assigned_to.clone());
    (survivor.estimated_value, survivor.currency) = if staged.estimated_value.is_some() {
        (staged.estimated_value, staged.currency.clone())
    } else {
        (other.estimated_value, other.currency.clone())
    };

    survivor.bant = match (&old.bant, &young.bant) {
        (Some(x), Some(y)) => Some(if y.score > x.score { y } else { x }.clone()),
        (x, y) => x.clone().or_else(|| y.clone()),
    };
    survivor.behavioral_score = old.behavioral_score.max(young.behavioral_score);
    survivor.ml_score = old.ml_score.max(young.ml_score);
    survivor.last_contacted_at = old.last_contacted_at.max(young.last_contacted_at);
    survivor.segments = union(&old.segments, &young.segments);
    survivor.crm_links = union(&old.crm_links, &young.crm_links);
    survivor.history = union_by_time(&old.history, &young.history, |h| h.at);
    survivor.events = union_by_time(&old.events, &young.events, |e| e.at);
    survivor.updated_at = at;

    let mut absorbed = young.clone();
    absorbed.merged_into = Some(old.ext_id.clone());
    absorbed.updated_at = at;

    let record = MergeRecord::new(id, old, &survivor, young.clone(), at);
    Merged {
        survivor,
        absorbed,
        record,
    }
}

/// The lead with the larger `key`; `first` on a tie. Also returns the other.
fn prefer<'a, K: PartialOrd>(
    first: &'a Lead,
    second: &'a Lead,
    key: impl Fn(&Lead) -> K,
) -> (&'a Lead, &'a Lead) {
    if key(second) > key(first) {
        (second, first)
    } else {
        (first, second)
    }
}

/// How far along a stage is, for choosing the stage of a merged lead (see
/// the module docs).
fn stage_rank(stage: Stage) -> u8 {
    match stage {
        Stage::Unqualified => 0,
        Stage::Lost => 1,
        Stage::Nurturing => 2,
        Stage::New => 3,
        Stage::Contacted => 4,
        Stage::Qualified => 5,
        Stage::Proposal => 6,
        Stage::Negotiation => 7,
        Stage::Won => 8,
    }
}

/// `first` followed by the items of `second` it lacks.
fn union<T: Clone + PartialEq>(first: &[T], second: &[T]) -> Vec<T> {
    let mut out = first.to_vec();
    for item in second {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

/// Both lists, sorted by time (stable: on equal times `first`'s items come
/// first), without exact duplicates.
fn union_by_time<T: Clone + PartialEq>(
    first: &[T],
    second: &[T],
    at: impl Fn(&T) -> DateTime<Utc>,
) -> Vec<T> {
    let mut all: Vec<T> = first.iter().chain(second).cloned().collect();
    all.sort_by_key(|item| at(item));
    let mut out: Vec<T> = Vec::with_capacity(all.len());
    for item in all {
        // Exact duplicates have equal times, so they sit among the last
        // items kept with the same time.
        let t = at(&item);
        let dup = out
            .iter()
            .rev()
            .take_while(|kept| at(kept) == t)
            .any(|kept| *kept == item);
        if !dup {
            out.push(item);
        }
    }
    out
}

/// Values a merge replaced, collected into `metadata["alternate_values"]`.
#[derive(Default)]
struct Alternates {
    values: Map<String, Value>,
    emails: Vec<Value>,
}

impl Alternates {
    fn push(&mut self, field: &str, value: Value) {
        let slot = self
            .values
            .entry(field.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = slot
            && !list.contains(&value)
        {
            list.push(value);
            keep_latest(list);
        }
    }

    fn push_email(&mut self, value: Value) {
        if !self.emails.contains(&value) {
            self.emails.push(value);
            keep_latest(&mut self.emails);
        }
    }

    /// Drops the oldest entry of the largest list until all lists fit in
    /// [`MAX_ALTERNATES_BYTES`].
    fn keep_within_budget(&mut self) {
        let size = |v: &Value| serde_json::to_vec(v).map_or(0, |b| b.len());
        let list_size = |l: &[Value]| l.iter().map(size).sum::<usize>();
        let mut total = list_size(&self.emails)
            + self
                .values
                .values()
                .filter_map(Value::as_array)
                .map(|l| list_size(l))
                .sum::<usize>();
        while total > MAX_ALTERNATES_BYTES {
            let largest = self
                .values
                .values_mut()
                .filter_map(Value::as_array_mut)
                .chain(std::iter::once(&mut self.emails))
                .filter(|l| !l.is_empty())
                .max_by_key(|l| list_size(l));
            let Some(list) = largest else { break };
            total -= size(&list.remove(0));
        }
        self.values
            .retain(|_, v| v.as_array().is_none_or(|l| !l.is_empty()));
    }

    /// Takes in an `alternate_values` object a lead already had (from an
    /// earlier merge). Anything that is not an object of arrays is kept as
    /// a value of `metadata.alternate_values`.
    fn absorb_values(&mut self, existing: &Value) {
        match existing {
            Value::Object(map) => {
                for (field, values) in map {
                    for v in as_list(values) {
                        self.push(field, v);
                    }
                }
            }
            other => self.push(&format!("metadata.{ALTERNATE_VALUES}"), other.clone()),
        }
    }

    /// Chooses between two optional values: `preferred` unless it is empty.
    /// A different non-empty loser is recorded under `field`.
    fn pick<T: Clone + PartialEq + Serialize>(
        &mut self,
        field: &str,
        preferred: &Option<T>,
        other: &Option<T>,
    ) -> Option<T> {
        match (preferred, other) {
            (Some(p), Some(o)) => {
                if p != o {
                    self.push(field, json(o));
                }
                Some(p.clone())
            }
            (p, o) => p.clone().or_else(|| o.clone()),
        }
    }
}

fn json<T: Serialize>(value: &T) -> Value {
    // Field types (strings, numbers, decimals as strings, bools) always
    // serialize; Null is only a fallback that cannot happen.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// Merges the form data. `old`/`young` decide the survivor's own fields,
/// `recent`/`stale` the contact fields and metadata clashes.
fn merge_fields(
    old: &LeadFields,
    young: &LeadFields,
    recent: &LeadFields,
    stale: &LeadFields,
) -> LeadFields {
    let mut alt = Alternates::default();
    for lead in [old, young] {
        for v in lead
            .metadata
            .get(ALTERNATE_EMAILS)
            .map(as_list)
            .unwrap_or_default()
        {
            alt.push_email(v);
        }
        if let Some(existing) = lead.metadata.get(ALTERNATE_VALUES) {
            alt.absorb_values(existing);
        }
    }

    let mut f = old.clone();
    // Contact fields: the most recent non-empty value wins.
    f.email = recent.email.clone();
    if stale.email != recent.email {
        alt.push_email(json(&stale.email));
    }
    f.first_name = alt.pick("first_name", &recent.first_name, &stale.first_name);
    f.last_name = alt.pick("last_name", &recent.last_name, &stale.last_name);
    f.phone = alt.pick("phone", &recent.phone, &stale.phone);
    f.company = alt.pick("company", &recent.company, &stale.company);
    f.job_title = alt.pick("job_title", &recent.job_title, &stale.job_title);
    f.website = alt.pick("website", &recent.website, &stale.website);
    f.country = alt.pick("country", &recent.country, &stale.country);
    // The person's latest statement about consent is the one that holds.
    f.consent_marketing = alt.pick(
        "consent_marketing",
        &recent.consent_marketing,
        &stale.consent_marketing,
    );
    f.consent_text = alt.pick("consent_text", &recent.consent_text, &stale.consent_text);
    // Other fields: the survivor's, filled when empty.
    f.industry = alt.pick("industry", &old.industry, &young.industry);
    f.company_size = alt.pick("company_size", &old.company_size, &young.company_size);
    f.budget = alt.pick("budget", &old.budget, &young.budget);
    f.timeline = alt.pick("timeline", &old.timeline, &young.timeline);
    f.source = alt.pick("source", &old.source, &young.source);
    f.message = alt.pick("message", &old.message, &young.message);
    f.utm_source = alt.pick("utm_source", &old.utm_source, &young.utm_source);
    f.utm_campaign = alt.pick("utm_campaign", &old.utm_campaign, &young.utm_campaign);
    f.utm_medium = alt.pick("utm_medium", &old.utm_medium, &young.utm_medium);
    f.landing_page = alt.pick("landing_page", &old.landing_page, &young.landing_page);

    // Metadata: united; the most recent lead wins a clash.
    let mut metadata = stale.metadata.clone();
    for (key, value) in &recent.metadata {
        if BOOKKEEPING.contains(&key.as_str()) {
            continue;
        }
        if let Some(previous) = metadata.insert(key.clone(), value.clone())
            && previous != *value
        {
            alt.push(&format!("metadata.{key}"), previous);
        }
    }
    metadata.remove(ALTERNATE_EMAILS);
    metadata.remove(ALTERNATE_VALUES);
    keep_metadata_within_budget(&mut metadata, &recent.metadata, &mut alt);
    pending::set_list(
        &mut metadata,
        pending::unite(
            old.metadata.get(PENDING_CHANGES),
            young.metadata.get(PENDING_CHANGES),
        ),
    );
    let current = json(&f.email);
    alt.emails.retain(|e| *e != current);
    alt.keep_within_budget();
    if !alt.emails.is_empty() {
        metadata.insert(ALTERNATE_EMAILS.to_owned(), Value::Array(alt.emails));
    }
    if !alt.values.is_empty() {
        metadata.insert(ALTERNATE_VALUES.to_owned(), Value::Object(alt.values));
    }
    f.metadata = metadata;
    // Values kept as written are never dropped: the most recent
    // submission's all stay (even when the field keeps an older usable
    // value); an older one stays unless the most recent submission gave
    // that field a value (a correction clears it). Identical ones once.
    let mut warnings: Vec<crate::model::FieldWarning> = Vec::new();
    for warning in &recent.warnings {
        if !warnings.contains(warning) {
            warnings.push(warning.clone());
        }
    }
    for warning in &stale.warnings {
        if !recent.has(&warning.field) && !warnings.contains(warning) {
            warnings.push(warning.clone());
        }
    }
    // The most recent first: older ones go over the cap.
    warnings.truncate(MAX_WARNINGS);
    f.warnings = warnings;
    f
}

/// Moves the largest keys only the older lead had into the alternates
/// until the metadata (without the merge's bookkeeping) fits in
/// [`MAX_METADATA_BYTES`]; the most recent lead's keys always stay.
fn keep_metadata_within_budget(
    metadata: &mut Map<String, Value>,
    recent: &Map<String, Value>,
    alt: &mut Alternates,
) {
    let size = |k: &String, v: &Value| k.len() + serde_json::to_vec(v).map_or(0, |b| b.len());
    let mut total: usize = metadata
        .iter()
        .filter(|(k, _)| !BOOKKEEPING.contains(&k.as_str()))
        .map(|(k, v)| size(k, v))
        .sum();
    while total > MAX_METADATA_BYTES {
        let largest = metadata
            .iter()
            .filter(|(k, _)| !BOOKKEEPING.contains(&k.as_str()) && !recent.contains_key(*k))
            .max_by_key(|(k, v)| size(k, v))
            .map(|(k, _)| k.clone());
        let Some(key) = largest else { break };
        if let Some(value) = metadata.remove(&key) {
            total -= size(&key, &value);
            alt.push(&format!("metadata.{key}"), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    use super::*;
    use crate::dedup::test_support::{arb_lead, lead};
    use crate::{EventKind, LeadEvent, Score};

    fn t(day: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
            .single()
            .expect("valid date")
            + Duration::days(day)
    }

    #[test]
    fn alternates_keep_the_latest_values_up_to_the_cap() {
        let mut survivor = lead("WEB-BBBBBBBB", "a@acme.com", t(0));
        for n in 0..(MAX_ALTERNATES + 15) {
            let mut incoming = lead("WEB-CCCCCCCC", "a@acme.com", t(1 + n as i64));
            incoming.fields.company = Some(format!("Company {n}"));
            incoming.fields.email = crate::Email::parse(&format!("a{n}@acme.com")).expect("valid");
            survivor = merge(&survivor, &incoming, t(1 + n as i64), Uuid::nil()).survivor;
        }
        let md = &survivor.fields.metadata;
        let companies = md[ALTERNATE_VALUES]["company"].as_array().expect("a list");
        assert_eq!(companies.len(), MAX_ALTERNATES);
        assert_eq!(
            companies.last(),
            Some(&Value::from(format!("Company {}", MAX_ALTERNATES + 13))),
            "the latest earlier value is kept"
        );
        assert!(
            !companies.contains(&Value::from("Company 0")),
            "the oldest go"
        );
        assert_eq!(
            md[ALTERNATE_EMAILS].as_array().map(Vec::len),
            Some(MAX_ALTERNATES)
        );
    }

    #[test]
    fn many_verified_merges_keep_the_form_data_under_its_caps() {
        let mut survivor = lead("WEB-BBBBBBBB", "a@acme.com", t(0));
        for n in 0..60 {
            let mut incoming = lead("WEB-CCCCCCCC", "a@acme.com", t(1 + n));
            incoming
                .fields
                .metadata
                .insert(format!("key{n}"), Value::from("v".repeat(9_000)));
            incoming.fields.warnings = (0..3)
                .map(|w| {
                    crate::model::FieldWarning::kept(
                        &format!("field{n}_{w}"),
                        "invalid",
                        "kept as written",
                        Some("x".repeat(100)),
                    )
                })
                .collect();
            survivor = merge(&survivor, &incoming, t(1 + n), Uuid::nil()).survivor;
            let md = &survivor.fields.metadata;
            let own: usize = md
                .iter()
                .filter(|(k, _)| !BOOKKEEPING.contains(&k.as_str()))
                .map(|(k, v)| k.len() + v.to_string().len())
                .sum();
            assert!(
                own <= MAX_METADATA_BYTES,
                "{own} bytes of metadata after {n}"
            );
            let alternates = md.get(ALTERNATE_VALUES).map_or(0, |v| v.to_string().len());
            assert!(
                alternates <= MAX_ALTERNATES_BYTES,
                "{alternates} bytes of alternates"
            );
            assert!(survivor.fields.warnings.len() <= MAX_WARNINGS);
            assert!(md.contains_key(&format!("key{n}")), "the latest key stays");
        }
        assert!(
            serde_json::to_vec(&survivor).expect("serializes").len()
                < MAX_METADATA_BYTES + MAX_ALTERNATES_BYTES + 16 * 1024
        );
    }

    #[test]
    fn oldest_survives_and_ties_go_to_the_smaller_ext_id() {
        let a = lead("WEB-BBBBBBBB", "a@acme.com", t(0));
        let b = lead("WEB-AAAAAAAA", "b@acme.com", t(0));
        assert_eq!(merge(&a, &b, t(5), Uuid::nil()).survivor.ext_id, b.ext_id);
        let c = lead("WEB-CCCCCCCC", "c@acme.com", t(-1));
        assert_eq!(merge(&a, &c, t(5), Uuid::nil()).survivor.ext_id, c.ext_id);
    }

    #[test]
    fn most_recent_contact_value_wins_and_the_loser_is_kept() {
        let mut old = lead("WEB-AAAAAAAA", "ana@acme.com", t(0));
        old.fields.phone = crate::Phone::parse("+14155552671", crate::Region::default()).ok();
        old.fields.company = Some("Acme".into());
        old.fields.source = Some("web".into());
        let mut young = lead("WEB-BBBBBBBB", "ana@globex.com", t(3));
        young.fields.company = Some("Globex".into());
        young.fields.source = Some("google".into());
        young.fields.job_title = Some("CTO".into());
        let m = merge(&old, &young, t(9), Uuid::nil());
        let f = &m.survivor.fields;
        assert_eq!(f.email.as_str(), "ana@globex.com");
        assert_eq!(
            f.metadata[ALTERNATE_EMAILS],
            serde_json::json!(["ana@acme.com"])
        );
        assert_eq!(f.company.as_deref(), Some("Globex"));
        assert_eq!(
            f.metadata[ALTERNATE_VALUES]["company"],
            serde_json::json!(["Acme"])
        );
        // Not a contact field: the survivor's value stays.
        assert_eq!(f.source.as_deref(), Some("web"));
        assert_eq!(
            f.metadata[ALTERNATE_VALUES]["source"],
            serde_json::json!(["google"])
        );
        // Empty fields are filled from the other lead, in both directions.
        assert_eq!(f.job_title.as_deref(), Some("CTO"));
        assert!(f.phone.is_some());
    }

    #[test]
    fn metadata_is_united_and_the_most_recent_wins_a_clash() {
        let mut old = lead("WEB-AAAAAAAA", "a@acme.com", t(0));
        old.fields.metadata.insert("plan".into(), "basic".into());
        old.fields.metadata.insert("ref".into(), "x".into());
        let mut young = lead("WEB-BBBBBBBB", "a@acme.com", t(1));
        young.fields.metadata.insert("plan".into(), "pro".into());
        let m = merge(&old, &young, t(2), Uuid::nil());
        let md = &m.survivor.fields.metadata;
        assert_eq!(md["plan"], "pro");
        assert_eq!(md["ref"], "x");
        assert_eq!(
            md[ALTERNATE_VALUES]["metadata.plan"],
            serde_json::json!(["basic"])
        );
    }

    #[test]
    fn events_are_united_sorted_and_deduplicated() {
        let ev = |day, kind| LeadEvent {
            kind,
            at: t(day),
            properties: Map::new(),
        };
        let mut old = lead("WEB-AAAAAAAA", "a@acme.com", t(0));
        old.events = vec![ev(1, EventKind::PageVisit), ev(5, EventKind::DemoRequest)];
        let mut young = lead("WEB-BBBBBBBB", "b@acme.com", t(2));
        young.events = vec![ev(3, EventKind::PricingView), ev(5, EventKind::DemoRequest)];
        let m = merge(&old, &young, t(9), Uuid::nil());
        let kinds: Vec<EventKind> = m.survivor.events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::PageVisit,
                EventKind::PricingView,
                EventKind::DemoRequest
            ]
        );
    }

    #[test]
    fn highest_score_is_kept_with_its_priority_and_breakdown() {
        let mut old = lead("WEB-AAAAAAAA", "a@acme.com", t(0));
        old.score = Score::clamped(30);
        let mut young = lead("WEB-BBBBBBBB", "b@acme.com", t(1));
        young.score = Score::clamped(80);
        young.priority = crate::Priority::High;
        young.score_breakdown = vec![crate::RuleHit {
            group: "basic".into(),
            rule: "phone".into(),
            points: 10,
        }];
        let m = merge(&old, &young, t(2), Uuid::nil());
        assert_eq!(m.survivor.score, young.score);
        assert_eq!(m.survivor.priority, young.priority);
        assert_eq!(m.survivor.score_breakdown, young.score_breakdown);
    }

    #[test]
    fn the_further_along_stage_wins_and_won_is_never_reopened() {
        let mut old = lead("WEB-AAAAAAAA", "a@acme.com", t(0));
        old.stage = Stage::Won;
        let mut young = lead("WEB-BBBBBBBB", "b@acme.com", t(1));
        young.stage = Stage::Contacted;
        young.assigned_to = crate::RepId::parse("rep@us.com").ok();
        let m = merge(&old, &young, t(2), Uuid::nil());
        assert_eq!(m.survivor.stage, Stage::Won);
        // Nobody was assigned to the won lead: filled from the other.
        assert_eq!(m.survivor.assigned_to, young.assigned_to);
        old.stage = Stage::Lost;
        assert_eq!(
            merge(&old, &young, t(2), Uuid::nil()).survivor.stage,
            Stage::Contacted
        );
    }

    #[test]
    fn absorbed_lead_points_at_the_survivor_and_versions_do_not_change() {
        let old = lead("WEB-AAAAAAAA", "a@acme.com", t(0));
        let mut young = lead("WEB-BBBBBBBB", "b@acme.com", t(1));
        young.version = 7;
        let m = merge(&young, &old, t(2), Uuid::nil());
        assert_eq!(m.absorbed.merged_into.as_ref(), Some(&old.ext_id));
        assert_eq!(m.absorbed.updated_at, t(2));
        assert_eq!(m.survivor.updated_at, t(2));
        assert_eq!(m.absorbed.version, 7);
        assert_eq!(m.survivor.version, old.version);
    }

    #[test]
    fn can_undo_only_while_the_survivor_is_as_the_merge_wrote_it() {
        let old = lead("WEB-AAAAAAAA", "a@acme.com", t(0));
        let young = lead("WEB-BBBBBBBB", "b@acme.com", t(1));
        let m = merge(&old, &young, t(2), Uuid::nil());
        let mut stored = m.survivor.clone();
        stored.version += 1;
        assert!(m.record.can_undo(&stored));
        // Any later write (an edit) bumps the version again.
        stored.fields.message = Some("edited later".into());
        stored.version += 1;
        assert!(!m.record.can_undo(&stored));
        assert!(!m.record.can_undo(&young), "another lead");
    }

    #[test]
    fn a_merge_record_holds_the_changes_not_copies_of_the_survivor() {
        let mut old = lead("WEB-AAAAAAAA", "a@acme.com", t(0));
        old.events = (0..200)
            .map(|d| LeadEvent {
                kind: EventKind::PageVisit,
                at: t(-d),
                properties: Map::new(),
            })
            .collect();
        old.events.sort_by_key(|e| e.at);
        let mut young = lead("WEB-BBBBBBBB", "a@acme.com", t(1));
        young.fields.company = Some("Acme".into());
        let m = merge_into(&old, &young, t(2), Uuid::nil());
        let record = serde_json::to_vec(&m.record).expect("serializes").len();
        let survivor = serde_json::to_vec(&old).expect("serializes").len();
        assert!(
            record < survivor / 2,
            "record {record} bytes, survivor {survivor} bytes"
        );
    }

    /// Every non-empty field value of `lead` is in `merged`'s fields or its
    /// alternates.
    fn nothing_lost(lead: &Lead, merged: &Lead) -> Result<(), String> {
        let md = &merged.fields.metadata;
        let alt_values = md.get(ALTERNATE_VALUES).cloned().unwrap_or(Value::Null);
        let in_alternates = |key: &str, v: &Value| {
            alt_values
                .get(key)
                .and_then(Value::as_array)
                .is_some_and(|a| a.contains(v))
        };
        let email = json(&lead.fields.email);
        let alt_emails = md.get(ALTERNATE_EMAILS).and_then(Value::as_array);
        if merged.fields.email != lead.fields.email
            && !alt_emails.is_some_and(|a| a.contains(&email))
        {
            return Err(format!("lost e-mail {email}"));
        }
        let (Value::Object(theirs), Value::Object(ours)) =
            (json(&lead.fields), json(&merged.fields))
        else {
            return Err("fields are not objects".into());
        };
        for (key, value) in &theirs {
            if key == "email" || key == "metadata" || value.is_null() {
                continue;
            }
            if ours.get(key) != Some(value) && !in_alternates(key, value) {
                return Err(format!("lost {key} = {value}"));
            }
        }
        for (key, value) in &lead.fields.metadata {
            if md.get(key) != Some(value) && !in_alternates(&format!("metadata.{key}"), value) {
                return Err(format!("lost metadata.{key} = {value}"));
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn merge_then_undo_restores_both_leads_exactly(a in arb_lead(), b in arb_lead()) {
            let m = merge(&a, &b, t(400), Uuid::nil());
            let expected = if (a.created_at, &a.ext_id) <= (b.created_at, &b.ext_id) {
                (a.clone(), b.clone())
            } else {
                (b.clone(), a.clone())
            };
            let mut stored = m.survivor.clone();
            stored.version += 1;
            prop_assert!(m.record.can_undo(&stored));
            prop_assert_eq!(crate::dedup::undo(&m.record, &stored).expect("undoes"), expected);
        }

        #[test]
        fn merge_never_loses_a_value_nor_an_event(a in arb_lead(), b in arb_lead()) {
            let m = merge(&a, &b, t(400), Uuid::nil());
            for lead in [&a, &b] {
                let check = nothing_lost(lead, &m.survivor);
                prop_assert!(check.is_ok(), "{:?}", check);
                for ev in &lead.events {
                    prop_assert!(m.survivor.events.contains(ev));
                }
                for h in &lead.history {
                    prop_assert!(m.survivor.history.contains(h));
                }
            }
            prop_assert!(m.survivor.events.windows(2).all(|w| w[0].at <= w[1].at));
            prop_assert_eq!(m.survivor.score, a.score.max(b.score));
            prop_assert_eq!(m.survivor.created_at, a.created_at.min(b.created_at));
            prop_assert_eq!(m.absorbed.merged_into.as_ref(), Some(&m.survivor.ext_id));
        }

        #[test]
        fn merging_twice_keeps_earlier_alternates(a in arb_lead(), b in arb_lead(), c in arb_lead()) {
            let first = merge(&a, &b, t(400), Uuid::nil()).survivor;
            let second = merge(&first, &c, t(401), Uuid::nil()).survivor;
            for lead in [&a, &b, &c] {
                let check = nothing_lost(lead, &second);
                prop_assert!(check.is_ok(), "{:?}", check);
            }
        }
    }
}
