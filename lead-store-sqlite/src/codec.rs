//! Turning domain values into columns and back: timestamps as microseconds,
//! enums as their wire names, documents as JSON text.

use lead_core::{Lead, MatchKeys, email_match_key};

pub(crate) use lead_store_sql::codec::{count, from_json, instant, micros, to_json, wire_name};

use crate::error::StoreError;

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
    pub(crate) score: i64,
    pub(crate) assigned_to: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) source_raw: Option<String>,
    pub(crate) search_text: String,
    pub(crate) segments: String,
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
        let search: Vec<String> = lead_core::LeadQuery::searched_text(lead)
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
            score: i64::from(lead.score.value()),
            assigned_to: lead.assigned_to.as_ref().map(|r| r.as_str().to_owned()),
            source: fields.source.as_deref().map(str::to_lowercase),
            source_raw: fields.source.clone(),
            search_text: to_json("search text", &search)?,
            segments: to_json("segments", &lead.segments)?,
            created_at: micros(lead.created_at),
            updated_at: micros(lead.updated_at),
            merged_into: lead.merged_into.as_ref().map(|m| m.as_str().to_owned()),
            version: i64::try_from(lead.version)
                .map_err(|_| StoreError::Corrupt("lead version"))?,
            doc: to_json("lead", lead)?,
        })
    }
}
