//! The rules a commit must satisfy, in one place: every store gathers the
//! stored facts a commit touches and asks [`Commit::check`].

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::commit::Commit;
use crate::error::{Error, Result};
use crate::matchkey::email_match_key;
use crate::model::{LeadExtId, RepId};

/// What a store must look up before checking a commit ([`Commit::fact_keys`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FactKeys {
    /// Leads written: their stored versions.
    pub ext_ids: Vec<LeadExtId>,
    /// Folded e-mails of unmerged leads written: the unmerged lead holding each.
    pub email_keys: Vec<String>,
    /// Idempotency keys written: their stored expiry.
    pub idempotency_keys: Vec<String>,
    /// Reps whose workload changes: whether they exist.
    pub reps: Vec<RepId>,
    /// Follow-up tasks updated: whether they are stored.
    pub followups: Vec<Uuid>,
    /// Follow-up tasks the commit expects unchanged: their stored state.
    pub guarded_followups: Vec<Uuid>,
}

/// The stored state a commit is checked against, as the store read it
/// inside the commit's transaction (before any of its writes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitFacts {
    /// Stored version of each written lead that exists.
    pub versions: HashMap<LeadExtId, u64>,
    /// The unmerged lead holding each folded e-mail, where one does.
    pub email_holders: HashMap<String, LeadExtId>,
    /// Expiry of each stored idempotency key.
    pub idempotency_expiry: HashMap<String, DateTime<Utc>>,
    /// Reps that exist among [`FactKeys::reps`].
    pub known_reps: HashSet<RepId>,
    /// Follow-up tasks stored among [`FactKeys::followups`].
    pub known_followups: HashSet<Uuid>,
    /// The stored state of [`FactKeys::guarded_followups`] that exist.
    pub stored_followups: HashMap<Uuid, crate::followup::FollowUpTask>,
}

impl Commit {
    /// The stored facts [`Commit::check`] needs, so a store can read them
    /// with one query per kind.
    pub fn fact_keys(&self) -> FactKeys {
        let mut keys = FactKeys::default();
        for write in &self.leads {
            keys.ext_ids.push(write.lead.ext_id.clone());
            if write.lead.merged_into.is_none() {
                keys.email_keys
                    .push(email_match_key(&write.lead.fields.email));
            }
        }
        keys.idempotency_keys = self.idempotency.iter().map(|k| k.key.clone()).collect();
        for change in &self.load {
            let rep = change.rep();
            if !keys.reps.contains(rep) {
                keys.reps.push(rep.clone());
            }
        }
        for task in &self.followup_updates {
            if !keys.followups.contains(&task.id) {
                keys.followups.push(task.id);
            }
        }
        for task in &self.followup_expected {
            if !keys.guarded_followups.contains(&task.id) {
                keys.guarded_followups.push(task.id);
            }
        }
        keys
    }

