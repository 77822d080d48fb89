//! The pull: the CRM's changes since the stored watermark, applied to the
//! local leads field by field under a [`ConflictRule`], as changes that
//! came from the CRM (so they are never queued back to it). The watermark
//! moves only after every change of the page was applied or deliberately
//! skipped, so a failed run repeats its page and applies nothing twice
//! (applying a value the lead already has changes nothing).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::lead::Lead;
use crate::model::{ChangeOrigin, CrmKind, RepId, Stage};
use crate::policy::Policy;
use crate::ports::{CrmChange, CrmClient, SyncState};
use crate::usecase::{self, AssignTo, Deps, LeadEdit};

/// Which side wins when the CRM changed a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictRule {
    /// The CRM's value wins unless the CRM has none.
    PreferCrmUnlessBlank,
    /// The CRM's value always wins (a blank one included, where the field
    /// can be blank).
    AlwaysCrm,
    /// The newer change wins: the CRM's value is applied only when the
    /// CRM changed it after the lead's own last change of it.
    #[default]
    NewestWins,
    /// The field is not taken from the CRM.
    DontSync,
}

/// How a pull run reads and applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullConfig {
    /// The watermark's name in [`SyncState`].
    pub watermark: String,
    /// Changes read per run (SPEC `max_records_per_run`, 100).
    pub max_records_per_run: usize,
    /// The rule for the stage (SPEC `sync_stages: false` is `DontSync`).
    pub stage: ConflictRule,
    /// The rule for the owner.
    pub owner: ConflictRule,
    /// The rule for the contact fields ([`CONTACT_FIELDS`](crate::ports::CONTACT_FIELDS)).
    pub contact: ConflictRule,
    /// Rules for single contact fields, over `contact` (e.g. `phone` →
    /// [`ConflictRule::DontSync`]).
    pub contact_fields: BTreeMap<String, ConflictRule>,
}

impl Default for PullConfig {
    fn default() -> Self {
        PullConfig {
            watermark: "crm.pull".into(),
            max_records_per_run: 100,
            stage: ConflictRule::NewestWins,
            owner: ConflictRule::NewestWins,
            contact: ConflictRule::NewestWins,
            contact_fields: BTreeMap::new(),
        }
    }
}

/// What one pull run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PullReport {
    /// Changes the CRM returned.
    pub fetched: usize,
    /// Field values written to a lead.
    pub applied: usize,
    /// Field values left because the lead's own change was newer, the
    /// rule said so, or the lead already had them.
    pub kept_local: usize,
    /// Changes to records no local lead is linked to.
    pub unknown: usize,
    /// Stage changes the local rules refuse (e.g. out of a closed stage).
    pub refused: usize,
}

/// Whether the CRM's value is applied: `crm` is the CRM's value (`None`:
/// blank there), `local` the lead's, `local_at` when the lead last changed
/// it, `crm_at` when the CRM did.
fn wins<T: PartialEq>(
    rule: ConflictRule,
    crm: Option<&T>,
    local: Option<&T>,
    crm_at: DateTime<Utc>,
    local_at: DateTime<Utc>,
) -> bool {
    if crm == local {
        return false;
    }
    match rule {
        ConflictRule::DontSync => false,
        ConflictRule::AlwaysCrm => true,
        ConflictRule::PreferCrmUnlessBlank => crm.is_some(),
        ConflictRule::NewestWins => crm_at > local_at,
    }
}

/// One pull run: read the changes since the watermark, apply them, move
/// the watermark.
pub async fn pull_once(
    deps: &Deps,
    state: &dyn SyncState,
    crm: &dyn CrmClient,
    policy: &Policy,
    config: &PullConfig,
) -> Result<PullReport> {
    let since = state.watermark(&config.watermark).await?;
    let page = crm.pull_changes(since, config.max_records_per_run).await?;
    let mut report = PullReport {
        fetched: page.changes.len(),
        ..PullReport::default()
    };
    for change in &page.changes {
        apply(deps, crm.kind(), policy, config, change, &mut report).await?;
    }
    if let Some(next) = page.next_watermark {
        state.set_watermark(&config.watermark, &next).await?;
    }
    Ok(report)
}

