//! [`CrmClient`] for Salesforce: leads upserted by their external id
//! through sObject Collections (200 records per call, each record's
//! result mapped back to its lead), follow-ups upserted as Tasks by theirs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

use lead_core::ports::{CrmChange, CrmChanges, PushOutcome, TaskPush};
use lead_core::{
    CrmClient, CrmKind, CrmLink, Error, FollowUpStatus, FollowUpTask, Lead, Priority, RepId, Result,
};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::client::{ApiUsage, Http};
use crate::config::SalesforceConfig;
use crate::outbound::OutboundMessage;
use crate::record::{CONTACT_SELECT, NOT_PROVIDED, lead_change};
use crate::wire::{ApiError, QueryPage, SaveAnswer, SaveResult, collection};

/// Most records in one sObject Collections call.
pub const COLLECTION_LIMIT: usize = 200;

/// Record-level codes that mean "not now" rather than "never".
const RETRYABLE: [&str; 3] = [
    "UNABLE_TO_LOCK_ROW",
    "REQUEST_LIMIT_EXCEEDED",
    "SERVER_UNAVAILABLE",
];

/// A Salesforce org as a CRM.
pub struct SalesforceClient {
    http: Http,
    /// Active users by e-mail and by id, read once and again when older
    /// than [`DIRECTORY_TTL`] (reps and users come and go rarely).
    directory: tokio::sync::Mutex<Option<Directory>>,
}

/// How long the user directory is trusted.
const DIRECTORY_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The org's active users.
struct Directory {
    /// Lower-cased e-mail → User Id.
    by_email: HashMap<String, String>,
    /// User Id → e-mail.
    by_id: HashMap<String, String>,
    read_at: std::time::Instant,
}

impl std::fmt::Debug for SalesforceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceClient")
            .field("login_url", &self.http.config().login_url)
            .finish_non_exhaustive()
    }
}

impl SalesforceClient {
    /// A client for the org `config` names. Logs in on first use.
    pub fn new(config: SalesforceConfig) -> Result<Self> {
        Ok(SalesforceClient {
            http: Http::new(config)?,
            directory: tokio::sync::Mutex::new(None),
        })
    }

    /// API calls used and allowed, as the last answer's `Sforce-Limit-Info` said.
    pub fn api_usage(&self) -> Option<ApiUsage> {
        self.http.usage()
    }

    /// Logins so far (the first one, and one per expired session).
    pub fn logins(&self) -> u64 {
        self.http.logins()
    }

