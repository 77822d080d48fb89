//! Salesforce's JSON as it travels: the token answer, the error bodies,
//! the save results of sObject Collections, and the records we send
//! (`../shared/crm-specs/CONTRACTS.md` §1).

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// `POST /services/oauth2/token`, 200.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenAnswer {
    pub(crate) access_token: String,
    pub(crate) instance_url: String,
}

/// `POST /services/oauth2/token`, 400.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenRefusal {
    pub(crate) error: String,
    #[serde(default)]
    pub(crate) error_description: Option<String>,
}

/// One error of a REST error body or of a save result. REST bodies name
/// the code `errorCode`, sObject Collections results `statusCode`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub(crate) struct ApiError {
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default, rename = "errorCode", alias = "statusCode")]
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) fields: Vec<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if !self.fields.is_empty() {
            write!(f, " ({})", self.fields.join(", "))?;
        }
        Ok(())
    }
}

/// The errors of a REST error body: an array, or (in some examples of
/// the docs) one bare object; nothing when the body is neither.
pub(crate) fn api_errors(body: &str) -> Vec<ApiError> {
    serde_json::from_str::<Vec<ApiError>>(body)
        .or_else(|_| serde_json::from_str::<ApiError>(body).map(|e| vec![e]))
        .unwrap_or_default()
}

/// One item of an sObject Collections answer, in request order.
#[derive(Debug, Deserialize)]
pub(crate) struct SaveResult {
    #[serde(default)]
    pub(crate) id: Option<String>,
    pub(crate) success: bool,
    #[serde(default)]
    pub(crate) errors: Vec<ApiError>,
}

/// The single-record save answer (`POST /sobjects/X`, upsert `PATCH`).
#[derive(Debug, Deserialize)]
pub(crate) struct SaveAnswer {
    pub(crate) id: String,
}

/// The body of an sObject Collections upsert: never all-or-none, so one
/// bad record fails alone.
pub(crate) fn collection(records: Vec<Map<String, Value>>) -> Value {
    json!({ "allOrNone": false, "records": records })
}

/// One page of a SOQL query (`GET /query?q=…`, then `nextRecordsUrl`).
#[derive(Debug, Deserialize)]
pub(crate) struct QueryPage {
    pub(crate) done: bool,
    #[serde(default, rename = "nextRecordsUrl")]
    pub(crate) next_records_url: Option<String>,
    #[serde(default)]
    pub(crate) records: Vec<Map<String, Value>>,
}
