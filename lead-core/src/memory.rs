//! An in-memory [`LeadStore`] for tests, examples and embedding where
//! durability is not needed. It follows the same contract as the SQL
//! stores, so the conformance suite runs against it too.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::commit::{Commit, CommitFacts, Destination, IdempotencyKey, LoadDelta, OutboxEntry};
use crate::dedup::MergeRecord;
use crate::dedup::review::{PairPage, PairQuery, ReviewPair};
use crate::error::{Error, Result};
use crate::followup::FollowUpTask;
use crate::lead::Lead;
use crate::matchkey::{MatchKeys, email_match_key};
use crate::model::CrmLink;
use crate::model::{LeadExtId, Rep, RepId, RepLoad, RepState};
use crate::ports::{
    AccountKey, CaptureContext, Claimed, DELIVERY_MARK, DeadLetter, JobRun, JobStore, LeadReads,
    LeadStore, OutboxStore, Purged, RepStore, Replay, Retention, SyncState,
    capture_context_by_reads,
};
use crate::query::{
    Dashboard, FollowUpPage, FollowUpQuery, LeadPage, LeadQuery, dashboard_of, page_of,
};

/// An outbox entry with its delivery state.
#[derive(Debug, Clone)]
struct OutboxRow {
    entry: OutboxEntry,
    attempts: u32,
    available_at: DateTime<Utc>,
    lease: Option<(String, DateTime<Utc>)>,
}

#[derive(Debug, Default, Clone)]
struct State {
    leads: HashMap<LeadExtId, Lead>,
    by_email: HashMap<String, LeadExtId>,
    reps: BTreeMap<RepId, RepState>,
    outbox: Vec<OutboxRow>,
    dead: Vec<DeadLetter>,
    followups: Vec<FollowUpTask>,
    merges: HashMap<Uuid, MergeRecord>,
    reviews: HashMap<[LeadExtId; 2], ReviewPair>,
    idempotency: HashMap<String, IdempotencyKey>,
    watermarks: HashMap<String, (String, DateTime<Utc>)>,
    runs: HashMap<Uuid, JobRun>,
    leases: HashMap<String, (String, DateTime<Utc>)>,
}

/// A [`LeadStore`] in a mutex. Commits are atomic: every rule of the
/// contract is checked before the first write, under one lock.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    state: Mutex<State>,
    unavailable: std::sync::atomic::AtomicBool,
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store with these reps (no workload).
    pub fn with_reps(reps: impl IntoIterator<Item = Rep>) -> Self {
        let store = Self::new();
        {
            let mut state = store.lock();
            for rep in reps {
                state.reps.insert(
                    rep.id.clone(),
                    RepState {
                        rep,
                        load: RepLoad::default(),
                    },
                );
            }
        }
        store
    }

    /// Adds or replaces a rep, keeping their workload.
    pub fn upsert_rep(&self, rep: Rep) {
        let mut state = self.lock();
        match state.reps.get_mut(&rep.id) {
            Some(existing) => existing.rep = rep,
            None => {
                state.reps.insert(
                    rep.id.clone(),
                    RepState {
                        rep,
                        load: RepLoad::default(),
                    },
                );
            }
        }
    }

    /// Simulates an outage: every call fails with `Unavailable` while set.
    pub fn set_unavailable(&self, down: bool) {
        self.unavailable
            .store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every stored lead, merged ones included, ordered by creation.
    pub fn leads(&self) -> Vec<Lead> {
        let mut leads: Vec<Lead> = self.lock().leads.values().cloned().collect();
        leads.sort_by(|a, b| (a.created_at, &a.ext_id).cmp(&(b.created_at, &b.ext_id)));
        leads
    }

    /// Outbox entries not yet acknowledged nor parked, oldest first.
    pub fn outbox(&self) -> Vec<OutboxEntry> {
        self.lock()
            .outbox
            .iter()
            .map(|row| row.entry.clone())
            .collect()
    }

    /// Stored follow-up tasks, oldest first.
    pub fn followups(&self) -> Vec<FollowUpTask> {
        self.lock().followups.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied commit
        // (commits are checked before any write), so the data is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_up(&self) -> Result<()> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            Err(Error::unavailable("in-memory store is marked unavailable"))
        } else {
            Ok(())
        }
    }
}

