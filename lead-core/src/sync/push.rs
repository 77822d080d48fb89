//! The push: the CRM's outbox entries ([`Destination::CRM`]) delivered
//! through a [`CrmClient`], each entry acknowledged only after the CRM
//! took it, retried with backoff when the failure is temporary, parked in
//! the dead letters when it can never succeed or its retry budget is
//! spent.
//!
//! One run ([`push_once`]) claims a batch under the store's lease, pushes
//! each lead once whatever number of its entries were waiting (the CRM
//! gets the lead's state as it is now, so several changes cost one
//! upsert), records the CRM's ids on the lead without queueing anything
//! (a link is not a change to echo), then pushes the batch's follow-up
//! tasks, whose leads are linked by then.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::commit::{Commit, Destination, OutboxKind};
use crate::error::{Error, Result};
use crate::lead::Lead;
use crate::model::{CrmLink, LeadExtId};
use crate::ports::{Claimed, CrmClient, OutboxStore, PushOutcome, TaskPush};
use crate::usecase::Deps;

/// How a push run claims, retries and gives up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushConfig {
    /// The lease holder's name (unique per worker and process).
    pub worker: String,
    /// Entries claimed per run. A capture queues two (the lead and its
    /// first follow-up), so the default 2000 fill five sObject Collections
    /// calls (200 records each) of leads and five of tasks.
    pub batch: usize,
    /// How long the claimed entries stay this worker's (long enough for a
    /// full batch's calls; a lease that runs out lets another worker push
    /// again, which upserts make harmless).
    pub lease: Duration,
    /// Attempts after which a temporary failure parks the entry.
    pub max_attempts: u32,
    /// The first retry's delay; each further one doubles it.
    pub base_delay: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            worker: "crm-push".into(),
            batch: 2000,
            lease: Duration::from_secs(300),
            max_attempts: 12,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30 * 60),
        }
    }
}

/// What one push run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PushReport {
    /// Entries claimed.
    pub claimed: usize,
    /// Leads the CRM took (created or updated).
    pub leads_synced: usize,
    /// Follow-up tasks the CRM took.
    pub tasks_synced: usize,
    /// Entries acknowledged (done).
    pub acked: usize,
    /// Entries put back for a later attempt.
    pub retried: usize,
    /// Entries parked in the dead letters.
    pub dead_lettered: usize,
    /// Entries whose lease another worker took meanwhile (that worker
    /// pushes them again; upserts make the repeat harmless).
    pub lost_leases: usize,
}

/// The delay before attempt `attempts + 1` of `entry`, by [`backoff`]
/// with the push's delays.
pub fn retry_delay(config: &PushConfig, entry: Uuid, attempts: u32, error: &Error) -> Duration {
    backoff(config.base_delay, config.max_delay, entry, attempts, error)
}

/// The delay before attempt `attempts + 1` of outbox entry `entry`:
/// `base · 2^attempts` capped at `max`, of which the upper half is jitter,
/// spread by the entry id so entries that failed together do not come
/// back together. A `Retry-After` the other side sent (up to
/// [`MAX_RETRY_AFTER`]) is the least it waits. Every outbox consumer (the CRM push, notifications) retries
/// by this one rule.
pub fn backoff(
    base: Duration,
    max: Duration,
    entry: Uuid,
    attempts: u32,
    error: &Error,
) -> Duration {
    let doubled = base.saturating_mul(1u32.checked_shl(attempts.min(31)).unwrap_or(u32::MAX));
    let ceiling = doubled.min(max);
    let half = ceiling / 2;
    // A fixed, well-mixed fraction per (entry, attempt): deterministic, so
    // tests and replays see the same schedule.
    let mixed = (entry.as_u128() as u64 ^ u64::from(attempts))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(29);
    let jitter = half.mul_f64((mixed >> 11) as f64 / (1u64 << 53) as f64);
    let delay = half + jitter;
    match error {
        Error::RateLimited {
            retry_after: Some(after),
        } => delay.max((*after).min(MAX_RETRY_AFTER)),
        _ => delay,
    }
}

