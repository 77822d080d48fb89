//! [`CrmClient`] for Pipedrive: each lead becomes a person (found by
//! e-mail first, so the company never gets a twin) and a Pipedrive lead on
//! it; follow-ups become activities; the pull reads changed persons.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lead_core::ports::{CrmChange, CrmChanges, PushOutcome, TaskPush};
use lead_core::{CrmClient, CrmKind, CrmLink, Error, FollowUpStatus, Lead, RepId, Result};
use reqwest::Method;
use serde_json::Value;

use crate::client::Http;
use crate::config::PipedriveConfig;
use crate::wire::{
    ActivityBody, Channel, Created, LeadBody, LeadData, Money, Participant, Person, PersonBody,
    SearchResult, User,
};

/// How long the user list is trusted.
const USERS_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// A Pipedrive company as a CRM.
pub struct PipedriveClient {
    http: Http,
    /// Active users: lower-cased e-mail → id, and back; with when read.
    users: tokio::sync::Mutex<Option<Users>>,
}

struct Users {
    by_email: HashMap<String, u64>,
    by_id: HashMap<u64, String>,
    read_at: std::time::Instant,
}

impl std::fmt::Debug for PipedriveClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipedriveClient")
            .field("base_url", &self.http.config().base_url)
            .finish_non_exhaustive()
    }
}

/// Our link to a Pipedrive record of `object`.
fn link(object: &str, id: impl ToString) -> CrmLink {
    CrmLink {
        crm: CrmKind::Pipedrive,
        object: object.into(),
        id: id.to_string(),
    }
}

/// The id of `lead`'s Pipedrive record of `object`, once pushed.
fn linked<'a>(lead: &'a Lead, object: &str) -> Option<&'a str> {
    lead.crm_links
        .iter()
        .find(|l| l.crm == CrmKind::Pipedrive && l.object == object)
        .map(|l| l.id.as_str())
}

impl PipedriveClient {
    /// A client for the company `config` names.
    pub fn new(config: PipedriveConfig) -> Result<Self> {
        Ok(PipedriveClient {
            http: Http::new(config)?,
            users: tokio::sync::Mutex::new(None),
        })
    }

    /// The users, read again when missing or older than [`USERS_TTL`].
    async fn users(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Users>>> {
        let mut users = self.users.lock().await;
        if users
            .as_ref()
            .is_none_or(|u| u.read_at.elapsed() >= USERS_TTL)
        {
            let (list, _): (Vec<User>, _) = self
                .http
                .call(Method::GET, "/api/v1/users", &[], None)
                .await?;
            let active = list.into_iter().filter(|u| u.active_flag);
            let mut by_email = HashMap::new();
            let mut by_id = HashMap::new();
            for user in active {
                by_email.insert(user.email.to_ascii_lowercase(), user.id);
                by_id.insert(user.id, user.email.to_ascii_lowercase());
            }
            *users = Some(Users {
                by_email,
                by_id,
                read_at: std::time::Instant::now(),
            });
        }
        Ok(users)
    }

    /// The Pipedrive user of `rep`, if one has the rep's e-mail; no call
    /// without a rep.
    async fn owner_id(&self, rep: Option<&RepId>) -> Result<Option<u64>> {
        let Some(rep) = rep else { return Ok(None) };
        let users = self.users().await?;
        Ok(users
            .as_ref()
            .and_then(|u| u.by_email.get(&rep.as_str().to_ascii_lowercase()).copied()))
    }

    /// The person of `lead`: linked already, else found by e-mail, else
    /// created; updated with the lead's name, e-mail, phone and owner when
    /// it existed.
    async fn person(&self, lead: &Lead, owner: Option<u64>) -> Result<u64> {
        let f = &lead.fields;
        let name = match (&f.first_name, &f.last_name) {
            (Some(first), Some(last)) => format!("{first} {last}"),
            (Some(one), None) | (None, Some(one)) => one.clone(),
            (None, None) => f.email.as_str().to_owned(),
        };
        let body = PersonBody {
            name,
            emails: vec![Channel::primary(f.email.as_str(), "work")],
            phones: f
                .phone
                .as_ref()
                .map(|p| vec![Channel::primary(p.as_str(), "work")])
                .unwrap_or_default(),
            owner_id: owner,
        };
        let body = serde_json::to_value(&body)
            .map_err(|e| Error::internal("Pipedrive: a person body").caused_by(e))?;
        let known = match linked(lead, "person").and_then(|id| id.parse::<u64>().ok()) {
            Some(id) => Some(id),
            None => self.find_person(f.email.as_str()).await?,
        };
        match known {
            Some(id) => {
                let path = format!("/api/v2/persons/{id}");
                let _: (Value, _) = self
                    .http
                    .call(Method::PATCH, &path, &[], Some(&body))
                    .await?;
                Ok(id)
            }
            None => {
                let (created, _): (Created, _) = self
                    .http
                    .call(Method::POST, "/api/v2/persons", &[], Some(&body))
                    .await?;
                Ok(created.id)
            }
        }
    }

    /// The person whose e-mail is exactly `email`, if any.
    async fn find_person(&self, email: &str) -> Result<Option<u64>> {
        let query = [
            ("term", email.to_owned()),
            ("fields", "email".to_owned()),
            ("exact_match", "true".to_owned()),
            ("limit", "10".to_owned()),
        ];
        let (found, _): (SearchResult, _) = self
            .http
            .call(Method::GET, "/api/v2/persons/search", &query, None)
            .await?;
        Ok(found
            .items
            .into_iter()
            .find(|hit| {
                hit.item
                    .emails
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(email))
            })
            .map(|hit| hit.item.id))
    }

