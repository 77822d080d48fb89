//! The ports: traits every adapter implements. Use-cases see only these.
//!
//! Each trait is object-safe and held as `Arc<dyn Trait>`. Required
//! surfaces are small on purpose; the store's single write method,
//! [`LeadStore::commit`], takes everything one business operation changes
//! so an adapter can apply it in one transaction (all or nothing).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod check;
mod followups;
mod load;
mod outbox;
mod query;
mod review;

pub use check::{CommitFacts, FactKeys};
pub use followups::{FollowUpCursor, FollowUpPage, FollowUpQuery, MAX_FOLLOWUP_PAGE};
pub use load::{Assignments, LoadDelta};

pub use outbox::{Claimed, DeadLetter, OutboxStore, SyncState};
#[cfg(any(test, feature = "testing"))]
pub use outbox::{MockOutboxStore, MockSyncState};
pub use query::{
    Cursor, Dashboard, DealValue, LeadPage, LeadQuery, MAX_PAGE, PipelineStats, RepPerformance,
    SourcePerformance, UNKNOWN_CURRENCY, dashboard_of, page_of,
};
pub use review::{MAX_PAIR_PAGE, PairPage, PairQuery, ReviewPair, ReviewStatus};

use crate::dedup::MergeRecord;
use crate::error::Result;
use crate::followup::FollowUpTask;
use crate::model::{
    ChangeOrigin, CrmKind, CrmLink, Lead, LeadExtId, LeadFields, Priority, Rep, RepId, RepState,
    Stage,
};

/// One lead written by a [`Commit`].
#[derive(Debug, Clone, PartialEq)]
pub struct LeadWrite {
    /// The lead's full new state (fields, history and events included).
    pub lead: Lead,
    /// `None` inserts a new lead; `Some(v)` updates one whose stored version is `v`.
    pub expected_version: Option<u64>,
}

impl LeadWrite {
    /// The lead as stored once the write commits: its version is the
    /// expected one plus one (1 for an insert).
    pub fn into_written(self) -> Lead {
        let mut lead = self.lead;
        lead.version = self.expected_version.unwrap_or(0) + 1;
        lead
    }
}

/// What a change means for the CRM, queued in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxKind {
    /// A new lead to create in the CRM.
    LeadCreated,
    /// Fields, score or segments changed.
    LeadUpdated,
    /// The stage changed.
    StageChanged,
    /// The owner changed.
    Assigned,
    /// A follow-up task to create.
    FollowUpCreated,
    /// A follow-up task was completed, cancelled, reopened or moved.
    FollowUpUpdated,
    /// Two leads were merged (or a merge undone).
    Merged,
}

/// The consumer an outbox entry is for: each consumer claims only its own
/// destination's entries, so a second one (notifications, outgoing
/// webhooks, a second CRM) never takes the first one's work. A change two
/// consumers care about is written as one entry for each.
///
/// A name of 1 to 64 characters, lower-case ASCII letters, digits and
/// `_ . : -`.
///
/// ```
/// use lead_core::Destination;
/// assert_eq!(Destination::CRM.as_str(), "crm");
/// assert_eq!(Destination::parse("webhook:acme").unwrap().as_str(), "webhook:acme");
/// assert!(Destination::parse("Not Valid").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Destination(std::borrow::Cow<'static, str>);

impl Destination {
    /// The CRM sync (Salesforce or Pipedrive, whichever is configured).
    pub const CRM: Destination = Destination(std::borrow::Cow::Borrowed("crm"));

    /// Longest name.
    pub const MAX_LEN: usize = 64;

