//! What a merge keeps to be undone: the values it changed on the survivor,
//! not copies of whole leads.
//!
//! A lead can carry a long history of events and stage changes, and a
//! person who posts the same address again and again merges again and
//! again: three full copies per merge (as records held until this format)
//! made every resubmission store the whole lead three more times. A
//! record holds the survivor's changed values (before and after, by their
//! path in the lead's JSON), the survivor's version before the merge, and
//! the absorbed lead as it was (for a capture, that is the submission).
//!
//! Records written in the former format (`survivor_before`,
//! `absorbed_before`, `survivor_after`) still read: their changes are
//! worked out when they are read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::lead::Lead;
use crate::model::LeadExtId;

/// Objects of a lead's JSON whose keys are compared one by one (a change
/// of one contact field or one metadata key is recorded alone); any other
/// value is recorded whole when it changed.
const COMPARED_KEY_BY_KEY: [&[&str]; 3] = [&[], &["fields"], &["fields", "metadata"]];

/// One value a merge changed on the survivor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Keys from the root of the lead's JSON, e.g. `["fields", "phone"]`.
    pub path: Vec<String>,
    /// The value before the merge; absent when the key did not exist.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub before: Option<Value>,
    /// The value the merge wrote; absent when the merge removed the key.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub after: Option<Value>,
}

/// A key that is there is `Some`, even when it holds `null` (a metadata
/// value may be `null`, and undo must put it back as it was).
fn present<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// A merge as it happened, enough to reverse it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RecordDoc")]
pub struct MergeRecord {
    /// Id of the merge (a UUID v7 chosen by the caller).
    pub id: Uuid,
    /// The surviving lead.
    pub survivor: LeadExtId,
    /// The survivor's version before the merge; the merge's own write makes
    /// it one more.
    pub survivor_version: u64,
    /// What the merge changed on the survivor.
    pub changes: Vec<Change>,
    /// The absorbed lead before the merge (for a merge at capture, the
    /// submission as it would have been stored on its own).
    pub absorbed_before: Lead,
    /// When the merge happened.
    pub merged_at: DateTime<Utc>,
    /// Similarity of the pair, when the merge came from duplicate detection
    /// (`None` for a merge a person asked for).
    pub similarity: Option<f64>,
}

impl MergeRecord {
    /// The record of merging into `before`, which the merge turned into
    /// `after`.
    pub(crate) fn new(
        id: Uuid,
        before: &Lead,
        after: &Lead,
        absorbed_before: Lead,
        merged_at: DateTime<Utc>,
    ) -> Self {
        MergeRecord {
            id,
            survivor: before.ext_id.clone(),
            survivor_version: before.version,
            changes: changes(&json(before), &json(after)),
            absorbed_before,
            merged_at,
            similarity: None,
        }
    }

    /// `true` when `current_survivor` is the survivor as this merge wrote
    /// it: nothing was written to it since (a store adds one to a lead's
    /// version on every write).
    ///
    /// When it is `false` the survivor was changed after the merge, and
    /// [`undo`] would throw that change away; ask a person instead.
    pub fn can_undo(&self, current_survivor: &Lead) -> bool {
        current_survivor.ext_id == self.survivor
            && current_survivor.version == self.survivor_version + 1
    }
}

/// Reverses a merge: the survivor and the absorbed lead exactly as they
/// were before it, in that order, from the survivor as the merge left it.
/// The caller writes them back (with new versions) after checking
/// [`MergeRecord::can_undo`].
///
/// # Errors
///
/// [`Error::Internal`] when the record's changes do not apply to
/// `current_survivor` (it is not the survivor the merge wrote).
pub fn undo(record: &MergeRecord, current_survivor: &Lead) -> Result<(Lead, Lead)> {
    let mut doc = json(current_survivor);
    for change in &record.changes {
        set(&mut doc, &change.path, change.before.clone());
    }
    let mut survivor: Lead = serde_json::from_value(doc)
        .map_err(|e| Error::internal(format!("merge {} does not undo: {e}", record.id)))?;
    survivor.version = record.survivor_version;
    Ok((survivor, record.absorbed_before.clone()))
}

fn json(lead: &Lead) -> Value {
    // A lead is plain data (strings, numbers, maps with string keys): it
    // always serializes.
    serde_json::to_value(lead).unwrap_or(Value::Null)
}

/// The values that differ between `before` and `after`.
fn changes(before: &Value, after: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    diff(before, after, &mut Vec::new(), &mut out);
    out
}

fn diff(before: &Value, after: &Value, path: &mut Vec<String>, out: &mut Vec<Change>) {
    let key_by_key = COMPARED_KEY_BY_KEY
        .iter()
        .any(|deep| deep.iter().copied().eq(path.iter().map(String::as_str)));
    if let (true, Value::Object(b), Value::Object(a)) = (key_by_key, before, after) {
        let keys = b.keys().chain(a.keys().filter(|k| !b.contains_key(*k)));
        let keys: Vec<String> = keys.cloned().collect();
        for key in keys {
            path.push(key.clone());
            match (b.get(&key), a.get(&key)) {
                (Some(x), Some(y)) => diff(x, y, path, out),
                (x, y) => out.push(Change {
                    path: path.clone(),
                    before: x.cloned(),
                    after: y.cloned(),
                }),
            }
            path.pop();
        }
    } else if before != after {
        out.push(Change {
            path: path.clone(),
            before: Some(before.clone()),
            after: Some(after.clone()),
        });
    }
}

