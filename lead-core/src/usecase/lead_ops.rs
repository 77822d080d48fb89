//! Operations on a stored lead: stage, owner, events, routing, merges.

use serde_json::json;
use uuid::Uuid;

use super::capture::single;
use super::{MAX_CONFLICT_RETRIES, assignment_change, load, open_load_changes, outbox};
use crate::commit::{Commit, Destination, LoadChange, OutboxKind};
use crate::dedup::review::{ReviewPair, ReviewStatus};
use crate::dedup::undo;
use crate::error::{Error, Result};
use crate::lead::Lead;
use crate::matchkey::MatchKeys;
use crate::model::{ChangeOrigin, LeadEvent, LeadExtId, RepId, Stage, StageChange};
use crate::policy::Policy;
use crate::ports::{AccountKey, should_push};
use crate::routing::{RoutingDecision, RoutingRequest, apply_assignment, route, virtual_time};
use crate::usecase::Deps;

/// Retries `attempt` after version conflicts, reading fresh state each
/// time. A change conditional on the version a client read
/// (`expected_version`) is not retried: its first conflict is the answer,
/// since every later attempt would find the same newer version.
pub(super) async fn with_retries<T, F, Fut>(
    expected_version: Option<u64>,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let tries = if expected_version.is_some() {
        1
    } else {
        MAX_CONFLICT_RETRIES
    };
    let mut last = None;
    for _ in 0..tries {
        match attempt().await {
            Err(Error::Conflict(why)) => last = Some(why),
            other => return other,
        }
    }
    Err(Error::Conflict(last.unwrap_or_default()))
}

fn check_version(lead: &Lead, expected: Option<u64>) -> Result<()> {
    match expected {
        Some(v) if v != lead.version => Err(Error::Conflict(format!(
            "lead {} is at version {}, not {v}",
            lead.ext_id, lead.version
        ))),
        _ => Ok(()),
    }
}

/// Moves a lead to another stage, checking the pipeline's transitions.
///
/// `expected_version` (when given, e.g. from an API client's `If-Match`)
/// makes a stale client fail with [`Error::Conflict`] instead of
/// overwriting a newer change; without it, conflicts are retried.
/// Closing a lead (won, lost, unqualified) frees a place in its rep's
/// open-lead capacity, and reopening one (lost to nurturing) takes it
/// back. Changes that came from the CRM are not queued back to it.
pub async fn change_stage(
    ext_id: &LeadExtId,
    to: Stage,
    notes: Option<String>,
    origin: ChangeOrigin,
    expected_version: Option<u64>,
    policy: &Policy,
    deps: &Deps,
) -> Result<Lead> {
    if let Some(notes) = &notes {
        crate::normalize::check_text("notes", notes)?;
    }
    let attempt = || async {
        let mut lead = load(deps, ext_id).await?;
        check_version(&lead, expected_version)?;
        let before = lead.clone();
        let from = lead.stage;
        from.check_transition(to)?;
        let now = deps.clock.now();
        let version = lead.version;
        lead.stage = to;
        lead.probability_pct = policy.stage_probabilities.of(to);
        lead.stage_changed_at = now;
        if should_push(origin) {
            lead.updated_at = now;
        } else {
            lead.applying_crm_change(now);
        }
        if to == Stage::Contacted && lead.last_contacted_at.is_none() {
            lead.last_contacted_at = Some(now);
        }
        lead.history.push(StageChange {
            from,
            to,
            at: now,
            notes: notes.clone(),
            origin,
        });
        let mut commit = Commit::new();
        commit.load = open_load_changes(&[&before], &[&lead]);
        if should_push(origin) {
            commit.outbox.push(outbox(
                deps,
                ext_id,
                OutboxKind::StageChanged,
                json!({ "from": from.as_str(), "to": to.as_str() }),
            ));
        }
        super::tell(&mut commit, Some(&before), &lead, origin, policy, deps);
        single(deps.store.commit(commit.write(lead, Some(version))).await?)
    };
    with_retries(expected_version, attempt).await
}

