//! The reps a deployment declares (the server's reps file), made the
//! store's.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::model::{Rep, RepId};
use crate::usecase::Deps;

/// What [`sync_reps`] changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepSync {
    /// Reps written from the list (new or updated profiles; workloads kept).
    pub upserted: usize,
    /// Stored reps missing from the list, now inactive: they receive no
    /// more leads but keep the ones they have, their workload and history.
    pub deactivated: Vec<RepId>,
}

/// Makes `reps` the store's active reps: every one of them is written
/// (profile only; the stored workload stays), and every stored rep not in
/// the list is deactivated rather than deleted, so no lead loses its owner.
///
/// # Errors
///
/// [`Error::Invalid`] when the list names a rep twice (field `reps`), and
/// whatever the store answers.
///
/// ```
/// # tokio_block_on(async {
/// use std::sync::Arc;
/// use lead_core::{Deps, InMemoryStore, LeadStore, Rep, RepId, usecase};
///
/// let deps = Deps::new(Arc::new(InMemoryStore::new()));
/// let ana = Rep::new(RepId::parse("ana@example.com").unwrap(), "Ana");
/// let bob = Rep::new(RepId::parse("bob@example.com").unwrap(), "Bob");
/// usecase::sync_reps(&[ana.clone(), bob], &deps).await.unwrap();
/// let report = usecase::sync_reps(&[ana], &deps).await.unwrap();
/// assert_eq!(report.deactivated[0].as_str(), "bob@example.com");
/// # });
/// # fn tokio_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
pub async fn sync_reps(reps: &[Rep], deps: &Deps) -> Result<RepSync> {
    let mut listed = BTreeSet::new();
    for rep in reps {
        if !listed.insert(&rep.id) {
            return Err(Error::invalid(
                "reps",
                "duplicate_rep",
                format!("rep {} is listed twice", rep.id),
            ));
        }
    }
    let mut report = RepSync::default();
    for rep in reps {
        deps.reps.upsert_rep(rep).await?;
        report.upserted += 1;
    }
    for state in deps.reps.rep_states().await? {
        if state.rep.active && !listed.contains(&state.rep.id) {
            let rep = Rep {
                active: false,
                ..state.rep
            };
            deps.reps.upsert_rep(&rep).await?;
            report.deactivated.push(rep.id);
        }
    }
    Ok(report)
}

/// Checks a rep profile: a name, a weight and a conversion rate that
/// routing can use, absences that end after they start. Every problem is
/// named at once.
///
/// # Errors
///
/// [`Error::Invalid`] naming each bad field.
pub fn check_rep(rep: &Rep) -> Result<()> {
    use crate::error::FieldError;
    let mut problems = Vec::new();
    if rep.name.trim().is_empty() {
        problems.push(FieldError::new("name", "required", "a rep needs a name"));
    }
    if let Err(Error::Invalid { fields }) = crate::normalize::check_text("name", &rep.name) {
        problems.extend(fields);
    }
    let skills = &rep.skills;
    for (field, values) in [
        ("skills.industries", &skills.industries),
        ("skills.products", &skills.products),
        ("skills.regions", &skills.regions),
        ("skills.languages", &skills.languages),
    ] {
        if let Some(Err(Error::Invalid { fields })) = values
            .iter()
            .map(|v| crate::normalize::check_text(field, v))
            .find(Result::is_err)
        {
            problems.extend(fields);
        }
    }
    if !rep.weight.is_finite() || rep.weight < 0.0 {
        problems.push(FieldError::new(
            "weight",
            "out_of_range",
            "weight is a share of leads, 0 or more (1 is normal)",
        ));
    }
    if !(0.0..=1.0).contains(&rep.conversion_rate) {
        problems.push(FieldError::new(
            "conversion_rate",
            "out_of_range",
            "conversion_rate is between 0 and 1",
        ));
    }
    if rep.absences.iter().any(|a| a.end <= a.start) {
        problems.push(FieldError::new(
            "absences",
            "invalid_range",
            "each absence ends after it starts",
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid { fields: problems })
    }
}

/// Adds or updates reps from the API (the reps file's reps can be changed
/// this way too, until the file is read again at the next start). Reps
/// not named stay as they are; nobody is ever deleted (deactivate with
/// `active: false`). Workloads are kept.
///
/// # Errors
///
/// [`Error::Invalid`] naming the rep's position and field when one fails
/// [`check_rep`] or is named twice (nothing is written then), and
/// whatever the store answers.
pub async fn save_reps(reps: &[Rep], deps: &Deps) -> Result<()> {
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for (i, rep) in reps.iter().enumerate() {
        if !seen.insert(&rep.id) {
            problems.push(crate::error::FieldError::new(
                format!("reps[{i}].id"),
                "duplicate_rep",
                format!("rep {} is listed twice", rep.id),
            ));
        }
        if let Err(Error::Invalid { fields }) = check_rep(rep) {
            problems.extend(fields.into_iter().map(|mut f| {
                f.field = format!("reps[{i}].{}", f.field);
                f
            }));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Invalid { fields: problems });
    }
    for rep in reps {
        deps.reps.upsert_rep(rep).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::commit::{Commit, LoadChange};
    use crate::memory::InMemoryStore;
    use crate::usecase::Deps;

    fn rep(id: &str) -> Rep {
        Rep::new(RepId::parse(id).expect("valid"), id)
    }

    #[tokio::test]
    async fn profiles_are_replaced_workloads_kept_and_left_out_reps_deactivated_once() {
        let store = Arc::new(InMemoryStore::new());
        let deps = Deps::new(store.clone());
        let (ana, bob) = (rep("ana@x.com"), rep("bob@x.com"));
        sync_reps(&[ana.clone(), bob.clone()], &deps)
            .await
            .expect("sync");
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        let mut assigned = Commit::new();
        assigned.load.push(LoadChange::Assigned {
            rep: ana.id.clone(),
            at,
            local_day: at.date_naive(),
            pass: 1.0,
        });
        deps.store.commit(assigned).await.expect("assign");

        let renamed = Rep {
            name: "Ana María".into(),
            daily_capacity: 5,
            ..ana.clone()
        };
        let report = sync_reps(std::slice::from_ref(&renamed), &deps)
            .await
            .expect("sync");
        assert_eq!(report.upserted, 1);
        assert_eq!(report.deactivated, vec![bob.id.clone()]);
        let states = deps.reps.rep_states().await.expect("reps");
        let ana_now = states.iter().find(|s| s.rep.id == ana.id).expect("ana");
        assert_eq!(ana_now.rep, renamed);
        assert_eq!(ana_now.load.open_leads, 1, "the workload stays");
        let bob_now = states.iter().find(|s| s.rep.id == bob.id).expect("bob");
        assert!(!bob_now.rep.active);

        let again = sync_reps(std::slice::from_ref(&renamed), &deps)
            .await
            .expect("sync");
        assert!(
            again.deactivated.is_empty(),
            "an inactive rep is not reported again"
        );

        let err = sync_reps(&[ana.clone(), ana], &deps)
            .await
            .expect_err("listed twice");
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    }
}
