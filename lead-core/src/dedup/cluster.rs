//! Turning duplicate pairs into clusters (one cluster per person).

use super::DuplicatePair;

/// Union-find with path halving and union by size.
struct DisjointSets {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl DisjointSets {
    fn new(n: usize) -> Self {
        DisjointSets {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (mut ra, mut rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        if self.size[ra] < self.size[rb] {
            std::mem::swap(&mut ra, &mut rb);
        }
        self.parent[rb] = ra;
        self.size[ra] += self.size[rb];
    }
}

/// Groups `len` leads into clusters joined by `pairs` (transitively: A~B and
/// B~C put A, B and C together).
///
/// Returns only clusters of two or more leads; each cluster's indices are
/// sorted, and clusters are sorted by their smallest index. Pairs naming an
/// index `>= len` are ignored.
///
/// Transitivity raises recall (B bridges A and C even when A and C look
/// different) at the price of chaining: one wrong pair joins two people.
/// Review-mode UIs should show the pairs, not only the clusters.
///
/// # Example
///
/// ```
/// use lead_core::dedup::{clusters, Decision, DuplicatePair};
/// let pair = |a, b| DuplicatePair { a, b, similarity: 0.9, decision: Decision::Review };
/// assert_eq!(clusters(5, &[pair(0, 3), pair(3, 4)]), vec![vec![0, 3, 4]]);
/// ```
pub fn clusters(len: usize, pairs: &[DuplicatePair]) -> Vec<Vec<usize>> {
    let mut sets = DisjointSets::new(len);
    for p in pairs {
        if p.a < len && p.b < len {
            sets.union(p.a, p.b);
        }
    }
    let mut by_root: std::collections::HashMap<usize, Vec<usize>> =
        std::collections::HashMap::new();
    for i in 0..len {
        let root = sets.find(i);
        if sets.size[root] > 1 {
            by_root.entry(root).or_default().push(i);
        }
    }
    // Members are pushed in increasing order, so each cluster is sorted.
    let mut out: Vec<Vec<usize>> = by_root.into_values().collect();
    out.sort_unstable_by_key(|c| c.first().copied());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::Decision;

    fn pair(a: usize, b: usize) -> DuplicatePair {
        DuplicatePair {
            a,
            b,
            similarity: 0.9,
            decision: Decision::Review,
        }
    }

    #[test]
    fn chains_join_and_singletons_are_left_out() {
        let got = clusters(8, &[pair(5, 6), pair(0, 2), pair(2, 7), pair(6, 5)]);
        assert_eq!(got, vec![vec![0, 2, 7], vec![5, 6]]);
    }

    #[test]
    fn out_of_range_pairs_are_ignored() {
        assert!(clusters(2, &[pair(0, 9)]).is_empty());
        assert!(clusters(0, &[]).is_empty());
    }
}
