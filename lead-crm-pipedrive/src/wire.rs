//! Pipedrive's JSON as it travels (`../shared/crm-specs/CONTRACTS.md` §2):
//! the envelope, persons (v2), leads (v1), activities (v2), users (v1),
//! typed so a field that changes shape fails here, not deep in the sync.

use serde::{Deserialize, Serialize};

/// `{"success": …, "data": …, "additional_data": …}`, and the error
/// fields when `success` is false.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope<T> {
    #[serde(default = "none")]
    pub(crate) data: Option<T>,
    #[serde(default)]
    pub(crate) additional_data: Option<AdditionalData>,
}

fn none<T>() -> Option<T> {
    None
}

/// An error answer: `error` (and `error_info`), or v1 validation
/// `errors`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) error: Option<String>,
    #[serde(default)]
    pub(crate) error_info: Option<String>,
    #[serde(default)]
    pub(crate) code: Option<String>,
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.error.as_deref().unwrap_or("no reason given"))?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        if let Some(info) = &self.error_info {
            write!(f, ": {info}")?;
        }
        Ok(())
    }
}

/// Paging: v2's cursor, v1's start/limit.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AdditionalData {
    #[serde(default)]
    pub(crate) next_cursor: Option<String>,
    #[serde(default)]
    pub(crate) pagination: Option<Pagination>,
}

/// v1's `additional_data.pagination`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Pagination {
    #[serde(default)]
    pub(crate) more_items_in_collection: bool,
    #[serde(default)]
    pub(crate) next_start: Option<u64>,
}

impl AdditionalData {
    /// Where the next v1 page starts, if there is one.
    pub(crate) fn next_start(&self) -> Option<u64> {
        self.pagination
            .as_ref()
            .filter(|p| p.more_items_in_collection)
            .and_then(|p| p.next_start)
    }
}

/// `GET /api/v2/persons/search`'s data.
#[derive(Debug, Deserialize)]
pub(crate) struct SearchResult {
    #[serde(default)]
    pub(crate) items: Vec<SearchItem>,
}

/// One search hit.
#[derive(Debug, Deserialize)]
pub(crate) struct SearchItem {
    pub(crate) item: PersonHit,
}

/// A person as search shows it: e-mails are plain strings there.
#[derive(Debug, Deserialize)]
pub(crate) struct PersonHit {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) emails: Vec<String>,
}

/// An e-mail or phone of a person (v2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Channel {
    pub(crate) value: String,
    #[serde(default)]
    pub(crate) primary: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) label: Option<String>,
}

impl Channel {
    pub(crate) fn primary(value: &str, label: &str) -> Self {
        Channel {
            value: value.to_owned(),
            primary: true,
            label: Some(label.to_owned()),
        }
    }
}

/// A person (v2), as read, listed and sent in webhooks.
#[derive(Debug, Deserialize)]
pub(crate) struct Person {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) emails: Vec<Channel>,
    #[serde(default)]
    pub(crate) first_name: Option<String>,
    #[serde(default)]
    pub(crate) last_name: Option<String>,
    #[serde(default)]
    pub(crate) phones: Vec<Channel>,
    #[serde(default)]
    pub(crate) update_time: Option<String>,
}

/// `POST /api/v2/persons`, `PATCH /api/v2/persons/{id}`.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct PersonBody {
    pub(crate) name: String,
    pub(crate) emails: Vec<Channel>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) phones: Vec<Channel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) owner_id: Option<u64>,
}

/// A money value of a Pipedrive lead: both parts or none.
#[derive(Debug, Serialize)]
pub(crate) struct Money {
    pub(crate) amount: f64,
    pub(crate) currency: String,
}

/// `POST /api/v1/leads`, `PATCH /api/v1/leads/{id}`.
#[derive(Debug, Serialize)]
pub(crate) struct LeadBody {
    pub(crate) title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) person_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) owner_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) value: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) origin_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) is_archived: Option<bool>,
}

/// A Pipedrive lead (v1) as created, listed and sent in webhooks.
#[derive(Debug, Deserialize)]
pub(crate) struct LeadData {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) owner_id: Option<u64>,
    #[serde(default)]
    pub(crate) origin_id: Option<String>,
    #[serde(default)]
    pub(crate) is_archived: bool,
    #[serde(default)]
    pub(crate) update_time: Option<String>,
}

/// A deal (v2) as listed and sent in webhooks.
#[derive(Debug, Deserialize)]
pub(crate) struct Deal {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) owner_id: Option<u64>,
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) stage_id: Option<u64>,
    #[serde(default)]
    pub(crate) update_time: Option<String>,
}

