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
    /// The last write a CRM's change made (absent on leads no CRM change
    /// was applied to), so that conflicts with the CRM are judged against
    /// the lead's own changes, not against the write that applied the
    /// CRM's previous one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm_applied: Option<CrmApplied>,
}

/// A write that applied a CRM's change to a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrmApplied {
    /// The lead's `updated_at` that write set.
    pub at: DateTime<Utc>,
    /// The lead's last change made here before it.
    pub local_at: DateTime<Utc>,
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

    /// When the lead last changed here (not by a CRM): its `updated_at`,
    /// unless its last write applied a CRM's change, which is then the
    /// time before that write.
    pub fn last_local_change(&self) -> DateTime<Utc> {
        match self.crm_applied {
            Some(crm) if crm.at == self.updated_at => crm.local_at,
            _ => self.updated_at,
        }
    }

    /// When the lead's stage last changed here (not by a CRM): its last
    /// local stage change, else its capture.
    pub fn last_local_stage_change(&self) -> DateTime<Utc> {
        self.history
            .iter()
            .rev()
            .find(|c| c.origin == crate::model::ChangeOrigin::Local)
            .map_or(self.created_at, |c| c.at)
    }

    /// Marks the write this lead is about to get (at `now`) as one that
    /// applies a CRM's change: its last local change stays what it was.
    pub fn applying_crm_change(&mut self, now: DateTime<Utc>) {
        let local_at = self.last_local_change();
        self.updated_at = now;
        self.crm_applied = Some(CrmApplied { at: now, local_at });
    }

    /// `true` when the lead is still being worked and has not been merged away.
    pub fn is_open(&self) -> bool {
        self.merged_into.is_none() && self.stage.is_open()
    }
}