    /// Checks the commit against the [`LeadStore`](crate::ports::LeadStore)
    /// contract given the stored facts: inserts need a new id and a free
    /// folded e-mail (an address is free when its holder is merged away or
    /// readdressed by this same commit), updates need the stored version,
    /// live idempotency keys cannot be reused, load changes need known reps,
    /// follow-up updates need a task stored before the commit (one the
    /// same commit inserts does not count: an update replaces what a rep
    /// read, and nobody read a task that is not stored yet).
    pub fn check(&self, facts: &CommitFacts) -> Result<()> {
        let mut new_emails: HashMap<String, &LeadExtId> = HashMap::new();
        for write in &self.leads {
            let lead = &write.lead;
            match (write.expected_version, facts.versions.get(&lead.ext_id)) {
                (None, Some(_)) => {
                    return Err(Error::Conflict(format!(
                        "lead {} already exists",
                        lead.ext_id
                    )));
                }
                (Some(expected), Some(stored)) if *stored != expected => {
                    return Err(Error::Conflict(format!(
                        "lead {} changed concurrently (version {stored} is not {expected})",
                        lead.ext_id
                    )));
                }
                (Some(_), None) => return Err(Error::NotFound(format!("lead {}", lead.ext_id))),
                _ => {}
            }
            if lead.merged_into.is_some() {
                continue;
            }
            let key = email_match_key(&lead.fields.email);
            let held_elsewhere = facts.email_holders.get(&key).is_some_and(|holder| {
                holder != &lead.ext_id
                    && !self.leads.iter().any(|w| {
                        &w.lead.ext_id == holder
                            && (w.lead.merged_into.is_some()
                                || email_match_key(&w.lead.fields.email) != key)
                    })
            });
            if held_elsewhere
                || new_emails
                    .get(&key)
                    .is_some_and(|other| *other != &lead.ext_id)
            {
                return Err(Error::Conflict(format!(
                    "another lead already has the e-mail of lead {}",
                    lead.ext_id
                )));
            }
            new_emails.insert(key, &lead.ext_id);
        }
        for key in &self.idempotency {
            if facts
                .idempotency_expiry
                .get(&key.key)
                .is_some_and(|expires| *expires > key.created_at)
            {
                return Err(Error::Conflict("an idempotency key is already used".into()));
            }
        }
        for change in &self.load {
            let rep = change.rep();
            if !facts.known_reps.contains(rep) {
                return Err(Error::NotFound(format!("rep {rep}")));
            }
        }
        for task in &self.followup_updates {
            if !facts.known_followups.contains(&task.id) {
                return Err(Error::NotFound(format!("follow-up task {}", task.id)));
            }
        }
        for task in &self.followup_expected {
            if facts.stored_followups.get(&task.id) != Some(task) {
                return Err(Error::Conflict(format!(
                    "follow-up task {} changed since it was read",
                    task.id
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::commit::{IdempotencyKey, LoadChange};
    use crate::dedup::test_support::lead;
    use crate::model::Email;

    /// Two stored leads (version 1) of different people.
    fn two_leads() -> (crate::lead::Lead, crate::lead::Lead) {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        (
            lead("WEB-7KQ2M9XA", "a@acme.com", at),
            lead("WEB-7KQ2M9XB", "b@acme.com", at),
        )
    }

    fn stored(leads: &[&crate::lead::Lead]) -> CommitFacts {
        CommitFacts {
            versions: leads
                .iter()
                .map(|l| (l.ext_id.clone(), l.version))
                .collect(),
            email_holders: leads
                .iter()
                .map(|l| (email_match_key(&l.fields.email), l.ext_id.clone()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn addresses_may_swap_within_one_commit_but_not_be_taken() {
        let (a, b) = two_leads();
        let facts = stored(&[&a, &b]);
        let (mut a2, mut b2) = (a.clone(), b.clone());
        std::mem::swap(&mut a2.fields.email, &mut b2.fields.email);
        let swap = Commit::new().write(a2.clone(), Some(1)).write(b2, Some(1));
        assert!(
            swap.check(&facts).is_ok(),
            "a swap frees each address for the other"
        );
        let take = Commit::new().write(a2, Some(1));
        assert!(matches!(take.check(&facts), Err(Error::Conflict(_))));
    }

    #[test]
    fn versions_ids_keys_and_reps_are_checked() {
        let (a, _) = two_leads();
        let facts = stored(&[&a]);
        assert!(matches!(
            Commit::new().write(a.clone(), Some(7)).check(&facts),
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            Commit::new().write(a.clone(), None).check(&facts),
            Err(Error::Conflict(_))
        ));
        let mut ghost = a.clone();
        ghost.ext_id = LeadExtId::from_random(5);
        ghost.fields.email = Email::parse("ghost@acme.com").unwrap();
        assert!(matches!(
            Commit::new().write(ghost, Some(1)).check(&facts),
            Err(Error::NotFound(_))
        ));

        let at = a.created_at;
        let mut keyed = Commit::new();
        keyed.idempotency.push(IdempotencyKey {
            key: "k".into(),
            lead: a.ext_id.clone(),
            created_at: at,
            expires_at: at,
            request_hash: None,
        });
        let mut with_key = facts.clone();
        with_key
            .idempotency_expiry
            .insert("k".into(), at + chrono::Duration::seconds(1));
        assert!(matches!(keyed.check(&with_key), Err(Error::Conflict(_))));
        with_key.idempotency_expiry.insert("k".into(), at);
        assert!(
            keyed.check(&with_key).is_ok(),
            "an expired key may be reused"
        );

        let rep = RepId::parse("rep@sales.com").unwrap();
        let mut load = Commit::new();
        load.load.push(LoadChange::Released { rep: rep.clone() });
        assert!(matches!(load.check(&facts), Err(Error::NotFound(_))));
        let mut known = facts;
        known.known_reps.insert(rep);
        assert!(load.check(&known).is_ok());
        assert_eq!(load.fact_keys().reps.len(), 1);
    }

    #[test]
    fn followup_updates_need_a_task_stored_before_the_commit() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        let task = crate::followup::plan_followup(
            &crate::followup::FollowUpConfig::default(),
            LeadExtId::from_random(1),
            crate::model::Priority::High,
            None,
            at,
            Uuid::from_u128(7),
        );
        let mut update = Commit::new();
        update.followup_updates.push(task.clone());
        update.followup_updates.push(task.clone());
        assert_eq!(
            update.fact_keys().followups,
            [task.id],
            "each task is looked up once"
        );
        assert!(!update.is_insert_only(), "an update must be checked");
        assert!(matches!(
            update.check(&CommitFacts::default()),
            Err(Error::NotFound(_))
        ));
        let mut stored = CommitFacts::default();
        stored.known_followups.insert(task.id);
        assert!(update.check(&stored).is_ok());
        // A task this same commit inserts is not stored yet.
        update.followups.push(task);
        assert!(matches!(
            update.check(&CommitFacts::default()),
            Err(Error::NotFound(_))
        ));
    }
}
