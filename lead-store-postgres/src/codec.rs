//! Turning domain values into columns and back: timestamps as microseconds,
//! enums as their wire names, documents as JSON text (cast to `json` in SQL).

use lead_core::{Lead, RepId};

pub(crate) use lead_store_sql::codec::{from_json, micros, to_json, wire_name};

use crate::error::StoreError;

/// A size or limit as a `BIGINT` parameter.
pub(crate) fn bigint(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A `leads` row; lists of strings are `text[]`.
pub(crate) type LeadRow = lead_store_sql::codec::LeadRow<Vec<String>>;

/// The row for `lead` (whose `version` is the one to store).
pub(crate) fn lead_row(lead: &Lead) -> Result<LeadRow, StoreError> {
    Ok(LeadRow::of(lead, |_, list| Ok(list))?)
}

/// A rep id from its column.
pub(crate) fn rep_of(id: &str) -> Result<RepId, StoreError> {
    RepId::parse(id).map_err(|_| StoreError::Corrupt("rep id"))
}
