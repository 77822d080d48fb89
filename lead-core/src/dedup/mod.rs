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
//! // The same normalized e-mail: merged without asking.
//! assert_eq!(pairs[0].decision, Decision::AutoMerge);
//! ```

pub mod blocking;
mod cluster;
pub mod frequency;
mod hash;
mod keys;
pub mod learn;
pub mod merge;
mod nicknames;
mod parallel;
pub mod pending;
pub mod quality;
pub mod record;
pub mod review;
pub mod similarity;
mod table;
mod view;

use serde::{Deserialize, Serialize};

use crate::matchkey::MatchKeys;
use blocking::Candidates;
use frequency::PerValue;
use similarity::{Memo, compare_views};
use std::ops::Range;
use table::TableRow;
use view::KeyView;

pub use blocking::BlockingStats;
pub use cluster::{MIN_LINK_DENSITY, clusters};
pub use frequency::{NameFrequencies, Rarity};
pub use keys::match_keys_batch;
pub use learn::{MIN_LEARN_RECORDS, MatchModel};
pub use merge::{
    ALTERNATE_EMAILS, ALTERNATE_VALUES, MAX_ALTERNATES_BYTES, MAX_METADATA_BYTES, MAX_WARNINGS,
    Merged, merge, merge_into,
};
pub use nicknames::{are_nicknames, canonical_first_names};
pub use pending::{MAX_PENDING_BYTES, MAX_PENDING_CHANGES, PENDING_CHANGES, propose};
pub use record::{Change, MergeRecord, undo};
pub use similarity::{
    Comparison, FIELDS, Field, FieldScore, FieldScores, MAX_LEVELS, SAME_EMAIL_FLOOR, Similarity,
    agrees, compare, level, similarity, similarity_with,
};
pub use table::{KeyTable, KeyTableBuilder};

/// What to do with pairs found similar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DedupMode {
    /// The default: merge automatically only pairs with the same
    /// normalized e-mail (as capture does), mark every other pair above
    /// `similarity_threshold` for review. Matching on names, phones and
    /// companies was measured wrong too often on data it was not tuned on
    /// (`docs/perf.md`) to merge without a person by default.
    #[default]
    SameEmail,
    /// Merge pairs at or above `auto_merge_threshold`, mark the rest of the
    /// pairs above `similarity_threshold` for review (the original system's
    /// `auto_merge: true`; opt in explicitly).
    AutoMerge,
    /// Never merge automatically; every pair is marked for a person.
    Review,
}

/// Where a batch's field weights come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weights {
    /// Learned from the batch ([`MatchModel::learn`]), falling back to the
    /// fixed weights for batches under [`MIN_LEARN_RECORDS`] leads.
    #[default]
    Learned,
    /// The fixed weights of [`similarity()`] with the batch's name
    /// frequencies ([`similarity_with`]).
    Fixed,
}

