//! Pending changes: what an unverified submission (an unsigned post, a
//! public form) sent for a lead that already exists.
//!
//! Anyone can type a known e-mail address into a public form. Such a
//! submission must not rewrite the person's name, phone or consent, nor
//! grow the lead without bound, so it changes no field: what it sent that
//! differs from the lead is kept in `metadata["pending_changes"]`, newest
//! last, for a person to look at (and apply with an edit). The list keeps
//! at most [`MAX_PENDING_CHANGES`] entries and [`MAX_PENDING_BYTES`] of
//! JSON; the oldest go first.
//!
//! An entry is `{"at": <time>, "fields": {<field>: <value>, ...}}`, with
//! metadata keys as `metadata.<key>` and values kept as written (not
//! usable) under `warnings`; `"truncated": [<field>, ...]` names what did
//! not fit.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::lead::Lead;
use crate::model::LeadFields;

pub use crate::model::PENDING_CHANGES;

/// Most pending changes kept on a lead.
pub const MAX_PENDING_CHANGES: usize = 10;

/// Most bytes of JSON the pending changes of a lead may take.
pub const MAX_PENDING_BYTES: usize = 32 * 1024;

/// Fields a submission does not propose: the lead's identity (the e-mail
/// matched it), and the merge's own bookkeeping.
const NOT_PROPOSED: [&str; 3] = ["email", "metadata", "warnings"];

/// `lead` with what `submitted` sent that differs from it added to its
/// pending changes (as of `at`, which also becomes `updated_at`); `None`
/// when the submission brings nothing new. No other field changes.
pub fn propose(lead: &Lead, submitted: &LeadFields, at: DateTime<Utc>) -> Option<Lead> {
    let entry = entry(&lead.fields, submitted, at)?;
    let mut list = list_of(lead.fields.metadata.get(PENDING_CHANGES));
    if list.contains(&entry) {
        return None;
    }
    list.push(entry);
    let mut proposed = lead.clone();
    set_list(&mut proposed.fields.metadata, list);
    proposed.updated_at = at;
    Some(proposed)
}

/// The pending changes of two leads as one list (for a merge): both,
/// oldest first, each once, within the caps.
pub(crate) fn unite(a: Option<&Value>, b: Option<&Value>) -> Vec<Value> {
    let mut all = list_of(a);
    for entry in list_of(b) {
        if !all.contains(&entry) {
            all.push(entry);
        }
    }
    // Stable: entries of equal times keep their order.
    all.sort_by(|x, y| x["at"].as_str().cmp(&y["at"].as_str()));
    cap(&mut all);
    all
}

/// Sets the pending list in `metadata` (removes the key when empty),
/// within the caps.
pub(crate) fn set_list(metadata: &mut Map<String, Value>, mut list: Vec<Value>) {
    cap(&mut list);
    if list.is_empty() {
        metadata.remove(PENDING_CHANGES);
    } else {
        metadata.insert(PENDING_CHANGES.to_owned(), Value::Array(list));
    }
}

fn list_of(value: Option<&Value>) -> Vec<Value> {
    match value {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other.clone()],
    }
}

fn size(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(0, |bytes| bytes.len())
}

/// Drops the oldest entries over [`MAX_PENDING_CHANGES`] or
/// [`MAX_PENDING_BYTES`].
fn cap(list: &mut Vec<Value>) {
    if list.len() > MAX_PENDING_CHANGES {
        list.drain(..list.len() - MAX_PENDING_CHANGES);
    }
    let mut total: usize = list.iter().map(size).sum();
    while total > MAX_PENDING_BYTES && !list.is_empty() {
        total -= size(&list.remove(0));
    }
}