/// The longest `Retry-After` honoured: a day (Standard Webhooks' example
/// schedule's longest gap). A receiver asking for more (or for a date in
/// 9999) is retried after a day rather than never, and cannot overflow
/// the clock.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// One push run: claim, push, acknowledge, retry or park. A store that
/// fails while entries are claimed leaves them to their lease (another
/// run takes them when it ends).
pub async fn push_once(
    deps: &Deps,
    outbox: &dyn OutboxStore,
    crm: &dyn CrmClient,
    config: &PushConfig,
) -> Result<PushReport> {
    let now = deps.clock.now();
    let claimed = outbox
        .claim(
            &Destination::CRM,
            &config.worker,
            config.batch,
            config.lease,
            now,
        )
        .await?;
    let mut run = Run {
        outbox,
        config,
        now,
        report: PushReport {
            claimed: claimed.len(),
            ..PushReport::default()
        },
    };
    let (leads, tasks) = split(claimed);
    run.push_leads(deps, crm, leads).await?;
    run.push_tasks(deps, crm, tasks).await?;
    Ok(run.report)
}

/// The entries of each lead, in the order leads first appear, and the
/// follow-up task entries.
fn split(claimed: Vec<Claimed>) -> (Vec<(LeadExtId, Vec<Claimed>)>, Vec<Claimed>) {
    let mut leads: Vec<(LeadExtId, Vec<Claimed>)> = Vec::new();
    let mut index: HashMap<LeadExtId, usize> = HashMap::new();
    let mut tasks = Vec::new();
    for entry in claimed {
        if matches!(
            entry.entry.kind,
            OutboxKind::FollowUpCreated | OutboxKind::FollowUpUpdated
        ) {
            tasks.push(entry);
            continue;
        }
        let lead = entry.entry.lead.clone();
        match index.get(&lead) {
            Some(&i) => leads[i].1.push(entry),
            None => {
                index.insert(lead.clone(), leads.len());
                leads.push((lead, vec![entry]));
            }
        }
    }
    (leads, tasks)
}

/// One run's state: where to answer and what was done.
struct Run<'a> {
    outbox: &'a dyn OutboxStore,
    config: &'a PushConfig,
    now: DateTime<Utc>,
    report: PushReport,
}