/// Reads the facts `commit` is checked against (see [`Commit::check`]).
fn facts(state: &State, commit: &Commit) -> CommitFacts {
    let keys = commit.fact_keys();
    CommitFacts {
        versions: keys
            .ext_ids
            .iter()
            .filter_map(|id| state.leads.get(id).map(|l| (id.clone(), l.version)))
            .collect(),
        email_holders: keys
            .email_keys
            .iter()
            .filter_map(|k| state.by_email.get(k).map(|id| (k.clone(), id.clone())))
            .collect(),
        idempotency_expiry: keys
            .idempotency_keys
            .iter()
            .filter_map(|k| {
                state
                    .idempotency
                    .get(k)
                    .map(|stored| (k.clone(), stored.expires_at))
            })
            .collect(),
        known_reps: keys
            .reps
            .into_iter()
            .filter(|r| state.reps.contains_key(r))
            .collect(),
        known_followups: keys
            .followups
            .into_iter()
            .filter(|id| state.followups.iter().any(|t| t.id == *id))
            .collect(),
        stored_followups: keys
            .guarded_followups
            .into_iter()
            .filter_map(|id| {
                // The last stored version of the task (updates append).
                state
                    .followups
                    .iter()
                    .rev()
                    .find(|t| t.id == id)
                    .map(|t| (id, t.clone()))
            })
            .collect(),
    }
}

#[async_trait]
impl LeadStore for InMemoryStore {
    async fn commit(&self, commit: Commit) -> Result<Vec<Lead>> {
        self.check_up()?;
        let mut state = self.lock();
        commit.check(&facts(&state, &commit))?;
        // Pairs are decided before the first write, so a refused decision
        // leaves nothing behind (like every other rule).
        let mut reviews: Vec<ReviewPair> = Vec::with_capacity(commit.reviews.len());
        for pair in &commit.reviews {
            let stored = reviews
                .iter()
                .rev()
                .find(|p| p.leads == pair.leads)
                .or_else(|| state.reviews.get(&pair.leads));
            reviews.push(match stored {
                Some(stored) => ReviewPair::merged_with(stored, pair)?,
                None => pair.clone(),
            });
        }
        let mut written = Vec::with_capacity(commit.leads.len());
        for write in commit.leads {
            let lead = write.into_written();
            if let Some(old) = state.leads.get(&lead.ext_id) {
                let old_key = email_match_key(&old.fields.email);
                if state.by_email.get(&old_key) == Some(&lead.ext_id) {
                    state.by_email.remove(&old_key);
                }
            }
            if lead.merged_into.is_none() {
                state
                    .by_email
                    .insert(email_match_key(&lead.fields.email), lead.ext_id.clone());
            }
            state.leads.insert(lead.ext_id.clone(), lead.clone());
            written.push(lead);
        }
        state
            .outbox
            .extend(commit.outbox.into_iter().map(|entry| OutboxRow {
                available_at: entry.created_at,
                entry,
                attempts: 0,
                lease: None,
            }));
        for key in commit.idempotency {
            state.idempotency.insert(key.key.clone(), key);
        }
        state.followups.extend(commit.followups);
        for update in commit.followup_updates {
            for task in state.followups.iter_mut().filter(|t| t.id == update.id) {
                *task = update.clone();
            }
        }
        for merge in commit.merges {
            state.merges.insert(merge.id, merge);
        }
        for pair in reviews {
            state.reviews.insert(pair.leads.clone(), pair);
        }
        for delta in LoadDelta::fold(&commit.load) {
            if let Some(s) = state.reps.get_mut(&delta.rep) {
                delta.apply(&mut s.load);
            }
        }
        Ok(written)
    }

    async fn capture_context<'a>(
        &self,
        idempotency_key: Option<&'a str>,
        email_key: &str,
        account: &AccountKey,
        now: DateTime<Utc>,
    ) -> Result<CaptureContext> {
        capture_context_by_reads(self, idempotency_key, email_key, account, now).await
    }

    async fn get(&self, ext_id: &LeadExtId) -> Result<Option<Lead>> {
        self.check_up()?;
        Ok(self.lock().leads.get(ext_id).cloned())
    }

    async fn account_owner(&self, key: &AccountKey) -> Result<Option<RepId>> {
        self.check_up()?;
        if key.company.is_none() && key.domain.is_none() {
            return Ok(None);
        }
        let state = self.lock();
        let owner = state
            .leads
            .values()
            .filter(|l| l.is_open() && l.assigned_to.is_some())
            .filter(|l| {
                let keys = MatchKeys::of(&l.fields);
                (key.company.is_some() && keys.company_key() == key.company)
                    || (key.domain.is_some() && keys.corporate_domain() == key.domain.as_deref())
            })
            .max_by(|a, b| (a.updated_at, &a.ext_id).cmp(&(b.updated_at, &b.ext_id)))
            .and_then(|l| l.assigned_to.clone());
        Ok(owner)
    }

    async fn get_merge(&self, id: Uuid) -> Result<Option<MergeRecord>> {
        self.check_up()?;
        Ok(self.lock().merges.get(&id).cloned())
    }

    async fn find_by_crm_link(&self, link: &CrmLink) -> Result<Option<Lead>> {
        self.check_up()?;
        let state = self.lock();
        let found = state
            .leads
            .values()
            .filter(|l| l.merged_into.is_none())
            .filter(|l| {
                l.crm_links
                    .iter()
                    .any(|c| c.crm == link.crm && c.object == link.object && c.id == link.id)
            })
            .min_by(|a, b| a.ext_id.as_str().cmp(b.ext_id.as_str()));
        Ok(found.cloned())
    }
}