/// Who a lead should go to.
#[derive(Debug, Clone, PartialEq)]
pub enum AssignTo {
    /// This rep (must exist).
    Rep(RepId),
    /// Whoever routing picks now.
    Route,
}

/// Assigns (or reassigns) a lead, keeping reps' workloads right; the
/// lead's open follow-up tasks move to the new rep in the same commit.
pub async fn assign(
    ext_id: &LeadExtId,
    to: AssignTo,
    origin: ChangeOrigin,
    expected_version: Option<u64>,
    policy: &Policy,
    deps: &Deps,
) -> Result<Lead> {
    reassign(ext_id, to, origin, expected_version, policy, deps)
        .await
        .map(|done| done.lead)
}

/// What [`reassign`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Reassignment {
    /// The lead as stored now.
    pub lead: Lead,
    /// Its rep before, read in the same attempt that committed (so a
    /// caller counting first assignments and reassignments cannot be
    /// misled by a concurrent change).
    pub previous: Option<RepId>,
}

/// [`assign`], also telling who had the lead before.
pub async fn reassign(
    ext_id: &LeadExtId,
    to: AssignTo,
    origin: ChangeOrigin,
    expected_version: Option<u64>,
    policy: &Policy,
    deps: &Deps,
) -> Result<Reassignment> {
    let attempt = || async {
        let mut lead = load(deps, ext_id).await?;
        check_version(&lead, expected_version)?;
        let before = lead.clone();
        let now = deps.clock.now();
        let mut reps = deps.reps.rep_states().await?;
        let virtual_time = virtual_time(&reps, now);
        let (target, virtual_time) = match &to {
            AssignTo::Rep(rep) => (rep.clone(), virtual_time),
            AssignTo::Route => {
                let decision = decide(&lead.fields, &reps, policy, deps, now).await?;
                let picked = decision.assigned.clone().ok_or_else(|| {
                    Error::NotAllowed(format!(
                        "no rep can take lead {ext_id} now: {}",
                        decision.explanation.summary
                    ))
                })?;
                lead.routing = Some(decision.explanation);
                (picked, decision.virtual_time)
            }
        };
        if lead.assigned_to.as_ref() == Some(&target) {
            let previous = lead.assigned_to.clone();
            return Ok(Reassignment { lead, previous });
        }
        let state = reps
            .iter_mut()
            .find(|s| s.rep.id == target)
            .ok_or_else(|| {
                Error::invalid(
                    "assigned_to",
                    "unknown_rep",
                    format!("no rep with id {target}"),
                )
            })?;
        apply_assignment(state, virtual_time, now);
        let mut commit = Commit::new();
        commit.load.push(assignment_change(state, now));
        let previous = lead.assigned_to.take();
        if lead.stage.is_open() {
            if let Some(previous) = previous.clone() {
                commit.load.push(LoadChange::Released { rep: previous });
            }
        } else {
            // A closed lead is no open work: the assignment counts for the
            // day and the round-robin pass, not for the open load (which
            // reopening it adds).
            commit.load.push(LoadChange::Released {
                rep: target.clone(),
            });
        }
        let version = lead.version;
        lead.assigned_to = Some(target.clone());
        if should_push(origin) {
            lead.updated_at = now;
        } else {
            lead.applying_crm_change(now);
        }
        if should_push(origin) {
            commit.outbox.push(outbox(
                deps,
                ext_id,
                OutboxKind::Assigned,
                json!({ "assigned_to": target }),
            ));
        }
        // The lead's open follow-ups go with it: the new rep must see them
        // in their list, the old one no longer.
        let open_tasks = deps
            .reads
            .followups(&crate::query::FollowUpQuery {
                lead: Some(ext_id.clone()),
                status: Some(crate::followup::FollowUpStatus::Open),
                limit: Some(crate::query::MAX_FOLLOWUP_PAGE),
                ..Default::default()
            })
            .await?;
        for mut task in open_tasks.tasks {
            if task.assigned_to.as_ref() == Some(&target) {
                continue;
            }
            task.assigned_to = Some(target.clone());
            if should_push(origin) {
                commit.outbox.push(outbox(
                    deps,
                    ext_id,
                    OutboxKind::FollowUpUpdated,
                    json!({ "task_id": task.id, "assigned_to": target }),
                ));
            }
            commit.followup_updates.push(task);
        }
        super::tell(&mut commit, Some(&before), &lead, origin, policy, deps);
        let lead = single(deps.store.commit(commit.write(lead, Some(version))).await?)?;
        Ok(Reassignment { lead, previous })
    };
    with_retries(expected_version, attempt).await
}