/// Writes `value` at `path` (removes the key when `None`), creating the
/// objects on the way.
fn set(doc: &mut Value, path: &[String], value: Option<Value>) {
    let Some((last, parents)) = path.split_last() else {
        if let Some(value) = value {
            *doc = value;
        }
        return;
    };
    let mut at = doc;
    for key in parents {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Value::Object(map) = at else { return };
        at = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !at.is_object() {
        *at = Value::Object(Map::new());
    }
    if let Value::Object(map) = at {
        match value {
            Some(value) => {
                map.insert(last.clone(), value);
            }
            None => {
                map.remove(last);
            }
        }
    }
}

/// A stored record in either format.
#[derive(Deserialize)]
#[serde(untagged)]
enum RecordDoc {
    Changes {
        id: Uuid,
        survivor: LeadExtId,
        survivor_version: u64,
        changes: Vec<Change>,
        absorbed_before: Box<Lead>,
        merged_at: DateTime<Utc>,
        similarity: Option<f64>,
    },
    /// Before records held only what changed.
    Copies {
        id: Uuid,
        survivor_before: Box<Lead>,
        absorbed_before: Box<Lead>,
        survivor_after: Box<Lead>,
        merged_at: DateTime<Utc>,
        similarity: Option<f64>,
    },
}

impl From<RecordDoc> for MergeRecord {
    fn from(doc: RecordDoc) -> Self {
        match doc {
            RecordDoc::Changes {
                id,
                survivor,
                survivor_version,
                changes,
                absorbed_before,
                merged_at,
                similarity,
            } => MergeRecord {
                id,
                survivor,
                survivor_version,
                changes,
                absorbed_before: *absorbed_before,
                merged_at,
                similarity,
            },
            RecordDoc::Copies {
                id,
                survivor_before,
                absorbed_before,
                survivor_after,
                merged_at,
                similarity,
            } => {
                // The former records kept the survivor's version from before
                // the merge in both copies.
                let mut record = MergeRecord::new(
                    id,
                    &survivor_before,
                    &survivor_after,
                    *absorbed_before,
                    merged_at,
                );
                record.similarity = similarity;
                record
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::dedup::test_support::lead;

    fn t(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, day, 0, 0, 0)
            .single()
            .expect("valid date")
    }

    #[test]
    fn a_record_holds_only_what_changed() {
        let before = lead("WEB-AAAAAAAA", "a@acme.com", t(1));
        let mut after = before.clone();
        after.fields.company = Some("Acme".into());
        after.fields.metadata.insert("plan".into(), Value::Null);
        after.updated_at = t(2);
        let record = MergeRecord::new(Uuid::nil(), &before, &after, before.clone(), t(2));
        let paths: Vec<String> = record.changes.iter().map(|c| c.path.join(".")).collect();
        assert_eq!(
            paths,
            ["fields.company", "fields.metadata.plan", "updated_at"]
        );
        let (undone, _) = undo(&record, &after).expect("undoes");
        assert_eq!(undone, before);
    }

    #[test]
    fn a_null_metadata_value_comes_back_as_null_through_storage() {
        let mut before = lead("WEB-AAAAAAAA", "a@acme.com", t(1));
        before.fields.metadata.insert("x".into(), Value::Null);
        let mut after = before.clone();
        after.fields.metadata.insert("x".into(), Value::from("y"));
        let record = MergeRecord::new(Uuid::nil(), &before, &after, before.clone(), t(2));
        let stored: MergeRecord =
            serde_json::from_value(serde_json::to_value(&record).expect("serializes"))
                .expect("reads back");
        assert_eq!(stored, record);
        assert_eq!(undo(&stored, &after).expect("undoes").0, before);
    }

    #[test]
    fn a_record_in_the_former_three_copy_format_still_reads_and_undoes() {
        let before = lead("WEB-AAAAAAAA", "a@acme.com", t(1));
        let absorbed = lead("WEB-BBBBBBBB", "b@acme.com", t(1));
        let mut after = before.clone();
        after.fields.first_name = Some("Ana".into());
        let old = serde_json::json!({
            "id": Uuid::nil(),
            "survivor_before": before,
            "absorbed_before": absorbed,
            "survivor_after": after,
            "merged_at": t(2),
            "similarity": 0.97,
        });
        let record: MergeRecord = serde_json::from_value(old).expect("reads");
        assert_eq!(record.similarity, Some(0.97));
        assert_eq!(record.survivor_version, before.version);
        let mut stored = after.clone();
        stored.version += 1;
        assert!(record.can_undo(&stored));
        assert_eq!(undo(&record, &stored).expect("undoes"), (before, absorbed));
    }
}
