//! What the lead API answers: a documented view of a lead, separate from
//! the storage document, in the original system's field names
//! (`lead_ext_id`, the contact fields at the top level, `success` and
//! `count` on lists), so its clients keep working.
//!
//! The storage document (`lead_core::Lead`) may change shape between
//! versions; this view changes only with the API.

use chrono::{DateTime, Utc};
use lead_core::{FieldWarning, Lead, LeadPage};
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A value kept as written that could not be used as its field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WarningView {
    /// The lead field (`phone`, `website`, ...).
    pub field: String,
    /// Stable code (`invalid_phone`, `invalid_url`, `too_long`, ...).
    pub code: String,
    /// What is wrong, for people.
    pub message: String,
    /// The value as written, when the field does not hold it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl From<&FieldWarning> for WarningView {
    fn from(w: &FieldWarning) -> Self {
        WarningView {
            field: w.field.clone(),
            code: w.code.clone(),
            message: w.message.clone(),
            value: w.value.clone(),
        }
    }
}

/// A lead's record in a CRM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CrmLinkView {
    /// `salesforce` or `pipedrive`.
    pub crm: String,
    /// The CRM object (`Lead`, `person`, `deal`, ...).
    pub object: String,
    /// The CRM's id.
    pub id: String,
}

/// A lead as the lead API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeadView {
    /// Public id (`WEB-7KQ2M9XA`).
    pub lead_ext_id: String,
    /// Contact e-mail, lower-cased.
    pub email: String,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Phone in E.164 (a value that did not parse is in `warnings`).
    pub phone: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Job title.
    pub job_title: Option<String>,
    /// Company web site.
    pub website: Option<String>,
    /// Country, as given.
    pub country: Option<String>,
    /// Industry, lower-cased.
    pub industry: Option<String>,
    /// Employees.
    pub company_size: Option<u32>,
    /// Stated budget.
    pub budget: Option<f64>,
    /// Stated timeline.
    pub timeline: Option<String>,
    /// Where the lead came from.
    pub source: Option<String>,
    /// The form's message.
    pub message: Option<String>,
    /// `utm_source`.
    pub utm_source: Option<String>,
    /// `utm_campaign`.
    pub utm_campaign: Option<String>,
    /// `utm_medium`.
    pub utm_medium: Option<String>,
    /// Landing page URL.
    pub landing_page: Option<String>,
    /// Marketing consent, when asked.
    pub consent_marketing: Option<bool>,
    /// The consent wording agreed to.
    pub consent_text: Option<String>,
    /// Everything else the form sent.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// Rule score, 0-100.
    pub score: u8,
    /// `high`, `medium` or `low`.
    pub priority: String,
    /// Pipeline stage.
    pub stage: String,
    /// The rep's e-mail.
    pub assigned_to: Option<String>,
    /// Expected deal value.
    pub estimated_value: Option<f64>,
    /// ISO 4217 currency of `estimated_value`.
    pub currency: Option<String>,
    /// Win probability of the stage, percent.
    pub probability_pct: u8,
    /// Segment names (`score:premium`, `size:enterprise`, ...).
    pub segments: Vec<String>,
    /// BANT letters met, 0-4.
    pub bant_score: Option<u8>,
    /// Behavioral score, 0-100.
    pub behavioral_score: u8,
    /// Model score, when a model scored the lead.
    pub ml_score: Option<u8>,
    /// The lead's records in CRMs.
    pub crm_links: Vec<CrmLinkView>,
    /// Values kept as written that could not be used.
    pub warnings: Vec<WarningView>,
    /// The lead this one was merged into.
    pub merged_into: Option<String>,
    /// Version for optimistic concurrency (`expected_version`, `If-Match`).
    pub version: u64,
    /// First captured.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Last stage change.
    pub stage_changed_at: DateTime<Utc>,
    /// Last contact by a rep.
    pub last_contacted_at: Option<DateTime<Utc>>,
}

fn money(value: Option<rust_decimal::Decimal>) -> Option<f64> {
    value.and_then(|v| v.to_f64())
}