/// The lead a change is about: by our id when the CRM record carries it,
/// else by the link.
async fn lead_of(deps: &Deps, change: &CrmChange) -> Result<Option<Lead>> {
    if let Some(id) = &change.lead
        && let Some(lead) = deps.store.get(id).await?
    {
        return Ok(Some(lead));
    }
    deps.store.find_by_crm_link(&change.link).await
}

/// Changes the CRM sent on its own (a Salesforce Outbound Message, a
/// Pipedrive webhook), applied under the same rules as pulled ones:
/// per-field conflict rules, an older change never over a newer value,
/// nothing queued back to the CRM. Applying the same change twice changes
/// nothing the second time under every rule but
/// [`ConflictRule::AlwaysCrm`]; a receiver that can get repeats should
/// drop them by the CRM's delivery id first.
pub async fn apply_changes(
    deps: &Deps,
    crm: CrmKind,
    policy: &Policy,
    config: &PullConfig,
    changes: &[CrmChange],
) -> Result<PullReport> {
    let mut report = PullReport {
        fetched: changes.len(),
        ..PullReport::default()
    };
    for change in changes {
        apply(deps, crm, policy, config, change, &mut report).await?;
    }
    Ok(report)
}

/// A change the CRM delivered on its own (a webhook that can come
/// again, late, or out of order), applied in the order of the CRM's own
/// time per record: a delivery not newer than one already applied for
/// the same record changes nothing; a newer one is judged like a pulled
/// change, against the lead's own last change
/// ([`Lead::last_local_change`]). Per record, `state` keeps the newest
/// delivered change's time under `crm.record.<crm>.<object>.<id>`.
/// Deliveries for one record must be applied one at a time.
pub async fn apply_delivered(
    deps: &Deps,
    state: &dyn SyncState,
    crm: CrmKind,
    policy: &Policy,
    config: &PullConfig,
    change: &CrmChange,
) -> Result<PullReport> {
    let mut report = PullReport {
        fetched: 1,
        ..PullReport::default()
    };
    let key = delivered_key(crm, &change.link);
    let newest = state
        .watermark(&key)
        .await?
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.to_utc());
    if newest.is_some_and(|newest| change.changed_at <= newest) {
        report.kept_local += 1;
        return Ok(report);
    }
    apply(deps, crm, policy, config, change, &mut report).await?;
    let at = change
        .changed_at
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    state.set_watermark(&key, &at).await?;
    Ok(report)
}

/// Where [`apply_delivered`] keeps a record's newest delivered change.
fn delivered_key(crm: CrmKind, link: &crate::model::CrmLink) -> String {
    format!("crm.record.{}.{}.{}", crm.as_str(), link.object, link.id)
}

/// Applies one change; a lead that changes meanwhile (a push recording
/// its CRM ids, a user's edit) is read again and the change judged again,
/// never dropped: after a few tries the error makes the pull repeat its
/// page, or the CRM send the webhook again.
async fn apply(
    deps: &Deps,
    crm: CrmKind,
    policy: &Policy,
    config: &PullConfig,
    change: &CrmChange,
    report: &mut PullReport,
) -> Result<()> {
    const ATTEMPTS: usize = 5;
    for _ in 0..ATTEMPTS {
        let mut attempt = PullReport::default();
        let settled = apply_once(deps, crm, policy, config, change, &mut attempt).await?;
        // Writes of an attempt that met a newer version are kept (the
        // next attempt finds their values in place).
        report.applied += attempt.applied;
        if settled {
            report.kept_local += attempt.kept_local;
            report.unknown += attempt.unknown;
            report.refused += attempt.refused;
            return Ok(());
        }
    }
    Err(Error::unavailable(format!(
        "a lead kept changing while the CRM's change of {} {} was applied to it",
        change.link.object, change.link.id
    )))
}

