//! The store ports, split by who calls them: [`LeadStore`] for the
//! use-cases that capture and change leads, [`RepStore`] for the reps and
//! their workload, [`LeadReads`] for the API and dashboard reads. An
//! adapter implements all three; [`Store`] names that whole.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::commit::Commit;
use crate::dedup::MergeRecord;
use crate::dedup::review::{PairPage, PairQuery, ReviewPair};
use crate::error::Result;
use crate::followup::FollowUpTask;
use crate::lead::Lead;
use crate::model::{CrmLink, LeadExtId, Rep, RepId, RepState};
use crate::query::{Dashboard, FollowUpPage, FollowUpQuery, LeadPage, LeadQuery};

/// The keys account matching looks a company up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct AccountKey {
    /// [`crate::MatchKeys::company_key`] of the company name.
    pub company: Option<String>,
    /// Corporate e-mail domain ([`crate::MatchKeys::corporate_domain`]).
    pub domain: Option<String>,
}

/// The capture and write side: what the use-cases that create and change
/// leads read before they decide, and the one write.
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

    /// Everything a capture reads before it decides, in one call, so a
    /// store over the network can answer with one round trip: the lead a
    /// live `idempotency_key` points at (as
    /// [`LeadReads::find_by_idempotency_key`]; when there is one, the other
    /// fields may be left empty), the unmerged lead of `email_key` (as
    /// [`LeadReads::find_by_email_key`]), the account's owner (as
    /// [`account_owner`](Self::account_owner)) and every rep with their
    /// workload (as [`RepStore::rep_states`]).
    async fn capture_context<'a>(
        &self,
        idempotency_key: Option<&'a str>,
        email_key: &str,
        account: &AccountKey,
        now: DateTime<Utc>,
    ) -> Result<CaptureContext>;

    /// One lead by public id (merged leads included).
    async fn get(&self, ext_id: &LeadExtId) -> Result<Option<Lead>>;

    /// The rep who owns the most recently updated open lead of this account (company or corporate domain).
    async fn account_owner(&self, key: &AccountKey) -> Result<Option<RepId>>;

    /// A stored merge record, to undo it.
    async fn get_merge(&self, id: Uuid) -> Result<Option<MergeRecord>>;

    /// The lead linked to a CRM record (its CRM, object and id), to apply
    /// the CRM's change to it; of several leads sharing the record (two
    /// leads with one e-mail are one Pipedrive person), the first by id.
    async fn find_by_crm_link(&self, link: &CrmLink) -> Result<Option<Lead>>;
}

/// The sales reps and their workload (the workload itself changes only
/// through [`Commit::load`]).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait RepStore: Send + Sync {
    /// Every rep with their current workload.
    async fn rep_states(&self) -> Result<Vec<RepState>>;

    /// Adds a rep or updates their profile, keeping their workload.
    async fn upsert_rep(&self, rep: &Rep) -> Result<()>;
}

/// The read side: pages and figures for the API and the dashboard, and
/// single records to show. Nothing here is read before a write decides
/// (that is [`LeadStore`]).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait LeadReads: Send + Sync {
    /// One page of unmerged leads matching the query, newest first
    /// (the meaning of each filter is [`LeadQuery::matches`]).
    async fn list(&self, query: &LeadQuery) -> Result<LeadPage>;

    /// Dashboard figures for leads created since `since`, with at most
    /// `top` performers (must equal [`crate::query::dashboard_of`] over the
    /// same leads).
    async fn dashboard(&self, since: DateTime<Utc>, top: usize) -> Result<Dashboard>;

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

    /// The unmerged lead whose [`crate::email_match_key`] is `email_key`.
    async fn find_by_email_key(&self, email_key: &str) -> Result<Option<Lead>>;

    /// The lead an unexpired idempotency key points at, with the hash of
    /// the request that stored the key.
    async fn find_by_idempotency_key(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Replay>>;
}

/// A whole store: the three sides together, as an adapter provides them
/// (implemented for every type that implements the three).
pub trait Store: LeadStore + RepStore + LeadReads {}

impl<T: LeadStore + RepStore + LeadReads + ?Sized> Store for T {}

/// [`LeadStore::capture_context`] made of the reads it stands for, one by
/// one, for a store that has no faster way (in memory, or a local file
/// where a read costs no round trip).
pub async fn capture_context_by_reads<S: Store + ?Sized>(
    store: &S,
    idempotency_key: Option<&str>,
    email_key: &str,
    account: &AccountKey,
    now: DateTime<Utc>,
) -> Result<CaptureContext> {
    let replay = match idempotency_key {
        Some(key) => store.find_by_idempotency_key(key, now).await?,
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
        existing: store.find_by_email_key(email_key).await?,
        owner: store.account_owner(account).await?,
        reps: store.rep_states().await?,
    })
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

/// What a live idempotency key points at
/// ([`LeadReads::find_by_idempotency_key`], [`CaptureContext::replay`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replay {
    /// The lead the first request produced.
    pub lead: LeadExtId,
    /// [`IdempotencyKey::request_hash`](crate::commit::IdempotencyKey::request_hash) as stored.
    #[serde(default)]
    pub request_hash: Option<String>,
}
