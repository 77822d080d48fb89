//! Use-cases: the product's operations, written only against the ports so
//! they run unchanged in the server, in tests with fakes, and embedded.
//!
//! Each use-case reads what it needs, decides with the pure rules of this
//! crate, and writes everything it changed in **one** [`Commit`], so a
//! failing store never leaves half of an operation behind. Concurrent
//! changes are detected by versions: on a conflict the use-case reads
//! again and decides again, a bounded number of times.
//!
//! [`Commit`]: crate::commit::Commit

mod capture;
mod dedup;
mod deps;
mod followups;
mod jobs;
mod lead_ops;
mod reps;

pub use capture::{CaptureOutcome, Idempotency, Provenance, capture, capture_from, capture_once};
pub use dedup::{
    MergeOutcome, PairDecision, ScanReport, StoredDuplicates, StoredLead, decide_pair,
    find_stored_duplicates, merge_leads, scan_duplicates, scan_duplicates_with,
};
pub use deps::Deps;
pub use followups::{FollowUpChange, update_followup};
pub use jobs::{
    NoProgress, Progress, Refresh, automate_followups, housekeeping, refresh_leads,
    route_unassigned,
};
pub(crate) use jobs::{add, counts};
pub use lead_ops::{
    AssignTo, LeadEdit, Reassignment, assign, change_stage, edit_lead, edit_lead_as, reassign,
    record_event, route_dry_run, route_preview, undo_merge,
};
pub use reps::{RepSync, check_rep, save_reps, sync_reps};

use crate::commit::{Destination, OutboxEntry, OutboxKind};
use crate::error::{Error, Result};
use crate::lead::Lead;
use crate::model::LeadExtId;

/// How many times a use-case re-reads and retries after a version conflict.
///
/// Every round of a conflict has a winner (the first commit of the round),
/// so N writers racing for one lead all finish within N rounds without any
/// backoff; the bound is set well above the concurrency one lead sees (a
/// burst of double submits or webhook retries) and only stops a livelock.
pub const MAX_CONFLICT_RETRIES: usize = 64;

async fn load(deps: &Deps, ext_id: &LeadExtId) -> Result<Lead> {
    match deps.store.get(ext_id).await? {
        Some(lead) if lead.merged_into.is_none() => Ok(lead),
        Some(lead) => Err(Error::NotFound(format!(
            "lead {ext_id} was merged into {}",
            lead.merged_into.map(|m| m.to_string()).unwrap_or_default()
        ))),
        None => Err(Error::NotFound(format!("lead {ext_id}"))),
    }
}

/// The workload change that records a rep's new assignment, read from the
/// rep's state after [`crate::routing::apply_assignment`].
fn assignment_change(
    state: &crate::model::RepState,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::commit::LoadChange {
    crate::commit::LoadChange::Assigned {
        rep: state.rep.id.clone(),
        at: now,
        local_day: state.load.today.unwrap_or_else(|| now.date_naive()),
        pass: state.load.pass,
    }
}

/// The workload changes that take reps from the open leads of `before`
/// to those of `after` (the same leads before and after one operation):
/// a rep with fewer open, assigned, unmerged leads is released once per
/// lead, one with more gets [`LoadChange::Reopened`](crate::commit::LoadChange::Reopened)
/// once per lead. Closing, reopening, merging and undoing a merge all
/// count workload through this one rule.
fn open_load_changes(before: &[&Lead], after: &[&Lead]) -> Vec<crate::commit::LoadChange> {
    use std::collections::BTreeMap;
    let mut delta: BTreeMap<&crate::model::RepId, i64> = BTreeMap::new();
    let counted = |lead: &&&Lead| lead.is_open();
    for lead in before.iter().filter(counted) {
        if let Some(rep) = &lead.assigned_to {
            *delta.entry(rep).or_default() -= 1;
        }
    }
    for lead in after.iter().filter(counted) {
        if let Some(rep) = &lead.assigned_to {
            *delta.entry(rep).or_default() += 1;
        }
    }
    let mut changes = Vec::new();
    for (rep, n) in delta {
        let change = if n < 0 {
            crate::commit::LoadChange::Released { rep: rep.clone() }
        } else {
            crate::commit::LoadChange::Reopened { rep: rep.clone() }
        };
        changes.extend(std::iter::repeat_n(change, n.unsigned_abs() as usize));
    }
    changes
}

/// BANT auto-qualification (SPEC "BANT qualification"): with
/// `auto_qualify_enabled`, a lead whose BANT verdict reached the threshold
/// moves to `qualified` from `new`, `contacted` or `nurturing`, with a
/// history entry. A lead a person marked `unqualified`, or one already
/// further along, is left alone by events and edits (a new capture of the
/// same person follows the merge's own stage rule, `crate::dedup::merge`:
/// renewed interest reopens a closed lead). Returns the stage it left.
fn auto_qualify(
    lead: &mut Lead,
    policy: &crate::policy::Policy,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<crate::model::Stage> {
    use crate::model::{ChangeOrigin, Stage, StageChange};
    let bant = lead.bant.as_ref()?;
    let from = lead.stage;
    if !policy.bant.auto_qualify_enabled
        || !bant.qualified
        || !matches!(from, Stage::New | Stage::Contacted | Stage::Nurturing)
    {
        return None;
    }
    let notes = format!("auto-qualified: BANT {}/4", bant.score);
    lead.stage = Stage::Qualified;
    lead.probability_pct = policy.stage_probabilities.of(Stage::Qualified);
    lead.stage_changed_at = now;
    lead.history.push(StageChange {
        from,
        to: Stage::Qualified,
        at: now,
        notes: Some(notes),
        origin: ChangeOrigin::Local,
    });
    Some(from)
}

/// Queues in `commit` what the change from `before` (`None`: a new lead)
/// to `after` means for people ([`crate::notify::changes`]), for each
/// notification consumer the policy names.
fn tell(
    commit: &mut crate::commit::Commit,
    before: Option<&Lead>,
    after: &Lead,
    origin: crate::model::ChangeOrigin,
    policy: &crate::policy::Policy,
    deps: &Deps,
) {
    let settings = &policy.notifications;
    if settings.deliver_to.is_empty() {
        return;
    }
    let events = crate::notify::changes(before, after, origin, settings);
    crate::notify::queue(commit, events, settings, &*deps.clock, &*deps.ids);
}

fn outbox(
    deps: &Deps,
    lead: &LeadExtId,
    kind: OutboxKind,
    payload: serde_json::Value,
) -> OutboxEntry {
    OutboxEntry {
        id: deps.ids.uuid(),
        destination: Destination::CRM,
        lead: lead.clone(),
        kind,
        payload,
        created_at: deps.clock.now(),
    }
}

#[cfg(test)]
mod tests;