/// One try of [`apply`]: `false` when a write met a newer version.
async fn apply_once(
    deps: &Deps,
    crm: CrmKind,
    policy: &Policy,
    config: &PullConfig,
    change: &CrmChange,
    report: &mut PullReport,
) -> Result<bool> {
    // A change names a record of the CRM it came from; one naming
    // another CRM's record is no lead's change here.
    let found = if change.link.crm == crm {
        lead_of(deps, change).await?
    } else {
        None
    };
    let Some(lead) = found else {
        report.unknown += 1;
        return Ok(true);
    };
    let lead = lead_merged_into(deps, lead).await?;
    // The lead's last change made here: each field below is judged
    // against it, not against a write that applied a CRM change (an
    // earlier field's, or another record's of the same lead).
    let local_at = lead.last_local_change();
    let mut settled = true;
    if let Some(stage) = change.stage {
        settled &= apply_stage(deps, policy, config, change, &lead, stage, report).await?;
    }
    if let Some(owner) = &change.owner {
        // Read again: a stage change above moved the version.
        let lead = deps.store.get(&lead.ext_id).await?.unwrap_or(lead.clone());
        settled &=
            apply_owner(deps, policy, config, change, &lead, owner, local_at, report).await?;
    }
    if !change.contact.is_empty() {
        let lead = deps.store.get(&lead.ext_id).await?.unwrap_or(lead);
        settled &= apply_contact(deps, policy, config, change, &lead, local_at, report).await?;
    }
    Ok(settled)
}

/// The lead's value of the contact field `name`.
fn contact_value<'a>(lead: &'a Lead, name: &str) -> Option<&'a str> {
    let f = &lead.fields;
    match name {
        "first_name" => f.first_name.as_deref(),
        "last_name" => f.last_name.as_deref(),
        "phone" => f.phone.as_ref().map(|p| p.as_str()),
        "company" => f.company.as_deref(),
        "job_title" => f.job_title.as_deref(),
        "website" => f.website.as_deref(),
        "country" => f.country.as_deref(),
        "industry" => f.industry.as_deref(),
        _ => None,
    }
}

/// The place of the contact field `name` in an edit.
fn field_slot<'e>(edit: &'e mut LeadEdit, name: &str) -> Option<&'e mut Option<Option<String>>> {
    Some(match name {
        "first_name" => &mut edit.first_name,
        "last_name" => &mut edit.last_name,
        "phone" => &mut edit.phone,
        "company" => &mut edit.company,
        "job_title" => &mut edit.job_title,
        "website" => &mut edit.website,
        "country" => &mut edit.country,
        "industry" => &mut edit.industry,
        _ => return None,
    })
}

/// The contact fields the CRM changed and the rules let in, written as
/// one edit from the CRM (re-assessed, nothing queued back). The lead's
/// last change stands for each field's (the lead keeps no per-field
/// times), so under newest-wins a CRM value older than any local change
/// waits for a later CRM change.
async fn apply_contact(
    deps: &Deps,
    policy: &Policy,
    config: &PullConfig,
    change: &CrmChange,
    lead: &Lead,
    local_at: DateTime<Utc>,
    report: &mut PullReport,
) -> Result<bool> {
    let mut edit = LeadEdit::default();
    let mut taken = 0;
    let mut kept = 0;
    for (name, value) in &change.contact {
        let rule = config
            .contact_fields
            .get(name)
            .copied()
            .unwrap_or(config.contact);
        let local = contact_value(lead, name);
        if local == Some(value.as_str()) {
            continue;
        }
        if !wins(
            rule,
            Some(&value.as_str()),
            local.as_ref(),
            change.changed_at,
            local_at,
        ) {
            kept += 1;
            continue;
        }
        let Some(slot) = field_slot(&mut edit, name) else {
            continue;
        };
        // Each value is tried on its own: one our rules refuse (a phone
        // that does not parse) is counted and left out, the others apply.
        let mut alone = LeadEdit::default();
        let alone_slot = field_slot(&mut alone, name);
        if let Some(alone_slot) = alone_slot {
            *alone_slot = Some(Some(value.clone()));
        }
        if alone.apply(&mut lead.clone(), policy).is_err() {
            report.refused += 1;
            continue;
        }
        *slot = Some(Some(value.clone()));
        taken += 1;
    }
    if kept > 0 && taken == 0 {
        report.kept_local += 1;
    }
    if taken == 0 {
        return Ok(true);
    }
    let written = usecase::edit_lead_as(
        &lead.ext_id,
        &edit,
        ChangeOrigin::Crm,
        Some(lead.version),
        policy,
        deps,
    )
    .await;
    tally(report, written)
}

