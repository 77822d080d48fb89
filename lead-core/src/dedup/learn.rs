//! Field weights learned from the leads being deduplicated.
//!
//! # Design
//!
//! This is the Fellegi–Sunter model with its parameters estimated from the
//! batch, as splink does, instead of the fixed weights of
//! [`similarity()`](super::similarity()): each field's comparison
//! ([`compare`](super::compare)) falls into a [`level`]; `m[f][l]` is the chance that two
//! records of the *same* person compare at level `l` on field `f`, `u[f][l]`
//! the chance for two *different* people. The evidence of a level is
//! `ln(m / u)`, and a pair's match weight is
//!
//! ```text
//! W = prior + Σ_f ln(m[f][l_f] / u[f][l_f]) + term-frequency terms
//! p = 1 / (1 + e^-W)            (the pair's similarity)
//! ```
//!
//! where `prior` is the log-odds that two leads picked at random are the
//! same person (about `ln(duplicate pairs / all pairs)`: it falls as the
//! batch grows, which is why a shared common name counts for less in a
//! million leads than in a thousand).
//!
//! * **u** comes from random pairs: nearly all of them are different
//!   people, so the share of random pairs at each level is `u`
//!   ([`U_SAMPLE_PAIRS`] pairs, fewer in small batches). Exact agreement
//!   on the e-mail key, the phone, the names, the company and the domain
//!   is counted exactly instead, from how often each value occurs: its
//!   chance can be far below what a sample of random pairs sees.
//! * **m** comes from expectation–maximisation over three *training
//!   sessions*, each a set of pairs that agree exactly on one field: the
//!   phone digits, the last name, and the e-mail key. Within a session the
//!   pairs are a mixture of the same person and of strangers who happen to
//!   share that field; the strangers compare on the *other* fields like
//!   random pairs (`u`, held fixed), so EM can tell the two apart and
//!   estimate `m` for the other fields and the session's share of matches.
//!   A field's `m` is the sessions' estimates weighted by how many matches
//!   each found, leaving out the session whose own field fixes it (the
//!   e-mail session says nothing of the local part). The e-mail session
//!   is there because its pairs are nearly all one person: where
//!   namesakes are common, the last-name session's "same person" class
//!   takes some of them in and understates how often true duplicates share
//!   a phone. From the phone and last-name sessions' shares of matches and
//!   their field's `m` and `u`, Bayes' rule gives the prior; the lower one
//!   is kept.
//! * **Term frequencies**: agreeing exactly on a name or a company says
//!   more when the value is rare. The exact level's evidence is adjusted by
//!   `ln(F / f)` ([`frequency`](super::frequency): `f` the value's count,
//!   `F` the count of a typical value), within ±[`MAX_TERM_ADJUSTMENT`].
//!
//! Nothing here is tuned to one data set: the same code learns different
//! weights from different leads (a test checks it). Below
//! [`MIN_LEARN_RECORDS`] leads, or when neither the phone nor the
//! last-name session has enough pairs,
//! [`MatchModel::learn`] returns `None` and the fixed weights are used.

// The tables are `[field][level]`; index loops over both read like the
// formulas they implement.
#![allow(clippy::needless_range_loop)]

use serde::Serialize;

use super::hash::hash_value;
use super::parallel::parallel_chunks;
pub use super::similarity::model_levels;
use super::similarity::{FIELDS, Field, MAX_LEVELS, Memo, compare_views, fixed_weight, level};
use super::table::KeyTable;
use super::view::KeyView;
use crate::matchkey::MatchKeys;

/// Fewest leads to learn weights from; smaller batches use the fixed ones.
pub const MIN_LEARN_RECORDS: usize = 2_000;
/// Random pairs compared to estimate `u`.
pub const U_SAMPLE_PAIRS: usize = 400_000;
/// Most pairs of a training session (sampled evenly among its pairs).
pub const SESSION_PAIRS: usize = 200_000;
/// Fewest pairs for a training session to be used.
pub const MIN_SESSION_PAIRS: usize = 500;
/// Largest term-frequency adjustment, in nats, either way.
pub const MAX_TERM_ADJUSTMENT: f64 = 5.0;
/// Largest evidence one level can carry, either way: an estimate from a
/// level no random pair reached is `m / (1 / pairs)`, and must not become
/// infinite.
const MAX_LEVEL_WEIGHT: f64 = 16.0;
const EM_ITERATIONS: usize = 200;
/// Pseudo-count added to every level, so no probability is exactly 0.
const SMOOTHING: f64 = 0.5;

/// `[field][level]` table of probabilities or weights.
pub type LevelTable = [[f64; MAX_LEVELS]; FIELDS];