/// Duplicate detection settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DedupConfig {
    /// Pairs at or above this similarity are duplicates (default 0.85).
    pub similarity_threshold: f64,
    /// Pairs at or above this similarity are merged without review in
    /// [`DedupMode::AutoMerge`] (default 0.999: where the learned weights
    /// were measured wrong on fewer than 1 pair in 1 000 on both test
    /// generators at a million leads; at 0.95, on 1 in 86; `docs/perf.md`).
    pub auto_merge_threshold: f64,
    /// Merge automatically or only mark for review.
    pub mode: DedupMode,
    /// Learned or fixed field weights.
    pub weights: Weights,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            similarity_threshold: 0.85,
            auto_merge_threshold: 0.999,
            mode: DedupMode::SameEmail,
            weights: Weights::Learned,
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
    /// Classifies the similarity of a pair whose normalized e-mails differ:
    /// [`decide_pair`](Self::decide_pair) with `same_email = false`.
    pub fn decide(&self, similarity: f64) -> Decision {
        self.decide_pair(similarity, false)
    }

    /// Classifies a pair by its similarity and whether the two leads share
    /// the normalized e-mail ([`crate::email_match_key`]).
    ///
    /// The same e-mail is decisive (SPEC: such a lead is merged at once):
    /// it merges in every mode but [`DedupMode::Review`], whatever the
    /// thresholds. Any other pair is merged automatically only in
    /// [`DedupMode::AutoMerge`] and only when it reaches *both* thresholds
    /// (so a misconfigured `auto_merge_threshold` below
    /// `similarity_threshold` cannot merge non-duplicates). A NaN
    /// similarity or threshold compares false and yields
    /// [`Decision::Distinct`].
    ///
    /// # Example
    ///
    /// ```
    /// use lead_core::dedup::{Decision, DedupConfig, DedupMode};
    /// let default = DedupConfig::default();
    /// assert_eq!(default.decide_pair(0.95, true), Decision::AutoMerge);
    /// assert_eq!(default.decide_pair(0.9999, false), Decision::Review);
    /// assert_eq!(default.decide_pair(0.50, false), Decision::Distinct);
    /// let auto = DedupConfig { mode: DedupMode::AutoMerge, ..default };
    /// assert_eq!(auto.decide(0.9995), Decision::AutoMerge);
    /// assert_eq!(auto.decide(0.99), Decision::Review);
    /// let review = DedupConfig { mode: DedupMode::Review, ..default };
    /// assert_eq!(review.decide_pair(0.99, true), Decision::Review);
    /// ```
    pub fn decide_pair(&self, similarity: f64, same_email: bool) -> Decision {
        if same_email && self.mode != DedupMode::Review && !similarity.is_nan() {
            return Decision::AutoMerge;
        }
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
    /// The weights learned from the batch; `None` when the fixed ones were
    /// used (configured, or a batch too small to learn from).
    pub model: Option<MatchModel>,
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
    find_duplicates_in(&KeyTable::of(keys), config)
}

/// [`find_duplicates_report`] of a batch's [`KeyTable`]: the same pairs,
/// from keys held compactly (build the table with
/// [`KeyTable::of_fields`] or a [`KeyTableBuilder`] to never hold every
/// lead's [`MatchKeys`] at once).
pub fn find_duplicates_in(table: &KeyTable, config: &DedupConfig) -> DedupReport {
    // Learning and blocking read the table only: they run side by side
    // (each is partly single-threaded), learning on a thread of its own
    // when one can start.
    let learning = config.weights == Weights::Learned;
    let learn = || MatchModel::learn_table(table);
    let ((candidates, stats), model) = std::thread::scope(|scope| {
        let learner = learning
            .then(|| {
                std::thread::Builder::new()
                    .name("dedup-learn".into())
                    .spawn_scoped(scope, learn)
                    .ok()
            })
            .flatten();
        let blocked = blocking::candidate_pairs(table);
        let model = match learner.map(std::thread::ScopedJoinHandle::join) {
            Some(Ok(model)) => model,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None if learning => learn(),
            None => None,
        };
        (blocked, model)
    });
    // Each scorer counts the batch's names for what it needs alone.
    let (pairs, model) = match model {
        Some(mut model) => {
            let terms = NameFrequencies::terms(table);
            let pairs = score_learned(table, &mut model, &terms, &candidates, config);
            (pairs, Some(model))
        }
        None => {
            let rarities = NameFrequencies::rarities(table);
            (score_all(table, &rarities, &candidates, config), None)
        }
    };
    // Back from the table's storage order to the order of the leads given.
    let mut pairs: Vec<DuplicatePair> = pairs
        .into_iter()
        .map(|p| {
            let (x, y) = (table.input_index(p.a), table.input_index(p.b));
            DuplicatePair {
                a: x.min(y),
                b: x.max(y),
                ..p
            }
        })
        .collect();
    pairs.sort_unstable_by_key(|p| (p.a, p.b));
    DedupReport {
        pairs,
        stats,
        model,
    }
}

