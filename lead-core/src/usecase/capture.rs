//! Capturing a lead from a form.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{MAX_CONFLICT_RETRIES, assignment_change, outbox};
use crate::dedup::{MergeRecord, merge_into};
use crate::error::{Error, Result};
use crate::followup::{FollowUpTask, plan_followup};
use crate::matchkey::MatchKeys;
use crate::model::{ChangeOrigin, Lead, LeadFields, LeadInput, Score, Stage, StageChange};
use crate::normalize::normalize;
use crate::policy::Policy;
use crate::ports::{AccountKey, Commit, Deps, OutboxKind};
use crate::routing::{RoutingDecision, RoutingRequest, route};

/// What a capture did.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureOutcome {
    /// The stored lead (the survivor when the capture was merged).
    pub lead: Lead,
    /// The e-mail was already known: the submission was merged into that lead.
    pub merged: Option<MergeRecord>,
    /// The routing decision, for new leads.
    pub routing: Option<RoutingDecision>,
    /// The planned follow-up, for new leads.
    pub followup: Option<FollowUpTask>,
}

/// Captures a lead: normalize → score → dedup by e-mail → route → plan the
/// follow-up → store everything (lead, outbox entries, follow-up, rep
/// workload) in one commit.
///
/// A submission whose e-mail (after alias folding) is already stored is
/// merged into that lead at once, never stored twice. Returns only once the
/// store has committed.
///
/// # Errors
///
/// [`Error::Invalid`] naming every bad field; the store's errors
/// (`Unavailable` when it is down) unchanged; [`Error::Conflict`] only if
/// concurrent writers kept winning [`MAX_CONFLICT_RETRIES`] times.
pub async fn capture(input: &LeadInput, policy: &Policy, deps: &Deps) -> Result<CaptureOutcome> {
    let fields = normalize(input, &policy.normalize_options())?;
    let keys = MatchKeys::of(&fields);
    let mut last_conflict = None;
    for _ in 0..MAX_CONFLICT_RETRIES {
        let now = deps.clock.now();
        let incoming = new_lead(fields.clone(), policy, deps, now);
        let attempt = match deps.store.find_by_email_key(&keys.email).await? {
            Some(existing) => merge_into_existing(existing, incoming, deps, now).await,
            None => insert_new(incoming, &keys, policy, deps, now).await,
        };
        match attempt {
            Err(Error::Conflict(why)) => last_conflict = Some(why),
            other => return other,
        }
    }
    Err(Error::Conflict(
        last_conflict.unwrap_or_else(|| "capture kept conflicting".into()),
    ))
}

/// Builds the lead a submission would become on its own.
fn new_lead(fields: LeadFields, policy: &Policy, deps: &Deps, now: DateTime<Utc>) -> Lead {
    let assessment = policy.assess(&fields, &[], now);
    let mut stage = Stage::New;
    let mut history = Vec::new();
    if policy.bant.auto_qualify_enabled && assessment.bant.qualified {
        stage = Stage::Qualified;
        history.push(StageChange {
            from: Stage::New,
            to: Stage::Qualified,
            at: now,
            notes: Some(format!("auto-qualified: BANT {}/4", assessment.bant.score)),
            origin: ChangeOrigin::Local,
        });
    }
    Lead {
        ext_id: deps.ids.lead_ext_id(),
        fields,
        score: assessment.score,
        priority: assessment.priority,
        score_breakdown: assessment.hits,
        stage,
        assigned_to: None,
        estimated_value: None,
        currency: None,
        probability_pct: policy.stage_probabilities.of(stage),
        segments: assessment.segments,
        bant: Some(assessment.bant),
        behavioral_score: Score::MIN,
        ml_score: None,
        crm_links: Vec::new(),
        created_at: now,
        updated_at: now,
        stage_changed_at: now,
        last_contacted_at: None,
        merged_into: None,
        version: 0,
        history,
        events: Vec::new(),
        routing: None,
    }
}

async fn merge_into_existing(
    existing: Lead,
    incoming: Lead,
    deps: &Deps,
    now: DateTime<Utc>,
) -> Result<CaptureOutcome> {
    let expected = existing.version;
    let merged = merge_into(&existing, &incoming, now, deps.ids.uuid());
    let (survivor, record) = (merged.survivor, merged.record);
    let entry = outbox(
        deps,
        &survivor.ext_id,
        OutboxKind::LeadUpdated,
        json!({ "merge_id": record.id }),
    );
    let mut commit = Commit::new().write(survivor, Some(expected));
    commit.merges.push(record.clone());
    commit.outbox.push(entry);
    let lead = single(deps.store.commit(commit).await?)?;
    Ok(CaptureOutcome {
        lead,
        merged: Some(record),
        routing: None,
        followup: None,
    })
}

async fn insert_new(
    mut lead: Lead,
    keys: &MatchKeys,
    policy: &Policy,
    deps: &Deps,
    now: DateTime<Utc>,
) -> Result<CaptureOutcome> {
    let account = AccountKey {
        company: keys.company_key(),
        domain: keys.corporate_domain().map(str::to_owned),
    };
    let owner = deps.store.account_owner(&account).await?;
    let mut reps = deps.store.rep_states().await?;
    let decision = route(
        &policy.routing,
        &reps,
        &RoutingRequest {
            lead: &lead.fields,
            keys,
            account_owner: owner.as_ref(),
            now,
        },
    );
    let mut commit = Commit::new();
    let mut assigned_rep = None;
    if decision.apply(&mut reps)
        && let Some(state) = reps
            .iter()
            .find(|s| Some(&s.rep.id) == decision.assigned.as_ref())
    {
        commit.load.push(assignment_change(state, now));
        lead.assigned_to = Some(state.rep.id.clone());
        assigned_rep = Some(state.rep.clone());
    }
    lead.routing = Some(decision.explanation.clone());
    let task = plan_followup(
        &policy.followup,
        lead.ext_id.clone(),
        lead.priority,
        assigned_rep.as_ref(),
        now,
        deps.ids.uuid(),
    );
    commit.outbox.push(outbox(
        deps,
        &lead.ext_id,
        OutboxKind::LeadCreated,
        json!({}),
    ));
    commit.outbox.push(outbox(
        deps,
        &lead.ext_id,
        OutboxKind::FollowUpCreated,
        json!({ "task_id": task.id }),
    ));
    commit.followups.push(task.clone());
    let commit = commit.write(lead, None);
    let lead = single(deps.store.commit(commit).await?)?;
    Ok(CaptureOutcome {
        lead,
        merged: None,
        routing: Some(decision),
        followup: Some(task),
    })
}

pub(super) fn single(mut leads: Vec<Lead>) -> Result<Lead> {
    match (leads.pop(), leads.is_empty()) {
        (Some(lead), true) => Ok(lead),
        _ => Err(Error::Internal(
            "store returned an unexpected number of leads".into(),
        )),
    }
}