impl From<&Lead> for LeadView {
    fn from(lead: &Lead) -> Self {
        let f = &lead.fields;
        LeadView {
            lead_ext_id: lead.ext_id.to_string(),
            email: f.email.as_str().to_owned(),
            first_name: f.first_name.clone(),
            last_name: f.last_name.clone(),
            phone: f.phone.as_ref().map(|p| p.as_str().to_owned()),
            company: f.company.clone(),
            job_title: f.job_title.clone(),
            website: f.website.clone(),
            country: f.country.clone(),
            industry: f.industry.clone(),
            company_size: f.company_size,
            budget: money(f.budget),
            timeline: f.timeline.clone(),
            source: f.source.clone(),
            message: f.message.clone(),
            utm_source: f.utm_source.clone(),
            utm_campaign: f.utm_campaign.clone(),
            utm_medium: f.utm_medium.clone(),
            landing_page: f.landing_page.clone(),
            consent_marketing: f.consent_marketing,
            consent_text: f.consent_text.clone(),
            metadata: f.metadata.clone(),
            score: lead.score.value(),
            priority: lead.priority.as_str().to_owned(),
            stage: lead.stage.as_str().to_owned(),
            assigned_to: lead.assigned_to.as_ref().map(|r| r.as_str().to_owned()),
            estimated_value: money(lead.estimated_value),
            currency: lead.currency.clone(),
            probability_pct: lead.probability_pct,
            segments: lead.segments.clone(),
            bant_score: lead.bant.as_ref().map(|b| b.score),
            behavioral_score: lead.behavioral_score.value(),
            ml_score: lead.ml_score.map(|s| s.value()),
            crm_links: lead
                .crm_links
                .iter()
                .map(|l| CrmLinkView {
                    crm: serde_json::to_value(l.crm)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    object: l.object.clone(),
                    id: l.id.clone(),
                })
                .collect(),
            warnings: f.warnings.iter().map(WarningView::from).collect(),
            merged_into: lead.merged_into.as_ref().map(ToString::to_string),
            version: lead.version,
            created_at: lead.created_at,
            updated_at: lead.updated_at,
            stage_changed_at: lead.stage_changed_at,
            last_contacted_at: lead.last_contacted_at,
        }
    }
}

/// One lead with the reasons behind its numbers: the answer of
/// `GET /api/leads/{lead_ext_id}` and of every change to a lead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeadDetail {
    /// The lead.
    #[serde(flatten)]
    pub lead: LeadView,
    /// The rules behind the score (`id`, `group`, `points`).
    #[schema(value_type = Vec<Object>)]
    pub score_breakdown: Vec<Value>,
    /// BANT letters with their evidence.
    #[schema(value_type = Option<Object>)]
    pub bant: Option<Value>,
    /// Why the lead went to its rep (the last routing decision).
    #[schema(value_type = Option<Object>)]
    pub routing: Option<Value>,
    /// Stage changes, oldest first (`from`, `to`, `at`, `notes`, `origin`).
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<Value>,
    /// Behavioral events, oldest first (`kind`, `at`, `properties`).
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
}

fn values<T: Serialize>(items: &[T]) -> Vec<Value> {
    items
        .iter()
        .filter_map(|item| serde_json::to_value(item).ok())
        .collect()
}

impl From<&Lead> for LeadDetail {
    fn from(lead: &Lead) -> Self {
        LeadDetail {
            lead: LeadView::from(lead),
            score_breakdown: values(&lead.score_breakdown),
            bant: lead
                .bant
                .as_ref()
                .and_then(|b| serde_json::to_value(b).ok()),
            routing: lead
                .routing
                .as_ref()
                .and_then(|r| serde_json::to_value(r).ok()),
            history: values(&lead.history),
            events: values(&lead.events),
        }
    }
}

/// A page of leads, in the original system's list shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeadList {
    /// Always `true`.
    pub success: bool,
    /// Leads on this page.
    pub count: usize,
    /// The leads, newest first.
    pub leads: Vec<LeadView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

impl From<LeadPage> for LeadList {
    fn from(page: LeadPage) -> Self {
        LeadList {
            success: true,
            count: page.leads.len(),
            leads: page.leads.iter().map(LeadView::from).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }
    }
}
