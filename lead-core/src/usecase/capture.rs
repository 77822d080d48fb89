//! Capturing a lead from a form.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{MAX_CONFLICT_RETRIES, assignment_change, outbox};
use crate::commit::{Commit, IdempotencyKey, OutboxKind};
use crate::dedup::{MergeRecord, merge_into, propose};
use crate::error::{Error, Result};
use crate::followup::{FollowUpTask, plan_followup};
use crate::lead::Lead;
use crate::matchkey::MatchKeys;
use crate::model::{ChangeOrigin, FieldWarning, LeadFields, LeadInput, Score, Stage};
use crate::normalize::normalize;
use crate::policy::Policy;
use crate::ports::AccountKey;
use crate::routing::{RoutingDecision, RoutingRequest, route};
use crate::usecase::Deps;

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
    /// The idempotency key was seen before: nothing was stored, `lead` is
    /// the first request's lead as it is now.
    pub replayed: bool,
    /// An [unverified](Provenance::Unverified) submission for a known
    /// e-mail: no field of the lead changed; what the submission sent that
    /// differs is kept as a [pending change](crate::dedup::pending) (when
    /// there was anything new).
    pub pending: bool,
    /// What this submission sent that was kept but could not be used
    /// (also on the lead, [`LeadFields::warnings`]).
    pub warnings: Vec<FieldWarning>,
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
    capture_once(input, None, policy, deps).await
}

/// Who vouches for a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Provenance {
    /// A sender that proved who it is (a webhook signature, an API key, the
    /// embedding application itself): its submission for a known e-mail is
    /// merged into that lead, and its values win as the survivorship rules
    /// say.
    #[default]
    Verified,
    /// Anyone (an unsigned post, a public form): anybody can type a known
    /// address, so a submission for a known e-mail changes no field and no
    /// consent of that lead; what it sent is kept as a pending change.
    Unverified,
}

/// A client's idempotency key and how long it is remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The key (`Idempotency-Key`, `webhook-id`, or a hash of the normalized
    /// submission), namespaced by the caller so that keys of different
    /// senders never meet.
    pub key: String,
    /// How long a repeat of the key returns the first result.
    pub window: chrono::Duration,
    /// A hash of this request (e.g. SHA-256 hex of the normalized input):
    /// stored with the key, and a live key stored with another hash is
    /// refused ([`Error::Invalid`] on `Idempotency-Key`, `key_reused`).
    /// `None` skips the comparison.
    pub request_hash: Option<String>,
}

/// [`capture`] that runs at most once per idempotency key within its
/// window: a repeat (a double submit, a webhook retry) returns the lead the
/// first request stored, with [`CaptureOutcome::replayed`] set, and stores
/// nothing. The key is written in the same commit as the lead, so a
/// concurrent repeat either finds it or conflicts and then finds it.
///
/// # Errors
///
/// Those of [`capture`], and [`Error::Invalid`] on `Idempotency-Key`
/// (`key_reused`) when the key is live and was stored with a
/// [`Idempotency::request_hash`] other than this request's (a key stored
/// without a hash, or a request without one, replays as before).
pub async fn capture_once(
    input: &LeadInput,
    idempotency: Option<&Idempotency>,
    policy: &Policy,
    deps: &Deps,
) -> Result<CaptureOutcome> {
    capture_from(input, Provenance::Verified, idempotency, policy, deps).await
}

/// [`capture_once`] for a submission of the given [`Provenance`]: an
/// [unverified](Provenance::Unverified) one for a known e-mail changes no
/// field of that lead and is kept as a pending change instead
/// ([`CaptureOutcome::pending`]); a new e-mail is a new lead whoever sent it.
///
/// # Errors
///
/// Those of [`capture_once`].
pub async fn capture_from(
    input: &LeadInput,
    provenance: Provenance,
    idempotency: Option<&Idempotency>,
    policy: &Policy,
    deps: &Deps,
) -> Result<CaptureOutcome> {
    let fields = normalize(input, &policy.normalize_options())?;
    let keys = MatchKeys::of(&fields);
    let account = AccountKey {
        company: keys.company_key(),
        domain: keys.corporate_domain().map(str::to_owned),
    };
    let mut last_conflict = None;
    for _ in 0..MAX_CONFLICT_RETRIES {
        let now = deps.clock.now();
        // Every read the decision needs, in one store call.
        let context = deps
            .store
            .capture_context(
                idempotency.map(|i| i.key.as_str()),
                &keys.email,
                &account,
                now,
            )
            .await?;
        if let Some(replay) = context.replay {
            if let (Some(stored), Some(this)) = (
                replay.request_hash.as_deref(),
                idempotency.and_then(|i| i.request_hash.as_deref()),
            ) && stored != this
            {
                return Err(Error::invalid(
                    "Idempotency-Key",
                    "key_reused",
                    "this key was used for a different request",
                ));
            }
            let lead = super::load(deps, &replay.lead).await?;
            return Ok(CaptureOutcome {
                lead,
                merged: None,
                routing: None,
                followup: None,
                replayed: true,
                pending: false,
                warnings: fields.warnings.clone(),
            });
        }
        let attempt = match context.existing {
            Some(existing) if provenance == Provenance::Unverified => {
                keep_pending(existing, &fields, idempotency, deps, now).await
            }
            Some(existing) => {
                let incoming = new_lead(fields.clone(), policy, deps, now);
                merge_into_existing(existing, incoming, idempotency, deps, now).await
            }
            None => {
                let incoming = new_lead(fields.clone(), policy, deps, now);
                let routing = Routing {
                    owner: context.owner,
                    reps: context.reps,
                };
                insert_new(incoming, &keys, routing, idempotency, policy, deps, now).await
            }
        };
        match attempt {
            Err(Error::Conflict(why)) => last_conflict = Some(why),
            Ok(outcome) => {
                return Ok(CaptureOutcome {
                    warnings: fields.warnings.clone(),
                    ..outcome
                });
            }
            other => return other,
        }
    }
    Err(Error::Conflict(
        last_conflict.unwrap_or_else(|| "capture kept conflicting".into()),
    ))
}

