//! How good found duplicates are, against a known truth: precision, recall
//! and F1 of predicted pairs ([`evaluate`]) and of the pairs clusters imply
//! ([`evaluate_clusters`]).
//!
//! The truth gives every lead a person: `truth[i]` is lead `i`'s person, and
//! two leads are a true pair when their persons are equal. A cluster of k
//! leads predicts k·(k-1)/2 pairs, so a cluster that joins two people is
//! paid for by every pair across them.
//!
//! # Example
//!
//! ```
//! use lead_core::dedup::quality::{evaluate, evaluate_clusters};
//! let truth = [7, 7, 7, 9];                 // leads 0, 1, 2 are one person
//! let pairs = evaluate([(0, 1), (2, 3)], &truth);
//! assert_eq!((pairs.true_pos, pairs.false_pos, pairs.false_neg), (1, 1, 2));
//! assert_eq!((pairs.precision, pairs.recall), (0.5, 1.0 / 3.0));
//! assert!((pairs.f1() - 0.4).abs() < 1e-12);
//! let clusters = evaluate_clusters(&[vec![0, 1, 2]], &truth);
//! assert_eq!(clusters.f1(), 1.0);
//! ```

use std::collections::HashMap;

/// Precision and recall of predicted duplicate pairs against the truth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrecisionRecall {
    /// Share of predicted pairs that are true duplicates (1 when nothing
    /// was predicted).
    pub precision: f64,
    /// Share of true duplicate pairs that were predicted (1 when there are
    /// none).
    pub recall: f64,
    /// Predicted pairs of the same entity.
    pub true_pos: u64,
    /// Predicted pairs of different entities.
    pub false_pos: u64,
    /// Pairs of the same entity not predicted.
    pub false_neg: u64,
}

impl PrecisionRecall {
    fn from_counts(true_pos: u64, false_pos: u64, true_pairs: u64) -> Self {
        let predicted = true_pos + false_pos;
        PrecisionRecall {
            precision: if predicted == 0 {
                1.0
            } else {
                true_pos as f64 / predicted as f64
            },
            recall: if true_pairs == 0 {
                1.0
            } else {
                true_pos as f64 / true_pairs as f64
            },
            true_pos,
            false_pos,
            false_neg: true_pairs.saturating_sub(true_pos),
        }
    }

    /// F1, the harmonic mean of precision and recall (0 when both are 0).
    pub fn f1(&self) -> f64 {
        let sum = self.precision + self.recall;
        if sum > 0.0 {
            2.0 * self.precision * self.recall / sum
        } else {
            0.0
        }
    }
}

/// Number of true duplicate pairs: Σ k·(k-1)/2 over the sizes k of the
/// entity groups.
pub fn true_pair_count(truth: &[u32]) -> u64 {
    let mut sizes: HashMap<u32, u64> = HashMap::new();
    for &e in truth {
        *sizes.entry(e).or_default() += 1;
    }
    sizes.values().map(|k| k * (k - 1) / 2).sum()
}

/// Scores predicted pairs (indices into `truth`, in any order; repeated
/// pairs count once, `(i, i)` is ignored, out-of-range pairs are false
/// positives).
///
/// # Example
///
/// ```
/// use lead_core::dedup::quality::evaluate;
/// let truth = [0, 1, 0, 0];                 // leads 0, 2, 3 are one person
/// let pr = evaluate([(0, 2), (2, 0), (1, 3)], &truth);
/// assert_eq!((pr.true_pos, pr.false_pos, pr.false_neg), (1, 1, 2));
/// ```
pub fn evaluate(pairs: impl IntoIterator<Item = (usize, usize)>, truth: &[u32]) -> PrecisionRecall {
    let mut pairs: Vec<(usize, usize)> = pairs
        .into_iter()
        .filter(|(a, b)| a != b)
        .map(|(a, b)| (a.min(b), a.max(b)))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let true_pos = pairs
        .iter()
        .filter(|&&(a, b)| matches!((truth.get(a), truth.get(b)), (Some(x), Some(y)) if x == y))
        .count() as u64;
    let false_pos = pairs.len() as u64 - true_pos;
    PrecisionRecall::from_counts(true_pos, false_pos, true_pair_count(truth))
}

