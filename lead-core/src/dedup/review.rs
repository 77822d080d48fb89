//! Duplicate pairs kept for a person to decide (SPEC "Duplicates", manual
//! review), and the decisions taken on them.
//!
//! A pair is stored once per two leads. A decision sticks: a later scan
//! that finds the same two leads again never reopens a pair that was
//! merged or dismissed, so an undone merge is not redone by the next scan.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::LeadExtId;

/// Most pairs one page may hold.
pub const MAX_PAIR_PAGE: usize = 200;

/// Where a pair stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Waiting for a person.
    #[default]
    Open,
    /// The two leads were merged (by a person or by auto-merge).
    Merged,
    /// A person said they are different people, or undid their merge.
    Dismissed,
}

impl ReviewStatus {
    /// The wire name (`open`, `merged`, `dismissed`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Open => "open",
            ReviewStatus::Merged => "merged",
            ReviewStatus::Dismissed => "dismissed",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(ReviewStatus::Open),
            "merged" => Some(ReviewStatus::Merged),
            "dismissed" => Some(ReviewStatus::Dismissed),
            _ => None,
        }
    }
}

/// Two leads that may be one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewPair {
    /// The pair's id (UUID v7, so ids sort by when the pair was found).
    pub id: Uuid,
    /// The two leads, in `ext_id` order ([`ReviewPair::new`] sorts them).
    pub leads: [LeadExtId; 2],
    /// How alike they were found, 0-1 (`None` for a pair a person named).
    pub similarity: Option<f64>,
    /// Where the pair stands.
    pub status: ReviewStatus,
    /// The merge that joined them, when `status` is `merged`.
    pub merge_id: Option<Uuid>,
    /// When the pair was first stored.
    pub found_at: DateTime<Utc>,
    /// When it was merged or dismissed.
    pub decided_at: Option<DateTime<Utc>>,
}

impl ReviewPair {
    /// An open pair of `a` and `b` (in either order).
    pub fn new(
        id: Uuid,
        a: LeadExtId,
        b: LeadExtId,
        similarity: Option<f64>,
        at: DateTime<Utc>,
    ) -> Self {
        ReviewPair {
            id,
            leads: ReviewPair::key(a, b),
            similarity,
            status: ReviewStatus::Open,
            merge_id: None,
            found_at: at,
            decided_at: None,
        }
    }

    /// The two leads in the order a pair keeps them: the key a store
    /// finds the pair of two leads by.
    pub fn key(a: LeadExtId, b: LeadExtId) -> [LeadExtId; 2] {
        if a <= b { [a, b] } else { [b, a] }
    }

    /// This pair, decided.
    pub fn decided(
        mut self,
        status: ReviewStatus,
        merge_id: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Self {
        self.status = status;
        self.merge_id = merge_id;
        self.decided_at = Some(at);
        self
    }

    /// What a store keeps when `incoming` is written over `stored` (the
    /// same two leads): an open pair never replaces a stored one; a
    /// decision replaces the stored status (the latest decision wins), the
    /// id, similarity and `found_at` of the first pair stay.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] for a dismissal of a merged pair that does not
    /// name its merge: only undoing that merge may dismiss it (a person
    /// who read the pair as open lost a race with a merge).
    pub fn merged_with(stored: &ReviewPair, incoming: &ReviewPair) -> Result<ReviewPair> {
        if incoming.status == ReviewStatus::Open {
            return Ok(stored.clone());
        }
        if stored.status == ReviewStatus::Merged
            && incoming.status == ReviewStatus::Dismissed
            && incoming.merge_id != stored.merge_id
        {
            return Err(stored.dismissal_refused());
        }
        Ok(ReviewPair {
            status: incoming.status,
            merge_id: incoming.merge_id,
            decided_at: incoming.decided_at,
            ..stored.clone()
        })
    }

    /// The answer to a dismissal of this merged pair that is not its
    /// merge's undo ([`ReviewPair::merged_with`]'s rule, which a SQL store
    /// checks in its upsert and answers with this).
    pub fn dismissal_refused(&self) -> Error {
        Error::Conflict(format!(
            "the pair of {} and {} was merged; undo the merge to dismiss it",
            self.leads[0], self.leads[1]
        ))
    }
}

/// Which pairs to list, oldest first (by id).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PairQuery {
    /// Only pairs in this status (`None`: all).
    pub status: Option<ReviewStatus>,
    /// Only pairs with this lead on either side.
    pub lead: Option<LeadExtId>,
    /// Only pairs with an id after this one (the previous page's
    /// [`PairPage::next_cursor`]).
    pub after: Option<Uuid>,
    /// Page size, 1-[`MAX_PAIR_PAGE`] (default 50).
    pub limit: Option<usize>,
}

