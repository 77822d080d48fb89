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

/// Two clusters join only when at least this share of the pairs between
/// them were found (one weak link does not join two people).
pub const MIN_LINK_DENSITY: f64 = 0.5;

/// Groups `len` leads into clusters joined by `pairs`, without chaining
/// strangers together.
///
/// Pairs are taken strongest first (by similarity, then by index). Two
/// leads not yet clustered join on their pair; two clusters join only
/// when at least [`MIN_LINK_DENSITY`] of the pairs between their members
/// were found. So A~B and B~C make one cluster when A~C was found too, or
/// when one of the sides is a single lead (A, B) ~ C with one of the two
/// links (a missed pair does not split a person), but one link between
/// two clusters of two (A~B, C~D, B~C only) does not merge four leads:
/// plain transitive closure would, and on a million leads such chains
/// joined thousands of people.
///
/// Returns only clusters of two or more leads; each cluster's indices are
/// sorted, and clusters are sorted by their smallest index. Pairs naming an
/// index `>= len` are ignored.
///
/// # Example
///
/// ```
/// use lead_core::dedup::{clusters, Decision, DuplicatePair};
/// let pair = |a, b, similarity| DuplicatePair { a, b, similarity, decision: Decision::Review };
/// assert_eq!(clusters(5, &[pair(0, 3, 0.9), pair(3, 4, 0.9)]), vec![vec![0, 3, 4]]);
/// // Two people, each found, and one weak link between them.
/// let chain = [pair(0, 1, 0.99), pair(2, 3, 0.99), pair(1, 2, 0.86)];
/// assert_eq!(clusters(4, &chain), vec![vec![0, 1], vec![2, 3]]);
/// ```
pub fn clusters(len: usize, pairs: &[DuplicatePair]) -> Vec<Vec<usize>> {
    let mut order: Vec<&DuplicatePair> = pairs
        .iter()
        .filter(|p| p.a < len && p.b < len && p.a != p.b)
        .collect();
    order.sort_by(|x, y| {
        y.similarity
            .total_cmp(&x.similarity)
            .then_with(|| (x.a, x.b).cmp(&(y.a, y.b)))
    });
    let mut neighbours: std::collections::HashMap<usize, Vec<usize>> =
        std::collections::HashMap::new();
    for p in &order {
        neighbours.entry(p.a).or_default().push(p.b);
        neighbours.entry(p.b).or_default().push(p.a);
    }
    for list in neighbours.values_mut() {
        list.sort_unstable();
        list.dedup();
    }
    let mut sets = DisjointSets::new(len);
    let mut members: std::collections::HashMap<usize, Vec<usize>> =
        std::collections::HashMap::new();
    for p in order {
        let (ra, rb) = (sets.find(p.a), sets.find(p.b));
        if ra == rb {
            continue;
        }
        let size = |r: usize, members: &std::collections::HashMap<usize, Vec<usize>>| {
            members.get(&r).map_or(1, Vec::len)
        };
        let (na, nb) = (size(ra, &members), size(rb, &members));
        if na > 1 && nb > 1 {
            // Pairs found between the two clusters, counted from the
            // smaller one.
            let (small, other) = if na <= nb { (ra, rb) } else { (rb, ra) };
            let links: usize = members
                .get(&small)
                .into_iter()
                .flatten()
                .map(|&m| {
                    neighbours
                        .get(&m)
                        .into_iter()
                        .flatten()
                        .filter(|&&n| sets.find(n) == other)
                        .count()
                })
                .sum();
            if (links as f64) < MIN_LINK_DENSITY * (na * nb) as f64 {
                continue;
            }
        }
        let mut joined = members.remove(&ra).unwrap_or_else(|| vec![p.a]);
        joined.extend(members.remove(&rb).unwrap_or_else(|| vec![p.b]));
        sets.union(ra, rb);
        members.insert(sets.find(ra), joined);
    }
    let mut out: Vec<Vec<usize>> = members
        .into_values()
        .map(|mut c| {
            c.sort_unstable();
            c
        })
        .collect();
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
    fn one_weak_link_does_not_chain_two_people_but_a_missed_pair_does_not_split_one() {
        let p = |a, b, similarity| DuplicatePair {
            a,
            b,
            similarity,
            decision: Decision::Review,
        };
        // 0-1-2 is one person with the pair 0-2 missed; 3-4 and 5-6 are two
        // people linked by 4-5 only.
        let got = clusters(
            7,
            &[
                p(0, 1, 0.99),
                p(1, 2, 0.9),
                p(3, 4, 0.99),
                p(5, 6, 0.98),
                p(4, 5, 0.97),
            ],
        );
        assert_eq!(got, vec![vec![0, 1, 2], vec![3, 4], vec![5, 6]]);
        // With two of the four links found, the two halves are one.
        let got = clusters(
            4,
            &[p(0, 1, 0.99), p(2, 3, 0.99), p(1, 2, 0.9), p(0, 3, 0.9)],
        );
        assert_eq!(got, vec![vec![0, 1, 2, 3]]);
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