async fn decide(
    fields: &crate::model::LeadFields,
    reps: &[crate::model::RepState],
    policy: &Policy,
    deps: &Deps,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<RoutingDecision> {
    let keys = MatchKeys::of(fields);
    let account = AccountKey {
        company: keys.company_key(),
        domain: keys.corporate_domain().map(str::to_owned),
    };
    let owner = deps.store.account_owner(&account).await?;
    Ok(route(
        &policy.routing,
        reps,
        &RoutingRequest {
            lead: fields,
            keys: &keys,
            account_owner: owner.as_ref(),
            now,
        },
    ))
}

/// A change to a lead's editable fields (`PATCH /api/leads/{id}`): for
/// each field, `None` leaves it, `Some(None)` clears it, `Some(Some(v))`
/// sets it. The e-mail is the lead's identity and is not editable here
/// (merge two leads instead).
#[derive(Debug, Clone, PartialEq, Default)]
#[allow(missing_docs)] // the field names are the lead's (SPEC "The lead")
pub struct LeadEdit {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub company: Option<Option<String>>,
    pub job_title: Option<Option<String>>,
    pub website: Option<Option<String>>,
    pub country: Option<Option<String>>,
    pub industry: Option<Option<String>>,
    /// Expected deal value, not negative.
    pub estimated_value: Option<Option<rust_decimal::Decimal>>,
    /// ISO 4217 code of `estimated_value` (`EUR`); required once a value is set.
    pub currency: Option<Option<String>>,
    /// Marketing consent, as the person gave it (for instance after
    /// checking a [pending change](crate::dedup::pending) that says so).
    pub consent_marketing: Option<Option<bool>>,
    /// `true` removes the lead's pending changes (they were looked at:
    /// applied through the other fields, or dismissed).
    pub dismiss_pending_changes: bool,
}

impl LeadEdit {
    /// The names of the fields this edit touches.
    pub fn touched(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for (name, touched) in [
            ("first_name", self.first_name.is_some()),
            ("last_name", self.last_name.is_some()),
            ("phone", self.phone.is_some()),
            ("company", self.company.is_some()),
            ("job_title", self.job_title.is_some()),
            ("website", self.website.is_some()),
            ("country", self.country.is_some()),
            ("industry", self.industry.is_some()),
            ("estimated_value", self.estimated_value.is_some()),
            ("currency", self.currency.is_some()),
            ("consent_marketing", self.consent_marketing.is_some()),
            ("pending_changes", self.dismiss_pending_changes),
        ] {
            if touched {
                names.push(name);
            }
        }
        names
    }

    /// Applies the edit to `lead`, validated as an API change: unlike a
    /// capture, a value that does not parse is refused, naming the field
    /// (the person editing is there to correct it).
    pub(crate) fn apply(&self, lead: &mut Lead, policy: &Policy) -> Result<()> {
        use crate::normalize::{check_text, fix_name_case, parse_url};
        let mut problems = Vec::new();
        let mut text = |name: &str, value: &Option<Option<String>>| -> Option<Option<String>> {
            let value = value.as_ref()?;
            let cleaned = value.as_deref().map(str::trim).filter(|v| !v.is_empty());
            if let Some(v) = cleaned {
                if let Err(Error::Invalid { fields }) = check_text(name, v) {
                    problems.extend(fields);
                    return None;
                }
                if v.len() > crate::normalize::MAX_FIELD_LEN {
                    problems.push(crate::error::FieldError::new(
                        name,
                        "too_long",
                        format!(
                            "{name} is longer than {} bytes",
                            crate::normalize::MAX_FIELD_LEN
                        ),
                    ));
                    return None;
                }
            }
            Some(cleaned.map(str::to_owned))
        };
        let first_name = text("first_name", &self.first_name);
        let last_name = text("last_name", &self.last_name);
        let phone = text("phone", &self.phone);
        let company = text("company", &self.company);
        let job_title = text("job_title", &self.job_title);
        let website = text("website", &self.website);
        let country = text("country", &self.country);
        let industry = text("industry", &self.industry);
        let currency = text("currency", &self.currency);
        let f = &mut lead.fields;
        if let Some(v) = first_name {
            f.first_name = v.map(|n| fix_name_case(&n));
        }
        if let Some(v) = last_name {
            f.last_name = v.map(|n| fix_name_case(&n));
        }
        if let Some(v) = company {
            f.company = v;
        }
        if let Some(v) = job_title {
            f.job_title = v;
        }
        if let Some(v) = country {
            f.country = v;
        }
        if let Some(v) = industry {
            f.industry = v.map(|i| i.to_lowercase());
        }
        if let Some(v) = website {
            match v.map(|w| parse_url(&w, "website")).transpose() {
                Ok(w) => f.website = w,
                Err(Error::Invalid { fields }) => problems.extend(fields),
                Err(other) => return Err(other),
            }
        }
        if let Some(v) = phone {
            let region = f
                .country
                .as_deref()
                .and_then(crate::model::Region::of_country)
                .unwrap_or(policy.default_region);
            match v
                .map(|p| crate::model::Phone::parse(&p, region))
                .transpose()
            {
                Ok(p) => f.phone = p,
                Err(Error::Invalid { fields }) => problems.extend(fields),
                Err(other) => return Err(other),
            }
        }
        if let Some(v) = currency {
            match v {
                Some(code) if code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()) => {
                    lead.currency = Some(code.to_ascii_uppercase());
                }
                Some(_) => problems.push(crate::error::FieldError::new(
                    "currency",
                    "invalid_currency",
                    "currency is an ISO 4217 code such as EUR or USD",
                )),
                None => lead.currency = None,
            }
        }
        if let Some(v) = self.estimated_value {
            match v {
                Some(value) if value.is_sign_negative() => {
                    problems.push(crate::error::FieldError::new(
                        "estimated_value",
                        "out_of_range",
                        "estimated_value cannot be negative",
                    ));
                }
                other => lead.estimated_value = other,
            }
        }
        if let Some(v) = self.consent_marketing {
            lead.fields.consent_marketing = v;
        }
        if self.dismiss_pending_changes {
            lead.fields
                .metadata
                .remove(crate::dedup::pending::PENDING_CHANGES);
        }
        if problems.is_empty() && lead.estimated_value.is_some() && lead.currency.is_none() {
            problems.push(crate::error::FieldError::new(
                "currency",
                "required",
                "give the currency of estimated_value (EUR, USD, ...)",
            ));
        }
        if !problems.is_empty() {
            return Err(Error::Invalid { fields: problems });
        }
        // A field set or cleared by a person is no longer a value kept unread.
        let touched = self.touched();
        lead.fields
            .warnings
            .retain(|w| !touched.contains(&w.field.as_str()));
        Ok(())
    }
}

