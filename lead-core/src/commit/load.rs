//! Workload changes folded per rep, so a store writes each rep once per
//! batch instead of once per change.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::commit::LoadChange;
use crate::model::{RepId, RepLoad};

/// What a run of [`LoadChange`]s does to one rep's workload, whatever that
/// workload is when the store applies it: the changes folded in order.
///
/// A store can write it as one statement of increments over the stored
/// row, so concurrent writers still never lose a count, and a batch of
/// captures updates each rep once rather than once per lead.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use lead_core::{LoadChange, LoadDelta, RepId, RepLoad};
///
/// let ana = RepId::parse("ana@example.com").unwrap();
/// let at = Utc.with_ymd_and_hms(2024, 11, 4, 14, 0, 0).unwrap();
/// let changes = [
///     LoadChange::Assigned { rep: ana.clone(), at, local_day: at.date_naive(), pass: 1.0 },
///     LoadChange::Released { rep: ana.clone() },
///     LoadChange::Released { rep: ana.clone() },
/// ];
/// let deltas = LoadDelta::fold(&changes);
/// let mut load = RepLoad::default();
/// deltas[0].apply(&mut load);
/// // +1 then two releases: the count never goes below zero.
/// assert_eq!((load.open_leads, load.assigned_today, load.pass), (0, 1, 1.0));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LoadDelta {
    /// The rep.
    pub rep: RepId,
    /// Open leads become `max(open_leads + open_add, open_floor)`: every
    /// run of `+1` and clamped `-1` steps has this form.
    pub open_add: i64,
    /// See `open_add`; never negative.
    pub open_floor: i64,
    /// Set when the rep was assigned at least once.
    pub assigned: Option<Assignments>,
    /// The highest round-robin pass among the assignments (NaN ones never
    /// move the pass); the stored pass becomes the larger of the two.
    pub pass: Option<f64>,
}

/// The assignments of a [`LoadDelta`], as far as the day's count needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignments {
    /// The rep's local day of the last assignment: the day counted from now on.
    pub day: NaiveDate,
    /// How many assignments at the end of the run fall on `day`.
    pub on_day: u32,
    /// `true` when every assignment of the run fell on `day`: only then
    /// do they add to a stored count of the same day (otherwise the count
    /// restarted within the run).
    pub all_on_day: bool,
    /// When the last assignment was made.
    pub last_at: DateTime<Utc>,
}

impl LoadDelta {
    /// A delta that changes nothing.
    fn none(rep: RepId) -> Self {
        Self {
            rep,
            open_add: 0,
            open_floor: 0,
            assigned: None,
            pass: None,
        }
    }