impl PairQuery {
    /// The page size to use, clamped to 1-[`MAX_PAIR_PAGE`].
    pub fn page_size(&self) -> usize {
        self.limit.unwrap_or(50).clamp(1, MAX_PAIR_PAGE)
    }

    /// Parses a cursor returned as [`PairPage::next_cursor`].
    pub fn parse_cursor(text: &str) -> Result<Uuid> {
        Uuid::parse_str(text).map_err(|_| {
            Error::invalid(
                "cursor",
                "invalid_cursor",
                "cursor is not one this API returned",
            )
        })
    }

    /// One page of `pairs` (any order) as a store must answer this query:
    /// the reference the conformance suite compares stores with.
    pub fn page_of<'a>(&self, pairs: impl IntoIterator<Item = &'a ReviewPair>) -> PairPage {
        let mut chosen: Vec<ReviewPair> = pairs
            .into_iter()
            .filter(|p| self.status.is_none_or(|s| p.status == s))
            .filter(|p| self.lead.as_ref().is_none_or(|l| p.leads.contains(l)))
            .filter(|p| self.after.is_none_or(|after| p.id > after))
            .cloned()
            .collect();
        chosen.sort_by_key(|p| p.id);
        let size = self.page_size();
        let next_cursor = (chosen.len() > size).then(|| chosen[size - 1].id);
        chosen.truncate(size);
        PairPage {
            pairs: chosen,
            next_cursor,
        }
    }
}

/// One page of pairs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PairPage {
    /// The pairs, oldest first.
    pub pairs: Vec<ReviewPair>,
    /// Pass as [`PairQuery::after`] for the next page; `None` on the last.
    pub next_cursor: Option<Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(n: u128, status: ReviewStatus) -> ReviewPair {
        let at = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let a = LeadExtId::from_random(u64::MAX - n as u64);
        let b = LeadExtId::from_random(n as u64);
        let p = ReviewPair::new(Uuid::from_u128(n), a, b, Some(0.9), at);
        match status {
            ReviewStatus::Open => p,
            s => p.decided(s, None, at),
        }
    }

    #[test]
    fn leads_are_kept_in_order() {
        let p = pair(1, ReviewStatus::Open);
        assert!(p.leads[0] < p.leads[1]);
    }

    #[test]
    fn a_decision_sticks_and_open_never_overwrites() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let open = pair(1, ReviewStatus::Open);
        let merge = Uuid::from_u128(77);
        let merged = open.clone().decided(ReviewStatus::Merged, Some(merge), at);
        let keep = |stored: &ReviewPair, incoming: &ReviewPair| {
            ReviewPair::merged_with(stored, incoming).expect("allowed")
        };
        assert_eq!(keep(&open, &open), open);
        let m = keep(
            &open,
            &ReviewPair {
                id: Uuid::from_u128(9),
                ..merged.clone()
            },
        );
        assert_eq!(
            (m.id, m.status, m.merge_id),
            (open.id, ReviewStatus::Merged, Some(merge))
        );
        assert_eq!(keep(&m, &open), m);
        // Only the undo of that merge may dismiss a merged pair.
        let stale = open.clone().decided(ReviewStatus::Dismissed, None, at);
        assert!(matches!(
            ReviewPair::merged_with(&m, &stale),
            Err(Error::Conflict(_))
        ));
        let undo = open
            .clone()
            .decided(ReviewStatus::Dismissed, Some(merge), at);
        let d = keep(&m, &undo);
        assert_eq!((d.id, d.status), (open.id, ReviewStatus::Dismissed));
        // A person may still merge a dismissed pair.
        assert_eq!(keep(&d, &merged).status, ReviewStatus::Merged);
    }

    #[test]
    fn pages_follow_ids_and_filters() {
        let pairs: Vec<ReviewPair> = (1..=5)
            .map(|n| {
                let s = if n % 2 == 0 {
                    ReviewStatus::Dismissed
                } else {
                    ReviewStatus::Open
                };
                pair(n, s)
            })
            .rev()
            .collect();
        let by_lead = PairQuery {
            lead: Some(pairs[0].leads[1].clone()),
            ..PairQuery::default()
        };
        assert_eq!(by_lead.page_of(&pairs).pairs, [pairs[0].clone()]);
        let q = PairQuery {
            status: Some(ReviewStatus::Open),
            limit: Some(2),
            ..PairQuery::default()
        };
        let first = q.page_of(&pairs);
        let ids: Vec<u128> = first.pairs.iter().map(|p| p.id.as_u128()).collect();
        assert_eq!(ids, [1, 3]);
        let next = PairQuery {
            after: first.next_cursor,
            ..q
        };
        let second = next.page_of(&pairs);
        assert_eq!(second.pairs.len(), 1);
        assert_eq!(second.pairs[0].id.as_u128(), 5);
        assert_eq!(second.next_cursor, None);
    }
}
