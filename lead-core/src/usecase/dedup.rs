//! Duplicates among stored leads: merging two of them, deciding the pairs
//! kept for review, and the scan behind the `lead_deduplication` job.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::lead_ops::with_retries;
use super::{load, open_load_changes, outbox};
use crate::commit::{Commit, OutboxKind};
use crate::dedup::review::{PairQuery, ReviewPair, ReviewStatus};
use crate::dedup::{
    Decision, DedupConfig, DuplicatePair, KeyTable, KeyTableBuilder, clusters, find_duplicates_in,
    merge,
};
use crate::error::{Error, Result};
use crate::lead::Lead;
use crate::matchkey::MatchKeys;
use crate::model::{Email, LeadExtId};
use crate::query::LeadQuery;
use crate::usecase::Deps;

/// A merge of two stored leads.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeOutcome {
    /// The merge record's id ([`super::undo_merge`] takes it).
    pub merge_id: Uuid,
    /// The surviving lead as stored.
    pub survivor: Lead,
    /// The absorbed lead as stored (`merged_into` the survivor).
    pub absorbed: Lead,
    /// The pair, decided `merged`.
    pub pair: ReviewPair,
}

/// What a person decides about a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairDecision {
    /// Same person: merge the two leads.
    Merge,
    /// Different people: keep both and never propose the pair again.
    Dismiss,
}

/// What one duplicate scan did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScanReport {
    /// Unmerged leads compared.
    pub leads: usize,
    /// Candidate pairs scored (blocking keeps this near-linear in `leads`).
    pub candidates: usize,
    /// Pairs found at or above the similarity threshold.
    pub found: usize,
    /// Pairs merged automatically.
    pub merged: usize,
    /// New pairs marked for review.
    pub marked: usize,
    /// Pairs left alone: already decided or waiting for review, or one of
    /// their leads changed or was merged during this scan (the next scan
    /// sees them again).
    pub skipped: usize,
}

/// Merges two stored leads by the survivorship rules
/// ([`crate::dedup::merge()`]): one commit writes both leads, the merge
/// record (undone by [`super::undo_merge`]), the reps' open-lead counts,
/// the CRM change, and the pair decided `merged` (so a scan never proposes
/// it again).
///
/// When the two leads are already a stored pair (open, or dismissed
/// before), that pair is the one decided, with its similarity.
///
/// Refused with [`Error::Invalid`] for a lead and itself, and with
/// [`Error::NotFound`] when either lead is unknown or already merged away.
pub async fn merge_leads(a: &LeadExtId, b: &LeadExtId, deps: &Deps) -> Result<MergeOutcome> {
    merge_stored(a, b, None, deps).await
}

/// Decides an open pair: merges its leads, or dismisses it.
///
/// Refused with [`Error::NotFound`] for an unknown pair and with
/// [`Error::Conflict`] when it is already decided, one of its leads was
/// merged into a third lead since it was found, or (dismissing) a merge of
/// it won a race.
pub async fn decide_pair(
    id: Uuid,
    decision: PairDecision,
    deps: &Deps,
) -> Result<(ReviewPair, Option<MergeOutcome>)> {
    let pair = deps
        .reads
        .get_review_pair(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("duplicate pair {id}")))?;
    if pair.status != ReviewStatus::Open {
        return Err(Error::Conflict(format!(
            "duplicate pair {id} is already {}",
            pair.status.as_str()
        )));
    }
    match decision {
        PairDecision::Merge => {
            let [a, b] = &pair.leads;
            // A lead merged into a third one since the pair was found
            // cannot be loaded: that is a race the pair lost.
            let outcome =
                merge_stored(a, b, Some(pair.clone()), deps)
                    .await
                    .map_err(|e| match e {
                        Error::NotFound(why) => Error::Conflict(why),
                        other => other,
                    })?;
            Ok((outcome.pair.clone(), Some(outcome)))
        }
        PairDecision::Dismiss => {
            let now = deps.clock.now();
            let mut commit = Commit::new();
            commit
                .reviews
                .push(pair.decided(ReviewStatus::Dismissed, None, now));
            deps.store.commit(commit).await?;
            let stored = deps
                .reads
                .get_review_pair(id)
                .await?
                .ok_or_else(|| Error::internal(format!("duplicate pair {id} vanished")))?;
            Ok((stored, None))
        }
    }
}

