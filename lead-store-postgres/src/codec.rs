//! Turning domain values into columns and back: timestamps as microseconds,
//! enums as their wire names, documents as JSON text (cast to `json` in SQL).

use lead_core::{Lead, MatchKeys, RepId, email_match_key};

pub(crate) use lead_store_sql::codec::{count, from_json, instant, micros, to_json, wire_name};

use crate::error::StoreError;

/// A size or limit as a `BIGINT` parameter.
pub(crate) fn bigint(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The columns of `leads` that SQL filters, orders or aggregates on, all
/// derived from the lead itself, plus the lead as a document.
#[derive(Debug)]
pub(crate) struct LeadRow {
    pub(crate) ext_id: String,
    pub(crate) email: String,
    pub(crate) email_key: String,
    pub(crate) company_key: Option<String>,
    pub(crate) corporate_domain: Option<String>,
    pub(crate) stage: &'static str,
    pub(crate) priority: &'static str,
    pub(crate) score: i32,
    pub(crate) assigned_to: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) source_raw: Option<String>,
    pub(crate) search_text: Vec<String>,
    pub(crate) segments: Vec<String>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) merged_into: Option<String>,
    pub(crate) version: i64,
    pub(crate) doc: String,
}

impl LeadRow {
    /// The row for `lead` (whose `version` is the one to store).
    pub(crate) fn of(lead: &Lead) -> Result<Self, StoreError> {
        let fields = &lead.fields;
        let keys = MatchKeys::of(fields);
        // Lower-cased here, not by PostgreSQL's lower(), so the filter
        // means exactly what `LeadQuery::matches` means.
        let search_text: Vec<String> = lead_core::LeadQuery::searched_text(lead)
            .map(str::to_lowercase)
            .collect();
        Ok(LeadRow {
            ext_id: lead.ext_id.as_str().to_owned(),
            email: fields.email.as_str().to_owned(),
            email_key: email_match_key(&fields.email),
            company_key: keys.company_key(),
            corporate_domain: keys.corporate_domain().map(str::to_owned),
            stage: lead.stage.as_str(),
            priority: lead.priority.as_str(),
            score: i32::from(lead.score.value()),
            assigned_to: lead.assigned_to.as_ref().map(|r| r.as_str().to_owned()),
            source: fields.source.as_deref().map(str::to_lowercase),
            source_raw: fields.source.clone(),
            search_text,
            segments: lead.segments.clone(),
            created_at: micros(lead.created_at),
            updated_at: micros(lead.updated_at),
            merged_into: lead.merged_into.as_ref().map(|m| m.as_str().to_owned()),
            version: i64::try_from(lead.version)
                .map_err(|_| StoreError::Corrupt("lead version"))?,
            doc: to_json("lead", lead)?,
        })
    }
}

/// A lead from its stored document.
pub(crate) fn lead_of(doc: &str) -> Result<Lead, StoreError> {
    Ok(from_json("stored lead", doc)?)
}

/// A rep id from its column.
pub(crate) fn rep_of(id: &str) -> Result<RepId, StoreError> {
    RepId::parse(id).map_err(|_| StoreError::Corrupt("rep id"))
}