    /// A destination from its name, checked.
    pub fn parse(name: &str) -> Result<Destination, crate::Error> {
        let valid = !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && name.bytes().all(|c| {
                c.is_ascii_lowercase()
                    || c.is_ascii_digit()
                    || matches!(c, b'_' | b'.' | b':' | b'-')
            });
        if valid {
            Ok(Destination(std::borrow::Cow::Owned(name.to_owned())))
        } else {
            Err(crate::Error::invalid(
                "destination",
                "invalid_destination",
                "1 to 64 lower-case letters, digits, '_', '.', ':' or '-'",
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Destination {
    type Error = crate::Error;

    fn try_from(name: String) -> Result<Destination, crate::Error> {
        Destination::parse(&name)
    }
}

impl From<Destination> for String {
    fn from(d: Destination) -> String {
        d.0.into_owned()
    }
}

/// One change for one consumer (its [`Destination`]), written in the same
/// transaction as the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Unique id (also the idempotency key towards the CRM).
    pub id: Uuid,
    /// The consumer it is for.
    pub destination: Destination,
    /// The lead concerned.
    pub lead: LeadExtId,
    /// What happened.
    pub kind: OutboxKind,
    /// Extra data the CRM push needs (e.g. the follow-up task id).
    pub payload: serde_json::Value,
    /// When the change was made.
    pub created_at: DateTime<Utc>,
}

/// A change to a rep's workload, applied atomically by the store (as
/// increments, so concurrent captures never lose a count).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LoadChange {
    /// The rep received a lead.
    Assigned {
        /// The rep.
        rep: RepId,
        /// When.
        at: DateTime<Utc>,
        /// The rep's local date at `at` (daily capacity counts per local day).
        local_day: NaiveDate,
        /// The rep's new fair round-robin pass.
        pass: f64,
    },
    /// One of the rep's open leads was closed, merged away or reassigned.
    Released {
        /// The rep.
        rep: RepId,
    },
    /// The rep has one more open lead that is not a new assignment (a
    /// closed lead reopened, or a merge or its undo gave one back), so the
    /// day's assignment count and the round-robin pass stay.
    Reopened {
        /// The rep.
        rep: RepId,
    },
}

impl LoadChange {
    /// The rep whose workload changes.
    pub fn rep(&self) -> &RepId {
        match self {
            LoadChange::Assigned { rep, .. }
            | LoadChange::Released { rep }
            | LoadChange::Reopened { rep } => rep,
        }
    }
}

/// Everything one business operation changes, applied atomically.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Commit {
    /// Leads to insert or update.
    pub leads: Vec<LeadWrite>,
    /// CRM changes to queue.
    pub outbox: Vec<OutboxEntry>,
    /// Follow-up tasks to store.
    pub followups: Vec<FollowUpTask>,
    /// Stored follow-up tasks to replace whole (found by `id`; in order, so
    /// the last one for a task wins), e.g. marked done or rescheduled by
    /// their rep; the task must be stored before this commit, or the
    /// commit fails with [`Error::NotFound`](crate::Error::NotFound) and
    /// writes nothing.
    pub followup_updates: Vec<FollowUpTask>,
    /// Merge records to store (reversible merges).
    pub merges: Vec<MergeRecord>,
    /// Rep workload changes.
    pub load: Vec<LoadChange>,
    /// Idempotency keys that now point at a lead.
    pub idempotency: Vec<IdempotencyKey>,
    /// Duplicate pairs to store or decide, one per two leads; over a stored
    /// pair of the same leads the store keeps [`ReviewPair::merged_with`].
    pub reviews: Vec<ReviewPair>,
}

/// A client's idempotency key (`Idempotency-Key`, `webhook-id`, or a hash of
/// the submission) and the lead it produced, valid until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyKey {
    /// The key.
    pub key: String,
    /// The lead the first request produced.
    pub lead: LeadExtId,
    /// When the key was first used (the writer's clock; a stored key
    /// conflicts with a new one when it expires after this instant).
    pub created_at: DateTime<Utc>,
    /// After this instant the key is forgotten and may be used again.
    pub expires_at: DateTime<Utc>,
    /// A hash of the request that first used the key (SHA-256 hex), so a
    /// repeat with another payload can be told from a retry; `None` for
    /// keys stored before hashes were kept.
    #[serde(default)]
    pub request_hash: Option<String>,
}

/// What a live idempotency key points at
/// ([`LeadStore::find_by_idempotency_key`], [`CaptureContext::replay`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replay {
    /// The lead the first request produced.
    pub lead: LeadExtId,
    /// [`IdempotencyKey::request_hash`] as stored.
    #[serde(default)]
    pub request_hash: Option<String>,
}

impl Commit {
    /// An empty commit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a lead write.
    pub fn write(mut self, lead: Lead, expected_version: Option<u64>) -> Self {
        self.leads.push(LeadWrite {
            lead,
            expected_version,
        });
        self
    }

    /// True when the commit only adds: every lead write inserts a new,
    /// unmerged lead and no merge record, review pair nor follow-up update
    /// is written (outbox entries, new follow-ups, workload changes and
    /// idempotency keys may come along). For such a commit the database's
    /// own guards (primary keys, the unique e-mail index, a conditional
    /// idempotency upsert, the rep rows an update touched) enforce every
    /// rule of [`Commit::check`], so a store may write it without reading
    /// the facts first.
    pub fn is_insert_only(&self) -> bool {
        self.merges.is_empty()
            && self.reviews.is_empty()
            && self.followup_updates.is_empty()
            && self
                .leads
                .iter()
                .all(|w| w.expected_version.is_none() && w.lead.merged_into.is_none())
    }
}

