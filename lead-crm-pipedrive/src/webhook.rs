//! Pipedrive's webhooks (CONTRACTS §2.10): v2 payloads (`meta` + `data` +
//! `previous`) and v1 payloads (`current` / `previous`) read as one
//! [`WebhookEvent`], turned into changes by the same mapping as the pull;
//! and the subscription calls that ask Pipedrive to send them.

use chrono::{DateTime, Utc};
use lead_core::ports::CrmChange;
use lead_core::{Error, LeadInput, Result};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use crate::crm::PipedriveClient;
use crate::pull::Record;
use crate::wire::{Webhook, WebhookBody};

/// The objects whose changes the lead sync reads.
pub const WEBHOOK_OBJECTS: [&str; 3] = ["person", "lead", "deal"];

/// What happened to the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookAction {
    /// Added (v2 `create`, v1 `added`).
    Create,
    /// Changed (v2 `change`, v1 `updated`).
    Change,
    /// Deleted (v2 `delete`, v1 `deleted`); a merge's loser comes so in v2.
    Delete,
    /// Merged into another (v1 `merged`).
    Merge,
}

/// One delivery, read.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    /// The event's id, the same on every retry: v2's `meta.id`; v1 has
    /// none, so its object, record id and `timestamp_micro`.
    pub id: String,
    /// What happened.
    pub action: WebhookAction,
    /// The record's kind (`person`, `deal`, `lead`, `activity`, …).
    pub entity: String,
    /// The record's id.
    pub entity_id: String,
    /// When Pipedrive says it happened.
    pub at: DateTime<Utc>,
    /// Whether an API client (this product among them) made the change,
    /// rather than a person in the app.
    pub from_api: bool,
    /// Which delivery this is (1 for the first).
    pub attempt: u32,
    /// The record's state after the event (none for a delete).
    data: Option<Value>,
}

fn bad(field: &str, message: &str) -> Error {
    Error::invalid(field, "invalid", message)
}

/// A JSON value as text (ids are strings in v2 meta, numbers in v1).
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl WebhookEvent {
    /// Reads a delivery's body; an error names the field that is wrong.
    pub fn parse(body: &[u8]) -> Result<WebhookEvent> {
        let payload: Value =
            serde_json::from_slice(body).map_err(|_| bad("body", "the body is not JSON"))?;
        let meta = payload
            .get("meta")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("meta", "a Pipedrive webhook has a meta object"))?;
        let v1 = payload.get("v").and_then(Value::as_u64) == Some(1)
            || meta.get("v").and_then(Value::as_u64) == Some(1);
        if v1 {
            Self::parse_v1(&payload, meta)
        } else {
            Self::parse_v2(&payload, meta)
        }
    }

    fn parse_v2(payload: &Value, meta: &Map<String, Value>) -> Result<WebhookEvent> {
        let field = |name: &str| meta.get(name).and_then(text);
        let action = match field("action").as_deref() {
            Some("create") => WebhookAction::Create,
            Some("change") => WebhookAction::Change,
            Some("delete") => WebhookAction::Delete,
            _ => return Err(bad("meta.action", "create, change or delete")),
        };
        let at = field("timestamp")
            .as_deref()
            .and_then(crate::wire::time)
            .ok_or_else(|| bad("meta.timestamp", "an RFC 3339 time"))?;
        Ok(WebhookEvent {
            id: field("id").ok_or_else(|| bad("meta.id", "the event's id"))?,
            action,
            entity: field("entity").ok_or_else(|| bad("meta.entity", "the record's kind"))?,
            entity_id: field("entity_id")
                .ok_or_else(|| bad("meta.entity_id", "the record's id"))?,
            at,
            from_api: field("change_source").as_deref() == Some("api"),
            attempt: meta
                .get("attempt")
                .and_then(Value::as_u64)
                .map_or(1, |a| u32::try_from(a).unwrap_or(u32::MAX)),
            data: payload.get("data").filter(|d| d.is_object()).cloned(),
        })
    }

    fn parse_v1(payload: &Value, meta: &Map<String, Value>) -> Result<WebhookEvent> {
        let field = |name: &str| meta.get(name).and_then(text);
        let action = match field("action").as_deref() {
            Some("added") => WebhookAction::Create,
            Some("updated") => WebhookAction::Change,
            Some("deleted") => WebhookAction::Delete,
            Some("merged") => WebhookAction::Merge,
            _ => return Err(bad("meta.action", "added, updated, deleted or merged")),
        };
        let entity = field("object").ok_or_else(|| bad("meta.object", "the record's kind"))?;
        let entity_id = field("id").ok_or_else(|| bad("meta.id", "the record's id"))?;
        let micros = meta
            .get("timestamp_micro")
            .and_then(Value::as_i64)
            .or_else(|| {
                meta.get("timestamp")
                    .and_then(Value::as_i64)
                    .and_then(|s| s.checked_mul(1_000_000))
            })
            .ok_or_else(|| bad("meta.timestamp", "the event's Unix time"))?;
        let at = DateTime::from_timestamp_micros(micros)
            .ok_or_else(|| bad("meta.timestamp", "a time in range"))?;
        // `user` events carry arrays; the records we read carry objects.
        let current = payload.get("current").map(|c| match c {
            Value::Array(items) => items.first().cloned().unwrap_or(Value::Null),
            other => other.clone(),
        });
        Ok(WebhookEvent {
            id: format!("v1:{entity}:{entity_id}:{micros}"),
            action,
            entity,
            entity_id,
            at,
            from_api: field("change_source").as_deref() == Some("api"),
            attempt: payload.get("retry").and_then(Value::as_u64).map_or(1, |r| {
                u32::try_from(r.saturating_add(1)).unwrap_or(u32::MAX)
            }),
            data: current.filter(Value::is_object).map(v1_to_v2),
        })
    }

    /// When the record was added (`add_time`), if the payload says.
    pub fn added_at(&self) -> Option<DateTime<Utc>> {
        let data = self.data.as_ref()?;
        data.get("add_time")?.as_str().and_then(crate::wire::time)
    }

    /// For a person event, the lead the person stands for: its primary
    /// e-mail, name and phone, with source `pipedrive`. `None` for other
    /// records or a person without an e-mail.
    pub fn person_lead(&self) -> Option<LeadInput> {
        if self.entity != "person" {
            return None;
        }
        let data = self.data.as_ref()?;
        let primary = |name: &str| {
            let items = data.get(name)?.as_array()?;
            let item = items
                .iter()
                .find(|i| i.get("primary") == Some(&Value::Bool(true)))
                .or(items.first())?;
            item.get("value")
                .and_then(Value::as_str)
                .or(item.as_str())
                .map(str::to_owned)
        };
        let name = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
        Some(LeadInput {
            email: Some(primary("emails")?),
            first_name: name("first_name"),
            last_name: name("last_name"),
            phone: primary("phones"),
            source: Some("pipedrive".into()),
            ..LeadInput::default()
        })
    }

    /// The record as the pull reads it, for the objects the sync reads.
    fn record(&self) -> Result<Option<Record>> {
        let Some(data) = self.data.clone() else {
            return Ok(None);
        };
        let read = |what: &str, e: serde_json::Error| {
            Error::invalid(
                "data",
                "invalid",
                format!("the {what} is not readable: {e}"),
            )
        };
        Ok(Some(match self.entity.as_str() {
            "person" => {
                Record::Person(serde_json::from_value(data).map_err(|e| read("person", e))?)
            }
            "lead" => Record::Lead(serde_json::from_value(data).map_err(|e| read("lead", e))?),
            "deal" => Record::Deal(serde_json::from_value(data).map_err(|e| read("deal", e))?),
            _ => return Ok(None),
        }))
    }
}

