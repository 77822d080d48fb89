//! The CRM port: push leads and tasks, pull the CRM's changes.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::followup::FollowUpTask;
use crate::lead::Lead;
use crate::model::{ChangeOrigin, CrmKind, CrmLink, LeadExtId, RepId, Stage};

/// The result of pushing one lead to a CRM.
#[derive(Debug, Clone, PartialEq)]
pub enum PushOutcome {
    /// Created or updated; the CRM's ids for the lead.
    Synced(Vec<CrmLink>),
    /// The CRM refused this record (bad data); retrying will not help.
    Rejected(String),
    /// The CRM could not take this record now (a locked row, a limit) while
    /// it took others: try this one again later.
    Retry(String),
    /// The CRM took the record but not everything that goes with it
    /// (Salesforce: the Lead, not its Opportunity): its ids are recorded,
    /// and the change is tried again (`temporary`) or parked with
    /// `problem` for a person, whose retry sends it whole again.
    Partly {
        /// The ids of what the CRM took.
        links: Vec<CrmLink>,
        /// What it did not take, and why.
        problem: String,
        /// Whether trying again later may help.
        temporary: bool,
    },
}

/// The contact fields a CRM change may carry, by our names.
pub const CONTACT_FIELDS: [&str; 8] = [
    "first_name",
    "last_name",
    "phone",
    "company",
    "job_title",
    "website",
    "country",
    "industry",
];

/// A change made in the CRM, to apply locally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrmChange {
    /// The CRM record.
    pub link: CrmLink,
    /// Our lead, when the CRM record carries our external id.
    pub lead: Option<LeadExtId>,
    /// New stage, mapped from the CRM status.
    pub stage: Option<Stage>,
    /// New owner.
    pub owner: Option<RepId>,
    /// Contact fields as the CRM holds them, by our field name
    /// ([`CONTACT_FIELDS`]); a field the CRM did not send, or sent empty,
    /// is absent (a pull never blanks a local value).
    #[serde(default)]
    pub contact: BTreeMap<String, String>,
    /// When the CRM changed it (used for newest-change-wins).
    pub changed_at: DateTime<Utc>,
}

/// A page of CRM changes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CrmChanges {
    /// Changes, oldest first.
    pub changes: Vec<CrmChange>,
    /// Watermark to ask from next time.
    pub next_watermark: Option<String>,
}

/// A follow-up task to push, with its lead as stored (already linked to
/// the CRM record the task hangs on).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPush {
    /// The task in its current state.
    pub task: FollowUpTask,
    /// Its lead.
    pub lead: Lead,
}

/// A CRM (Salesforce, Pipedrive, ...).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait CrmClient: Send + Sync {
    /// Which CRM this is.
    fn kind(&self) -> CrmKind;

    /// Creates or updates leads (batched by the adapter); one outcome per lead, in order.
    async fn push_leads(&self, leads: &[Lead]) -> Result<Vec<PushOutcome>>;

    /// Creates or updates follow-up tasks (Salesforce Tasks / Pipedrive
    /// activities) of leads already in the CRM (batched by the adapter);
    /// one outcome per task, in order.
    async fn push_tasks(&self, tasks: &[TaskPush]) -> Result<Vec<PushOutcome>>;

    /// Whether the CRM takes our credentials: holds or gets a session
    /// (logging in when none is held) without spending an API call on
    /// it. An error says why not ([`Error::Unauthorized`](crate::Error::Unauthorized)
    /// when the CRM refused the credentials).
    async fn check(&self) -> Result<()>;

    /// Changes made in the CRM after `watermark`, at most `limit`.
    async fn pull_changes(&self, watermark: Option<String>, limit: usize) -> Result<CrmChanges>;
}

/// Marks a change's origin on outbox decisions: CRM changes are never echoed back.
pub fn should_push(origin: ChangeOrigin) -> bool {
    origin == ChangeOrigin::Local
}