    /// The Salesforce user of each rep in `reps` that has one (matched by
    /// e-mail, case-insensitively), reading the directory when it is
    /// missing or old; no call when `reps` is empty.
    async fn owner_ids<'r>(
        &self,
        reps: impl Iterator<Item = &'r RepId>,
    ) -> Result<HashMap<String, String>> {
        let wanted: Vec<String> = reps.map(|r| r.as_str().to_ascii_lowercase()).collect();
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let directory = self.directory().await?;
        let guard = directory.as_ref();
        Ok(wanted
            .into_iter()
            .filter_map(|email| {
                let id = guard?.by_email.get(&email)?.clone();
                Some((email, id))
            })
            .collect())
    }

    /// The directory, read again when missing or older than its TTL.
    async fn directory(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Directory>>> {
        let mut directory = self.directory.lock().await;
        let fresh = directory
            .as_ref()
            .is_some_and(|d| d.read_at.elapsed() < DIRECTORY_TTL);
        if !fresh {
            *directory = Some(self.read_directory().await?);
        }
        Ok(directory)
    }

    /// `SELECT Id, Email FROM User WHERE IsActive = true`, every page.
    async fn read_directory(&self) -> Result<Directory> {
        let soql = "SELECT Id, Email FROM User WHERE IsActive = true ORDER BY Id";
        let mut by_email = HashMap::new();
        let mut by_id = HashMap::new();
        let mut next: Option<String> = None;
        loop {
            let answer = match &next {
                None => {
                    self.http
                        .call(Method::GET, "/query", &[("q", soql)], None)
                        .await?
                }
                Some(url) => self.http.call(Method::GET, url, &[], None).await?,
            };
            let page: QueryPage = serde_json::from_str(&answer.body).map_err(|e| {
                Error::internal("Salesforce: the user query answer is not readable").caused_by(e)
            })?;
            for user in page.records {
                let field = |name: &str| user.get(name).and_then(Value::as_str);
                if let (Some(id), Some(email)) = (field("Id"), field("Email")) {
                    by_email.insert(email.to_ascii_lowercase(), id.to_owned());
                    by_id.insert(id.to_owned(), email.to_ascii_lowercase());
                }
            }
            match page.next_records_url {
                Some(url) if !page.done => next = Some(url),
                _ => break,
            }
        }
        Ok(Directory {
            by_email,
            by_id,
            read_at: std::time::Instant::now(),
        })
    }

    /// Upserts `records` of `object` by `field`, 200 per sObject
    /// Collections call (`allOrNone=false`: one bad record fails alone),
    /// or with the single-record upsert when there is one; one result per
    /// record, in order. A failed call fails them all (the error says
    /// whether to retry).
    async fn upsert(
        &self,
        object: &str,
        field: &str,
        records: Vec<Map<String, Value>>,
        headers: &[(&str, &str)],
    ) -> Result<Vec<Saved>> {
        if let [record] = records.as_slice() {
            return Ok(vec![self.upsert_one(object, field, record, headers).await?]);
        }
        let path = format!("/composite/sobjects/{object}/{field}");
        let mut saved = Vec::with_capacity(records.len());
        for chunk in records.chunks(COLLECTION_LIMIT) {
            let body = collection(chunk.to_vec());
            let answer = self
                .http
                .call_with(Method::PATCH, &path, &[], Some(&body), headers)
                .await?;
            let results: Vec<SaveResult> = serde_json::from_str(&answer.body).map_err(|e| {
                Error::internal("Salesforce: the collection answer is not readable").caused_by(e)
            })?;
            if results.len() != chunk.len() {
                return Err(Error::internal(format!(
                    "Salesforce answered {} results for {} records",
                    results.len(),
                    chunk.len()
                )));
            }
            saved.extend(results.into_iter().map(|r| match (r.success, r.id) {
                (true, Some(id)) => Ok(id),
                _ => Err(r.errors),
            }));
        }
        Ok(saved)
    }

    /// `PATCH /sobjects/{object}/{field}/{value}`: 201 created, 200
    /// updated, 204 updated before v46.0 (no id told: the external id
    /// still finds the record), 300 when several records hold the id (a
    /// data problem for a person to fix), 400 refused.
    async fn upsert_one(
        &self,
        object: &str,
        field: &str,
        record: &Map<String, Value>,
        headers: &[(&str, &str)],
    ) -> Result<Saved> {
        let value = record
            .get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| Error::internal(format!("a {object} record without {field}")))?;
        let path = format!("/sobjects/{object}/{field}/{value}");
        // The single-record body holds neither the type nor the key.
        let mut body = record.clone();
        body.remove("attributes");
        body.remove(field);
        let answer = self
            .http
            .call_with(
                Method::PATCH,
                &path,
                &[],
                Some(&Value::Object(body)),
                headers,
            )
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(Error::NotAllowed(said)) => {
                return Ok(Err(vec![ApiError {
                    message: said,
                    code: "REFUSED".into(),
                    fields: Vec::new(),
                }]));
            }
            Err(err) => return Err(err),
        };
        Ok(match answer.status {
            StatusCode::CREATED | StatusCode::OK => {
                Ok(serde_json::from_str::<SaveAnswer>(&answer.body)
                    .map_err(|e| {
                        Error::internal("Salesforce: the upsert answer is not readable")
                            .caused_by(e)
                    })?
                    .id)
            }
            StatusCode::NO_CONTENT => Ok(format!("{field}={value}")),
            StatusCode::MULTIPLE_CHOICES => Err(vec![ApiError {
                message: format!("more than one {object} has {field} = {value}"),
                code: "MULTIPLE_CHOICES".into(),
                fields: vec![field.to_owned()],
            }]),
            other => Err(vec![ApiError {
                message: format!("unexpected answer {other}"),
                code: "UNEXPECTED".into(),
                fields: Vec::new(),
            }]),
        })
    }

    /// With `create_deals`, a qualified lead (or one further on) gets an
    /// Opportunity upserted by our lead id (REST cannot convert a Lead;
    /// see the docs). Its failure makes the lead's outcome a retry: both
    /// upserts are repeatable.
    async fn push_deals(
        &self,
        leads: &[Lead],
        outcomes: &mut [PushOutcome],
        owners: &HashMap<String, String>,
    ) -> Result<()> {
        let config = self.http.config();
        let mut picked = Vec::new();
        let mut records = Vec::new();
        for (i, lead) in leads.iter().enumerate() {
            let Some(stage_name) = config.opportunity_stage.get(&lead.stage) else {
                continue;
            };
            if !matches!(outcomes[i], PushOutcome::Synced(_)) {
                continue;
            }
            let mut record = Map::new();
            record.insert("attributes".into(), json!({ "type": "Opportunity" }));
            record.insert(
                config.opportunity_external_id.clone(),
                json!(lead.ext_id.as_str()),
            );
            let f = &lead.fields;
            record.insert("Name".into(), json!(lead.crm_title()));
            record.insert("StageName".into(), json!(stage_name));
            let close = lead.stage_changed_at + chrono::Duration::days(30);
            record.insert("CloseDate".into(), json!(close.date_naive().to_string()));
            put(&mut record, "LeadSource", f.source.as_deref());
            let owner = lead
                .assigned_to
                .as_ref()
                .and_then(|rep| owners.get(&rep.as_str().to_ascii_lowercase()));
            put(&mut record, "OwnerId", owner.map(String::as_str));
            picked.push(i);
            records.push(record);
        }
        if records.is_empty() {
            return Ok(());
        }
        let saved = self
            .upsert(
                "Opportunity",
                &config.opportunity_external_id,
                records,
                &[("Sforce-Auto-Assign", "FALSE")],
            )
            .await;
        // The Leads are in: a failed Opportunity makes its lead's outcome
        // partial, never undoes the Lead (nor fails the other leads).
        let partly = |slot: &mut PushOutcome, problem: String, temporary: bool| {
            if let PushOutcome::Synced(links) = slot {
                *slot = PushOutcome::Partly {
                    links: std::mem::take(links),
                    problem: format!("the Opportunity: {problem}"),
                    temporary,
                };
            }
        };
        let saved = match saved {
            Ok(saved) => saved,
            Err(err) => {
                let temporary = err.is_worth_retrying();
                for &i in &picked {
                    partly(&mut outcomes[i], err.to_string(), temporary);
                }
                return Ok(());
            }
        };
        for (&i, result) in picked.iter().zip(saved) {
            match outcome("Opportunity", result) {
                PushOutcome::Synced(deal) => {
                    if let PushOutcome::Synced(links) = &mut outcomes[i] {
                        links.extend(deal);
                    }
                }
                PushOutcome::Retry(why) => partly(&mut outcomes[i], why, true),
                PushOutcome::Rejected(why) => partly(&mut outcomes[i], why, false),
                PushOutcome::Partly { .. } => {}
            }
        }
        Ok(())
    }

    /// The rep a Lead's `OwnerId` stands for, when it is an active user
    /// the directory knows (queues and unknown users stand for none).
    async fn owner_of(&self, owner_id: Option<&str>) -> Result<Option<RepId>> {
        let Some(owner_id) = owner_id.filter(|id| id.starts_with("005")) else {
            return Ok(None);
        };
        let directory = self.directory().await?;
        Ok(directory
            .as_ref()
            .and_then(|d| d.by_id.get(owner_id))
            .and_then(|email| RepId::parse(email).ok()))
    }

    /// The Lead notifications of an Outbound Message as changes, as the
    /// pull makes them of the same records (the owner read through the
    /// user directory); other objects' notifications are left out. A
    /// Lead sent without `LastModifiedDate` or `SystemModstamp` counts as
    /// changed at `received_at`.
    pub async fn outbound_changes(
        &self,
        message: &OutboundMessage,
        received_at: DateTime<Utc>,
    ) -> Result<Vec<CrmChange>> {
        let config = self.http.config();
        let mut changes = Vec::with_capacity(message.notifications.len());
        for notification in &message.notifications {
            let Some(mut change) = crate::outbound::lead_change(notification, config, received_at)
            else {
                continue;
            };
            change.owner = self
                .owner_of(notification.fields.get("OwnerId").map(String::as_str))
                .await?;
            changes.push(change);
        }
        Ok(changes)
    }

    /// A queried Lead as a change.
    fn change_of(&self, record: &Map<String, Value>) -> Result<CrmChange> {
        lead_change(
            |field| record.get(field).and_then(Value::as_str),
            self.http.config(),
        )
    }

    /// The Lead record for `lead`: the required `LastName` and `Company`
    /// get a placeholder when the form had none (Salesforce refuses a Lead
    /// without them; the lead keeps its own values).
    fn lead_record(&self, lead: &Lead) -> Map<String, Value> {
        let config = self.http.config();
        let f = &lead.fields;
        let mut record = Map::new();
        record.insert("attributes".into(), json!({ "type": "Lead" }));
        record.insert(config.lead_external_id.clone(), json!(lead.ext_id.as_str()));
        let last = f
            .last_name
            .clone()
            .or_else(|| f.first_name.clone())
            .unwrap_or_else(|| NOT_PROVIDED.into());
        record.insert("LastName".into(), json!(last));
        if f.last_name.is_some() {
            put(&mut record, "FirstName", f.first_name.as_deref());
        }
        record.insert(
            "Company".into(),
            json!(f.company.as_deref().unwrap_or(NOT_PROVIDED)),
        );
        record.insert("Email".into(), json!(f.email.as_str()));
        put(&mut record, "Phone", f.phone.as_ref().map(|p| p.as_str()));
        put(&mut record, "Title", f.job_title.as_deref());
        put(&mut record, "Website", f.website.as_deref());
        put(&mut record, "Country", f.country.as_deref());
        put(&mut record, "Industry", f.industry.as_deref());
        if let Some(size) = f.company_size {
            record.insert("NumberOfEmployees".into(), json!(size));
        }
        put(&mut record, "LeadSource", f.source.as_deref());
        put(&mut record, "Description", f.message.as_deref());
        if let Some(status) = config.stage_status.get(&lead.stage) {
            record.insert("Status".into(), json!(status));
        }
        record
    }
}