/// Changes a lead's editable fields and re-scores it (score, priority,
/// BANT, segments; BANT auto-qualify applies). `expected_version` makes a
/// stale client fail with [`Error::Conflict`]; every change is queued for
/// the CRM. An edit that names no field changes nothing and returns the
/// lead as it is (after the version check).
///
/// # Errors
///
/// [`Error::Invalid`] naming every bad field (nothing is written),
/// [`Error::NotFound`], [`Error::Conflict`].
pub async fn edit_lead(
    ext_id: &LeadExtId,
    edit: &LeadEdit,
    expected_version: Option<u64>,
    policy: &Policy,
    deps: &Deps,
) -> Result<Lead> {
    edit_lead_as(
        ext_id,
        edit,
        ChangeOrigin::Local,
        expected_version,
        policy,
        deps,
    )
    .await
}

/// [`edit_lead`] for a change made at `origin`: one the CRM made is
/// written and re-assessed the same way, but nothing is queued back to
/// the CRM ([`should_push`](crate::ports::should_push)).
pub async fn edit_lead_as(
    ext_id: &LeadExtId,
    edit: &LeadEdit,
    origin: ChangeOrigin,
    expected_version: Option<u64>,
    policy: &Policy,
    deps: &Deps,
) -> Result<Lead> {
    let attempt = || async {
        let mut lead = load(deps, ext_id).await?;
        check_version(&lead, expected_version)?;
        if edit.touched().is_empty() {
            return Ok(lead);
        }
        edit.apply(&mut lead, policy)?;
        let now = deps.clock.now();
        let version = lead.version;
        let before_write = lead.updated_at;
        let mut commit = reassessed(
            &mut lead,
            json!({ "fields": edit.touched() }),
            policy,
            deps,
            now,
        );
        if !should_push(origin) {
            // Reassessed set the time; the write is the CRM's.
            lead.updated_at = before_write;
            lead.applying_crm_change(now);
            // The CRM's own edit is not told back to it; what our rules
            // decided from it (an auto-qualification's stage change) is.
            commit
                .outbox
                .retain(|e| e.destination != Destination::CRM || e.kind != OutboxKind::LeadUpdated);
        }
        single(deps.store.commit(commit.write(lead, Some(version))).await?)
    };
    with_retries(expected_version, attempt).await
}

