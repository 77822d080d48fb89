//! The stored lead: the model's values together with what scoring and
//! routing concluded about them. It sits above `model`, `scoring` and
//! `routing` (they never need a whole lead), so none of them imports
//! another back.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::{
    CrmLink, LeadEvent, LeadExtId, LeadFields, Priority, RepId, Score, Stage, StageChange,
};
use crate::routing::RoutingExplanation;
use crate::scoring::{BantResult, RuleHit};

/// A stored lead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lead {
    /// Public id.
    pub ext_id: LeadExtId,
    /// Normalized form data.
    pub fields: LeadFields,
    /// Rule score.
    pub score: Score,
    /// Priority derived from the score.
    pub priority: Priority,
    /// Which rules contributed to the score.
    pub score_breakdown: Vec<RuleHit>,
    /// Pipeline stage.
    pub stage: Stage,
    /// The rep working the lead.
    pub assigned_to: Option<RepId>,
    /// Expected deal value.
    pub estimated_value: Option<Decimal>,
    /// ISO 4217 currency of `estimated_value`.
    pub currency: Option<String>,
    /// Win probability for the stage, percent.
    pub probability_pct: u8,
    /// Segment names (`score:premium`, `size:enterprise`, ...).
    pub segments: Vec<String>,
    /// BANT qualification with evidence.
    pub bant: Option<BantResult>,
    /// Behavioral score as of the last event or scoring run.
    pub behavioral_score: Score,
    /// Model score, when an ML model has scored the lead.
    pub ml_score: Option<Score>,
    /// Links to CRM records.
    pub crm_links: Vec<CrmLink>,
    /// When the lead was first captured.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Last stage change.
    pub stage_changed_at: DateTime<Utc>,
    /// Last contact by a rep.
    pub last_contacted_at: Option<DateTime<Utc>>,
    /// Set when this lead was merged into another one.
    pub merged_into: Option<LeadExtId>,
    /// Optimistic-concurrency version, incremented by every committed change.
    pub version: u64,
    /// Stage changes, oldest first.
    pub history: Vec<StageChange>,
    /// Behavioral events, oldest first.
    pub events: Vec<LeadEvent>,
    /// Why the lead went to its rep (the last routing decision).
    pub routing: Option<RoutingExplanation>,
}

impl Lead {
    /// The name a CRM record made from this lead (a Salesforce
    /// Opportunity, a Pipedrive lead) is given: its company, else its
    /// last name, else its e-mail, marked as a web lead.
    pub fn crm_title(&self) -> String {
        let f = &self.fields;
        let who = f
            .company
            .as_deref()
            .or(f.last_name.as_deref())
            .unwrap_or(f.email.as_str());
        format!("{who} (web lead)")
    }

    /// `true` when the lead is still being worked and has not been merged away.
    pub fn is_open(&self) -> bool {
        self.merged_into.is_none() && self.stage.is_open()
    }
}