/// Fellegi–Sunter parameters learned from a batch of leads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchModel {
    /// `m[field][level]`: chance that two records of one person compare at
    /// that level.
    pub m: LevelTable,
    /// `u[field][level]`: chance for two different people.
    pub u: LevelTable,
    /// Log-odds that two leads picked at random are the same person.
    pub prior: f64,
    /// Pairs behind the estimates: random pairs, phone session, last-name
    /// session, e-mail session.
    pub pairs: [usize; 4],
    /// Share of same-person pairs EM found in the phone, last-name and
    /// e-mail sessions (0 for a session not run).
    pub shares: [f64; 3],
    /// The prior the phone and the last-name sessions imply (log-odds; 0
    /// for a session not run). The e-mail session's pairs are nearly all
    /// one person and say nothing of the prior.
    pub session_priors: [f64; 2],
    weights: LevelTable,
}

impl MatchModel {
    /// Learns the model from a batch; `None` when the batch is too small or
    /// has too few pairs sharing a phone or a last name to learn from (the
    /// caller then uses the fixed weights). Deterministic for a batch.
    pub fn learn(keys: &[MatchKeys]) -> Option<MatchModel> {
        if keys.len() < MIN_LEARN_RECORDS {
            return None;
        }
        Self::learn_table(&KeyTable::of(keys))
    }

    /// [`learn`](Self::learn) from a batch's [`KeyTable`].
    pub fn learn_table(keys: &KeyTable) -> Option<MatchModel> {
        if keys.len() < MIN_LEARN_RECORDS {
            return None;
        }
        let (u, random_pairs) = estimate_u(keys);
        let start = initial_m(&u);
        let phone = Session::train(keys, Field::Phone, &u, &start);
        let last = Session::train(keys, Field::LastName, &u, &start);
        let email = Session::train(keys, Field::Email, &u, &start);
        if phone.is_none() && last.is_none() {
            return None;
        }
        let mut m = start;
        for field in Field::ALL {
            let f = field as usize;
            let estimates: Vec<&Session> = [&phone, &last, &email]
                .into_iter()
                .flatten()
                .filter(|s| !s.decides(field))
                .collect();
            let total: f64 = estimates.iter().map(|s| s.matches).sum();
            if total <= 0.0 {
                continue;
            }
            for l in 0..field.levels() {
                m[f][l] = estimates
                    .iter()
                    .map(|s| s.m[f][l] * s.matches / total)
                    .sum();
            }
        }
        // Bayes on each session: odds(match | fixed field equal) =
        // prior odds · m / u of that level.
        let implied = |s: &Option<Session>| {
            s.as_ref().and_then(|s| {
                let f = s.fixed as usize;
                let eq = usize::from(level::EQUAL);
                let share = s.share.clamp(1e-9, 1.0 - 1e-9);
                let p = (share / (1.0 - share)).ln() - (m[f][eq] / u[f][eq]).ln();
                p.is_finite().then_some(p)
            })
        };
        let session_priors = [implied(&phone), implied(&last)];
        let priors: Vec<f64> = session_priors.iter().flatten().copied().collect();
        if priors.is_empty() {
            return None;
        }
        // The lower estimate: a session whose pairs are nearly all one
        // person (the same phone, in many batches) only bounds the prior
        // from below, and a prior too high merges strangers.
        let prior = priors.iter().copied().fold(f64::INFINITY, f64::min);
        let weights = weights_of(&m, &u);
        Some(MatchModel {
            m,
            u,
            prior,
            pairs: [
                random_pairs,
                phone.as_ref().map_or(0, |s| s.pairs),
                last.as_ref().map_or(0, |s| s.pairs),
                email.as_ref().map_or(0, |s| s.pairs),
            ],
            shares: [
                phone.as_ref().map_or(0.0, |s| s.share),
                last.as_ref().map_or(0.0, |s| s.share),
                email.as_ref().map_or(0.0, |s| s.share),
            ],
            session_priors: session_priors.map(|p| p.unwrap_or(0.0)),
            weights,
        })
    }

    /// A model from its parameters (one saved from an earlier batch, or
    /// built by hand); probabilities are used as given, bounded weights
    /// derived from them.
    pub fn from_parameters(m: LevelTable, u: LevelTable, prior: f64) -> MatchModel {
        let weights = weights_of(&m, &u);
        MatchModel {
            m,
            u,
            prior,
            pairs: [0; 4],
            shares: [0.0; 3],
            session_priors: [0.0; 2],
            weights,
        }
    }