async fn merge_stored(
    a: &LeadExtId,
    b: &LeadExtId,
    pair: Option<ReviewPair>,
    deps: &Deps,
) -> Result<MergeOutcome> {
    if a == b {
        return Err(Error::invalid(
            "leads",
            "same_lead",
            "a lead cannot be merged with itself",
        ));
    }
    // Two leads a person names may already be a stored pair (open, or
    // dismissed earlier): the merge decides that pair.
    let pair = match pair {
        Some(pair) => Some(pair),
        None => stored_pair(a, b, deps).await?,
    };
    let attempt = || async {
        let (la, lb) = (load(deps, a).await?, load(deps, b).await?);
        let open = pair.clone().unwrap_or_else(|| {
            ReviewPair::new(
                deps.ids.uuid(),
                a.clone(),
                b.clone(),
                None,
                deps.clock.now(),
            )
        });
        let (commit, merge_id, pair) = merge_commit(&la, &lb, open, deps);
        let mut written = deps.store.commit(commit).await?.into_iter();
        match (written.next(), written.next()) {
            (Some(survivor), Some(absorbed)) => Ok(MergeOutcome {
                merge_id,
                survivor,
                absorbed,
                pair,
            }),
            _ => Err(Error::internal("store returned no lead")),
        }
    };
    with_retries(None, attempt).await
}

/// Finds duplicates among every unmerged lead and acts on them by `config`:
/// pairs at the auto-merge threshold are merged (in
/// [`crate::DedupMode::AutoMerge`]), the others above the similarity
/// threshold are stored as open pairs for a person. A pair already stored
/// (open, merged or dismissed) is left alone, so a merge someone undid is
/// not redone.
///
/// Each merge is its own commit, and the new open pairs follow in a few
/// commits of up to 500: a scan cut short (a store outage, a timeout)
/// leaves every finished merge and stored pair in place and loses
/// nothing; the next scan picks up the rest. Comparison uses blocking keys
/// ([`crate::dedup::blocking`]), so the work stays near-linear in the
/// number of leads; the leads are read once, page by page.
pub async fn scan_duplicates(config: &DedupConfig, deps: &Deps) -> Result<ScanReport> {
    scan_duplicates_with(config, deps, &super::NoProgress).await
}

/// [`scan_duplicates`], telling `progress` how far it got. Memory stays
/// bounded by the compact match keys: the leads are read a page at a
/// time and only their keys, ids and versions are kept; the two leads of a
/// pair to merge are read again, and merged only when neither changed
/// since its keys were read.
pub async fn scan_duplicates_with(
    config: &DedupConfig,
    deps: &Deps,
    progress: &dyn super::Progress,
) -> Result<ScanReport> {
    let (table, leads) = unmerged_keys(deps, progress, |l| (l.ext_id, l.version)).await?;
    let known = known_pairs(deps).await?;
    progress.update("comparing", 0, Some(leads.len() as u64));
    let found = find_duplicates_in(&table, config);
    drop(table);
    let mut report = ScanReport {
        leads: leads.len(),
        candidates: found.stats.candidate_pairs,
        found: found.pairs.len(),
        ..ScanReport::default()
    };
    // A lead changes once per scan: a second pair touching it was scored
    // on its state before the first merge, so it waits for the next scan.
    let mut touched: HashSet<&LeadExtId> = HashSet::new();
    let mut marks = Commit::new();
    for (done, found) in found.pairs.iter().enumerate() {
        let ((a, a_version), (b, b_version)) = (&leads[found.a], &leads[found.b]);
        let key = ReviewPair::key(a.clone(), b.clone());
        if known.contains(&key) || touched.contains(a) || touched.contains(b) {
            report.skipped += 1;
            continue;
        }
        let now = deps.clock.now();
        let pair = ReviewPair::new(
            deps.ids.uuid(),
            a.clone(),
            b.clone(),
            Some(found.similarity),
            now,
        );
        match found.decision {
            Decision::AutoMerge => {
                match merge_unchanged((a, *a_version), (b, *b_version), pair, deps).await? {
                    true => report.merged += 1,
                    false => report.skipped += 1,
                }
                touched.insert(a);
                touched.insert(b);
            }
            Decision::Review => marks.reviews.push(pair),
            Decision::Distinct => {}
        }
        if done % 1_000 == 999 {
            progress.update(
                "acting on pairs",
                done as u64 + 1,
                Some(report.found as u64),
            );
        }
    }
    // New open pairs conflict with nothing, so they are stored a chunk per
    // commit rather than one commit each.
    for chunk in marks.reviews.chunks(MARKS_PER_COMMIT) {
        let mut commit = Commit::new();
        commit.reviews = chunk.to_vec();
        deps.store.commit(commit).await?;
        report.marked += chunk.len();
    }
    progress.update(
        "acting on pairs",
        report.found as u64,
        Some(report.found as u64),
    );
    Ok(report)
}

