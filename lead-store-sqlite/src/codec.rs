//! Turning domain values into columns and back: timestamps as microseconds,
//! enums as their wire names, documents as JSON text.

use lead_core::Lead;

pub(crate) use lead_store_sql::codec::{from_json, micros, to_json, wire_name};

use crate::error::StoreError;

/// A `leads` row; lists of strings are JSON text.
pub(crate) type LeadRow = lead_store_sql::codec::LeadRow<String>;

/// The row for `lead` (whose `version` is the one to store).
pub(crate) fn lead_row(lead: &Lead) -> Result<LeadRow, StoreError> {
    Ok(LeadRow::of(lead, |what, list| to_json(what, &list))?)
}