    /// The evidence (log-likelihood ratio) of a field's level.
    pub fn weight(&self, field: Field, lvl: u8) -> f64 {
        self.weights
            .get(field as usize)
            .and_then(|row| row.get(usize::from(lvl)))
            .copied()
            .unwrap_or(0.0)
    }

    /// The match weight of a comparison: the prior plus its
    /// [`evidence`](Self::evidence).
    pub fn match_weight(&self, levels: &[u8; FIELDS], terms: [f64; 3]) -> f64 {
        self.prior + self.evidence(levels, terms)
    }

    /// What a comparison says besides the prior: every field's evidence
    /// plus the term-frequency adjustment of exact name and company
    /// agreements (`terms`: the smaller `ln(F / f)` of the two leads for
    /// first name, last name, company).
    pub fn evidence(&self, levels: &[u8; FIELDS], terms: [f64; 3]) -> f64 {
        let levels = &model_levels(levels);
        let mut w = 0.0;
        for field in Field::ALL {
            let lvl = levels.get(field as usize).copied().unwrap_or(0);
            w += self.weight(field, lvl);
            let term = match field {
                Field::FirstName => Some(terms[0]),
                Field::LastName => Some(terms[1]),
                Field::Company => Some(terms[2]),
                _ => None,
            };
            if let Some(t) = term.filter(|t| t.is_finite())
                && lvl == level::EQUAL
            {
                w += t.clamp(-MAX_TERM_ADJUSTMENT, MAX_TERM_ADJUSTMENT);
            }
        }
        w
    }
}

/// `ln(m / u)` per level, bounded; 0 for "missing".
fn weights_of(m: &LevelTable, u: &LevelTable) -> LevelTable {
    let mut w = [[0.0; MAX_LEVELS]; FIELDS];
    for field in Field::ALL {
        let f = field as usize;
        for l in 1..field.levels() {
            let x = (m[f][l] / u[f][l]).ln();
            w[f][l] = if x.is_finite() {
                x.clamp(-MAX_LEVEL_WEIGHT, MAX_LEVEL_WEIGHT)
            } else {
                0.0
            };
        }
    }
    w
}

/// SplitMix64: a small, deterministic generator for sampling pairs (the
/// result of a scan must not depend on a random seed).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// Level counts of a set of pairs.
#[derive(Clone)]
struct Counts([[u64; MAX_LEVELS]; FIELDS]);

impl Counts {
    fn new() -> Self {
        Counts([[0; MAX_LEVELS]; FIELDS])
    }