/// Re-assesses `lead` as of `now` (scores, BANT, segments; BANT
/// auto-qualify) and builds the commit that tells the CRM: a
/// `LeadUpdated` entry carrying `why`, and, when auto-qualify moved the
/// lead, its stage change and workload. The caller writes the lead.
fn reassessed(
    lead: &mut Lead,
    why: serde_json::Value,
    policy: &Policy,
    deps: &Deps,
    now: chrono::DateTime<chrono::Utc>,
) -> Commit {
    let assessment = policy.assess(&lead.fields, &lead.events, now);
    lead.score = assessment.score;
    lead.priority = assessment.priority;
    lead.score_breakdown = assessment.hits;
    lead.segments = assessment.segments;
    lead.bant = Some(assessment.bant);
    lead.behavioral_score = assessment.behavior.score;
    lead.updated_at = now;
    let before = lead.clone();
    let qualified_from = super::auto_qualify(lead, policy, now);
    let mut commit = Commit::new();
    commit
        .outbox
        .push(outbox(deps, &lead.ext_id, OutboxKind::LeadUpdated, why));
    if let Some(from) = qualified_from {
        commit.load = open_load_changes(&[&before], &[&*lead]);
        commit.outbox.push(outbox(
            deps,
            &lead.ext_id,
            OutboxKind::StageChanged,
            json!({ "from": from.as_str(), "to": lead.stage.as_str() }),
        ));
        super::tell(
            &mut commit,
            Some(&before),
            lead,
            crate::model::ChangeOrigin::Local,
            policy,
            deps,
        );
    }
    commit
}

/// What routing would decide for a lead that is not stored (a form's
/// fields), now, without storing or applying anything.
///
/// # Errors
///
/// [`Error::Invalid`] when the e-mail is missing or invalid.
pub async fn route_preview(
    input: &crate::model::LeadInput,
    policy: &Policy,
    deps: &Deps,
) -> Result<RoutingDecision> {
    let fields = crate::normalize::normalize(input, &policy.normalize_options())?;
    let reps = deps.reps.rep_states().await?;
    decide(&fields, &reps, policy, deps, deps.clock.now()).await
}