impl Run<'_> {
    async fn push_leads(
        &mut self,
        deps: &Deps,
        crm: &dyn CrmClient,
        groups: Vec<(LeadExtId, Vec<Claimed>)>,
    ) -> Result<()> {
        let mut leads = Vec::with_capacity(groups.len());
        let mut entries = Vec::with_capacity(groups.len());
        for (id, group) in groups {
            match deps.store.get(&id).await? {
                Some(lead) => {
                    leads.push(lead);
                    entries.push(group);
                }
                None => {
                    let gone = Error::NotFound(format!("lead {id}"));
                    self.park_all(&group, &gone).await?;
                }
            }
        }
        if leads.is_empty() {
            return Ok(());
        }
        let outcomes = match crm.push_leads(&leads).await {
            Ok(outcomes) if outcomes.len() == leads.len() => outcomes,
            Ok(outcomes) => {
                let err = Error::internal(format!(
                    "the CRM answered {} outcomes for {} leads",
                    outcomes.len(),
                    leads.len()
                ));
                return self.fail_all(entries.iter().flatten(), &err).await;
            }
            Err(err) => return self.fail_all(entries.iter().flatten(), &err).await,
        };
        for ((lead, group), outcome) in leads.iter().zip(&entries).zip(outcomes) {
            match outcome {
                PushOutcome::Synced(links) => match record_links(deps, lead, links).await {
                    Ok(()) => {
                        self.report.leads_synced += 1;
                        for entry in group {
                            self.ack(entry).await?;
                        }
                    }
                    Err(err) => self.fail_all(group, &err).await?,
                },
                PushOutcome::Rejected(reason) => {
                    self.park_all(group, &Error::NotAllowed(reason)).await?;
                }
                PushOutcome::Retry(reason) => {
                    self.fail_all(group, &Error::unavailable(reason)).await?;
                }
                PushOutcome::Partly {
                    links,
                    problem,
                    temporary,
                } => {
                    // The lead is in the CRM: its tasks may go, whatever
                    // happens to the rest.
                    let recorded = record_links(deps, lead, links).await;
                    let err = match recorded {
                        Err(err) => err,
                        Ok(()) if temporary => Error::unavailable(problem),
                        Ok(()) => Error::NotAllowed(problem),
                    };
                    self.fail_all(group, &err).await?;
                }
            }
        }
        Ok(())
    }

    /// The batch's follow-up tasks, each once in its current state
    /// whatever number of its entries were waiting, in one call (the
    /// adapter batches). A task whose lead is not in the CRM yet waits
    /// for the lead's push.
    async fn push_tasks(
        &mut self,
        deps: &Deps,
        crm: &dyn CrmClient,
        entries: Vec<Claimed>,
    ) -> Result<()> {
        let mut pushes: Vec<TaskPush> = Vec::new();
        let mut groups: Vec<Vec<Claimed>> = Vec::new();
        let mut index: HashMap<Uuid, usize> = HashMap::new();
        for entry in entries {
            let Some(task_id) = entry
                .entry
                .payload
                .get("task_id")
                .and_then(|v| v.as_str())
                .and_then(|v| Uuid::try_parse(v).ok())
            else {
                let bad = Error::internal("follow-up entry without a task_id");
                self.park(&entry, &bad).await?;
                continue;
            };
            if let Some(&i) = index.get(&task_id) {
                groups[i].push(entry);
                continue;
            }
            let Some(task) = deps.reads.get_followup(task_id).await? else {
                let gone = Error::NotFound(format!("follow-up task {task_id}"));
                self.park(&entry, &gone).await?;
                continue;
            };
            let Some(lead) = deps.store.get(&task.lead).await? else {
                let gone = Error::NotFound(format!("lead {}", task.lead));
                self.park(&entry, &gone).await?;
                continue;
            };
            if !lead.crm_links.iter().any(|l| l.crm == crm.kind()) {
                let waiting =
                    Error::unavailable(format!("lead {} is not in the CRM yet", lead.ext_id));
                self.fail(&entry, &waiting).await?;
                continue;
            }
            index.insert(task_id, pushes.len());
            pushes.push(TaskPush { task, lead });
            groups.push(vec![entry]);
        }
        if pushes.is_empty() {
            return Ok(());
        }
        let outcomes = match crm.push_tasks(&pushes).await {
            Ok(outcomes) if outcomes.len() == pushes.len() => outcomes,
            Ok(outcomes) => {
                let err = Error::internal(format!(
                    "the CRM answered {} outcomes for {} tasks",
                    outcomes.len(),
                    pushes.len()
                ));
                return self.fail_all(groups.iter().flatten(), &err).await;
            }
            Err(err) => return self.fail_all(groups.iter().flatten(), &err).await,
        };
        for (group, outcome) in groups.iter().zip(outcomes) {
            match outcome {
                PushOutcome::Synced(_) => {
                    self.report.tasks_synced += 1;
                    for entry in group {
                        self.ack(entry).await?;
                    }
                }
                PushOutcome::Rejected(reason)
                | PushOutcome::Partly {
                    problem: reason,
                    temporary: false,
                    ..
                } => {
                    self.park_all(group, &Error::NotAllowed(reason)).await?;
                }
                PushOutcome::Retry(reason)
                | PushOutcome::Partly {
                    problem: reason,
                    temporary: true,
                    ..
                } => {
                    self.fail_all(group, &Error::unavailable(reason)).await?;
                }
            }
        }
        Ok(())
    }

    /// Done: the entry leaves the queue. A lease lost meanwhile is counted,
    /// not an error (the new holder pushes again).
    async fn ack(&mut self, entry: &Claimed) -> Result<()> {
        if held(
            self.outbox.ack(entry.entry.id, &self.config.worker).await,
            &mut self.report.lost_leases,
        )? {
            self.report.acked += 1;
        }
        Ok(())
    }

    async fn fail_all<'e>(
        &mut self,
        entries: impl IntoIterator<Item = &'e Claimed>,
        err: &Error,
    ) -> Result<()> {
        for entry in entries {
            self.fail(entry, err).await?;
        }
        Ok(())
    }

    /// A failure worth retrying ([`Error::is_worth_retrying`]: a
    /// temporary one, or refused credentials) within the budget comes
    /// back later; anything else is parked.
    async fn fail(&mut self, entry: &Claimed, err: &Error) -> Result<()> {
        if !err.is_worth_retrying() || entry.attempts + 1 >= self.config.max_attempts {
            return self.park(entry, err).await;
        }
        let delay = retry_delay(self.config, entry.entry.id, entry.attempts, err);
        let at = self.now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        let answer = self
            .outbox
            .retry(entry.entry.id, &self.config.worker, at, &err.chain())
            .await;
        if held(answer, &mut self.report.lost_leases)? {
            self.report.retried += 1;
        }
        Ok(())
    }

    async fn park_all(&mut self, entries: &[Claimed], err: &Error) -> Result<()> {
        for entry in entries {
            self.park(entry, err).await?;
        }
        Ok(())
    }

    async fn park(&mut self, entry: &Claimed, err: &Error) -> Result<()> {
        let answer = self
            .outbox
            .dead_letter(entry.entry.id, &self.config.worker, &err.chain(), self.now)
            .await;
        if held(answer, &mut self.report.lost_leases)? {
            self.report.dead_lettered += 1;
        }
        Ok(())
    }
}