/// Runs `work` on up to [`std::thread::available_parallelism`] ranges of
/// leads holding about as many candidate pairs each, one thread per range,
/// and returns the results in order (one range, on the calling thread,
/// below [`PARALLEL_MIN_PAIRS`]).
fn per_range<R: Send>(candidates: &Candidates, work: impl Fn(Range<usize>) -> R + Sync) -> Vec<R> {
    let threads = if candidates.len() < PARALLEL_MIN_PAIRS {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    let ranges = candidates.split(threads);
    parallel::parallel_chunks(&ranges, 2, |part| {
        part.iter().map(|r| work(r.clone())).collect()
    })
}

/// Scores candidates with a learned model in two passes: the evidence of
/// every pair, then the prior that makes the model expect as many
/// duplicates among them as it finds ([`fit_prior`]), then the decisions.
/// A pair's evidence is held as 5 bytes (its weight and two flags).
fn score_learned(
    table: &KeyTable,
    model: &mut MatchModel,
    terms: &PerValue<f32>,
    candidates: &Candidates,
    config: &DedupConfig,
) -> Vec<DuplicatePair> {
    let parts: Vec<(Range<usize>, Vec<f32>, Vec<u8>)> = {
        let model = &*model;
        per_range(candidates, |range| {
            let mut memo = Memo::new();
            let (mut bayes, mut flags) = (Vec::new(), Vec::new());
            for (a, b) in candidates.pairs(range.clone()) {
                let e = match (table.row(a), table.row(b)) {
                    (Some(ka), Some(kb)) => Evidence::learned(
                        model,
                        (&ka, terms.of(&ka)),
                        (&kb, terms.of(&kb)),
                        &mut memo,
                    ),
                    _ => Evidence::NONE,
                };
                bayes.push(e.bayes);
                flags.push(u8::from(e.same_email) | (u8::from(e.corroborated) << 1));
            }
            (range, bayes, flags)
        })
    };
    let all = parts.iter().flat_map(|(_, bayes, _)| bayes.iter().copied());
    model.prior = fit_prior(model.prior, all, table.len());
    let mut pairs = Vec::new();
    for (range, bayes, flags) in &parts {
        for (((a, b), &bayes), &flags) in candidates.pairs(range.clone()).zip(bayes).zip(flags) {
            let e = Evidence {
                bayes,
                same_email: flags & 1 != 0,
                corroborated: flags & 2 != 0,
            };
            let (similarity, decision) = e.judge(model.prior, config);
            if decision != Decision::Distinct {
                pairs.push(DuplicatePair {
                    a,
                    b,
                    similarity,
                    decision,
                });
            }
        }
    }
    pairs
}

/// What a model found for one pair, besides the prior.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Evidence {
    /// Sum of the fields' evidence (the match weight minus the prior).
    bayes: f32,
    same_email: bool,
    /// At least [`MIN_AGREEING_FIELDS`] fields agree.
    corroborated: bool,
}

impl Evidence {
    /// What `model` finds for a pair, given each lead's `ln(F / f)` terms.
    fn learned<K: KeyView>(
        model: &MatchModel,
        (ka, ta): (&K, [f32; 3]),
        (kb, tb): (&K, [f32; 3]),
        memo: &mut Memo,
    ) -> Evidence {
        let cmp = compare_views(ka, kb, memo);
        let pair_terms = [0, 1, 2].map(|f| f64::from(ta[f].min(tb[f])));
        Evidence {
            bayes: model.evidence(&cmp.levels, pair_terms) as f32,
            same_email: cmp.level(Field::Email) == level::EQUAL,
            corroborated: cmp.agreeing_fields() >= MIN_AGREEING_FIELDS,
        }
    }

    /// A pair that could not be compared.
    const NONE: Evidence = Evidence {
        bayes: f32::NEG_INFINITY,
        same_email: false,
        corroborated: false,
    };

    /// The similarity (`1 / (1 + e^-(prior + bayes))`, the same-e-mail
    /// floor) and the decision at `prior`.
    fn judge(&self, prior: f64, config: &DedupConfig) -> (f64, Decision) {
        judge_weight(
            prior + f64::from(self.bayes),
            self.same_email,
            self.corroborated,
            config,
        )
    }
}

