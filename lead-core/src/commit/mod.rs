//! The commit model: everything one business operation changes, written
//! by [`LeadStore::commit`](crate::ports::LeadStore::commit) in one
//! transaction: lead writes, outbox entries for each consumer, follow-ups,
//! merge records, duplicate pairs, workload changes and idempotency keys,
//! and the rules a store checks them against.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod check;
mod load;

pub use check::{CommitFacts, FactKeys};
pub use load::{Assignments, LoadDelta};

use crate::dedup::MergeRecord;
use crate::dedup::review::ReviewPair;
use crate::followup::FollowUpTask;
use crate::lead::Lead;
use crate::model::{LeadExtId, RepId};

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
    /// Something to tell people or subscribers (the payload is a
    /// [`crate::notify::Event`]); only notification consumers get these.
    Notification,
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

    /// Notifications for people: Slack and e-mail ([`crate::notify`]).
    pub const NOTIFY: Destination = Destination(std::borrow::Cow::Borrowed("notify"));

    /// Signed outgoing webhooks to subscribers' systems ([`crate::notify`]).
    pub const WEBHOOKS: Destination = Destination(std::borrow::Cow::Borrowed("webhooks"));

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
    /// Follow-up tasks as the commit's author read them: the commit fails
    /// with [`Error::Conflict`](crate::Error::Conflict), writing nothing,
    /// unless each is stored exactly so (a compare-and-set for changes
    /// made by the system while people may change the same task, e.g.
    /// the follow-up automation marking a task overdue).
    pub followup_expected: Vec<FollowUpTask>,
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
            && self.followup_expected.is_empty()
            && self
                .leads
                .iter()
                .all(|w| w.expected_version.is_none() && w.lead.merged_into.is_none())
    }
}
