//! The lead as it is stored, with its history and events.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Email, Phone, Stage};

/// The normalized form data of a lead: what the person told us, cleaned.
///
/// Produced by [`crate::normalize::normalize`]; every `Option` is `None` when
/// the form left the field empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadFields {
    /// Contact e-mail (the only required field).
    pub email: Email,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Phone in E.164.
    pub phone: Option<Phone>,
    /// Company name as written.
    pub company: Option<String>,
    /// Job title.
    pub job_title: Option<String>,
    /// Company web site, as a parsed absolute URL.
    pub website: Option<String>,
    /// Country (ISO code or name, as given).
    pub country: Option<String>,
    /// Industry, lower-cased.
    pub industry: Option<String>,
    /// Number of employees.
    pub company_size: Option<u32>,
    /// Stated budget.
    pub budget: Option<Decimal>,
    /// Stated timeline, free text (`"this quarter"`, `"3 months"`).
    pub timeline: Option<String>,
    /// Where the lead came from (`web`, `google`, `referral`, ...).
    pub source: Option<String>,
    /// Free text from the form.
    pub message: Option<String>,
    /// `utm_source`.
    pub utm_source: Option<String>,
    /// `utm_campaign`.
    pub utm_campaign: Option<String>,
    /// `utm_medium`.
    pub utm_medium: Option<String>,
    /// Landing page URL.
    pub landing_page: Option<String>,
    /// Marketing consent, when the form asked.
    pub consent_marketing: Option<bool>,
    /// The consent wording the person agreed to.
    pub consent_text: Option<String>,
    /// Everything else the form sent, never dropped.
    pub metadata: Map<String, Value>,
    /// Values that could not be read as their field's type (a phone that
    /// is not a number, a URL that does not parse), kept as written: a lead
    /// is never refused, nor a value dropped, for a field that is not its
    /// identity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<FieldWarning>,
}

/// A submitted value that was kept but could not be used as its field
/// (SPEC "The lead": flagged, never dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldWarning {
    /// The lead field (`phone`, `website`, ...).
    pub field: String,
    /// Stable code (`invalid_phone`, `invalid_url`, `too_long`, ...).
    pub code: String,
    /// What is wrong, for people.
    pub message: String,
    /// The value as it was written (trimmed), when it is not in the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl FieldWarning {
    /// A warning that `value` was kept for `field` without being usable.
    pub fn kept(
        field: &str,
        code: &str,
        message: impl Into<String>,
        value: Option<String>,
    ) -> Self {
        Self {
            field: field.to_owned(),
            code: code.to_owned(),
            message: message.into(),
            value,
        }
    }
}

impl LeadFields {
    /// The phone as the lead has it: the valid number, else the value
    /// kept as written beside its warning (`None` when there is neither).
    pub fn phone_text(&self) -> Option<&str> {
        match &self.phone {
            Some(phone) => Some(phone.as_str()),
            None => self
                .warnings
                .iter()
                .find(|w| w.field == "phone")
                .and_then(|w| w.value.as_deref()),
        }
    }

    /// Fields with only an e-mail set.
    pub fn new(email: Email) -> Self {
        Self {
            email,
            first_name: None,
            last_name: None,
            phone: None,
            company: None,
            job_title: None,
            website: None,
            country: None,
            industry: None,
            company_size: None,
            budget: None,
            timeline: None,
            source: None,
            message: None,
            utm_source: None,
            utm_campaign: None,
            utm_medium: None,
            landing_page: None,
            consent_marketing: None,
            consent_text: None,
            metadata: Map::new(),
            warnings: Vec::new(),
        }
    }

    /// `true` when `field` (a lead field name) holds a value.
    pub fn has(&self, field: &str) -> bool {
        match field {
            "email" => true,
            "first_name" => self.first_name.is_some(),
            "last_name" => self.last_name.is_some(),
            "phone" => self.phone.is_some(),
            "company" => self.company.is_some(),
            "job_title" => self.job_title.is_some(),
            "website" => self.website.is_some(),
            "country" => self.country.is_some(),
            "industry" => self.industry.is_some(),
            "company_size" => self.company_size.is_some(),
            "budget" => self.budget.is_some(),
            "timeline" => self.timeline.is_some(),
            "source" => self.source.is_some(),
            "message" => self.message.is_some(),
            "utm_source" => self.utm_source.is_some(),
            "utm_campaign" => self.utm_campaign.is_some(),
            "utm_medium" => self.utm_medium.is_some(),
            "landing_page" => self.landing_page.is_some(),
            "consent_marketing" => self.consent_marketing.is_some(),
            "consent_text" => self.consent_text.is_some(),
            _ => false,
        }
    }