/// The keys account matching looks a company up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct AccountKey {
    /// [`crate::MatchKeys::company_key`] of the company name.
    pub company: Option<String>,
    /// Corporate e-mail domain ([`crate::MatchKeys::corporate_domain`]).
    pub domain: Option<String>,
}

/// Where leads live.
///
/// # Contract
///
/// - [`commit`](LeadStore::commit) is atomic: either every write, outbox
///   entry, follow-up (new or updated), merge record and load change is
///   stored, or none is.
/// - An insert (`expected_version: None`) fails with
///   [`Error::Conflict`](crate::Error::Conflict) when the `ext_id` exists or
///   another unmerged lead has the same [`crate::email_match_key`].
/// - A commit fails with `Conflict` when one of its idempotency keys is
///   already stored and has not expired.
/// - A commit fails with [`Error::NotFound`](crate::Error::NotFound) when
///   one of its [`followup_updates`](Commit::followup_updates) names a task
///   that was not stored before it.
/// - An update fails with `Conflict` unless the stored version equals
///   `expected_version`. Every stored lead's version is incremented (an
///   insert stores version 1), and the returned leads carry the new versions.
/// - A store that cannot be reached answers
///   [`Error::Unavailable`](crate::Error::Unavailable), never a silent success.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait LeadStore: Send + Sync {
    /// Applies a commit atomically and returns the written leads, in order, with new versions.
    async fn commit(&self, commit: Commit) -> Result<Vec<Lead>>;

    /// One lead by public id (merged leads included).
    async fn get(&self, ext_id: &LeadExtId) -> Result<Option<Lead>>;

    /// The unmerged lead whose [`crate::email_match_key`] is `email_key`.
    async fn find_by_email_key(&self, email_key: &str) -> Result<Option<Lead>>;

    /// The rep who owns the most recently updated open lead of this account (company or corporate domain).
    async fn account_owner(&self, key: &AccountKey) -> Result<Option<RepId>>;

    /// Every rep with their current workload.
    async fn rep_states(&self) -> Result<Vec<RepState>>;

    /// A stored merge record.
    async fn get_merge(&self, id: Uuid) -> Result<Option<MergeRecord>>;

    /// The lead an unexpired idempotency key points at, with the hash of
    /// the request that stored the key.
    async fn find_by_idempotency_key(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Replay>>;

    /// The lead linked to a CRM record.
    async fn find_by_crm_link(&self, crm: CrmKind, id: &str) -> Result<Option<Lead>>;

    /// One page of unmerged leads matching the query, newest first
    /// (the meaning of each filter is [`LeadQuery::matches`]).
    async fn list(&self, query: &LeadQuery) -> Result<LeadPage>;

    /// Dashboard figures for leads created since `since`, with at most
    /// `top` performers (must equal [`dashboard_of`] over the same leads).
    async fn dashboard(&self, since: DateTime<Utc>, top: usize) -> Result<Dashboard>;

    /// Adds a rep or updates their profile, keeping their workload.
    async fn upsert_rep(&self, rep: &Rep) -> Result<()>;

    /// One page of duplicate pairs (must equal [`PairQuery::page_of`]
    /// over the stored pairs).
    async fn review_pairs(&self, query: &PairQuery) -> Result<PairPage>;

    /// A stored duplicate pair.
    async fn get_review_pair(&self, id: Uuid) -> Result<Option<ReviewPair>>;

    /// One page of follow-up tasks, soonest due first, so reps can work
    /// through their to-do list (must equal [`FollowUpQuery::page_of`]
    /// over the stored tasks).
    async fn followups(&self, query: &FollowUpQuery) -> Result<FollowUpPage>;

    /// A stored follow-up task, to show it or to change it in a
    /// [`Commit::followup_updates`] from what is stored.
    async fn get_followup(&self, id: Uuid) -> Result<Option<FollowUpTask>>;

    /// Everything a capture reads before it decides, in one call, so a
    /// store over the network can answer with one round trip. Must equal
    /// the four reads it stands for (the default makes them one by one):
    /// [`find_by_idempotency_key`](Self::find_by_idempotency_key) (when a
    /// key is given), [`find_by_email_key`](Self::find_by_email_key),
    /// [`account_owner`](Self::account_owner) and
    /// [`rep_states`](Self::rep_states).
    async fn capture_context<'a>(
        &self,
        idempotency_key: Option<&'a str>,
        email_key: &str,
        account: &AccountKey,
        now: DateTime<Utc>,
    ) -> Result<CaptureContext> {
        let replay = match idempotency_key {
            Some(key) => self.find_by_idempotency_key(key, now).await?,
            None => None,
        };
        if replay.is_some() {
            return Ok(CaptureContext {
                replay,
                ..CaptureContext::default()
            });
        }
        Ok(CaptureContext {
            replay,
            existing: self.find_by_email_key(email_key).await?,
            owner: self.account_owner(account).await?,
            reps: self.rep_states().await?,
        })
    }
}