    /// The changes folded per rep, in rep id order (a deterministic
    /// order; it does not decide the order a database locks the rows in).
    pub fn fold<'a>(changes: impl IntoIterator<Item = &'a LoadChange>) -> Vec<LoadDelta> {
        let mut deltas: BTreeMap<&RepId, LoadDelta> = BTreeMap::new();
        for change in changes {
            deltas
                .entry(change.rep())
                .or_insert_with(|| Self::none(change.rep().clone()))
                .add(change);
        }
        deltas.into_values().collect()
    }

    fn add(&mut self, change: &LoadChange) {
        match change {
            LoadChange::Assigned {
                at,
                local_day,
                pass,
                ..
            } => {
                self.open_add += 1;
                self.open_floor += 1;
                self.assigned = Some(match self.assigned {
                    Some(a) if a.day == *local_day => Assignments {
                        on_day: a.on_day.saturating_add(1),
                        last_at: *at,
                        ..a
                    },
                    Some(_) => Assignments {
                        day: *local_day,
                        on_day: 1,
                        all_on_day: false,
                        last_at: *at,
                    },
                    None => Assignments {
                        day: *local_day,
                        on_day: 1,
                        all_on_day: true,
                        last_at: *at,
                    },
                });
                if !pass.is_nan() {
                    self.pass = Some(self.pass.map_or(*pass, |p| p.max(*pass)));
                }
            }
            LoadChange::Released { .. } => {
                // max(x + a, b) - 1, clamped at 0 = max(x + a - 1, max(b - 1, 0)).
                self.open_add -= 1;
                self.open_floor = (self.open_floor - 1).max(0);
            }
            LoadChange::Reopened { .. } => {
                self.open_add += 1;
                self.open_floor += 1;
            }
        }
    }

    /// Applies the delta to a stored workload (what the SQL stores do in
    /// one statement).
    pub fn apply(&self, load: &mut RepLoad) {
        let open = (i64::from(load.open_leads) + self.open_add).max(self.open_floor);
        load.open_leads = u32::try_from(open).unwrap_or(u32::MAX);
        if let Some(a) = self.assigned {
            load.assigned_today = if a.all_on_day && load.today == Some(a.day) {
                load.assigned_today.saturating_add(a.on_day)
            } else {
                a.on_day
            };
            load.today = Some(a.day);
            load.last_assigned_at = Some(a.last_at);
        }
        if let Some(pass) = self.pass {
            load.pass = load.pass.max(pass);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    use super::*;

    /// The workload rule one change at a time: what a store did before
    /// folding, and what a fold must agree with.
    fn apply_one(load: &mut RepLoad, change: &LoadChange) {
        match change {
            LoadChange::Assigned {
                at,
                local_day,
                pass,
                ..
            } => {
                load.open_leads += 1;
                load.assigned_today = if load.today == Some(*local_day) {
                    load.assigned_today + 1
                } else {
                    1
                };
                load.today = Some(*local_day);
                load.last_assigned_at = Some(*at);
                load.pass = load.pass.max(*pass);
            }
            LoadChange::Released { .. } => load.open_leads = load.open_leads.saturating_sub(1),
            LoadChange::Reopened { .. } => load.open_leads += 1,
        }
    }

    fn reps() -> [RepId; 3] {
        ["ana@x.com", "bob@x.com", "eve@x.com"].map(|r| RepId::parse(r).expect("valid"))
    }

    fn change() -> impl Strategy<Value = LoadChange> {
        let base = Utc.with_ymd_and_hms(2024, 11, 4, 23, 0, 0).unwrap();
        (
            0usize..3,
            0u8..3,
            0i64..3,
            prop_oneof![Just(f64::NAN), Just(f64::INFINITY), -10.0..10.0],
        )
            .prop_map(move |(rep, kind, day, pass)| {
                let rep = reps()[rep].clone();
                let at = base + Duration::hours(day);
                match kind {
                    0 => LoadChange::Assigned {
                        rep,
                        at,
                        local_day: at.date_naive(),
                        pass,
                    },
                    1 => LoadChange::Released { rep },
                    _ => LoadChange::Reopened { rep },
                }
            })
    }

    fn load() -> impl Strategy<Value = RepLoad> {
        let base = Utc.with_ymd_and_hms(2024, 11, 4, 23, 0, 0).unwrap();
        (
            0u32..3,
            0u32..5,
            prop::option::of(0i64..3),
            prop::option::of(0i64..3),
            -10.0..10.0,
        )
            .prop_map(
                move |(open_leads, assigned_today, day, last, pass)| RepLoad {
                    open_leads,
                    assigned_today,
                    today: day.map(|d| (base + Duration::hours(d)).date_naive()),
                    last_assigned_at: last.map(|h| base + Duration::hours(h)),
                    pass,
                },
            )
    }

    proptest! {
        #[test]
        fn folding_agrees_with_one_change_at_a_time(
            changes in prop::collection::vec(change(), 0..12),
            start in load(),
        ) {
            let deltas = LoadDelta::fold(&changes);
            let mut sorted: Vec<&RepId> = deltas.iter().map(|d| &d.rep).collect();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), deltas.len(), "one delta per rep");
            prop_assert!(deltas.windows(2).all(|w| w[0].rep < w[1].rep), "rep id order");
            for rep in reps() {
                let mut expected = start.clone();
                for change in changes.iter().filter(|c| c.rep() == &rep) {
                    apply_one(&mut expected, change);
                }
                let mut folded = start.clone();
                if let Some(delta) = deltas.iter().find(|d| d.rep == rep) {
                    prop_assert!(delta.open_floor >= 0);
                    delta.apply(&mut folded);
                }
                prop_assert_eq!(folded, expected);
            }
        }
    }
}