#[async_trait]
impl RepStore for InMemoryStore {
    async fn rep_states(&self) -> Result<Vec<RepState>> {
        self.check_up()?;
        Ok(self.lock().reps.values().cloned().collect())
    }

    async fn upsert_rep(&self, rep: &Rep) -> Result<()> {
        self.check_up()?;
        InMemoryStore::upsert_rep(self, rep.clone());
        Ok(())
    }
}

#[async_trait]
impl LeadReads for InMemoryStore {
    async fn list(&self, query: &LeadQuery) -> Result<LeadPage> {
        self.check_up()?;
        Ok(page_of(self.lock().leads.values(), query))
    }

    async fn dashboard(&self, since: DateTime<Utc>, top: usize) -> Result<Dashboard> {
        self.check_up()?;
        Ok(dashboard_of(self.lock().leads.values(), since, top))
    }

    async fn review_pairs(&self, query: &PairQuery) -> Result<PairPage> {
        self.check_up()?;
        Ok(query.page_of(self.lock().reviews.values()))
    }

    async fn get_review_pair(&self, id: Uuid) -> Result<Option<ReviewPair>> {
        self.check_up()?;
        Ok(self.lock().reviews.values().find(|p| p.id == id).cloned())
    }

    async fn followups(&self, query: &FollowUpQuery) -> Result<FollowUpPage> {
        self.check_up()?;
        Ok(query.page_of(self.lock().followups.iter().cloned()))
    }

    async fn get_followup(&self, id: Uuid) -> Result<Option<FollowUpTask>> {
        self.check_up()?;
        Ok(self.lock().followups.iter().find(|t| t.id == id).cloned())
    }

    async fn find_by_email_key(&self, email_key: &str) -> Result<Option<Lead>> {
        self.check_up()?;
        let state = self.lock();
        Ok(state
            .by_email
            .get(email_key)
            .and_then(|id| state.leads.get(id))
            .cloned())
    }

    async fn find_by_idempotency_key(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Replay>> {
        self.check_up()?;
        let state = self.lock();
        Ok(state
            .idempotency
            .get(key)
            .filter(|k| k.expires_at > now)
            .map(|k| Replay {
                lead: k.lead.clone(),
                request_hash: k.request_hash.clone(),
            }))
    }
}

/// The row leased to `worker`. An expired lease still counts while nobody
/// else has claimed the entry: the work was done, so its result is kept.
fn leased_row<'a>(state: &'a mut State, id: Uuid, worker: &str) -> Result<&'a mut OutboxRow> {
    let row = state
        .outbox
        .iter_mut()
        .find(|r| r.entry.id == id)
        .ok_or_else(|| Error::NotFound(format!("outbox entry {id}")))?;
    match &row.lease {
        Some((holder, _)) if holder == worker => Ok(row),
        _ => Err(Error::Conflict(format!(
            "outbox entry {id} is not leased to {worker}"
        ))),
    }
}