/// The entry for what `submitted` sent that `current` does not hold.
fn entry(current: &LeadFields, submitted: &LeadFields, at: DateTime<Utc>) -> Option<Value> {
    let (Ok(Value::Object(now)), Ok(Value::Object(sent))) = (
        serde_json::to_value(current),
        serde_json::to_value(submitted),
    ) else {
        return None;
    };
    let mut fields: Vec<(String, Value)> = Vec::new();
    if submitted.email != current.email {
        fields.push(("email".into(), json!(submitted.email)));
    }
    for (key, value) in &sent {
        if NOT_PROPOSED.contains(&key.as_str()) || value.is_null() {
            continue;
        }
        if now.get(key) != Some(value) {
            fields.push((key.clone(), value.clone()));
        }
    }
    for (key, value) in &submitted.metadata {
        if current.metadata.get(key) != Some(value) {
            fields.push((format!("metadata.{key}"), value.clone()));
        }
    }
    let warnings: Vec<Value> = submitted
        .warnings
        .iter()
        .filter(|w| !current.warnings.contains(w))
        .filter_map(|w| serde_json::to_value(w).ok())
        .collect();
    if !warnings.is_empty() {
        fields.push(("warnings".into(), Value::Array(warnings)));
    }
    if fields.is_empty() {
        return None;
    }
    // One entry alone stays within the budget: what does not fit is named.
    let mut kept = Map::new();
    let mut truncated = Vec::new();
    let mut used = 64;
    for (key, value) in fields {
        let cost = key.len() + size(&value) + 4;
        if used + cost <= MAX_PENDING_BYTES / 2 {
            used += cost;
            kept.insert(key, value);
        } else {
            truncated.push(Value::String(key));
        }
    }
    let mut entry = json!({ "at": at, "fields": kept });
    if !truncated.is_empty() {
        entry["truncated"] = Value::Array(truncated);
    }
    Some(entry)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::dedup::test_support::lead;

    fn t(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
            .single()
            .expect("valid date")
            + Duration::minutes(minute)
    }

    #[test]
    fn only_what_differs_is_proposed_and_no_field_changes() {
        let mut stored = lead("WEB-AAAAAAAA", "ana@acme.com", t(0));
        stored.fields.first_name = Some("Ana".into());
        stored.fields.consent_marketing = Some(false);
        let mut sent = stored.fields.clone();
        sent.first_name = Some("Mallory".into());
        sent.consent_marketing = Some(true);
        sent.company = None;
        sent.metadata.insert("plan".into(), "pro".into());
        let proposed = propose(&stored, &sent, t(5)).expect("something new");
        let mut without = proposed.fields.clone();
        without.metadata.remove(PENDING_CHANGES);
        assert_eq!(without, stored.fields, "no field changed");
        assert_eq!(proposed.updated_at, t(5));
        assert_eq!(
            proposed.fields.metadata[PENDING_CHANGES],
            json!([{ "at": t(5), "fields": {
                "first_name": "Mallory", "consent_marketing": true, "metadata.plan": "pro"
            }}])
        );
        assert_eq!(propose(&stored, &stored.fields, t(6)), None, "nothing new");
        assert_eq!(
            propose(&proposed, &sent, t(5)),
            None,
            "the same change is kept once"
        );
    }

    #[test]
    fn the_list_keeps_the_newest_within_both_caps() {
        let mut stored = lead("WEB-AAAAAAAA", "ana@acme.com", t(0));
        for n in 0..40 {
            let mut sent = stored.fields.clone();
            sent.metadata.remove(PENDING_CHANGES);
            sent.message = Some(format!("{n}: {}", "x".repeat(n * 400)));
            stored = propose(&stored, &sent, t(n as i64)).expect("new");
            let list = stored.fields.metadata[PENDING_CHANGES]
                .as_array()
                .expect("a list");
            assert!(list.len() <= MAX_PENDING_CHANGES);
            assert!(size(&stored.fields.metadata[PENDING_CHANGES]) <= MAX_PENDING_BYTES);
            let last = list.last().expect("the newest");
            assert!(
                last["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(&format!("{n}:")))
            );
        }
    }

    #[test]
    fn an_entry_over_the_budget_names_what_it_left_out() {
        let stored = lead("WEB-AAAAAAAA", "ana@acme.com", t(0));
        let mut sent = stored.fields.clone();
        for k in 0..10 {
            sent.metadata
                .insert(format!("k{k}"), Value::from("y".repeat(4_000)));
        }
        let proposed = propose(&stored, &sent, t(1)).expect("new");
        let entry = &proposed.fields.metadata[PENDING_CHANGES][0];
        assert!(size(entry) <= MAX_PENDING_BYTES);
        let left_out = entry["truncated"].as_array().expect("named");
        let kept = entry["fields"].as_object().expect("fields");
        assert_eq!(left_out.len() + kept.len(), 10);
        assert!(!left_out.is_empty() && !kept.is_empty());
    }
}
