//! The work of the scheduled jobs that only need the store (SPEC
//! "Scheduled jobs"): re-scoring, segmentation and qualification as of now,
//! routing what was left unassigned, follow-up automation and
//! housekeeping. The CRM sync job and the duplicate scan have their own
//! use-cases ([`crate::sync`], [`super::scan_duplicates_with`]).
//!
//! Every job reads the leads a page at a time and writes each change as
//! its own commit (version-checked, retried on a conflict), so memory stays
//! flat however many leads there are, a run cut short keeps what it
//! finished, and a lead a person changes meanwhile is re-read, never
//! overwritten.

use serde_json::json;

use super::lead_ops::with_retries;
use super::{AssignTo, Deps, auto_qualify, load, open_load_changes, outbox, reassign};
use crate::commit::{Commit, OutboxKind};
use crate::error::{Error, Result};
use crate::followup::{FollowUpStatus, plan_followup};
use crate::lead::Lead;
use crate::model::ChangeOrigin;
use crate::policy::Policy;
use crate::ports::{JobCounts, JobStore, Retention};
use crate::query::{FollowUpQuery, LeadQuery, MAX_FOLLOWUP_PAGE, MAX_PAGE};

/// Where a long job stands, for a progress bar.
pub trait Progress: Send + Sync {
    /// `done` items of `total` (when known) are through `phase`.
    fn update(&self, phase: &str, done: u64, total: Option<u64>);
}

/// No progress shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _phase: &str, _done: u64, _total: Option<u64>) {}
}

/// Which derived values a refresh recomputes as of now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// The behavioral score, whose events lose weight as they age
    /// (`lead_behavioral_scoring`).
    Behavior,
    /// The segments (`lead_segmentation`): they depend on the behavioral
    /// score, so a lead drifts out of `engagement:hot` as its events age.
    Segments,
    /// BANT and, when the policy turns it on, auto-qualification
    /// (`lead_qualification`).
    Qualification,
}

