//! [`CrmClient`] for Salesforce: leads upserted by their external id
//! through sObject Collections (200 records per call, each record's
//! result mapped back to its lead), follow-ups upserted as Tasks by theirs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lead_core::ports::{CrmChange, CrmChanges, PushOutcome};
use lead_core::{
    CrmClient, CrmKind, CrmLink, Error, FollowUpStatus, FollowUpTask, Lead, LeadExtId, Priority,
    Result,
};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::client::{ApiUsage, Http};
use crate::config::SalesforceConfig;
use crate::wire::{QueryPage, SaveAnswer, SaveResult, collection};

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
            .unwrap_or_else(|| "[not provided]".into());
        record.insert("LastName".into(), json!(last));
        if f.last_name.is_some() {
            put(&mut record, "FirstName", f.first_name.as_deref());
        }
        record.insert(
            "Company".into(),
            json!(f.company.as_deref().unwrap_or("[not provided]")),
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

/// A Lead record as a change, its fields read through `field`: the pull's
/// JSON records and the Outbound Message's SOAP notifications both come
/// here, so a Lead means the same change whichever way it arrived.
///
/// `changed_at` is the newest of `SystemModstamp` and `LastModifiedDate`,
/// whichever the record has (the pull selects `SystemModstamp`, an Outbound
/// Message carries the fields its admin chose); one of them is needed,
/// since newest-change-wins cannot order a change without a time.
pub(crate) fn lead_change<'a>(
    field: impl Fn(&str) -> Option<&'a str>,
    config: &SalesforceConfig,
) -> Result<CrmChange> {
    let id = field("Id").ok_or_else(|| Error::internal("Salesforce: a Lead without an Id"))?;
    let mut changed_at = None;
    for name in ["SystemModstamp", "LastModifiedDate"] {
        let Some(stamp) = field(name) else { continue };
        let at = DateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%.f%z")
            .or_else(|_| DateTime::parse_from_rfc3339(stamp))
            .map_err(|e| Error::internal(format!("Salesforce: {name} is not a time")).caused_by(e))?
            .to_utc();
        changed_at = changed_at.max(Some(at));
    }
    let changed_at = changed_at.ok_or_else(|| {
        Error::internal("Salesforce: a Lead without SystemModstamp or LastModifiedDate")
    })?;
    Ok(CrmChange {
        link: CrmLink {
            crm: CrmKind::Salesforce,
            object: "Lead".into(),
            id: id.to_owned(),
        },
        lead: field(&config.lead_external_id).and_then(|v| LeadExtId::parse(v).ok()),
        stage: field("Status").and_then(|s| config.status_stage.get(s).copied()),
        owner: None,
        changed_at,
    })
}

fn put(record: &mut Map<String, Value>, field: &str, value: Option<&str>) {
    if let Some(value) = value {
        record.insert(field.into(), json!(value));
    }
}

/// A save result as the lead's outcome.
fn outcome(result: SaveResult) -> PushOutcome {
    match (result.success, result.id) {
        (true, Some(id)) => PushOutcome::Synced(vec![CrmLink {
            crm: CrmKind::Salesforce,
            object: "Lead".into(),
            id,
        }]),
        _ => {
            let said = result
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            if result
                .errors
                .iter()
                .any(|e| RETRYABLE.contains(&e.code.as_str()))
            {
                PushOutcome::Retry(said)
            } else {
                PushOutcome::Rejected(said)
            }
        }
    }
}

#[async_trait]
impl CrmClient for SalesforceClient {
    fn kind(&self) -> CrmKind {
        CrmKind::Salesforce
    }

    async fn push_leads(&self, leads: &[Lead]) -> Result<Vec<PushOutcome>> {
        let path = format!(
            "/composite/sobjects/Lead/{}",
            self.http.config().lead_external_id
        );
        let mut outcomes = Vec::with_capacity(leads.len());
        for chunk in leads.chunks(COLLECTION_LIMIT) {
            let body = collection(chunk.iter().map(|l| self.lead_record(l)).collect());
            let answer = self
                .http
                .call(Method::PATCH, &path, &[], Some(&body))
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
            outcomes.extend(results.into_iter().map(outcome));
        }
        Ok(outcomes)
    }

    async fn push_task(&self, task: &FollowUpTask, lead: &Lead) -> Result<CrmLink> {
        let Some(who) = lead
            .crm_links
            .iter()
            .find(|l| l.crm == CrmKind::Salesforce && l.object == "Lead")
        else {
            return Err(Error::unavailable(format!(
                "lead {} is not in Salesforce yet",
                lead.ext_id
            )));
        };
        let config = self.http.config();
        let priority = match task.priority {
            Priority::High => "High",
            Priority::Medium => "Normal",
            Priority::Low => "Low",
        };
        let status = match task.status {
            FollowUpStatus::Done => "Completed",
            _ => "Not Started",
        };
        let mut body = json!({
            "Subject": task.subject,
            "WhoId": who.id,
            "ActivityDate": task.due_at.date_naive().to_string(),
            "Status": status,
            "Priority": priority,
        });
        if let Some(notes) = &task.notes {
            body["Description"] = json!(notes);
        }
        // Upserted by our id: a task sent again after a crash is the same Task.
        let path = format!(
            "/sobjects/Task/{}/{}",
            config.task_external_id,
            task.id.simple()
        );
        let answer = self
            .http
            .call(Method::PATCH, &path, &[], Some(&body))
            .await?;
        let id = match answer.status {
            StatusCode::CREATED | StatusCode::OK => {
                serde_json::from_str::<SaveAnswer>(&answer.body)
                    .map_err(|e| {
                        Error::internal("Salesforce: the task answer is not readable").caused_by(e)
                    })?
                    .id
            }
            // Before v46.0 an update answers 204 with no body: the id is
            // not told, our external id still finds the Task.
            StatusCode::NO_CONTENT => format!("{}={}", config.task_external_id, task.id.simple()),
            other => {
                return Err(Error::NotAllowed(format!(
                    "Salesforce answered {other} to a task upsert: more than one Task has this id"
                )));
            }
        };
        Ok(CrmLink {
            crm: CrmKind::Salesforce,
            object: "Task".into(),
            id,
        })
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
            "SELECT Id, {}, Status, SystemModstamp FROM Lead{filter} ORDER BY SystemModstamp, Id",
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
                let change = self.change_of(&record)?;
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