/// What routing would decide for a stored lead now, without applying it.
pub async fn route_dry_run(
    ext_id: &LeadExtId,
    policy: &Policy,
    deps: &Deps,
) -> Result<RoutingDecision> {
    let lead = load(deps, ext_id).await?;
    let reps = deps.reps.rep_states().await?;
    decide(&lead.fields, &reps, policy, deps, deps.clock.now()).await
}

/// Records a behavioral event and re-scores behavior, BANT and segments as
/// of now; with BANT auto-qualify on, a lead the event makes qualified
/// moves to `qualified` in the same commit.
pub async fn record_event(
    ext_id: &LeadExtId,
    event: LeadEvent,
    policy: &Policy,
    deps: &Deps,
) -> Result<Lead> {
    let attempt = || async {
        let mut lead = load(deps, ext_id).await?;
        let now = deps.clock.now();
        let version = lead.version;
        let at = lead.events.partition_point(|e| e.at <= event.at);
        lead.events.insert(at, event.clone());
        let commit = reassessed(&mut lead, json!({ "event": event.kind }), policy, deps, now);
        let commit = commit.write(lead, Some(version));
        single(deps.store.commit(commit).await?)
    };
    with_retries(None, attempt).await
}

/// Undoes a merge exactly: the survivor gets its pre-merge state back and
/// the absorbed lead, when it was a stored lead, reappears as it was.
///
/// A submission merged at capture (same e-mail) was never a lead of its
/// own: undoing that merge restores the survivor only and returns `None`
/// for the absorbed side (two open leads may not share an e-mail).
///
/// Undoing a merge of two stored leads records their pair as dismissed,
/// so the duplicate scan does not merge them again; reps' open-lead counts
/// follow the leads back.
///
/// Refused with [`Error::Conflict`] when the survivor changed after the
/// merge (undoing would silently drop that change).
pub async fn undo_merge(merge_id: Uuid, deps: &Deps) -> Result<(Lead, Option<Lead>)> {
    let record = deps
        .store
        .get_merge(merge_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("merge {merge_id}")))?;
    let current = deps
        .store
        .get(&record.survivor)
        .await?
        .ok_or_else(|| Error::NotFound(format!("lead {}", record.survivor)))?;
    if !record.can_undo(&current) {
        return Err(Error::Conflict(format!(
            "lead {} changed after merge {merge_id}; undo would lose that change",
            current.ext_id
        )));
    }
    let (survivor, absorbed) = undo(&record, &current)?;
    let stored_absorbed = deps.store.get(&absorbed.ext_id).await?;
    let survivor_id = survivor.ext_id.clone();
    let mut commit = Commit::new();
    match &stored_absorbed {
        Some(stored) => {
            commit.load = open_load_changes(&[&current, stored], &[&survivor, &absorbed]);
            // A person said these are two people: no later scan may merge
            // them again.
            let now = deps.clock.now();
            let pair = ReviewPair::new(
                deps.ids.uuid(),
                survivor.ext_id.clone(),
                absorbed.ext_id.clone(),
                record.similarity,
                now,
            );
            commit
                .reviews
                .push(pair.decided(ReviewStatus::Dismissed, Some(merge_id), now));
        }
        None => commit.load = open_load_changes(&[&current], &[&survivor]),
    }
    let mut commit = commit.write(survivor, Some(current.version));
    if let Some(stored) = &stored_absorbed {
        commit = commit.write(absorbed, Some(stored.version));
    }
    commit.outbox.push(outbox(
        deps,
        &survivor_id,
        OutboxKind::Merged,
        json!({ "undo": merge_id }),
    ));
    let mut written = deps.store.commit(commit).await?.into_iter();
    let survivor = written
        .next()
        .ok_or_else(|| Error::internal("store returned no lead"))?;
    Ok((survivor, written.next()))
}
