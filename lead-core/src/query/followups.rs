//! Reading follow-up tasks back: the filters a rep's to-do list needs and
//! keyset pages in due order, so a list stays stable while tasks are added
//! or completed between two pages.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::followup::{FollowUpStatus, FollowUpTask};
use crate::model::{LeadExtId, RepId};

/// Most tasks one page may hold, so one request cannot make a store read
/// and send every task it has.
pub const MAX_FOLLOWUP_PAGE: usize = 500;

/// Which follow-up tasks to list, soonest due first; every `None` means
/// "any".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FollowUpQuery {
    /// Only the tasks of this rep (a rep's to-do list).
    pub assigned_to: Option<RepId>,
    /// Only tasks in this status (open ones, to work on them).
    pub status: Option<FollowUpStatus>,
    /// Only the tasks of this lead (its follow-up history).
    pub lead: Option<LeadExtId>,
    /// Only tasks due at or after this instant (inclusive, so consecutive
    /// windows share no task).
    pub due_from: Option<DateTime<Utc>>,
    /// Only tasks due before this instant (exclusive).
    pub due_to: Option<DateTime<Utc>>,
    /// Page size, 1-[`MAX_FOLLOWUP_PAGE`] (default 50).
    pub limit: Option<usize>,
    /// Where the previous page ended ([`FollowUpPage::next_cursor`]).
    pub cursor: Option<FollowUpCursor>,
}

impl FollowUpQuery {
    /// The page size to use: a missing limit means 50, any other is
    /// clamped to 1-[`MAX_FOLLOWUP_PAGE`] rather than refused.
    pub fn page_size(&self) -> usize {
        self.limit.unwrap_or(50).clamp(1, MAX_FOLLOWUP_PAGE)
    }

    /// `true` when `task` passes every filter (the cursor is not checked).
    ///
    /// This is the reference meaning of each filter: SQL stores translate
    /// it, and the conformance suite compares their answers with it.
    pub fn matches(&self, task: &FollowUpTask) -> bool {
        self.assigned_to
            .as_ref()
            .is_none_or(|r| task.assigned_to.as_ref() == Some(r))
            && self.status.is_none_or(|s| task.status == s)
            && self.lead.as_ref().is_none_or(|l| &task.lead == l)
            && self.due_from.is_none_or(|t| task.due_at >= t)
            && self.due_to.is_none_or(|t| task.due_at < t)
    }

    /// One page of `tasks` (any order) as a store must answer this query:
    /// the reference the conformance suite compares stores with (filters,
    /// order, cursor, page size).
    pub fn page_of(&self, tasks: impl IntoIterator<Item = FollowUpTask>) -> FollowUpPage {
        let mut hits: Vec<FollowUpTask> = tasks
            .into_iter()
            .filter(|t| self.matches(t) && self.cursor.is_none_or(|c| c.precedes(t)))
            .collect();
        hits.sort_by_key(|t| (t.due_at, t.id));
        let size = self.page_size();
        let more = hits.len() > size;
        hits.truncate(size);
        let next_cursor = if more {
            hits.last().map(FollowUpCursor::after)
        } else {
            None
        };
        FollowUpPage {
            tasks: hits,
            next_cursor,
        }
    }
}

/// A position in the follow-up order (`due_at` ascending, then `id`
/// ascending): a keyset rather than an offset, so a page never repeats or
/// skips a task because others were added or completed meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FollowUpCursor {
    /// `due_at` of the last task of the previous page.
    pub due_at: DateTime<Utc>,
    /// `id` of that task, which orders tasks due at the same instant.
    pub id: Uuid,
}

impl FollowUpCursor {
    /// The cursor after `task`: the next page starts strictly after it.
    pub fn after(task: &FollowUpTask) -> Self {
        FollowUpCursor {
            due_at: task.due_at,
            id: task.id,
        }
    }

    /// `true` when `task` comes after this cursor in follow-up order, i.e.
    /// belongs on a later page.
    pub fn precedes(&self, task: &FollowUpTask) -> bool {
        (self.due_at, self.id) < (task.due_at, task.id)
    }

    /// Parses the opaque text form (`<microseconds>.<id>`), as a client
    /// sends back what [`FollowUpPage::next_cursor`] gave it.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `cursor` for text this type did not write.
    pub fn parse(text: &str) -> Result<Self> {
        let (due_at, id) = super::leads::cursor_parts(text)?;
        Ok(FollowUpCursor {
            due_at,
            id: Uuid::try_parse(id).map_err(|_| super::leads::invalid_cursor())?,
        })
    }
}

impl std::fmt::Display for FollowUpCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.due_at.timestamp_micros(), self.id)
    }
}

impl TryFrom<String> for FollowUpCursor {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        FollowUpCursor::parse(&value)
    }
}

impl From<FollowUpCursor> for String {
    fn from(value: FollowUpCursor) -> Self {
        value.to_string()
    }
}

