//! The enrichment port: data about a lead from outside sources.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::LeadFields;

/// What an enrichment provider found.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Enrichment {
    /// Fields it could fill (only empty fields are filled from here).
    pub company: Option<String>,
    /// Industry.
    pub industry: Option<String>,
    /// Employees.
    pub company_size: Option<u32>,
    /// Country.
    pub country: Option<String>,
    /// Anything else, merged into metadata under `enrichment`.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Provider name, for the record.
    pub provider: String,
}

/// Adds data about a lead from outside sources.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait Enricher: Send + Sync {
    /// Looks the lead up; `Ok(None)` when the provider knows nothing.
    async fn enrich(&self, fields: &LeadFields) -> Result<Option<Enrichment>>;
}
