//! Duplicates: how alike two leads are, which pairs in a batch are the same
//! person, and merging them reversibly (SPEC "Duplicates").
//!
//! The pieces, in the order a batch job uses them:
//!
//! 1. [`MatchKeys::of`] (or [`match_keys_batch`] for many leads) computes
//!    once per lead everything comparison needs.
//! 2. [`find_duplicates`] uses [blocking keys](blocking) to pick candidate
//!    pairs in near-linear time, scores each with [`similarity_with`]
//!    (which is [`similarity()`] with names and companies weighted by how
//!    rare they are in the batch, see [`frequency`]) and classifies it with
//!    [`DedupConfig::decide`].
//! 3. [`clusters`] groups pairs into people (A~B, B~C ⇒ one cluster).
//! 4. [`merge()`] folds one lead into another by the survivorship rules and
//!    returns a [`MergeRecord`] (what changed) that [`undo`] reverses.
//!
//! A submission nobody vouches for does not merge: [`propose`] keeps what
//! it sent as a [pending change](pending) of the known lead.
//!
//! # Example
//!
//! ```
//! use lead_core::{Email, LeadFields, MatchKeys};
//! use lead_core::dedup::{find_duplicates, Decision, DedupConfig};
//!
//! let lead = |email: &str, first: &str, last: &str| {
//!     let mut f = LeadFields::new(Email::parse(email).unwrap());
//!     f.first_name = Some(first.into());
//!     f.last_name = Some(last.into());
//!     MatchKeys::of(&f)
//! };
//! let keys = [
//!     lead("ana.lopez@gmail.com", "Ana", "López"),
//!     lead("bob@acme.com", "Bob", "Smith"),
//!     lead("analopez+promo@gmail.com", "Ana", "Lopez"),
//! ];
//! let pairs = find_duplicates(&keys, &DedupConfig::default());
//! assert_eq!(pairs.len(), 1);
//! assert_eq!((pairs[0].a, pairs[0].b), (0, 2));
//! assert_eq!(pairs[0].decision, Decision::AutoMerge);
//! ```

pub mod blocking;
mod cluster;
pub mod frequency;
mod keys;
pub mod merge;
mod nicknames;
pub mod pending;
pub mod record;
pub mod similarity;

use serde::{Deserialize, Serialize};

use crate::MatchKeys;

pub use blocking::BlockingStats;
pub use cluster::clusters;
pub use frequency::{NameFrequencies, Rarity};
pub use keys::match_keys_batch;
pub use merge::{
    ALTERNATE_EMAILS, ALTERNATE_VALUES, MAX_ALTERNATES_BYTES, MAX_METADATA_BYTES, MAX_WARNINGS,
    Merged, merge, merge_into,
};
pub use nicknames::{are_nicknames, canonical_first_names};
pub use pending::{MAX_PENDING_BYTES, MAX_PENDING_CHANGES, PENDING_CHANGES, propose};
pub use record::{Change, MergeRecord, undo};
pub use similarity::{
    FieldScore, FieldScores, SAME_EMAIL_FLOOR, Similarity, similarity, similarity_with,
};

/// What to do with pairs found similar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DedupMode {
    /// Merge pairs at or above `auto_merge_threshold`, mark the rest of the
    /// pairs above `similarity_threshold` for review (the original system's
    /// default, `auto_merge: true`).
    #[default]
    AutoMerge,
    /// Never merge automatically; every pair is marked for a person.
    Review,
}

/// Duplicate detection settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DedupConfig {
    /// Pairs at or above this similarity are duplicates (default 0.85).
    pub similarity_threshold: f64,
    /// Pairs at or above this similarity are merged without review in
    /// [`DedupMode::AutoMerge`] (default 0.95).
    pub auto_merge_threshold: f64,
    /// Merge automatically or only mark for review.
    pub mode: DedupMode,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            similarity_threshold: 0.85,
            auto_merge_threshold: 0.95,
            mode: DedupMode::AutoMerge,
        }
    }
}

/// The verdict on one pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Same person, sure enough to merge without asking.
    AutoMerge,
    /// Probably the same person: mark the pair for a person to decide.
    Review,
    /// Not a duplicate.
    Distinct,
}

impl DedupConfig {
    /// Classifies a similarity.
    ///
    /// A pair is merged automatically only when it reaches *both*
    /// thresholds (so a misconfigured `auto_merge_threshold` below
    /// `similarity_threshold` cannot merge non-duplicates), and only in
    /// [`DedupMode::AutoMerge`]. A NaN similarity or threshold compares
    /// false and yields [`Decision::Distinct`].
    ///
    /// # Example
    ///
    /// ```
    /// use lead_core::dedup::{Decision, DedupConfig, DedupMode};
    /// let auto = DedupConfig::default();
    /// assert_eq!(auto.decide(0.97), Decision::AutoMerge);
    /// assert_eq!(auto.decide(0.90), Decision::Review);
    /// assert_eq!(auto.decide(0.50), Decision::Distinct);
    /// let review = DedupConfig { mode: DedupMode::Review, ..auto };
    /// assert_eq!(review.decide(0.99), Decision::Review);
    /// ```
    pub fn decide(&self, similarity: f64) -> Decision {
        if similarity >= self.similarity_threshold {
            if self.mode == DedupMode::AutoMerge && similarity >= self.auto_merge_threshold {
                Decision::AutoMerge
            } else {
                Decision::Review
            }
        } else {
            Decision::Distinct
        }
    }
}