    fn add(&mut self, levels: &[u8; FIELDS]) {
        for (row, &l) in self.0.iter_mut().zip(levels) {
            if let Some(c) = row.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
    }

    fn merge(&mut self, other: &Counts) {
        for (row, o) in self.0.iter_mut().zip(&other.0) {
            for (c, x) in row.iter_mut().zip(o) {
                *c += x;
            }
        }
    }
}

/// Compares `pairs` (index pairs) on the available threads, in
/// order-free chunks; `visit` folds each pair's levels into a per-chunk
/// value.
fn compare_pairs<T: Send>(
    keys: &KeyTable,
    pairs: &[(u32, u32)],
    init: impl Fn() -> T + Sync,
    visit: impl Fn(&mut T, &[u8; FIELDS]) + Sync,
) -> Vec<T> {
    parallel_chunks(pairs, 20_000, |chunk| {
        let mut acc = init();
        let mut memo = Memo::new();
        for &(a, b) in chunk {
            // Pairs name leads in the order given, so what is sampled does
            // not depend on how the table stores them.
            if let (Some(x), Some(y)) =
                (keys.row_of_input(a as usize), keys.row_of_input(b as usize))
            {
                visit(
                    &mut acc,
                    &model_levels(&compare_views(&x, &y, &mut memo).levels),
                );
            }
        }
        vec![acc]
    })
}

/// `u` from random pairs, and how many were compared.
fn estimate_u(keys: &KeyTable) -> (LevelTable, usize) {
    let n = keys.len();
    let all = n.saturating_mul(n.saturating_sub(1)) / 2;
    let count = U_SAMPLE_PAIRS.min(all);
    let mut rng = SplitMix(0x5eed_0000_0000_0001);
    let mut pairs = Vec::with_capacity(count);
    while pairs.len() < count {
        let (a, b) = (rng.below(n), rng.below(n));
        if a != b {
            pairs.push((a as u32, b as u32));
        }
    }
    let parts = compare_pairs(keys, &pairs, Counts::new, Counts::add);
    let mut counts = Counts::new();
    for p in &parts {
        counts.merge(p);
    }
    let mut u = probabilities(&counts, count as f64);
    exact_equal_levels(keys, &mut u);
    (u, count)
}

/// Replaces the sampled `u` of exact agreement on the e-mail key, phone,
/// names, company and corporate domain by its exact value, `Σ c·(c-1) /
/// (N·(N-1))` over the counts `c` of each value, scaling the field's other
/// levels to keep the row's sum. A sample of random pairs cannot see
/// chances near `1 / N` (two strangers with one phone number in a million
/// leads), and those set the strongest weights.
fn exact_equal_levels(keys: &KeyTable, u: &mut LevelTable) {
    let n = keys.len() as f64;
    let all = n * (n - 1.0);
    if all <= 0.0 {
        return;
    }
    // Any value equal exactly when the keys are: a hash for the e-mail,
    // the phone's digits, ids for the interned values.
    let value = |field: Field, k: &super::table::TableRow<'_>| -> Option<u64> {
        let [first, last, company] = k.ids();
        match field {
            Field::Email => Some(hash_value(k.email())),
            Field::Phone => k.phone_number(),
            Field::FirstName => first.map(u64::from),
            Field::LastName => last.map(u64::from),
            Field::Company => company.map(u64::from),
            Field::CorporateDomain => k.corporate_domain_id().map(u64::from),
            Field::EmailLocalPart => None,
        }
    };
    let eq = usize::from(level::EQUAL);
    for field in Field::ALL {
        if field == Field::EmailLocalPart {
            continue;
        }
        let mut values: Vec<u64> = keys.rows().filter_map(|k| value(field, &k)).collect();
        values.sort_unstable();
        let mut same = 0f64;
        for run in values.chunk_by(|x, y| x == y) {
            let c = run.len() as f64;
            same += c * (c - 1.0);
        }
        let exact = (same / all).max(0.5 / all);
        let f = field as usize;
        let others: f64 = (0..field.levels())
            .filter(|&l| l != eq)
            .map(|l| u[f][l])
            .sum();
        if others > 0.0 && exact < 1.0 {
            let scale = (1.0 - exact) / others;
            for l in (0..field.levels()).filter(|&l| l != eq) {
                u[f][l] *= scale;
            }
            u[f][eq] = exact;
        }
    }
}

/// Smoothed probabilities per level from counts over `total` pairs.
fn probabilities(counts: &Counts, total: f64) -> LevelTable {
    let mut p = [[0.0; MAX_LEVELS]; FIELDS];
    for field in Field::ALL {
        let f = field as usize;
        let levels = field.levels();
        let denominator = total + SMOOTHING * levels as f64;
        for l in 0..levels {
            p[f][l] = (counts.0[f][l] as f64 + SMOOTHING) / denominator;
        }
    }
    p
}

/// The starting point of EM: the fixed weights read as likelihood ratios
/// (`m ∝ u · e^weight`), so EM starts near "same person" and not near some
/// other split of the pairs.
fn initial_m(u: &LevelTable) -> LevelTable {
    let mut m = [[0.0; MAX_LEVELS]; FIELDS];
    for field in Field::ALL {
        let f = field as usize;
        let levels = field.levels();
        let mut sum = 0.0;
        for l in 0..levels {
            let w = fixed_weight(field, l as u8, level::COMPANY_DIFFERENT);
            m[f][l] = u[f][l] * w.exp();
            sum += m[f][l];
        }
        if sum > 0.0 {
            for l in 0..levels {
                m[f][l] /= sum;
            }
        }
    }
    m
}

/// One training session: pairs that agree exactly on `fixed`.
struct Session {
    fixed: Field,
    /// `m` of every other field (the fixed field's row is meaningless).
    m: LevelTable,
    /// Share of the session's pairs that are the same person.
    share: f64,
    /// Expected number of same-person pairs (the session's weight when two
    /// sessions estimate one field).
    matches: f64,
    pairs: usize,
}

impl Session {
    /// Whether the session's own field fixes `field`'s level, so its pairs
    /// say nothing of `field`: the field itself, and the local part for the
    /// e-mail session (equal e-mails leave it unset).
    fn decides(&self, field: Field) -> bool {
        self.fixed == field || (self.fixed == Field::Email && field == Field::EmailLocalPart)
    }