fn put(record: &mut Map<String, Value>, field: &str, value: Option<&str>) {
    if let Some(value) = value {
        record.insert(field.into(), json!(value));
    }
}

/// A record's save: its Salesforce id, or the errors it got.
type Saved = std::result::Result<String, Vec<ApiError>>;

/// A save as the pushed item's outcome: synced with the record's id,
/// retried when an error means "not now", refused otherwise.
fn outcome(object: &str, saved: Saved) -> PushOutcome {
    match saved {
        Ok(id) => PushOutcome::Synced(vec![CrmLink {
            crm: CrmKind::Salesforce,
            object: object.into(),
            id,
        }]),
        Err(errors) => {
            let said = errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            if errors.iter().any(|e| RETRYABLE.contains(&e.code.as_str())) {
                PushOutcome::Retry(said)
            } else {
                PushOutcome::Rejected(said)
            }
        }
    }
}

/// The Salesforce id of `lead`'s record of `object`, once pushed.
fn salesforce_id<'a>(lead: &'a Lead, object: &str) -> Option<&'a str> {
    lead.crm_links
        .iter()
        .find(|l| l.crm == CrmKind::Salesforce && l.object == object)
        .map(|l| l.id.as_str())
}

/// The Task record of a follow-up on the Lead `who`.
fn task_record(
    config: &SalesforceConfig,
    task: &FollowUpTask,
    who: &str,
    owner: Option<&str>,
) -> Map<String, Value> {
    // An overdue task is raised so it tops the rep's list in Salesforce.
    let priority = match task.priority {
        _ if task.overdue_at.is_some() => "High",
        Priority::High => "High",
        Priority::Medium => "Normal",
        Priority::Low => "Low",
    };
    let status = match task.status {
        FollowUpStatus::Done => "Completed",
        _ => "Not Started",
    };
    let mut record = Map::new();
    record.insert("attributes".into(), json!({ "type": "Task" }));
    record.insert(
        config.task_external_id.clone(),
        json!(task.id.simple().to_string()),
    );
    record.insert("Subject".into(), json!(task.subject));
    record.insert("WhoId".into(), json!(who));
    record.insert(
        "ActivityDate".into(),
        json!(task.due_at.date_naive().to_string()),
    );
    record.insert("Status".into(), json!(status));
    record.insert("Priority".into(), json!(priority));
    put(&mut record, "Description", task.notes.as_deref());
    put(&mut record, "OwnerId", owner);
    record
}