/// Two leads found to be duplicates, by their indices in the input.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DuplicatePair {
    /// Index of the first lead (always `a < b`).
    pub a: usize,
    /// Index of the second lead.
    pub b: usize,
    /// [`Similarity::total`] of the pair.
    pub similarity: f64,
    /// [`Decision::AutoMerge`] or [`Decision::Review`], never `Distinct`.
    pub decision: Decision,
}

/// The result of [`find_duplicates_report`]: the pairs and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct DedupReport {
    /// Duplicate pairs, sorted by `(a, b)`, each once.
    pub pairs: Vec<DuplicatePair>,
    /// Blocks and candidate pairs compared.
    pub stats: BlockingStats,
}

/// Finds duplicate pairs among leads, in near-linear time.
///
/// Pairs are reported once, with `a < b`, sorted by `(a, b)`. Only pairs
/// sharing a blocking key are compared (see [`blocking`] for the keys and
/// the trade-off on oversized blocks). Leads past index `u32::MAX` are not
/// compared.
///
/// Each pair is scored with [`similarity_with`] and the
/// [`NameFrequencies`] of `keys`: a rare surname or company shared by two
/// leads counts more than a common one, so the result for a pair can
/// depend on the rest of the batch (batches under
/// [`frequency::MIN_RECORDS`] leads are scored as by [`similarity()`]).
///
/// Comparison runs on up to [`std::thread::available_parallelism`] threads;
/// the result does not depend on the number of threads.
pub fn find_duplicates(keys: &[MatchKeys], config: &DedupConfig) -> Vec<DuplicatePair> {
    find_duplicates_report(keys, config).pairs
}

/// [`find_duplicates`], also reporting blocking statistics.
pub fn find_duplicates_report(keys: &[MatchKeys], config: &DedupConfig) -> DedupReport {
    let (candidates, stats) = blocking::candidate_pairs(keys);
    let (_, rarities) = NameFrequencies::build(keys);
    let pairs = score_all(keys, &rarities, &candidates, config);
    DedupReport { pairs, stats }
}

/// Below this many candidates a second thread costs more than it saves.
const PARALLEL_MIN_PAIRS: usize = 20_000;

fn score_chunk(
    keys: &[MatchKeys],
    rarities: &[Rarity],
    chunk: &[u64],
    config: &DedupConfig,
) -> Vec<DuplicatePair> {
    let mut out = Vec::new();
    let rarity = |i: usize| rarities.get(i).copied().unwrap_or(Rarity::NEUTRAL);
    for &packed in chunk {
        let (a, b) = blocking::unpack(packed);
        let (Some(ka), Some(kb)) = (keys.get(a), keys.get(b)) else {
            continue;
        };
        let total = similarity_with(ka, kb, &rarity(a), &rarity(b)).total;
        let decision = config.decide(total);
        if decision != Decision::Distinct {
            out.push(DuplicatePair {
                a,
                b,
                similarity: total,
                decision,
            });
        }
    }
    out
}