/// Recomputes `part` for every open lead as of now and writes the leads
/// whose value changed (one commit each). A behavioral score or BANT
/// change stays here (the CRM keeps neither); a segment change is queued
/// for the CRM as a lead update, an auto-qualification as a stage change.
/// The lead's `updated_at` does not move: a derived value is no edit, and
/// a CRM change made meanwhile must not lose against it.
///
/// Counts: `leads` read, `changed`, and `qualified` (auto-qualified).
///
/// # Errors
///
/// The store's errors; a lead merged or removed meanwhile is skipped.
pub async fn refresh_leads(
    part: Refresh,
    policy: &Policy,
    deps: &Deps,
    progress: &dyn Progress,
) -> Result<JobCounts> {
    let mut counts = counts(&["leads", "changed", "qualified"]);
    let phase = match part {
        Refresh::Behavior => "behavioral scores",
        Refresh::Segments => "segments",
        Refresh::Qualification => "qualification",
    };
    let mut query = LeadQuery {
        limit: Some(MAX_PAGE),
        ..LeadQuery::default()
    };
    loop {
        let page = deps.reads.list(&query).await?;
        for lead in &page.leads {
            add(&mut counts, "leads", 1);
            let now = deps.clock.now();
            if !lead.is_open() || !refreshed(lead.clone(), part, policy, now).1 {
                continue;
            }
            let attempt = || async {
                let lead = load(deps, &lead.ext_id).await?;
                let version = lead.version;
                let before = lead.clone();
                let (mut lead, changed) = refreshed(lead, part, policy, deps.clock.now());
                if !changed {
                    return Ok(None);
                }
                let mut commit = Commit::new();
                let moved = part == Refresh::Qualification && before.stage != lead.stage;
                if moved {
                    commit.load = open_load_changes(&[&before], &[&lead]);
                    commit.outbox.push(outbox(
                        deps,
                        &lead.ext_id,
                        OutboxKind::StageChanged,
                        json!({ "from": before.stage.as_str(), "to": lead.stage.as_str() }),
                    ));
                    super::tell(
                        &mut commit,
                        Some(&before),
                        &lead,
                        ChangeOrigin::Local,
                        policy,
                        deps,
                    );
                }
                if part == Refresh::Segments && before.segments != lead.segments {
                    commit.outbox.push(outbox(
                        deps,
                        &lead.ext_id,
                        OutboxKind::LeadUpdated,
                        json!({ "job": "lead_segmentation", "segments": lead.segments }),
                    ));
                }
                lead.updated_at = before.updated_at;
                deps.store.commit(commit.write(lead, Some(version))).await?;
                Ok(Some(moved))
            };
            match with_retries(None, attempt).await {
                Ok(Some(moved)) => {
                    add(&mut counts, "changed", 1);
                    add(&mut counts, "qualified", u64::from(moved));
                }
                Ok(None) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        progress.update(phase, counts["leads"], None);
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return Ok(counts),
        }
    }
}

/// `lead` with `part` recomputed as of `now`, and whether anything changed.
fn refreshed(
    mut lead: Lead,
    part: Refresh,
    policy: &Policy,
    now: chrono::DateTime<chrono::Utc>,
) -> (Lead, bool) {
    let changed = match part {
        Refresh::Behavior => {
            let score = policy.behavior.score(&lead.events, now).score;
            let changed = score != lead.behavioral_score;
            lead.behavioral_score = score;
            changed
        }
        Refresh::Segments => {
            // Segments read the behavioral score: both move together.
            let assessment = policy.assess(&lead.fields, &lead.events, now);
            let changed = assessment.segments != lead.segments
                || assessment.behavior.score != lead.behavioral_score;
            lead.segments = assessment.segments;
            lead.behavioral_score = assessment.behavior.score;
            changed
        }
        Refresh::Qualification => {
            let bant = policy.bant.evaluate(&lead.fields, &lead.events);
            let changed = lead.bant.as_ref() != Some(&bant);
            lead.bant = Some(bant);
            changed | auto_qualify(&mut lead, policy, now).is_some()
        }
    };
    (lead, changed)
}

/// Routes every open lead that has no rep (captured when nobody was in
/// working hours, or when every rep was at capacity), exactly as an
/// `assign` by routing would, one commit each; a lead nobody can take now
/// stays unassigned for the next run.
///
/// Counts: `unassigned` found, `assigned`, `still_unassigned`, and
/// `changed_meanwhile` (changed by someone between the read and the
/// routing: left as they are).
///
/// # Errors
///
/// The store's errors.
pub async fn route_unassigned(
    policy: &Policy,
    deps: &Deps,
    progress: &dyn Progress,
) -> Result<JobCounts> {
    let mut counts = counts(&[
        "unassigned",
        "assigned",
        "still_unassigned",
        "changed_meanwhile",
    ]);
    let mut query = LeadQuery {
        limit: Some(MAX_PAGE),
        ..LeadQuery::default()
    };
    let mut read = 0;
    loop {
        let page = deps.reads.list(&query).await?;
        read += page.leads.len() as u64;
        for lead in page
            .leads
            .iter()
            .filter(|l| l.is_open() && l.assigned_to.is_none())
        {
            add(&mut counts, "unassigned", 1);
            // Conditional on the version read: a lead someone assigned (or
            // closed) since the page was read is theirs, not routing's.
            let routed = reassign(
                &lead.ext_id,
                AssignTo::Route,
                ChangeOrigin::Local,
                Some(lead.version),
                policy,
                deps,
            )
            .await;
            match routed {
                Ok(done) if done.lead.assigned_to.is_some() => add(&mut counts, "assigned", 1),
                Ok(_) | Err(Error::NotAllowed(_)) => add(&mut counts, "still_unassigned", 1),
                Err(Error::Conflict(_)) => add(&mut counts, "changed_meanwhile", 1),
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        progress.update("routing", read, None);
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return Ok(counts),
        }
    }
}

/// Follow-up automation: marks open tasks past their due time as overdue
/// (once, queued for the CRM so its task is raised there too), and plans
/// the next follow-up for every open lead that has no open task (a rep
/// completed the last one and the lead is still in play), queued for the
/// CRM like one planned at capture.
///
/// Counts: `overdue` marked, `changed_meanwhile` (a task someone changed
/// between the read and the mark: left as they made it), `leads` read,
/// `created`.
///
/// # Errors
///
/// The store's errors.
pub async fn automate_followups(
    policy: &Policy,
    deps: &Deps,
    progress: &dyn Progress,
) -> Result<JobCounts> {
    let mut counts = counts(&["overdue", "changed_meanwhile", "leads", "created"]);
    let now = deps.clock.now();
    let mut query = FollowUpQuery {
        status: Some(FollowUpStatus::Open),
        due_to: Some(now),
        limit: Some(MAX_FOLLOWUP_PAGE),
        ..FollowUpQuery::default()
    };
    loop {
        let page = deps.reads.followups(&query).await?;
        for task in page.tasks.iter().filter(|t| t.overdue_at.is_none()) {
            // One commit per task, conditional on the task as read: a rep
            // who completed, moved or annotated it meanwhile keeps their
            // change (the commit is refused and the task left alone).
            let mut marked = task.clone();
            marked.overdue_at = Some(now);
            let mut commit = Commit::new();
            commit.outbox.push(outbox(
                deps,
                &task.lead,
                OutboxKind::FollowUpUpdated,
                json!({ "task_id": task.id, "status": task.status, "due_at": task.due_at, "overdue": true }),
            ));
            commit.followup_expected.push(task.clone());
            commit.followup_updates.push(marked);
            match deps.store.commit(commit).await {
                Ok(_) => add(&mut counts, "overdue", 1),
                Err(Error::Conflict(_) | Error::NotFound(_)) => {
                    add(&mut counts, "changed_meanwhile", 1)
                }
                Err(e) => return Err(e),
            }
        }
        progress.update("overdue follow-ups", counts["overdue"], None);
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }

    // The reps' calendars, read once for the run (a task is planned in its
    // rep's time zone and working days).
    let reps = deps.reps.rep_states().await?;
    let mut query = LeadQuery {
        limit: Some(MAX_PAGE),
        ..LeadQuery::default()
    };
    loop {
        let page = deps.reads.list(&query).await?;
        for lead in page.leads.iter().filter(|l| l.is_open()) {
            add(&mut counts, "leads", 1);
            let open = FollowUpQuery {
                lead: Some(lead.ext_id.clone()),
                status: Some(FollowUpStatus::Open),
                limit: Some(1),
                ..FollowUpQuery::default()
            };
            if !deps.reads.followups(&open).await?.tasks.is_empty() {
                continue;
            }
            let rep = lead
                .assigned_to
                .as_ref()
                .and_then(|id| reps.iter().find(|s| &s.rep.id == id))
                .map(|s| &s.rep);
            let task = plan_followup(
                &policy.followup,
                lead.ext_id.clone(),
                lead.priority,
                rep,
                deps.clock.now(),
                deps.ids.uuid(),
            );
            let mut commit = Commit::new();
            commit.outbox.push(outbox(
                deps,
                &lead.ext_id,
                OutboxKind::FollowUpCreated,
                json!({ "task_id": task.id }),
            ));
            commit.followups.push(task);
            deps.store.commit(commit).await?;
            add(&mut counts, "created", 1);
        }
        progress.update("follow-up planning", counts["leads"], None);
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return Ok(counts),
        }
    }
}

/// Housekeeping: deletes expired idempotency keys, delivery marks and
/// finished job runs past `retention` ([`JobStore::purge`]). Delivered
/// outbox entries need nothing: acknowledging an entry deletes it.
///
/// Counts: `idempotency_keys`, `delivery_marks`, `job_runs` deleted.
///
/// # Errors
///
/// The store's errors.
pub async fn housekeeping(
    jobs: &dyn JobStore,
    retention: &Retention,
    deps: &Deps,
) -> Result<JobCounts> {
    let purged = jobs.purge(deps.clock.now(), retention).await?;
    Ok(JobCounts::from([
        ("idempotency_keys".to_owned(), purged.idempotency_keys),
        ("delivery_marks".to_owned(), purged.delivery_marks),
        ("job_runs".to_owned(), purged.job_runs),
    ]))
}

/// Counts named `names`, all zero (a run reports each, even when none).
pub(crate) fn counts(names: &[&str]) -> JobCounts {
    names.iter().map(|n| ((*n).to_owned(), 0)).collect()
}

/// Adds `n` to the count `name`.
pub(crate) fn add(counts: &mut JobCounts, name: &str, n: u64) {
    *counts.entry(name.to_owned()).or_default() += n;
}