    fn train(keys: &KeyTable, fixed: Field, u: &LevelTable, start: &LevelTable) -> Option<Session> {
        let pairs = session_pairs(keys, fixed);
        if pairs.len() < MIN_SESSION_PAIRS {
            return None;
        }
        // Count each distinct comparison pattern once: EM then runs over a
        // few thousand patterns, not over every pair.
        let parts = compare_pairs(
            keys,
            &pairs,
            std::collections::HashMap::<[u8; FIELDS], u64>::new,
            |acc, levels| *acc.entry(*levels).or_default() += 1,
        );
        let mut patterns: std::collections::HashMap<[u8; FIELDS], u64> =
            std::collections::HashMap::new();
        for part in parts {
            for (k, c) in part {
                *patterns.entry(k).or_default() += c;
            }
        }
        let mut patterns: Vec<([u8; FIELDS], f64)> =
            patterns.into_iter().map(|(k, c)| (k, c as f64)).collect();
        // HashMap order is not deterministic; sums must be.
        patterns.sort_unstable_by_key(|p| p.0);
        let total: f64 = patterns.iter().map(|p| p.1).sum();
        let free: Vec<usize> = Field::ALL
            .iter()
            .filter(|f| **f != fixed)
            .map(|f| *f as usize)
            .collect();
        let log_u: Vec<[f64; MAX_LEVELS]> = u.iter().map(|row| row.map(f64::ln)).collect();
        let mut m = *start;
        let mut share: f64 = 0.5;
        for _ in 0..EM_ITERATIONS {
            let mut acc = [[0.0; MAX_LEVELS]; FIELDS];
            let mut matched = 0.0;
            let (ln_share, ln_other) = (share.ln(), (1.0 - share).ln());
            for (levels, count) in &patterns {
                let (mut lm, mut lu) = (ln_share, ln_other);
                for &f in &free {
                    let l = usize::from(levels[f]);
                    lm += m[f][l].ln();
                    lu += log_u[f][l];
                }
                let r = 1.0 / (1.0 + (lu - lm).exp());
                let weight = r * count;
                matched += weight;
                for &f in &free {
                    acc[f][usize::from(levels[f])] += weight;
                }
            }
            let next_share = (matched / total).clamp(1e-6, 1.0 - 1e-6);
            let mut change = (next_share - share).abs();
            for &f in &free {
                let levels = Field::ALL[f].levels();
                let denominator = matched + SMOOTHING * levels as f64;
                for l in 0..levels {
                    let next = (acc[f][l] + SMOOTHING) / denominator;
                    change = change.max((next - m[f][l]).abs());
                    m[f][l] = next;
                }
            }
            share = next_share;
            if change < 1e-7 {
                break;
            }
        }
        Some(Session {
            fixed,
            m,
            share,
            matches: share * total,
            pairs: pairs.len(),
        })
    }
}

/// Pairs of leads with equal values of `field` (the phone key or the
/// folded last name): every such pair when there are at most
/// [`SESSION_PAIRS`], else that many sampled evenly among them.
fn session_pairs(keys: &KeyTable, field: Field) -> Vec<(u32, u32)> {
    let value = |k: &super::table::TableRow<'_>| -> Option<u64> {
        let v = match field {
            Field::Phone => k.phone(),
            Field::Email => Some(k.email()),
            _ => k.last_name(),
        }?;
        Some(hash_value(v))
    };
    let mut entries: Vec<(u64, u32)> = keys
        .rows()
        .enumerate()
        .filter_map(|(p, k)| Some((value(&k)?, u32::try_from(keys.input_index(p)).ok()?)))
        .collect();
    entries.sort_unstable();
    // Groups of equal values, and the running count of their pairs.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut cumulative: Vec<u64> = Vec::new();
    let mut total = 0u64;
    let mut start = 0;
    while start < entries.len() {
        let end = entries[start..]
            .iter()
            .position(|e| e.0 != entries[start].0)
            .map_or(entries.len(), |off| start + off);
        let g = (end - start) as u64;
        if g > 1 {
            total += g * (g - 1) / 2;
            groups.push((start, end));
            cumulative.push(total);
        }
        start = end;
    }
    let mut pairs = Vec::new();
    if total as usize <= SESSION_PAIRS {
        for &(s, e) in &groups {
            for i in s..e {
                for j in i + 1..e {
                    pairs.push((entries[i].1, entries[j].1));
                }
            }
        }
        return pairs;
    }
    let mut rng = SplitMix(0x0005_e551_0000 + field as u64);
    while pairs.len() < SESSION_PAIRS {
        let pick = rng.below(total as usize) as u64;
        let g = cumulative.partition_point(|&c| c <= pick);
        let Some(&(s, e)) = groups.get(g) else {
            continue;
        };
        let (i, j) = (s + rng.below(e - s), s + rng.below(e - s));
        if i != j {
            pairs.push((entries[i].1, entries[j].1));
        }
    }
    pairs
}