#[async_trait]
impl CrmClient for SalesforceClient {
    fn kind(&self) -> CrmKind {
        CrmKind::Salesforce
    }

    async fn push_leads(&self, leads: &[Lead]) -> Result<Vec<PushOutcome>> {
        let config = self.http.config();
        let owners = self
            .owner_ids(leads.iter().filter_map(|l| l.assigned_to.as_ref()))
            .await?;
        let owner_of = |lead: &Lead| {
            lead.assigned_to
                .as_ref()
                .and_then(|rep| owners.get(&rep.as_str().to_ascii_lowercase()))
        };
        // A write that sets an owner says `Sforce-Auto-Assign: FALSE`, or
        // the org's assignment rules would overrule the routing; the
        // others leave the rules to the org. One header per call, so the
        // two kinds go in separate calls.
        let mut outcomes: Vec<Option<PushOutcome>> = vec![None; leads.len()];
        for owned in [true, false] {
            let picked: Vec<usize> = (0..leads.len())
                .filter(|&i| owner_of(&leads[i]).is_some() == owned)
                .collect();
            if picked.is_empty() {
                continue;
            }
            let records = picked
                .iter()
                .map(|&i| {
                    let mut record = self.lead_record(&leads[i]);
                    if let Some(owner) = owner_of(&leads[i]) {
                        record.insert("OwnerId".into(), json!(owner));
                    }
                    record
                })
                .collect();
            let headers: &[(&str, &str)] = if owned {
                &[("Sforce-Auto-Assign", "FALSE")]
            } else {
                &[]
            };
            let saved = self
                .upsert("Lead", &config.lead_external_id, records, headers)
                .await?;
            for (&i, result) in picked.iter().zip(saved) {
                outcomes[i] = Some(outcome("Lead", result));
            }
        }
        let mut outcomes: Vec<PushOutcome> = outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| PushOutcome::Retry("not sent".into())))
            .collect();
        if config.create_deals {
            self.push_deals(leads, &mut outcomes, &owners).await?;
        }
        Ok(outcomes)
    }

    async fn push_tasks(&self, tasks: &[TaskPush]) -> Result<Vec<PushOutcome>> {
        let config = self.http.config();
        let owners = self
            .owner_ids(tasks.iter().filter_map(|t| t.task.assigned_to.as_ref()))
            .await?;
        let mut outcomes: Vec<Option<PushOutcome>> = vec![None; tasks.len()];
        let mut picked = Vec::with_capacity(tasks.len());
        let mut records = Vec::with_capacity(tasks.len());
        for (i, push) in tasks.iter().enumerate() {
            let Some(who) = salesforce_id(&push.lead, "Lead") else {
                outcomes[i] = Some(PushOutcome::Retry(format!(
                    "lead {} is not in Salesforce yet",
                    push.lead.ext_id
                )));
                continue;
            };
            let owner = push
                .task
                .assigned_to
                .as_ref()
                .and_then(|rep| owners.get(&rep.as_str().to_ascii_lowercase()));
            records.push(task_record(
                config,
                &push.task,
                who,
                owner.map(String::as_str),
            ));
            picked.push(i);
        }
        if !records.is_empty() {
            // Upserted by our id: a task sent again after a crash is the
            // same Task.
            let saved = self
                .upsert("Task", &config.task_external_id, records, &[])
                .await?;
            for (&i, result) in picked.iter().zip(saved) {
                outcomes[i] = Some(outcome("Task", result));
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| PushOutcome::Retry("not sent".into())))
            .collect())
    }

    async fn check(&self) -> Result<()> {
        self.http.check().await
    }

    async fn pull_changes(&self, watermark: Option<String>, limit: usize) -> Result<CrmChanges> {
        let config = self.http.config();
        let limit = limit.max(1);
        let after = watermark.as_deref().map(Watermark::parse).transpose()?;
        // SystemModstamp is indexed and moves on every change (system ones
        // included), to the millisecond; a SOQL datetime literal only goes
        // to the second. So the query starts at the watermark's second and
        // the records up to the watermark itself, (stamp, Id), are skipped
        // here: a bulk update that gave a thousand records one second is
        // read across runs, never stuck on its first page, never missed.
        // No LIMIT: the query is a cursor, read only as far as needed.
        let filter = after
            .as_ref()
            .map(|w| {
                format!(
                    " WHERE SystemModstamp >= {}",
                    w.at.format("%Y-%m-%dT%H:%M:%SZ")
                )
            })
            .unwrap_or_default();
        let soql = format!(
            "SELECT Id, {}, Status, OwnerId, {CONTACT_SELECT}, SystemModstamp FROM Lead{filter} ORDER BY SystemModstamp, Id",
            config.lead_external_id,
        );
        // The first page is the query; the next ones are `nextRecordsUrl`s.
        let mut next: Option<String> = None;
        let mut changes = Vec::new();
        'pages: loop {
            let answer = match &next {
                None => {
                    let query = [("q", soql.as_str())];
                    self.http.call(Method::GET, "/query", &query, None).await?
                }
                Some(url) => self.http.call(Method::GET, url, &[], None).await?,
            };
            let page: QueryPage = serde_json::from_str(&answer.body).map_err(|e| {
                Error::internal("Salesforce: the query answer is not readable").caused_by(e)
            })?;
            for record in page.records {
                let mut change = self.change_of(&record)?;
                change.owner = self
                    .owner_of(record.get("OwnerId").and_then(Value::as_str))
                    .await?;
                if after.as_ref().is_some_and(|w| !w.before(&change)) {
                    continue;
                }
                changes.push(change);
                if changes.len() == limit {
                    break 'pages;
                }
            }
            match page.next_records_url {
                Some(url) if !page.done => next = Some(url),
                _ => break,
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

/// Where a pull got to: the last record's `SystemModstamp` (to the
/// millisecond) and `Id`, written `2026-11-23T12:00:05.300Z|00Q…`.
struct Watermark {
    at: DateTime<Utc>,
    id: String,
}

impl Watermark {
    fn of(change: &CrmChange) -> Watermark {
        Watermark {
            at: change.changed_at,
            id: change.link.id.clone(),
        }
    }

    /// A stored watermark; one without `|Id` (a time alone) counts as
    /// before every record of that instant.
    fn parse(text: &str) -> Result<Watermark> {
        let (at, id) = text.split_once('|').unwrap_or((text, ""));
        let at = DateTime::parse_from_rfc3339(at)
            .map_err(|e| {
                Error::internal("Salesforce: the stored watermark is not a time").caused_by(e)
            })?
            .to_utc();
        Ok(Watermark {
            at,
            id: id.to_owned(),
        })
    }

    /// Whether `change` comes after this point, in the query's order.
    fn before(&self, change: &CrmChange) -> bool {
        (change.changed_at, change.link.id.as_str()) > (self.at, self.id.as_str())
    }
}

impl std::fmt::Display for Watermark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}|{}",
            self.at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            self.id
        )
    }
}