    /// The activities of the Pipedrive lead `lead_id` that carry a task
    /// marker, by marker (one page of 500: a lead has a few).
    async fn activities_of(&self, lead_id: &str) -> Result<HashMap<String, u64>> {
        let query = [("lead_id", lead_id.to_owned()), ("limit", "500".to_owned())];
        let (activities, _): (Vec<crate::wire::Activity>, _) = self
            .http
            .call(Method::GET, "/api/v2/activities", &query, None)
            .await?;
        Ok(activities
            .into_iter()
            .filter_map(|a| {
                let note = a.note?;
                let at = note.find("lead-capture task ")?;
                let marker: String = note[at..]
                    .chars()
                    .take("lead-capture task ".len() + 32)
                    .collect();
                Some((marker, a.id))
            })
            .collect())
    }

    /// The Pipedrive lead of `lead` on `person`: created, or updated when
    /// linked.
    async fn pipedrive_lead(&self, lead: &Lead, person: u64, owner: Option<u64>) -> Result<String> {
        let f = &lead.fields;
        let who = f
            .company
            .clone()
            .or_else(|| f.last_name.clone())
            .unwrap_or_else(|| f.email.as_str().to_owned());
        let value = match (&lead.estimated_value, &lead.currency) {
            (Some(amount), Some(currency)) => Some(Money {
                amount: amount.to_string().parse().unwrap_or_default(),
                currency: currency.clone(),
            }),
            _ => None,
        };
        let body = LeadBody {
            title: format!("{who} (web lead)"),
            person_id: Some(person),
            owner_id: owner,
            value,
            origin_id: linked(lead, "lead")
                .is_none()
                .then(|| self.http.config().origin_id.clone()),
        };
        let body = serde_json::to_value(&body)
            .map_err(|e| Error::internal("Pipedrive: a lead body").caused_by(e))?;
        let (data, _): (LeadData, _) = match linked(lead, "lead") {
            Some(id) => {
                let path = format!("/api/v1/leads/{id}");
                self.http
                    .call(Method::PATCH, &path, &[], Some(&body))
                    .await?
            }
            None => {
                self.http
                    .call(Method::POST, "/api/v1/leads", &[], Some(&body))
                    .await?
            }
        };
        Ok(data.id)
    }

    async fn push_one(&self, lead: &Lead) -> Result<Vec<CrmLink>> {
        let owner = self.owner_id(lead.assigned_to.as_ref()).await?;
        let person = self.person(lead, owner).await?;
        let pipedrive_lead = self.pipedrive_lead(lead, person, owner).await?;
        Ok(vec![link("person", person), link("lead", pipedrive_lead)])
    }
}

/// The line an activity's note carries to tie it to our follow-up task:
/// Pipedrive has no external-id field to upsert activities by.
fn task_marker(task: &uuid::Uuid) -> String {
    format!("lead-capture task {}", task.simple())
}

/// Records one record's result among `total`: its outcome, or a refusal
/// when the record alone is at fault. A failure of the CRM as a whole
/// stops there (`Ok(false)`): the rest are marked to retry, or, when
/// nothing went yet, the error (and its Retry-After) stands for the whole
/// call.
fn record(
    sent: Result<PushOutcome>,
    outcomes: &mut Vec<PushOutcome>,
    total: usize,
) -> Result<bool> {
    let err = match sent {
        Ok(outcome) => {
            outcomes.push(outcome);
            return Ok(true);
        }
        Err(err) => err,
    };
    match outcome_of(err) {
        Ok(refused) => {
            outcomes.push(refused);
            Ok(true)
        }
        Err(err) if outcomes.is_empty() => Err(err),
        Err(err) => {
            let why = err.to_string();
            let left = total - outcomes.len();
            outcomes.extend(std::iter::repeat_with(|| PushOutcome::Retry(why.clone())).take(left));
            Ok(false)
        }
    }
}