/// `PATCH /api/v2/deals/{id}`: what our lead says of its deal.
#[derive(Debug, Serialize)]
pub(crate) struct DealPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) owner_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stage_id: Option<u64>,
}

/// `POST /api/v2/leads/{id}/convert/deal`'s body.
#[derive(Debug, Serialize)]
pub(crate) struct ConvertBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stage_id: Option<u64>,
}

/// A started conversion.
#[derive(Debug, Deserialize)]
pub(crate) struct Conversion {
    pub(crate) conversion_id: String,
}

/// A conversion's state: `not_started`, `running`, `completed`, `failed`
/// or `rejected`, and the deal once completed.
#[derive(Debug, Deserialize)]
pub(crate) struct ConversionStatus {
    #[serde(default)]
    pub(crate) deal_id: Option<u64>,
    pub(crate) status: String,
}

/// `POST /api/v1/notes`, `PUT /api/v1/notes/{id}`.
#[derive(Debug, Serialize)]
pub(crate) struct NoteBody {
    pub(crate) content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lead_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) deal_id: Option<u64>,
}

/// A note (v1) as listed.
#[derive(Debug, Deserialize)]
pub(crate) struct Note {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) content: String,
}

/// `POST /api/v1/webhooks`. No `Debug`: it holds the password.
#[derive(Serialize)]
pub(crate) struct WebhookBody {
    pub(crate) subscription_url: String,
    pub(crate) event_action: String,
    pub(crate) event_object: String,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) http_auth_user: String,
    pub(crate) http_auth_password: String,
}

/// A webhook subscription (v1).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Webhook {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) subscription_url: String,
    #[serde(default)]
    pub(crate) event_object: String,
    #[serde(default)]
    pub(crate) event_action: String,
}

/// A created record with a numeric id (person, activity, deal).
#[derive(Debug, Deserialize)]
pub(crate) struct Created {
    pub(crate) id: u64,
}

/// A participant of an activity (v2 sets the person this way).
#[derive(Debug, Serialize)]
pub(crate) struct Participant {
    pub(crate) person_id: u64,
    pub(crate) primary: bool,
}

/// `POST /api/v2/activities`.
#[derive(Debug, Serialize)]
pub(crate) struct ActivityBody {
    pub(crate) subject: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) owner_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lead_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) deal_id: Option<u64>,
    pub(crate) participants: Vec<Participant>,
    pub(crate) due_date: String,
    pub(crate) due_time: String,
    pub(crate) done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
}

/// A user (v1), for owner mapping.
#[derive(Debug, Deserialize)]
pub(crate) struct User {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) email: String,
    #[serde(default = "active")]
    pub(crate) active_flag: bool,
    /// The token's own user.
    #[serde(default)]
    pub(crate) is_you: bool,
}

fn active() -> bool {
    true
}

/// A record's id and last change, by which pulls and webhooks order it:
/// by time, then by id (numerically when both are numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) at: chrono::DateTime<chrono::Utc>,
    pub(crate) id: String,
}

impl Stamp {
    fn key(&self) -> (chrono::DateTime<chrono::Utc>, Option<u64>, &str) {
        (self.at, self.id.parse().ok(), &self.id)
    }
}

impl Ord for Stamp {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Stamp {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Reads `update_time` in either of Pipedrive's shapes: RFC 3339 (v2,
/// v1 leads) or v1's `YYYY-MM-DD HH:MM:SS` in UTC.
pub(crate) fn time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
                .ok()
                .map(|t| t.and_utc())
        })
}

fn stamp(id: String, update_time: Option<&str>, what: &str) -> Result<Stamp, lead_core::Error> {
    let at = update_time.and_then(time).ok_or_else(|| {
        lead_core::Error::internal(format!(
            "Pipedrive: a {what} without a readable update_time"
        ))
    })?;
    Ok(Stamp { at, id })
}

impl TryFrom<&Person> for Stamp {
    type Error = lead_core::Error;
    fn try_from(p: &Person) -> Result<Stamp, Self::Error> {
        stamp(p.id.to_string(), p.update_time.as_deref(), "person")
    }
}

impl TryFrom<&LeadData> for Stamp {
    type Error = lead_core::Error;
    fn try_from(l: &LeadData) -> Result<Stamp, Self::Error> {
        stamp(l.id.clone(), l.update_time.as_deref(), "lead")
    }
}

impl TryFrom<&Deal> for Stamp {
    type Error = lead_core::Error;
    fn try_from(d: &Deal) -> Result<Stamp, Self::Error> {
        stamp(d.id.to_string(), d.update_time.as_deref(), "deal")
    }
}

/// An activity as listed (v2): its id and note, where our task marker is.
#[derive(Debug, Deserialize)]
pub(crate) struct Activity {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) note: Option<String>,
}