/// A stored lead as [`find_stored_duplicates`] reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLead {
    /// The lead's id.
    pub ext_id: LeadExtId,
    /// Its e-mail address as stored.
    pub email: Email,
}

/// What [`find_stored_duplicates`] found: the duplicates a scan
/// ([`scan_duplicates`]) would act on, with nothing changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredDuplicates {
    /// Every unmerged lead compared; the pairs and clusters index this.
    pub leads: Vec<StoredLead>,
    /// Candidate pairs scored.
    pub candidates: usize,
    /// Pairs at or above the similarity threshold, sorted by `(a, b)`, each
    /// decided [`Decision::AutoMerge`] or [`Decision::Review`] by the
    /// configuration.
    pub pairs: Vec<DuplicatePair>,
    /// Of `pairs`, those already stored (open for review, merged or
    /// dismissed): a scan leaves them alone.
    pub already_stored: usize,
    /// The pairs grouped into people ([`crate::dedup::clusters`]): clusters
    /// of two or more leads, each sorted, sorted by their first lead.
    pub clusters: Vec<Vec<usize>>,
}

/// Finds the duplicates among every unmerged lead as [`scan_duplicates`]
/// does (the same page-by-page read, the same comparison and decisions by
/// `config`) and reports them, merging nothing and storing no pair.
///
/// Memory stays bounded by the compact match keys plus each lead's id and
/// e-mail. Comparison is seconds of CPU on every core for a million
/// leads: call it off an async runtime's workers (as the scheduled job
/// does with the scan).
pub async fn find_stored_duplicates(
    config: &DedupConfig,
    deps: &Deps,
    progress: &dyn super::Progress,
) -> Result<StoredDuplicates> {
    let (table, leads) = unmerged_keys(deps, progress, |l| StoredLead {
        ext_id: l.ext_id,
        email: l.fields.email,
    })
    .await?;
    progress.update("comparing", 0, Some(leads.len() as u64));
    let found = find_duplicates_in(&table, config);
    drop(table);
    let known = known_pairs(deps).await?;
    let already_stored = found
        .pairs
        .iter()
        .filter(|p| {
            let key = ReviewPair::key(leads[p.a].ext_id.clone(), leads[p.b].ext_id.clone());
            known.contains(&key)
        })
        .count();
    let clusters = clusters(leads.len(), &found.pairs);
    progress.update("comparing", leads.len() as u64, Some(leads.len() as u64));
    Ok(StoredDuplicates {
        leads,
        candidates: found.stats.candidate_pairs,
        pairs: found.pairs,
        already_stored,
        clusters,
    })
}

/// Open pairs one commit of a scan stores at most.
const MARKS_PER_COMMIT: usize = 500;