/// A merged-away lead's changes go to the lead it was merged into.
async fn lead_merged_into(deps: &Deps, mut lead: Lead) -> Result<Lead> {
    for _ in 0..4 {
        let Some(survivor) = &lead.merged_into else {
            return Ok(lead);
        };
        match deps.store.get(survivor).await? {
            Some(next) => lead = next,
            None => return Ok(lead),
        }
    }
    Ok(lead)
}

async fn apply_stage(
    deps: &Deps,
    policy: &Policy,
    config: &PullConfig,
    change: &CrmChange,
    lead: &Lead,
    stage: Stage,
    report: &mut PullReport,
) -> Result<bool> {
    if !wins(
        config.stage,
        Some(&stage),
        Some(&lead.stage),
        change.changed_at,
        lead.last_local_stage_change(),
    ) {
        report.kept_local += 1;
        return Ok(true);
    }
    let written = usecase::change_stage(
        &lead.ext_id,
        stage,
        None,
        ChangeOrigin::Crm,
        Some(lead.version),
        policy,
        deps,
    )
    .await;
    tally(report, written)
}

#[allow(clippy::too_many_arguments)] // the pull's context, spelled out
async fn apply_owner(
    deps: &Deps,
    policy: &Policy,
    config: &PullConfig,
    change: &CrmChange,
    lead: &Lead,
    owner: &RepId,
    local_at: DateTime<Utc>,
    report: &mut PullReport,
) -> Result<bool> {
    if !wins(
        config.owner,
        Some(owner),
        lead.assigned_to.as_ref(),
        change.changed_at,
        local_at,
    ) {
        report.kept_local += 1;
        return Ok(true);
    }
    let written = usecase::assign(
        &lead.ext_id,
        AssignTo::Rep(owner.clone()),
        ChangeOrigin::Crm,
        Some(lead.version),
        policy,
        deps,
    )
    .await;
    tally(report, written)
}

/// Counts a write of a pulled value: refused when the local rules say no
/// (a stage move out of a closed stage, an owner who is not one of our
/// reps, a value that does not read, a lead gone), kept local when the lead changed meanwhile (its
/// change is newer; a later CRM change decides again).
/// Counts a write; `false` when it met a newer version of the lead (the
/// change is to be judged again on it).
fn tally(report: &mut PullReport, written: Result<Lead>) -> Result<bool> {
    match written {
        Ok(_) => report.applied += 1,
        Err(Error::NotFound(_) | Error::NotAllowed(_) | Error::Invalid { .. }) => {
            report.refused += 1
        }
        Err(Error::Conflict(_)) => return Ok(false),
        Err(err) => return Err(err),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, 0, 0).unwrap()
    }

    #[test]
    fn each_rule_decides_as_documented() {
        let (crm, local, blank) = (Some(&1), Some(&2), None::<&i32>);
        let (older, newer) = (at(9), at(11));
        let ten = at(10);
        assert!(!wins(ConflictRule::DontSync, crm, local, newer, ten));
        assert!(wins(ConflictRule::AlwaysCrm, crm, local, older, ten));
        assert!(wins(ConflictRule::AlwaysCrm, blank, local, older, ten));
        assert!(wins(
            ConflictRule::PreferCrmUnlessBlank,
            crm,
            local,
            older,
            ten
        ));
        assert!(!wins(
            ConflictRule::PreferCrmUnlessBlank,
            blank,
            local,
            newer,
            ten
        ));
        assert!(wins(ConflictRule::NewestWins, crm, local, newer, ten));
        assert!(!wins(ConflictRule::NewestWins, crm, local, older, ten));
        assert!(
            !wins(ConflictRule::AlwaysCrm, local, local, newer, ten),
            "same value: nothing to do"
        );
    }
}