/// A failure as the outcome of one record, when the record alone is at
/// fault; `None` when the CRM as a whole is (the caller stops there).
fn outcome_of(err: Error) -> std::result::Result<PushOutcome, Error> {
    match err {
        Error::NotAllowed(why) | Error::NotFound(why) => Ok(PushOutcome::Rejected(why)),
        other => Err(other),
    }
}

#[async_trait]
impl CrmClient for PipedriveClient {
    fn kind(&self) -> CrmKind {
        CrmKind::Pipedrive
    }

    async fn push_leads(&self, leads: &[Lead]) -> Result<Vec<PushOutcome>> {
        let mut outcomes = Vec::with_capacity(leads.len());
        for lead in leads {
            let sent = self.push_one(lead).await.map(PushOutcome::Synced);
            if !record(sent, &mut outcomes, leads.len())? {
                break;
            }
        }
        Ok(outcomes)
    }

    async fn push_tasks(&self, tasks: &[TaskPush]) -> Result<Vec<PushOutcome>> {
        let mut outcomes = Vec::with_capacity(tasks.len());
        // Activities already made for each Pipedrive lead, read once per
        // lead: a task sent again (after a crash before its
        // acknowledgement) updates its activity instead of adding a twin.
        let mut existing: HashMap<String, HashMap<String, u64>> = HashMap::new();
        for push in tasks {
            let person = linked(&push.lead, "person").and_then(|id| id.parse::<u64>().ok());
            let (Some(person), Some(pd_lead)) = (person, linked(&push.lead, "lead")) else {
                outcomes.push(PushOutcome::Retry(format!(
                    "lead {} is not in Pipedrive yet",
                    push.lead.ext_id
                )));
                continue;
            };
            let sent = async {
                if !existing.contains_key(pd_lead) {
                    let made = self.activities_of(pd_lead).await?;
                    existing.insert(pd_lead.to_owned(), made);
                }
                let marker = task_marker(&push.task.id);
                let known = existing.get(pd_lead).and_then(|m| m.get(&marker)).copied();
                let owner = self.owner_id(push.task.assigned_to.as_ref()).await?;
                let note = match &push.task.notes {
                    Some(notes) => format!("{notes}\n\n{marker}"),
                    None => marker.clone(),
                };
                let body = ActivityBody {
                    subject: push.task.subject.clone(),
                    kind: "call".into(),
                    owner_id: owner,
                    lead_id: Some(pd_lead.to_owned()),
                    participants: vec![Participant {
                        person_id: person,
                        primary: true,
                    }],
                    due_date: push.task.due_at.format("%Y-%m-%d").to_string(),
                    due_time: push.task.due_at.format("%H:%M").to_string(),
                    done: push.task.status == FollowUpStatus::Done,
                    note: Some(note),
                };
                let body = serde_json::to_value(&body)
                    .map_err(|e| Error::internal("Pipedrive: an activity body").caused_by(e))?;
                let (created, _): (Created, _) = match known {
                    Some(id) => {
                        let path = format!("/api/v2/activities/{id}");
                        self.http
                            .call(Method::PATCH, &path, &[], Some(&body))
                            .await?
                    }
                    None => {
                        self.http
                            .call(Method::POST, "/api/v2/activities", &[], Some(&body))
                            .await?
                    }
                };
                if let Some(made) = existing.get_mut(pd_lead) {
                    made.insert(marker, created.id);
                }
                Ok::<_, Error>(created.id)
            };
            let sent = sent
                .await
                .map(|id| PushOutcome::Synced(vec![link("activity", id)]));
            if !record(sent, &mut outcomes, tasks.len())? {
                break;
            }
        }
        Ok(outcomes)
    }

    async fn check(&self) -> Result<()> {
        let _: (Value, _) = self
            .http
            .call(Method::GET, "/api/v1/users/me", &[], None)
            .await?;
        Ok(())
    }