fn remember(
    commit: &mut Commit,
    idempotency: Option<&Idempotency>,
    lead: &Lead,
    now: DateTime<Utc>,
) {
    if let Some(idem) = idempotency {
        commit.idempotency.push(IdempotencyKey {
            key: idem.key.clone(),
            lead: lead.ext_id.clone(),
            created_at: now,
            expires_at: now + idem.window,
            request_hash: idem.request_hash.clone(),
        });
    }
}

/// Builds the lead a submission would become on its own.
fn new_lead(fields: LeadFields, policy: &Policy, deps: &Deps, now: DateTime<Utc>) -> Lead {
    let assessment = policy.assess(&fields, &[], now);
    let mut lead = Lead {
        ext_id: deps.ids.lead_ext_id(),
        fields,
        score: assessment.score,
        priority: assessment.priority,
        score_breakdown: assessment.hits,
        stage: Stage::New,
        assigned_to: None,
        estimated_value: None,
        currency: None,
        probability_pct: policy.stage_probabilities.of(Stage::New),
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
        history: Vec::new(),
        events: Vec::new(),
        routing: None,
        crm_applied: None,
    };
    super::auto_qualify(&mut lead, policy, now);
    lead
}

/// An unverified submission for a known lead: its new values become a
/// pending change of that lead (one commit with the idempotency key and an
/// outbox entry), or nothing is written but the key when it brings nothing
/// new.
async fn keep_pending(
    existing: Lead,
    submitted: &LeadFields,
    idempotency: Option<&Idempotency>,
    deps: &Deps,
    now: DateTime<Utc>,
) -> Result<CaptureOutcome> {
    let mut commit = Commit::new();
    remember(&mut commit, idempotency, &existing, now);
    let lead = match propose(&existing, submitted, now) {
        Some(proposed) => {
            commit.outbox.push(outbox(
                deps,
                &proposed.ext_id,
                OutboxKind::LeadUpdated,
                json!({ "pending_change": now }),
            ));
            let expected = existing.version;
            single(
                deps.store
                    .commit(commit.write(proposed, Some(expected)))
                    .await?,
            )?
        }
        None => {
            if idempotency.is_some() {
                deps.store.commit(commit).await?;
            }
            existing
        }
    };
    Ok(CaptureOutcome {
        lead,
        merged: None,
        routing: None,
        followup: None,
        replayed: false,
        pending: true,
        warnings: Vec::new(),
    })
}

async fn merge_into_existing(
    existing: Lead,
    incoming: Lead,
    idempotency: Option<&Idempotency>,
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
    let mut commit = Commit::new();
    commit.load = super::open_load_changes(&[&existing], &[&survivor]);
    remember(&mut commit, idempotency, &survivor, now);
    let mut commit = commit.write(survivor, Some(expected));
    commit.merges.push(record.clone());
    commit.outbox.push(entry);
    let lead = single(deps.store.commit(commit).await?)?;
    Ok(CaptureOutcome {
        lead,
        merged: Some(record),
        routing: None,
        followup: None,
        replayed: false,
        pending: false,
        warnings: Vec::new(),
    })
}

/// What routing a new lead reads from the store.
struct Routing {
    owner: Option<crate::model::RepId>,
    reps: Vec<crate::model::RepState>,
}

async fn insert_new(
    mut lead: Lead,
    keys: &MatchKeys,
    routing: Routing,
    idempotency: Option<&Idempotency>,
    policy: &Policy,
    deps: &Deps,
    now: DateTime<Utc>,
) -> Result<CaptureOutcome> {
    let Routing { owner, mut reps } = routing;
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
    remember(&mut commit, idempotency, &lead, now);
    super::tell(&mut commit, None, &lead, ChangeOrigin::Local, policy, deps);
    let commit = commit.write(lead, None);
    let lead = single(deps.store.commit(commit).await?)?;
    Ok(CaptureOutcome {
        lead,
        merged: None,
        routing: Some(decision),
        followup: Some(task),
        replayed: false,
        pending: false,
        warnings: Vec::new(),
    })
}

pub(super) fn single(mut leads: Vec<Lead>) -> Result<Lead> {
    match (leads.pop(), leads.is_empty()) {
        (Some(lead), true) => Ok(lead),
        _ => Err(Error::internal(
            "store returned an unexpected number of leads",
        )),
    }
}
