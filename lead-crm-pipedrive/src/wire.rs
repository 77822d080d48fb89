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

/// A person (v2).
#[derive(Debug, Deserialize)]
pub(crate) struct Person {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) first_name: Option<String>,
    #[serde(default)]
    pub(crate) last_name: Option<String>,
    #[serde(default)]
    pub(crate) phones: Vec<Channel>,
    #[serde(default)]
    pub(crate) owner_id: Option<u64>,
    #[serde(default)]
    pub(crate) update_time: Option<String>,
}

/// `POST /api/v2/persons`, `PATCH /api/v2/persons/{id}`.
#[derive(Debug, Serialize)]
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
}

/// A created or updated Pipedrive lead: its UUID.
#[derive(Debug, Deserialize)]
pub(crate) struct LeadData {
    pub(crate) id: String,
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
}

fn active() -> bool {
    true
}

/// An activity as listed (v2): its id and note, where our task marker is.
#[derive(Debug, Deserialize)]
pub(crate) struct Activity {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) note: Option<String>,
}