    async fn pull_changes(&self, watermark: Option<String>, limit: usize) -> Result<CrmChanges> {
        let limit = limit.clamp(1, 500);
        let after = watermark.as_deref().map(Watermark::parse).transpose()?;
        let mut query = vec![
            ("sort_by", "update_time".to_owned()),
            ("sort_direction", "asc".to_owned()),
            ("limit", limit.to_string()),
        ];
        if let Some(w) = &after {
            query.push((
                "updated_since",
                w.at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ));
        }
        let mut changes = Vec::new();
        let mut cursor: Option<String> = None;
        'pages: loop {
            let mut page_query = query.clone();
            if let Some(c) = &cursor {
                page_query.push(("cursor", c.clone()));
            }
            let (persons, more): (Vec<Person>, _) = self
                .http
                .call(Method::GET, "/api/v2/persons", &page_query, None)
                .await?;
            for person in persons {
                let change = self.change_of(&person).await?;
                if after.as_ref().is_some_and(|w| !w.before(&change)) {
                    continue;
                }
                changes.push(change);
                if changes.len() == limit {
                    break 'pages;
                }
            }
            match more.and_then(|m| m.next_cursor) {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let next_watermark = changes
            .last()
            .map(|c| Watermark::of(c).to_string())
            .or(watermark);
        Ok(CrmChanges {
            changes,
            next_watermark,
        })
    }
}

impl PipedriveClient {
    /// A changed person as a change of the lead linked to it: its owner
    /// (the rep whose user it is) and its contact fields.
    async fn change_of(&self, person: &Person) -> Result<CrmChange> {
        let changed_at = person
            .update_time
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.to_utc())
            .ok_or_else(|| Error::internal("Pipedrive: a person without update_time"))?;
        let owner = match person.owner_id {
            Some(id) => {
                let users = self.users().await?;
                users
                    .as_ref()
                    .and_then(|u| u.by_id.get(&id))
                    .and_then(|email| RepId::parse(email).ok())
            }
            None => None,
        };
        let mut contact = std::collections::BTreeMap::new();
        let mut put = |ours: &str, value: Option<&str>| {
            if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
                contact.insert(ours.to_owned(), v.to_owned());
            }
        };
        put("first_name", person.first_name.as_deref());
        put("last_name", person.last_name.as_deref());
        let phone = person
            .phones
            .iter()
            .find(|p| p.primary)
            .or(person.phones.first());
        put("phone", phone.map(|p| p.value.as_str()));
        Ok(CrmChange {
            link: link("person", person.id),
            lead: None,
            stage: None,
            owner,
            contact,
            changed_at,
        })
    }
}

/// Where a pull got to: the last person's `update_time` and id,
/// `2026-11-23T12:00:05Z|1092`; a later run starts at that second and
/// skips what it read.
struct Watermark {
    at: DateTime<Utc>,
    id: u64,
}

impl Watermark {
    fn of(change: &CrmChange) -> Watermark {
        Watermark {
            at: change.changed_at,
            id: change.link.id.parse().unwrap_or_default(),
        }
    }

    fn parse(text: &str) -> Result<Watermark> {
        let (at, id) = text.split_once('|').unwrap_or((text, "0"));
        let at = DateTime::parse_from_rfc3339(at)
            .map_err(|e| {
                Error::internal("Pipedrive: the stored watermark is not a time").caused_by(e)
            })?
            .to_utc();
        Ok(Watermark {
            at,
            id: id.parse().unwrap_or_default(),
        })
    }

    fn before(&self, change: &CrmChange) -> bool {
        let id: u64 = change.link.id.parse().unwrap_or_default();
        (change.changed_at, id) > (self.at, self.id)
    }
}

impl std::fmt::Display for Watermark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}|{}", self.at.format("%Y-%m-%dT%H:%M:%SZ"), self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_reads_back_and_orders_by_time_then_id() {
        let w = Watermark::parse("2026-11-23T12:00:05Z|1092").expect("a watermark");
        let change = |at: &str, id: u64| CrmChange {
            link: link("person", id),
            lead: None,
            stage: None,
            owner: None,
            contact: Default::default(),
            changed_at: DateTime::parse_from_rfc3339(at).expect("time").to_utc(),
        };
        assert!(!w.before(&change("2026-11-23T12:00:05Z", 1092)), "itself");
        assert!(
            w.before(&change("2026-11-23T12:00:05Z", 1093)),
            "same second, later id"
        );
        assert!(w.before(&change("2026-11-23T12:00:06Z", 1)));
        assert_eq!(w.to_string(), "2026-11-23T12:00:05Z|1092");
        assert!(Watermark::parse("yesterday").is_err());
    }

    #[test]
    fn a_record_alone_at_fault_is_refused_the_rest_stops_the_call() {
        assert!(matches!(
            outcome_of(Error::NotAllowed("400".into())),
            Ok(PushOutcome::Rejected(_))
        ));
        assert!(outcome_of(Error::RateLimited { retry_after: None }).is_err());
        assert!(outcome_of(Error::Unauthorized("401".into())).is_err());
    }
}