/// Scores clusters (disjoint sets of indices, as [`super::clusters`]
/// returns) by the pairs inside them: a cluster of k leads predicts
/// k·(k-1)/2 pairs. Out-of-range indices are ignored.
pub fn evaluate_clusters(clusters: &[Vec<usize>], truth: &[u32]) -> PrecisionRecall {
    let (mut true_pos, mut predicted) = (0u64, 0u64);
    let mut counts: HashMap<u32, u64> = HashMap::new();
    for cluster in clusters {
        counts.clear();
        let mut k = 0u64;
        for e in cluster.iter().filter_map(|&i| truth.get(i)) {
            *counts.entry(*e).or_default() += 1;
            k += 1;
        }
        predicted += k * k.saturating_sub(1) / 2;
        true_pos += counts.values().map(|c| c * (c - 1) / 2).sum::<u64>();
    }
    PrecisionRecall::from_counts(true_pos, predicted - true_pos, true_pair_count(truth))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn evaluate_counts_pairs_against_entity_groups() {
        let truth = [0, 0, 0, 1, 1, 2];
        assert_eq!(true_pair_count(&truth), 4);
        let pr = evaluate([(0, 1), (1, 2), (3, 4), (4, 5), (9, 1), (2, 2)], &truth);
        assert_eq!((pr.true_pos, pr.false_pos, pr.false_neg), (3, 2, 1));
        assert!(close(pr.precision, 0.6));
        assert!(close(pr.recall, 0.75));
        let none = evaluate([], &[0, 1]);
        assert_eq!((none.precision, none.recall), (1.0, 1.0));
    }

    #[test]
    fn evaluate_clusters_counts_pairs_inside_clusters() {
        let truth = [0, 0, 0, 1, 1, 2];
        let pr = evaluate_clusters(&[vec![0, 1, 2, 5], vec![3, 4]], &truth);
        assert_eq!((pr.true_pos, pr.false_pos, pr.false_neg), (4, 3, 0));
    }

    #[test]
    fn f1_is_the_harmonic_mean_of_hand_counted_precision_and_recall() {
        // Persons: {0, 1, 2}, {3, 4}, {5}: 3 + 1 = 4 true pairs.
        let truth = [0, 0, 0, 1, 1, 2];
        // Found: (0,1) and (3,4) right, (2,5) wrong; (0,2), (1,2) missed.
        let pairs = evaluate([(0, 1), (3, 4), (2, 5)], &truth);
        assert_eq!(
            (pairs.true_pos, pairs.false_pos, pairs.false_neg),
            (2, 1, 2)
        );
        // P = 2/3, R = 2/4, F1 = 2·(2/3)(1/2) / (2/3 + 1/2) = 4/7.
        assert!(close(pairs.precision, 2.0 / 3.0));
        assert!(close(pairs.recall, 0.5));
        assert!(close(pairs.f1(), 4.0 / 7.0), "{}", pairs.f1());

        // Clusters {0, 1}, {2, 5}, {3, 4}: the pairs (0,1), (2,5), (3,4),
        // the same three as above.
        let clusters = evaluate_clusters(&[vec![0, 1], vec![2, 5], vec![3, 4]], &truth);
        assert!(close(clusters.f1(), 4.0 / 7.0));
        // One cluster {0, 1, 2, 3}: 6 pairs, 3 right (inside {0, 1, 2}),
        // 3 wrong (each with 3); (3,4) missed. P = 1/2, R = 3/4, F1 = 3/5.
        let chained = evaluate_clusters(&[vec![0, 1, 2, 3]], &truth);
        assert_eq!(
            (chained.true_pos, chained.false_pos, chained.false_neg),
            (3, 3, 1)
        );
        assert!(close(chained.f1(), 0.6), "{}", chained.f1());
    }

    #[test]
    fn f1_is_one_for_a_perfect_answer_and_zero_when_nothing_true_is_found() {
        let truth = [4, 4, 8];
        assert_eq!(evaluate([(0, 1)], &truth).f1(), 1.0);
        // Nothing predicted: precision 1 by convention, recall 0.
        let nothing = evaluate([], &truth);
        assert_eq!(
            (nothing.precision, nothing.recall, nothing.f1()),
            (1.0, 0.0, 0.0)
        );
        // Only wrong pairs: precision 0, recall 0.
        assert_eq!(evaluate([(0, 2), (1, 2)], &truth).f1(), 0.0);
        // No true pairs and none predicted: nothing to miss, nothing wrong.
        assert_eq!(evaluate([], &[1, 2, 3]).f1(), 1.0);
    }
}