/// What a capture reads before deciding ([`LeadStore::capture_context`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CaptureContext {
    /// The lead a live idempotency key already points at, with the stored
    /// request hash: the capture is a repeat (the other fields may then be
    /// left empty).
    pub replay: Option<Replay>,
    /// The unmerged lead holding the submission's folded e-mail.
    pub existing: Option<Lead>,
    /// The owner of the submission's account (company or corporate domain).
    pub owner: Option<RepId>,
    /// Every rep with their workload.
    pub reps: Vec<RepState>,
}

/// The result of pushing one lead to a CRM.
#[derive(Debug, Clone, PartialEq)]
pub enum PushOutcome {
    /// Created or updated; the CRM's ids for the lead.
    Synced(Vec<CrmLink>),
    /// The CRM refused this record (bad data); retrying will not help.
    Rejected(String),
}

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

/// A CRM (Salesforce, Pipedrive, ...).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait CrmClient: Send + Sync {
    /// Which CRM this is.
    fn kind(&self) -> CrmKind;

    /// Creates or updates leads (batched by the adapter); one outcome per lead, in order.
    async fn push_leads(&self, leads: &[Lead]) -> Result<Vec<PushOutcome>>;

    /// Creates a follow-up task (Salesforce Task / Pipedrive activity) for a synced lead.
    async fn push_task(&self, task: &FollowUpTask, lead: &Lead) -> Result<CrmLink>;

    /// Changes made in the CRM after `watermark`, at most `limit`.
    async fn pull_changes(&self, watermark: Option<String>, limit: usize) -> Result<CrmChanges>;
}

/// Why someone is being told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A new high-priority lead.
    HighPriorityLead,
    /// A lead nobody touched for too long.
    StaleLead,
    /// A follow-up is due soon.
    FollowUpDue,
    /// A lead reached a critical stage (won, lost, negotiation).
    StageChange,
}

/// A message for people (Slack, e-mail, webhook).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Why.
    pub kind: NotificationKind,
    /// The lead concerned.
    pub lead: LeadExtId,
    /// Who should act, when known.
    pub recipient: Option<RepId>,
    /// The lead's priority.
    pub priority: Priority,
    /// One-line title.
    pub title: String,
    /// Text body.
    pub body: String,
}

/// Sends notifications.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one notification.
    async fn notify(&self, notification: &Notification) -> Result<()>;
}

/// What an enrichment provider found.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Enrichment {
    /// Fields it could fill (only empty fields are filled from here).
    pub company: Option<String>,
    /// Industry.
    pub industry: Option<String>,
    /// Employees.
    pub company_size: Option<u32>,
    /// Country.
    pub country: Option<String>,
    /// Anything else, merged into metadata under `enrichment`.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Provider name, for the record.
    pub provider: String,
}

/// Adds data about a lead from outside sources.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait Enricher: Send + Sync {
    /// Looks the lead up; `Ok(None)` when the provider knows nothing.
    async fn enrich(&self, fields: &LeadFields) -> Result<Option<Enrichment>>;
}

/// The time, as a port so tests and replays control it.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to (tests, simulations).
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(at))
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Makes ids, as a port so tests get predictable ones.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    /// A fresh public lead id.
    fn lead_ext_id(&self) -> LeadExtId;
    /// A fresh internal id (outbox entries, tasks, merge records).
    fn uuid(&self) -> Uuid;
}

/// Random ids: `WEB-` codes from 64 random bits, UUID v7 for the rest.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn lead_ext_id(&self) -> LeadExtId {
        let bytes = Uuid::new_v4().into_bytes();
        let mut bits = [0u8; 8];
        bits.copy_from_slice(&bytes[..8]);
        LeadExtId::from_random(u64::from_le_bytes(bits))
    }

    fn uuid(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// Predictable ids for tests: a counter scrambled into codes.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn lead_ext_id(&self) -> LeadExtId {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        // Multiplying by an odd constant spreads consecutive numbers over the code space.
        LeadExtId::from_random(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn uuid(&self) -> Uuid {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        Uuid::from_u128(u128::from(n))
    }
}

/// Marks a change's origin on outbox decisions: CRM changes are never echoed back.
pub fn should_push(origin: ChangeOrigin) -> bool {
    origin == ChangeOrigin::Local
}