    /// `"First Last"`, or whichever part is known.
    pub fn full_name(&self) -> Option<String> {
        match (&self.first_name, &self.last_name) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (Some(n), None) | (None, Some(n)) => Some(n.clone()),
            (None, None) => None,
        }
    }
}

/// The kinds of behavioral events and their default weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Asked for a demo (20).
    DemoRequest,
    /// Registered for a webinar (15).
    WebinarRegister,
    /// Submitted a form (10).
    FormSubmit,
    /// Viewed the pricing page (8).
    PricingView,
    /// Downloaded content (5).
    Download,
    /// Clicked a link in an e-mail (3).
    EmailClick,
    /// Visited a page (1).
    PageVisit,
}

impl EventKind {
    /// Every kind, heaviest first.
    pub const ALL: [EventKind; 7] = [
        EventKind::DemoRequest,
        EventKind::WebinarRegister,
        EventKind::FormSubmit,
        EventKind::PricingView,
        EventKind::Download,
        EventKind::EmailClick,
        EventKind::PageVisit,
    ];

    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::DemoRequest => "demo_request",
            EventKind::WebinarRegister => "webinar_register",
            EventKind::FormSubmit => "form_submit",
            EventKind::PricingView => "pricing_view",
            EventKind::Download => "download",
            EventKind::EmailClick => "email_click",
            EventKind::PageVisit => "page_visit",
        }
    }

    /// Parses a wire name.
    pub fn parse(raw: &str) -> crate::Result<Self> {
        let wanted = raw.trim().to_ascii_lowercase();
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == wanted)
            .ok_or_else(|| {
                crate::Error::invalid(
                    "event_type",
                    "invalid_event_type",
                    format!("unknown event type `{}`", raw.trim()),
                )
            })
    }
}

/// Something the lead did (visited pricing, asked for a demo, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadEvent {
    /// What happened.
    pub kind: EventKind,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Extra details (page URL, campaign, ...).
    #[serde(default)]
    pub properties: Map<String, Value>,
}

/// Where a change came from; changes from the CRM are never echoed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOrigin {
    /// Made here (API, web form, job).
    #[default]
    Local,
    /// Pulled from or pushed by the CRM.
    Crm,
}

/// One row of a lead's stage history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageChange {
    /// Stage before the change.
    pub from: Stage,
    /// Stage after the change.
    pub to: Stage,
    /// When it changed.
    pub at: DateTime<Utc>,
    /// Notes given with the change.
    pub notes: Option<String>,
    /// Who or what made the change.
    pub origin: ChangeOrigin,
}

/// Which CRM a link points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrmKind {
    /// Salesforce.
    Salesforce,
    /// Pipedrive.
    Pipedrive,
}

impl CrmKind {
    /// The CRM's name as stored and shown (`salesforce`, `pipedrive`).
    pub fn as_str(self) -> &'static str {
        match self {
            CrmKind::Salesforce => "salesforce",
            CrmKind::Pipedrive => "pipedrive",
        }
    }
}

/// A lead's counterpart in a CRM.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CrmLink {
    /// Which CRM.
    pub crm: CrmKind,
    /// Object type (`Lead`, `Contact`, `person`, `lead`, `deal`, ...).
    pub object: String,
    /// The CRM's id.
    pub id: String,
}

/// Metadata key holding e-mail addresses replaced by a merge (array of strings).
pub const ALTERNATE_EMAILS: &str = "alternate_emails";
/// Metadata key holding other replaced values, as an object from field name
/// (or `metadata.<key>`) to an array of values.
pub const ALTERNATE_VALUES: &str = "alternate_values";
/// Metadata key holding the pending changes (array, oldest first).
pub const PENDING_CHANGES: &str = "pending_changes";

/// The metadata keys the server keeps itself (a merge's replaced values,
/// an unverified submission's pending changes): a submission cannot set
/// them.
pub const RESERVED_METADATA_KEYS: [&str; 3] = [ALTERNATE_EMAILS, ALTERNATE_VALUES, PENDING_CHANGES];