/// Reads a worker's answer about a claimed entry (ack, retry, park):
/// `true` when it took, `false` when the lease was lost meanwhile (counted
/// in `lost_leases`: the new holder sends the entry again), a store error
/// otherwise. Every outbox consumer reads its answers by this rule.
pub(crate) fn held(answer: Result<()>, lost_leases: &mut usize) -> Result<bool> {
    match answer {
        Ok(()) => Ok(true),
        Err(Error::Conflict(_) | Error::NotFound(_)) => {
            *lost_leases += 1;
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

/// Stores the CRM's ids on the lead (one per CRM object, the newest
/// wins), with no outbox entry: a link is bookkeeping, not a change the
/// CRM must hear of. A concurrent change to the lead is read again.
pub async fn record_links(deps: &Deps, pushed: &Lead, links: Vec<CrmLink>) -> Result<()> {
    store_links(deps, pushed, links, None).await
}

/// [`record_links`] for a lead just made from a CRM record (a person
/// added in Pipedrive): its content stands as of the CRM's `crm_at`, so
/// a later change of that record (made after `crm_at`, perhaps delivered
/// before the lead was written) is newer than anything done here.
pub async fn record_links_from_crm(
    deps: &Deps,
    lead: &Lead,
    links: Vec<CrmLink>,
    crm_at: DateTime<Utc>,
) -> Result<()> {
    store_links(deps, lead, links, Some(crm_at)).await
}

async fn store_links(
    deps: &Deps,
    pushed: &Lead,
    links: Vec<CrmLink>,
    crm_at: Option<DateTime<Utc>>,
) -> Result<()> {
    const ATTEMPTS: usize = 5;
    for _ in 0..ATTEMPTS {
        let Some(current) = deps.store.get(&pushed.ext_id).await? else {
            return Err(Error::NotFound(format!("lead {}", pushed.ext_id)));
        };
        let mut updated = current.clone();
        if let Some(local_at) = crm_at {
            updated.crm_applied = Some(crate::lead::CrmApplied {
                at: updated.updated_at,
                local_at,
            });
        }
        for link in &links {
            match updated
                .crm_links
                .iter_mut()
                .find(|l| l.crm == link.crm && l.object == link.object)
            {
                Some(stored) if stored == link => {}
                Some(stored) => *stored = link.clone(),
                None => updated.crm_links.push(link.clone()),
            }
        }
        if updated == current {
            return Ok(());
        }
        match deps
            .store
            .commit(Commit::new().write(updated, Some(current.version)))
            .await
        {
            Ok(_) => return Ok(()),
            Err(Error::Conflict(_)) => continue,
            Err(err) => return Err(err),
        }
    }
    Err(Error::unavailable(format!(
        "lead {} kept changing while its CRM link was recorded",
        pushed.ext_id
    )))
}