/// Scores candidates on several threads. Chunks are contiguous slices of
/// the sorted candidates and are concatenated in order, so the output is
/// sorted and identical to a single-threaded run. A thread that cannot be
/// started (or fails) has its chunk scored on the calling thread instead.
fn score_all(
    keys: &[MatchKeys],
    rarities: &[Rarity],
    candidates: &[u64],
    config: &DedupConfig,
) -> Vec<DuplicatePair> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads <= 1 || candidates.len() < PARALLEL_MIN_PAIRS {
        return score_chunk(keys, rarities, candidates, config);
    }
    let chunk_len = candidates.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = candidates
            .chunks(chunk_len)
            .map(|chunk| {
                let handle = std::thread::Builder::new()
                    .name("dedup-score".into())
                    .spawn_scoped(scope, move || score_chunk(keys, rarities, chunk, config))
                    .ok();
                (chunk, handle)
            })
            .collect();
        let mut out = Vec::new();
        for (chunk, handle) in handles {
            match handle.map(std::thread::ScopedJoinHandle::join) {
                Some(Ok(mut part)) => out.append(&mut part),
                _ => out.extend(score_chunk(keys, rarities, chunk, config)),
            }
        }
        out
    })
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Email, LeadFields};

    fn lead(email: &str, first: &str, last: &str) -> MatchKeys {
        let mut f = LeadFields::new(Email::parse(email).expect("valid test e-mail"));
        f.first_name = Some(first.into());
        f.last_name = Some(last.into());
        MatchKeys::of(&f)
    }

    #[test]
    fn default_config_follows_the_spec() {
        let c = DedupConfig::default();
        assert_eq!(c.similarity_threshold, 0.85);
        assert_eq!(c.auto_merge_threshold, 0.95);
        assert_eq!(c.mode, DedupMode::AutoMerge);
        let parsed: DedupConfig =
            serde_json::from_str(r#"{"mode":"review"}"#).expect("partial config parses");
        assert_eq!(parsed.mode, DedupMode::Review);
        assert_eq!(parsed.similarity_threshold, 0.85);
    }

    #[test]
    fn decide_requires_both_thresholds_to_auto_merge_and_treats_nan_as_distinct() {
        let odd = DedupConfig {
            similarity_threshold: 0.9,
            auto_merge_threshold: 0.5,
            mode: DedupMode::AutoMerge,
        };
        assert_eq!(odd.decide(0.6), Decision::Distinct);
        assert_eq!(odd.decide(f64::NAN), Decision::Distinct);
    }

    #[test]
    fn find_duplicates_reports_each_pair_once_in_order() {
        let keys = [
            lead("x.y@gmail.com", "Xavier", "Young"),
            lead("xy@gmail.com", "Xavi", "Young"),
            lead("x.y+1@gmail.com", "Javier", "Young"),
            lead("other@acme.com", "Ana", "Lopez"),
        ];
        let report = find_duplicates_report(&keys, &DedupConfig::default());
        let got: Vec<(usize, usize)> = report.pairs.iter().map(|p| (p.a, p.b)).collect();
        assert_eq!(got, [(0, 1), (0, 2), (1, 2)]);
        assert!(report.stats.candidate_pairs >= 3);
    }

    #[test]
    fn rare_surnames_weigh_more_than_common_ones_in_a_batch() {
        let with_company = |email: &str, first: Option<&str>, last: &str| {
            let mut f = LeadFields::new(Email::parse(email).expect("valid test e-mail"));
            f.first_name = first.map(str::to_owned);
            f.last_name = Some(last.into());
            f.company = Some("Norvex Systems".into());
            MatchKeys::of(&f)
        };
        // 2 000 leads at other companies, half of them Smiths.
        let mut keys: Vec<MatchKeys> = (0..2_000)
            .map(|i| {
                let mut f = LeadFields::new(
                    Email::parse(&format!("p{i}@example.com")).expect("valid test e-mail"),
                );
                f.first_name = Some(["Ana", "John", "Maria", "Luis"][i % 4].into());
                f.last_name = Some(if i % 2 == 0 {
                    "Smith".into()
                } else {
                    format!("Name{i}")
                });
                f.company = Some(format!("Company {}", i / 20));
                MatchKeys::of(&f)
            })
            .collect();
        let first = keys.len();
        // Same surname and company, e-mails unrelated, one first name
        // missing: a rare surname decides, a common one does not.
        keys.push(with_company("a1@gmail.com", Some("Sean"), "Xanbrasalley"));
        keys.push(with_company("b2@yahoo.com", None, "Xanbrasalley"));
        keys.push(with_company("c3@gmail.com", Some("Paul"), "Smith"));
        keys.push(with_company("d4@yahoo.com", None, "Smith"));
        let pairs = find_duplicates(&keys, &DedupConfig::default());
        let got: Vec<(usize, usize)> = pairs
            .iter()
            .filter(|p| p.a >= first)
            .map(|p| (p.a - first, p.b - first))
            .collect();
        assert_eq!(got, [(0, 1)]);
        let plain = similarity(&keys[first], &keys[first + 1]).total;
        assert!(plain < 0.85, "{plain}");
    }

    #[test]
    fn multithreaded_scoring_matches_single_threaded() {
        let keys: Vec<MatchKeys> = (0..400)
            .map(|i| lead(&format!("p{}@gmail.com", i % 150), "John", "Smith"))
            .collect();
        let (candidates, _) = blocking::candidate_pairs(&keys);
        let config = DedupConfig::default();
        let (_, rarities) = NameFrequencies::build(&keys);
        let single = score_chunk(&keys, &rarities, &candidates, &config);
        let mut many = candidates.clone();
        while many.len() < PARALLEL_MIN_PAIRS {
            many.extend_from_slice(&candidates);
        }
        let parallel = score_all(&keys, &rarities, &many, &config);
        let repeated: Vec<DuplicatePair> = many
            .chunks(candidates.len())
            .flat_map(|c| score_chunk(&keys, &rarities, c, &config))
            .collect();
        assert_eq!(parallel, repeated);
        assert!(!single.is_empty());
    }
}