/// One page of follow-up tasks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FollowUpPage {
    /// The tasks, soonest due first.
    pub tasks: Vec<FollowUpTask>,
    /// Pass as [`FollowUpQuery::cursor`] for the next page; `None` on the
    /// last page.
    pub next_cursor: Option<FollowUpCursor>,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::Priority;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, hour, 0, 0).unwrap()
    }

    fn rep(n: usize) -> RepId {
        RepId::parse(&format!("rep{n}@sales.com")).unwrap()
    }

    fn task(n: u128, hour: u32, rep_n: Option<usize>, status: FollowUpStatus) -> FollowUpTask {
        FollowUpTask {
            id: Uuid::from_u128(n),
            lead: LeadExtId::from_random(n as u64 % 3),
            assigned_to: rep_n.map(rep),
            priority: Priority::Medium,
            due_at: at(hour),
            subject: format!("task {n}"),
            status,
            created_at: at(0),
            completed_at: None,
            overdue_at: None,
            notes: None,
        }
    }

    fn ids(page: &FollowUpPage) -> Vec<u128> {
        page.tasks.iter().map(|t| t.id.as_u128()).collect()
    }

    fn tasks() -> Vec<FollowUpTask> {
        use FollowUpStatus::{Cancelled, Done, Open};
        vec![
            task(5, 10, Some(1), Open),
            task(2, 9, Some(2), Done),
            task(9, 10, Some(1), Open),
            task(1, 10, None, Cancelled),
            task(7, 8, Some(1), Done),
            task(3, 11, Some(2), Open),
        ]
    }

    #[test]
    fn pages_follow_due_then_id_and_resume_strictly_after_the_cursor() {
        let all = tasks();
        let mut query = FollowUpQuery {
            limit: Some(2),
            ..FollowUpQuery::default()
        };
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = query.page_of(all.clone());
            seen.extend(ids(&page));
            pages += 1;
            match page.next_cursor {
                Some(cursor) => {
                    assert_eq!(Some(cursor), page.tasks.last().map(FollowUpCursor::after));
                    query.cursor = Some(cursor);
                }
                None => break,
            }
        }
        // Ties on 10:00 are broken by id.
        assert_eq!(seen, [7, 2, 1, 5, 9, 3]);
        assert_eq!(pages, 3, "six tasks in pages of two: no empty fourth page");
    }

    #[test]
    fn filters_mean_rep_status_lead_and_a_half_open_due_window() {
        let all = tasks();
        let page = |q: FollowUpQuery| ids(&q.page_of(all.clone()));
        assert_eq!(
            page(FollowUpQuery {
                assigned_to: Some(rep(1)),
                status: Some(FollowUpStatus::Open),
                ..FollowUpQuery::default()
            }),
            [5, 9]
        );
        assert_eq!(
            page(FollowUpQuery {
                due_from: Some(at(9)),
                due_to: Some(at(11)),
                ..FollowUpQuery::default()
            }),
            [2, 1, 5, 9],
            "from is inclusive, to exclusive"
        );
        assert_eq!(
            page(FollowUpQuery {
                lead: Some(LeadExtId::from_random(0)),
                ..FollowUpQuery::default()
            }),
            [9, 3]
        );
        assert_eq!(
            page(FollowUpQuery {
                status: Some(FollowUpStatus::Cancelled),
                assigned_to: Some(rep(1)),
                ..FollowUpQuery::default()
            }),
            Vec::<u128>::new()
        );
    }

    #[test]
    fn the_page_size_defaults_to_50_and_is_clamped() {
        let size = |limit| {
            FollowUpQuery {
                limit,
                ..FollowUpQuery::default()
            }
            .page_size()
        };
        assert_eq!(size(None), 50);
        assert_eq!(size(Some(0)), 1);
        assert_eq!(size(Some(7)), 7);
        assert_eq!(size(Some(100_000)), MAX_FOLLOWUP_PAGE);
    }

    #[test]
    fn cursors_round_trip_through_their_text_and_refuse_other_text() {
        let cursor = FollowUpCursor {
            due_at: DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap(),
            id: Uuid::from_u128(0xABCD),
        };
        let text = cursor.to_string();
        assert_eq!(FollowUpCursor::parse(&text).unwrap(), cursor);
        let json = serde_json::to_string(&cursor).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(
            serde_json::from_str::<FollowUpCursor>(&json).unwrap(),
            cursor
        );
        for bad in [
            "",
            "123",
            "abc.00000000-0000-0000-0000-000000000001",
            "123.not-a-uuid",
            "99999999999999999999.00000000-0000-0000-0000-000000000001",
        ] {
            match FollowUpCursor::parse(bad) {
                Err(Error::Invalid { fields }) => assert_eq!(fields[0].field, "cursor", "{bad}"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        assert!(serde_json::from_str::<FollowUpCursor>("\"nope\"").is_err());
    }

    #[test]
    fn a_query_reads_from_partial_json_with_a_cursor_as_text() {
        let cursor = FollowUpCursor {
            due_at: at(9),
            id: Uuid::from_u128(2),
        };
        let json = format!(r#"{{"status": "open", "limit": 10, "cursor": "{cursor}"}}"#);
        let query: FollowUpQuery = serde_json::from_str(&json).unwrap();
        assert_eq!(
            query,
            FollowUpQuery {
                status: Some(FollowUpStatus::Open),
                limit: Some(10),
                cursor: Some(cursor),
                ..FollowUpQuery::default()
            }
        );
    }
}