/// The similarity of a match weight (`1 / (1 + e^-weight)`, at least
/// [`SAME_EMAIL_FLOOR`] for the same e-mail) and its decision, with the
/// one-field rule applied: a pair merges without a person only when it
/// shares the e-mail key or is `corroborated` by at least
/// [`MIN_AGREEING_FIELDS`] agreeing fields.
fn judge_weight(
    weight: f64,
    same_email: bool,
    corroborated: bool,
    config: &DedupConfig,
) -> (f64, Decision) {
    let mut total = 1.0 / (1.0 + (-weight).exp());
    if total.is_nan() {
        total = 0.0;
    }
    if same_email {
        total = total.max(SAME_EMAIL_FLOOR);
    }
    let total = total.clamp(0.0, 1.0);
    let mut decision = config.decide_pair(total, same_email);
    if decision == Decision::AutoMerge && !same_email && !corroborated {
        decision = Decision::Review;
    }
    (total, decision)
}

/// Width of the evidence bins [`fit_prior`] sums over, in nats.
const PRIOR_BIN: f64 = 0.05;
/// Evidence beyond this, either way, falls in the outermost bins.
const PRIOR_RANGE: f64 = 40.0;

/// The prior log-odds `x` at which the expected number of duplicate pairs
/// among the candidates, `Σ 1 / (1 + e^-(x + bayes))`, equals
/// `e^x / (1 + e^x)` times all pairs of the batch: the maximum-likelihood
/// mix of duplicates and strangers given the learned fields (EM on the
/// prior alone; pairs never compared count as strangers). It counts the
/// pairs the batch actually shows, so it holds where the training
/// sessions' estimate is thrown off by fields that are not independent.
/// Starts from `start`, which it returns when nothing is found.
fn fit_prior(start: f64, evidence: impl Iterator<Item = f32>, leads: usize) -> f64 {
    let n = leads as f64;
    let all_pairs = n * (n - 1.0) / 2.0;
    if all_pairs < 1.0 || !start.is_finite() {
        return start;
    }
    let bins = (2.0 * PRIOR_RANGE / PRIOR_BIN) as usize + 1;
    let mut counts = vec![0u64; bins];
    for bayes in evidence.filter(|b| b.is_finite()) {
        let x = f64::from(bayes).clamp(-PRIOR_RANGE, PRIOR_RANGE);
        let i = ((x + PRIOR_RANGE) / PRIOR_BIN).round() as usize;
        if let Some(c) = counts.get_mut(i) {
            *c += 1;
        }
    }
    let centre = |i: usize| i as f64 * PRIOR_BIN - PRIOR_RANGE;
    let mut x = start;
    for _ in 0..200 {
        let expected: f64 = counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| *c as f64 / (1.0 + (-(x + centre(i))).exp()))
            .sum();
        let share = expected / all_pairs;
        if !(share > 0.0 && share < 1.0) {
            return start;
        }
        let next = (share / (1.0 - share)).ln();
        if (next - x).abs() < 1e-6 {
            return next;
        }
        x = next;
    }
    x
}

/// A pair's similarity by the fixed weights and each lead's [`Rarity`],
/// and its decision under `config`.
///
/// Besides the thresholds, a pair merges without a person only when it
/// shares the e-mail key or at least [`MIN_AGREEING_FIELDS`] other fields
/// agree ([`Comparison::agreeing_fields`]): whatever the weights, learned
/// ([`Evidence::judge`]) or fixed, one field alone never decides.
fn judge_fixed<K: KeyView>(
    (ka, ra): (&K, Rarity),
    (kb, rb): (&K, Rarity),
    config: &DedupConfig,
    memo: &mut Memo,
) -> (f64, Decision) {
    // In f64 all the way, so the similarity is `similarity_with`'s.
    let cmp = compare_views(ka, kb, memo);
    let s = similarity::weigh_fixed(&cmp, ka, kb, &ra, &rb);
    judge_weight(
        s.evidence - similarity::BIAS,
        cmp.level(Field::Email) == level::EQUAL,
        cmp.agreeing_fields() >= MIN_AGREEING_FIELDS,
        config,
    )
}