/// A v1 record in v2's field names: `email`/`phone` → `emails`/`phones`,
/// `user_id` → `owner_id`, an owner object → its id.
fn v1_to_v2(record: Value) -> Value {
    let Value::Object(mut fields) = record else {
        return record;
    };
    for (from, to) in [
        ("email", "emails"),
        ("phone", "phones"),
        ("user_id", "owner_id"),
    ] {
        if !fields.contains_key(to)
            && let Some(value) = fields.remove(from)
        {
            fields.insert(to.to_owned(), value);
        }
    }
    if let Some(owner) = fields.get("owner_id").and_then(|o| o.get("id")).cloned() {
        fields.insert("owner_id".into(), owner);
    }
    Value::Object(fields)
}

impl PipedriveClient {
    /// The change an event makes to the lead linked to its record, dated
    /// by the record's `update_time` (else the event's time); `None` for
    /// a delete or an object the sync does not read.
    pub async fn webhook_change(&self, event: &WebhookEvent) -> Result<Option<CrmChange>> {
        if matches!(event.action, WebhookAction::Delete | WebhookAction::Merge) {
            return Ok(None);
        }
        let Some(mut record) = event.record()? else {
            return Ok(None);
        };
        let when = event
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        match &mut record {
            Record::Person(p) => {
                p.update_time.get_or_insert(when);
            }
            Record::Lead(l) => {
                l.update_time.get_or_insert(when);
            }
            Record::Deal(d) => {
                d.update_time.get_or_insert(when);
            }
        }
        Ok(self.change_of(record).await?.map(|(_, change)| change))
    }

    /// The company's webhook subscriptions.
    pub async fn webhooks(&self) -> Result<Vec<(u64, String, String)>> {
        let (list, _): (Vec<Webhook>, _) = self
            .http()
            .call(Method::GET, "/api/v1/webhooks", &[], None)
            .await?;
        Ok(list
            .into_iter()
            .map(|w| (w.id, w.event_object, w.subscription_url))
            .collect())
    }