#[async_trait]
impl OutboxStore for InMemoryStore {
    async fn claim(
        &self,
        destination: &Destination,
        worker: &str,
        limit: usize,
        lease: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>> {
        self.check_up()?;
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut state = self.lock();
        let mut claimed = Vec::new();
        for row in state.outbox.iter_mut() {
            if claimed.len() >= limit {
                break;
            }
            let free = row.lease.as_ref().is_none_or(|(_, until)| *until <= now);
            if free && row.available_at <= now && row.entry.destination == *destination {
                row.lease = Some((worker.to_owned(), until));
                claimed.push(Claimed {
                    entry: row.entry.clone(),
                    attempts: row.attempts,
                    lease_until: until,
                });
            }
        }
        Ok(claimed)
    }

    async fn ack(&self, id: Uuid, worker: &str) -> Result<()> {
        self.check_up()?;
        let mut state = self.lock();
        leased_row(&mut state, id, worker)?;
        state.outbox.retain(|r| r.entry.id != id);
        Ok(())
    }

    async fn retry(
        &self,
        id: Uuid,
        worker: &str,
        available_at: DateTime<Utc>,
        _error: &str,
    ) -> Result<()> {
        self.check_up()?;
        let mut state = self.lock();
        let row = leased_row(&mut state, id, worker)?;
        row.attempts += 1;
        row.available_at = available_at;
        row.lease = None;
        Ok(())
    }

    async fn dead_letter(
        &self,
        id: Uuid,
        worker: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.check_up()?;
        let mut state = self.lock();
        let row = leased_row(&mut state, id, worker)?.clone();
        state.outbox.retain(|r| r.entry.id != id);
        state.dead.push(DeadLetter {
            entry: row.entry,
            attempts: row.attempts + 1,
            error: error.to_owned(),
            parked_at: now,
        });
        Ok(())
    }

    async fn dead_letters(
        &self,
        destination: &Destination,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        self.check_up()?;
        let state = self.lock();
        let of_destination = state
            .dead
            .iter()
            .filter(|d| d.entry.destination == *destination);
        Ok(of_destination.take(limit).cloned().collect())
    }

    async fn pending_count(&self, destination: &Destination) -> Result<u64> {
        self.check_up()?;
        let state = self.lock();
        let pending = state
            .outbox
            .iter()
            .filter(|r| r.entry.destination == *destination);
        Ok(pending.count() as u64)
    }

    async fn dead_count(&self, destination: &Destination) -> Result<u64> {
        self.check_up()?;
        let state = self.lock();
        let dead = state
            .dead
            .iter()
            .filter(|d| d.entry.destination == *destination);
        Ok(dead.count() as u64)
    }

    async fn requeue(&self, destination: &Destination, id: Uuid, now: DateTime<Utc>) -> Result<()> {
        self.check_up()?;
        let mut state = self.lock();
        let at = state
            .dead
            .iter()
            .position(|d| d.entry.id == id && d.entry.destination == *destination)
            .ok_or_else(|| Error::NotFound(format!("dead letter {id}")))?;
        let dead = state.dead.remove(at);
        state.outbox.push(OutboxRow {
            entry: dead.entry,
            attempts: 0,
            available_at: now,
            lease: None,
        });
        Ok(())
    }
}

#[async_trait]
impl SyncState for InMemoryStore {
    async fn watermark(&self, name: &str) -> Result<Option<String>> {
        self.check_up()?;
        Ok(self.lock().watermarks.get(name).map(|(v, _)| v.clone()))
    }

    async fn set_watermark(&self, name: &str, value: &str) -> Result<()> {
        self.check_up()?;
        self.lock()
            .watermarks
            .insert(name.to_owned(), (value.to_owned(), Utc::now()));
        Ok(())
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.check_up()?;
        let mut state = self.lock();
        let free = state
            .leases
            .get(name)
            .is_none_or(|(h, u)| h == holder || *u <= now);
        if free {
            state
                .leases
                .insert(name.to_owned(), (holder.to_owned(), until));
        }
        Ok(free)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        self.check_up()?;
        let mut state = self.lock();
        if state.leases.get(name).is_some_and(|(h, _)| h == holder) {
            state.leases.remove(name);
        }
        Ok(())
    }
}

#[async_trait]
impl JobStore for InMemoryStore {
    async fn save_run(&self, run: &JobRun) -> Result<()> {
        self.check_up()?;
        self.lock().runs.insert(run.id, run.clone());
        Ok(())
    }

    async fn get_run(&self, id: Uuid) -> Result<Option<JobRun>> {
        self.check_up()?;
        Ok(self.lock().runs.get(&id).cloned())
    }

    async fn runs(&self, job: &str, limit: usize) -> Result<Vec<JobRun>> {
        self.check_up()?;
        let state = self.lock();
        let mut runs: Vec<JobRun> = state
            .runs
            .values()
            .filter(|r| r.job == job)
            .cloned()
            .collect();
        runs.sort_by(|a, b| b.queued_at.cmp(&a.queued_at).then(b.id.cmp(&a.id)));
        runs.truncate(limit);
        Ok(runs)
    }

    async fn purge(&self, now: DateTime<Utc>, retention: &Retention) -> Result<Purged> {
        self.check_up()?;
        let mut state = self.lock();
        let mut purged = Purged::default();
        let keys = state.idempotency.len();
        state.idempotency.retain(|_, k| k.expires_at > now);
        purged.idempotency_keys = (keys - state.idempotency.len()) as u64;
        let marks_before = retention.before(now, retention.delivery_marks);
        let marks = state.watermarks.len();
        state
            .watermarks
            .retain(|name, (_, at)| !name.contains(DELIVERY_MARK) || *at >= marks_before);
        purged.delivery_marks = (marks - state.watermarks.len()) as u64;
        let runs_before = retention.before(now, retention.job_runs);
        let runs = state.runs.len();
        state
            .runs
            .retain(|_, r| r.finished_at.is_none_or(|at| at >= runs_before));
        purged.job_runs = (runs - state.runs.len()) as u64;
        Ok(purged)
    }
}