/// Fields (besides the e-mail key) that must agree for a pair to merge
/// without a person: one field alone (a shared phone, a shared company
/// switchboard) never decides, whatever its weight.
pub const MIN_AGREEING_FIELDS: usize = 2;

/// Below this many candidates a second thread costs more than it saves.
const PARALLEL_MIN_PAIRS: usize = 20_000;

/// Scores the candidates of the leads in `range` by the fixed weights.
fn score_range(
    table: &KeyTable,
    rarities: &PerValue<f64>,
    candidates: &Candidates,
    range: Range<usize>,
    config: &DedupConfig,
) -> Vec<DuplicatePair> {
    fn with_rarity<'t>(rarities: &PerValue<f64>, k: TableRow<'t>) -> (TableRow<'t>, Rarity) {
        let r = rarities.rarity(&k);
        (k, r)
    }
    let mut out = Vec::new();
    let mut memo = Memo::new();
    for (a, b) in candidates.pairs(range) {
        let (Some((ka, ra)), Some((kb, rb))) = (
            table.row(a).map(|k| with_rarity(rarities, k)),
            table.row(b).map(|k| with_rarity(rarities, k)),
        ) else {
            continue;
        };
        let (total, decision) = judge_fixed((&ka, ra), (&kb, rb), config, &mut memo);
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

/// Scores candidates on several threads ([`per_range`]: the output is
/// sorted and identical to a single-threaded run).
fn score_all(
    table: &KeyTable,
    rarities: &PerValue<f64>,
    candidates: &Candidates,
    config: &DedupConfig,
) -> Vec<DuplicatePair> {
    per_range(candidates, |range| {
        score_range(table, rarities, candidates, range, config)
    })
    .into_iter()
    .flatten()
    .collect()
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
        assert_eq!(c.auto_merge_threshold, 0.999);
        // Until matching is proven on data it was not tuned on, only the
        // same e-mail merges without a person.
        assert_eq!(c.mode, DedupMode::SameEmail);
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
            ..DedupConfig::default()
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
        // The fixed weights' rarity bonus (a made-up batch like this one
        // is no data to learn weights from).
        let fixed = DedupConfig {
            weights: Weights::Fixed,
            ..DedupConfig::default()
        };
        let pairs = find_duplicates(&keys, &fixed);
        let got: Vec<(usize, usize)> = pairs
            .iter()
            .filter(|p| p.a >= first)
            .map(|p| (p.a - first, p.b - first))
            .collect();
        assert_eq!(got, [(0, 1)]);
        let plain = similarity(&keys[first], &keys[first + 1]).total;
        assert!(plain < 0.85, "{plain}");
    }

    mod one_field_never_decides {
        use proptest::prelude::*;

        use super::*;
        use crate::{FieldWarning, Phone, Region};

        fn probabilities(field: Field) -> impl Strategy<Value = Vec<f64>> {
            prop::collection::vec(0.001..1.0f64, field.levels()).prop_map(|raw| {
                let sum: f64 = raw.iter().sum();
                raw.into_iter().map(|x| x / sum).collect()
            })
        }

        fn table() -> impl Strategy<Value = learn::LevelTable> {
            Field::ALL.map(probabilities).prop_map(|rows| {
                let mut t = [[0.0; MAX_LEVELS]; FIELDS];
                for (f, row) in rows.iter().enumerate() {
                    for (l, p) in row.iter().enumerate() {
                        t[f][l] = *p;
                    }
                }
                t
            })
        }

        /// Two leads with the same phone digits (valid or kept as written)
        /// and nothing else in common.
        fn strangers_sharing_a_phone() -> impl Strategy<Value = (MatchKeys, MatchKeys)> {
            (
                prop::sample::select(vec!["Ana", "Maria", "Lucia", "Carmen"]),
                prop::sample::select(vec!["Robert", "Peter", "Kevin", "Brian"]),
                prop::sample::select(vec!["Lopez", "Garcia", "Fernandez"]),
                prop::sample::select(vec!["Smith", "Walker", "Johnson"]),
                prop::option::of(prop::sample::select(vec!["Acme", "Norvex Systems"])),
                prop::option::of(prop::sample::select(vec!["Globex", "Kalta Foods"])),
                prop::sample::select(vec!["+34 612 345 678", "+34 000 111 222", "555-0100-77"]),
                any::<bool>(),
            )
                .prop_map(|(fa, fb, la, lb, ca, cb, phone, corporate)| {
                    let (da, db) = if corporate {
                        ("acme.com", "globex.es")
                    } else {
                        ("gmail.com", "yahoo.com")
                    };
                    let lead = |email: String, first: &str, last: &str, company: Option<&str>| {
                        let mut f = LeadFields::new(Email::parse(&email).expect("valid"));
                        f.first_name = Some(first.into());
                        f.last_name = Some(last.into());
                        f.company = company.map(str::to_owned);
                        match Phone::parse(phone, Region::default()) {
                            Ok(p) => f.phone = Some(p),
                            Err(_) => f.warnings.push(FieldWarning::kept(
                                "phone",
                                "invalid_phone",
                                "phone is not a valid number",
                                Some(phone.into()),
                            )),
                        }
                        MatchKeys::of(&f)
                    };
                    (
                        lead(format!("{}.{}@{da}", fa, la).to_lowercase(), fa, la, ca),
                        lead(format!("{}{}@{db}", lb, fb).to_lowercase(), fb, lb, cb),
                    )
                })
        }

        proptest! {
            /// Equal phone digits and otherwise conflicting evidence are
            /// never merged without a person, whatever the learned weights
            /// (here any model at all) and the thresholds.
            #[test]
            fn a_shared_phone_alone_never_auto_merges(
                (a, b) in strangers_sharing_a_phone(),
                m in table(),
                u in table(),
                prior in -20.0..20.0f64,
                threshold in 0.0..1.0f64,
            ) {
                let cmp = compare(&a, &b);
                prop_assert_eq!(cmp.level(Field::Phone), level::EQUAL);
                prop_assert!(cmp.agreeing_fields() <= 1, "{:?}", cmp);
                let config = DedupConfig {
                    similarity_threshold: threshold,
                    auto_merge_threshold: threshold,
                    mode: DedupMode::AutoMerge,
                    weights: Weights::Learned,
                };
                let model = MatchModel::from_parameters(m, u, prior);
                let mut memo = Memo::none();
                let (_, learned) =
                    Evidence::learned(&model, (&a, [5.0; 3]), (&b, [5.0; 3]), &mut memo)
                        .judge(model.prior, &config);
                prop_assert_ne!(learned, Decision::AutoMerge);
                let neutral = Rarity::NEUTRAL;
                let (_, fixed) = judge_fixed((&a, neutral), (&b, neutral), &config, &mut memo);
                prop_assert_ne!(fixed, Decision::AutoMerge);
            }
        }
    }

    #[test]
    fn multithreaded_scoring_matches_single_threaded() {
        let keys: Vec<MatchKeys> = (0..3_000)
            .map(|i| lead(&format!("p{}@gmail.com", i % 700), "John", "Smith"))
            .collect();
        let table = KeyTable::of(&keys);
        let (candidates, _) = blocking::candidate_pairs(&table);
        assert!(
            candidates.len() >= PARALLEL_MIN_PAIRS,
            "{}",
            candidates.len()
        );
        let config = DedupConfig::default();
        let rarities = NameFrequencies::rarities(&table);
        let single = score_range(&table, &rarities, &candidates, 0..keys.len(), &config);
        let parallel = score_all(&table, &rarities, &candidates, &config);
        assert_eq!(parallel, single);
        assert!(!single.is_empty());
        let ranges = candidates.split(3);
        assert_eq!(ranges.first().map(|r| r.start), Some(0));
        assert_eq!(ranges.last().map(|r| r.end), Some(keys.len()));
        assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
    }
}