/// Merges `a` and `b` as the scan scored them (at these versions);
/// `false` (nothing written) when either changed or went since.
async fn merge_unchanged(
    a: (&LeadExtId, u64),
    b: (&LeadExtId, u64),
    pair: ReviewPair,
    deps: &Deps,
) -> Result<bool> {
    let (Some(la), Some(lb)) = (deps.store.get(a.0).await?, deps.store.get(b.0).await?) else {
        return Ok(false);
    };
    if la.version != a.1
        || lb.version != b.1
        || la.merged_into.is_some()
        || lb.merged_into.is_some()
    {
        return Ok(false);
    }
    let (commit, _, _) = merge_commit(&la, &lb, pair, deps);
    match deps.store.commit(commit).await {
        Ok(_) => Ok(true),
        Err(Error::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The one commit of a merge of `a` and `b` as read: both leads at their
/// read versions, the merge record (with the pair's similarity), the reps'
/// open-lead counts, the CRM change, and `pair` decided `merged`.
fn merge_commit(a: &Lead, b: &Lead, pair: ReviewPair, deps: &Deps) -> (Commit, Uuid, ReviewPair) {
    let now = deps.clock.now();
    let merge_id = deps.ids.uuid();
    let mut merged = merge(a, b, now, merge_id);
    merged.record.similarity = pair.similarity;
    let pair = pair.decided(ReviewStatus::Merged, Some(merge_id), now);
    let mut commit = Commit::new();
    commit.load = open_load_changes(&[a, b], &[&merged.survivor, &merged.absorbed]);
    commit.outbox.push(outbox(
        deps,
        &merged.survivor.ext_id,
        OutboxKind::Merged,
        json!({ "merge_id": merge_id, "absorbed": merged.absorbed.ext_id }),
    ));
    commit.merges.push(merged.record.clone());
    commit.reviews.push(pair.clone());
    let commit = commit
        .write(merged.survivor, Some(merged.record.survivor_version))
        .write(merged.absorbed, Some(merged.record.absorbed_before.version));
    (commit, merge_id, pair)
}

/// The match keys of every unmerged lead, read a page at a time, with what
/// `keep` takes of each lead (row `i` of the table is lead `i`).
async fn unmerged_keys<T>(
    deps: &Deps,
    progress: &dyn super::Progress,
    keep: impl Fn(Lead) -> T,
) -> Result<(KeyTable, Vec<T>)> {
    let mut query = LeadQuery {
        limit: Some(crate::query::MAX_PAGE),
        ..LeadQuery::default()
    };
    let mut keys = KeyTableBuilder::default();
    let mut leads = Vec::new();
    loop {
        let page = deps.reads.list(&query).await?;
        for lead in page.leads {
            if keys.push(&MatchKeys::of(&lead.fields)) {
                leads.push(keep(lead));
            }
        }
        progress.update("reading leads", leads.len() as u64, None);
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return Ok((keys.finish(), leads)),
        }
    }
}

/// Every stored pair `query` selects, page by page.
async fn all_pairs(mut query: PairQuery, deps: &Deps) -> Result<Vec<ReviewPair>> {
    query.limit = Some(crate::dedup::review::MAX_PAIR_PAGE);
    let mut pairs = Vec::new();
    loop {
        let page = deps.reads.review_pairs(&query).await?;
        pairs.extend(page.pairs);
        match page.next_cursor {
            Some(after) => query.after = Some(after),
            None => return Ok(pairs),
        }
    }
}

/// The stored pair of `a` and `b`, if any.
async fn stored_pair(a: &LeadExtId, b: &LeadExtId, deps: &Deps) -> Result<Option<ReviewPair>> {
    let query = PairQuery {
        lead: Some(a.clone()),
        ..PairQuery::default()
    };
    let pairs = all_pairs(query, deps).await?;
    Ok(pairs.into_iter().find(|p| p.leads.contains(b)))
}

async fn known_pairs(deps: &Deps) -> Result<HashSet<[LeadExtId; 2]>> {
    let pairs = all_pairs(PairQuery::default(), deps).await?;
    Ok(pairs.into_iter().map(|p| p.leads).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::dedup::review::PairQuery;
    use crate::memory::InMemoryStore;
    use crate::model::LeadInput;
    use crate::policy::Policy;
    use crate::ports::{ManualClock, SequentialIds};
    use crate::usecase::{NoProgress, capture};

    fn deps(store: Arc<InMemoryStore>) -> Deps {
        Deps::with(
            store,
            Arc::new(ManualClock::new(
                Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap(),
            )),
            Arc::new(SequentialIds::default()),
        )
    }

    /// Ana twice (two e-mails, the same name, company and phone), Bob once.
    async fn ana_twice_and_bob(deps: &Deps) -> [Lead; 3] {
        let form = |email: &str, first: &str, last: &str, company: &str| LeadInput {
            email: Some(email.into()),
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            company: Some(company.into()),
            phone: Some("+34 611 222 333".into()),
            ..Default::default()
        };
        let mut bob = form("bob@other.com", "Bob", "Smith", "Other Inc");
        bob.phone = None;
        let forms = [
            form("ana@acme.com", "Ana", "López", "Acme SL"),
            form("ana.lopez@gmail.com", "Ana", "López", "Acme SL"),
            bob,
        ];
        let mut out = Vec::new();
        for form in &forms {
            out.push(capture(form, &Policy::default(), deps).await.unwrap().lead);
        }
        out.try_into().unwrap()
    }

    #[tokio::test]
    async fn finding_stored_duplicates_reports_the_pair_and_changes_nothing() {
        let store = Arc::new(InMemoryStore::new());
        let deps = deps(store.clone());
        let [ana, ana_again, bob] = ana_twice_and_bob(&deps).await;
        let before = (store.leads(), store.outbox());

        let found = find_stored_duplicates(&Policy::default().dedup, &deps, &NoProgress)
            .await
            .unwrap();

        assert_eq!(found.leads.len(), 3);
        assert_eq!(found.pairs.len(), 1, "{found:?}");
        let pair = found.pairs[0];
        let mut ids = [&found.leads[pair.a].ext_id, &found.leads[pair.b].ext_id];
        ids.sort();
        let mut expected = [&ana.ext_id, &ana_again.ext_id];
        expected.sort();
        assert_eq!(ids, expected);
        assert_eq!(pair.decision, Decision::Review, "other e-mails: for review");
        assert_eq!(found.clusters, vec![vec![pair.a, pair.b]]);
        assert!(found.leads.iter().any(|l| l.ext_id == bob.ext_id));
        let emails: Vec<&str> = found.leads.iter().map(|l| l.email.as_str()).collect();
        assert!(emails.contains(&"ana.lopez@gmail.com"), "{emails:?}");
        assert!(found.candidates >= 1);
        assert_eq!(found.already_stored, 0);
        // Read-only: no pair stored, no lead or outbox entry written.
        let pairs = deps
            .reads
            .review_pairs(&PairQuery::default())
            .await
            .unwrap();
        assert!(pairs.pairs.is_empty(), "{pairs:?}");
        assert_eq!((store.leads(), store.outbox()), before);
    }

    #[tokio::test]
    async fn pairs_a_scan_stored_are_counted_as_already_stored() {
        let store = Arc::new(InMemoryStore::new());
        let deps = deps(store.clone());
        ana_twice_and_bob(&deps).await;
        let config = Policy::default().dedup;
        let scan = scan_duplicates(&config, &deps).await.unwrap();
        assert_eq!((scan.found, scan.marked), (1, 1), "{scan:?}");

        let found = find_stored_duplicates(&config, &deps, &NoProgress)
            .await
            .unwrap();

        assert_eq!((found.pairs.len(), found.already_stored), (1, 1));
    }

    #[tokio::test]
    async fn an_empty_store_has_no_duplicates() {
        let deps = deps(Arc::new(InMemoryStore::new()));
        let found = find_stored_duplicates(&DedupConfig::default(), &deps, &NoProgress)
            .await
            .unwrap();
        assert_eq!(found, StoredDuplicates::default());
    }
}