    /// Subscribes `url` to every change of persons, leads and deals (v2
    /// payloads, basic auth with `user` and `password`), skipping the
    /// objects already subscribed there; answers the new subscriptions'
    /// ids. Pipedrive has no update call: to change the credentials,
    /// delete the subscriptions in Pipedrive first.
    pub async fn subscribe(
        &self,
        url: &str,
        user: &str,
        password: &SecretString,
    ) -> Result<Vec<u64>> {
        let (existing, _): (Vec<Webhook>, _) = self
            .http()
            .call(Method::GET, "/api/v1/webhooks", &[], None)
            .await?;
        let mut made = Vec::new();
        for object in WEBHOOK_OBJECTS {
            if existing.iter().any(|w| {
                w.subscription_url == url
                    && (w.event_object == object || w.event_object == "*")
                    && w.event_action == "*"
            }) {
                continue;
            }
            let body = WebhookBody {
                subscription_url: url.to_owned(),
                event_action: "*".into(),
                event_object: object.into(),
                name: format!("lead-capture {object}"),
                version: "2.0".into(),
                http_auth_user: user.to_owned(),
                http_auth_password: password.expose_secret().to_owned(),
            };
            let body = serde_json::to_value(&body)
                .map_err(|e| Error::internal("Pipedrive: a webhook body").caused_by(e))?;
            let (created, _): (crate::wire::Created, _) = self
                .http()
                .call(Method::POST, "/api/v1/webhooks", &[], Some(&body))
                .await?;
            made.push(created.id);
        }
        Ok(made)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v2_payload_reads_with_its_meta() {
        let body = br#"{"meta":{"action":"change","entity":"person","entity_id":"1092","id":"8b3c","timestamp":"2026-05-15T18:00:00.000Z","change_source":"app","attempt":2,"version":"2.0"},"data":{"id":1092,"name":"Jane Doe","emails":[{"value":"jane@acme.example","primary":true}]},"previous":{"name":"Jane"}}"#;
        let event = WebhookEvent::parse(body).expect("a v2 event");
        assert_eq!(event.id, "8b3c");
        assert_eq!(event.action, WebhookAction::Change);
        assert_eq!(
            (event.entity.as_str(), event.entity_id.as_str()),
            ("person", "1092")
        );
        assert_eq!(event.attempt, 2);
        assert!(!event.from_api);
        let lead = event.person_lead().expect("a person");
        assert_eq!(lead.email.as_deref(), Some("jane@acme.example"));
    }

    #[test]
    fn a_v1_payload_reads_in_v2_names() {
        let body = br#"{"v":1,"meta":{"v":1,"action":"added","object":"person","change_source":"api","id":1092,"timestamp":1523440213,"timestamp_micro":1523440213384700},"retry":1,"current":{"id":1092,"name":"Jane Doe","first_name":"Jane","last_name":"Doe","email":[{"value":"jane@acme.example","primary":true}],"phone":[{"value":"+372 555","primary":true}],"update_time":"2018-04-11 09:50:13"},"previous":null,"event":"added.person"}"#;
        let event = WebhookEvent::parse(body).expect("a v1 event");
        assert_eq!(event.id, "v1:person:1092:1523440213384700");
        assert_eq!(event.attempt, 2);
        assert!(event.from_api);
        assert_eq!(event.action, WebhookAction::Create);
        let lead = event.person_lead().expect("a person");
        assert_eq!(lead.email.as_deref(), Some("jane@acme.example"));
        assert_eq!(lead.phone.as_deref(), Some("+372 555"));
        assert_eq!(lead.first_name.as_deref(), Some("Jane"));
    }

    #[test]
    fn a_bad_payload_names_the_field() {
        let missing = WebhookEvent::parse(br#"{"meta":{"action":"change","entity":"person","entity_id":"1","timestamp":"2026-05-15T18:00:00Z"}}"#);
        assert!(
            matches!(&missing, Err(Error::Invalid { fields }) if fields[0].field == "meta.id"),
            "{missing:?}"
        );
        assert!(WebhookEvent::parse(b"<xml/>").is_err());
        assert!(WebhookEvent::parse(br#"{"meta":{"action":"explode"}}"#).is_err());
    }

    #[test]
    fn a_v1_seconds_timestamp_out_of_range_is_refused_not_a_panic() {
        let body = br#"{"v":1,"meta":{"v":1,"action":"updated","object":"person","id":1,"timestamp":9223372036854775}}"#;
        let read = std::panic::catch_unwind(|| WebhookEvent::parse(body).is_err());
        assert!(matches!(read, Ok(true)), "panicked or accepted");
    }

    #[test]
    fn a_v1_retry_of_u64_max_is_not_a_panic() {
        let body = br#"{"v":1,"retry":18446744073709551615,"meta":{"v":1,"action":"updated","object":"person","id":1,"timestamp":1523440213}}"#;
        let read = std::panic::catch_unwind(|| WebhookEvent::parse(body).map(|e| e.attempt));
        assert!(read.is_ok(), "panicked");
    }
}
