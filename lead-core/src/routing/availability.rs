//! Availability filters: can this rep take a lead at this instant?
//!
//! Every check runs in the rep's own time zone and calendar. All checks are
//! reported, not just the first failing one, so the explanation tells the
//! whole story ("on holiday *and* at capacity").

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use super::explain::{SkipReason, SkipReasons};
use crate::model::{Rep, RepLoad, RepState, WorkingHours};

/// `now` as wall-clock time in `tz`.
///
/// Never panics: at the very ends of chrono's range, where the local time
/// cannot be represented, the UTC time is used instead (chrono's own
/// `naive_local` would panic there).
pub(crate) fn local_time(now: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    let utc = now.naive_utc();
    let offset = tz.offset_from_utc_datetime(&utc).fix();
    utc.checked_add_offset(offset).unwrap_or(utc)
}

/// Local times of `now` per time zone, computed once per routing call:
/// hundreds of reps usually share a handful of zones, and the zone lookup
/// (a binary search over transitions) dominates the per-rep cost.
#[derive(Debug)]
pub(crate) struct LocalClock {
    now: DateTime<Utc>,
    seen: Vec<(Tz, NaiveDateTime)>,
}

impl LocalClock {
    pub(crate) fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            seen: Vec::new(),
        }
    }

    pub(crate) fn local(&mut self, tz: Tz) -> NaiveDateTime {
        if let Some((_, t)) = self.seen.iter().find(|(z, _)| *z == tz) {
            return *t;
        }
        let t = local_time(self.now, tz);
        self.seen.push((tz, t));
        t
    }
}

/// The date of the shift `local` falls in, or `None` outside working hours.
///
/// For overnight shifts (`end <= start`) the hours after midnight belong to
/// the shift that started the day before, so Friday 22:00-06:00 covers
/// Saturday 03:00 (and Saturday's holiday status does not matter then; the
/// Friday's does). `start == end` is a 24-hour shift; at 00:00 that is "all
/// day on working days", which is what [`WorkingHours::always`] builds.
pub(crate) fn shift_date(hours: &WorkingHours, local: NaiveDateTime) -> Option<NaiveDate> {
    let date = local.date();
    let time = local.time();
    if hours.start < hours.end {
        let in_hours = hours.start <= time && time < hours.end;
        return (in_hours && hours.is_working_day(date.weekday())).then_some(date);
    }
    if time >= hours.start && hours.is_working_day(date.weekday()) {
        return Some(date);
    }
    if time < hours.end {
        let previous = date.pred_opt()?;
        if hours.is_working_day(previous.weekday()) {
            return Some(previous);
        }
    }
    None
}

/// Leads the rep received during their current local day: the stored count
/// only holds for the day it was counted on (`RepLoad::today`).
pub(crate) fn assigned_today(load: &RepLoad, local_date: NaiveDate) -> u32 {
    if load.today == Some(local_date) {
        load.assigned_today
    } else {
        0
    }
}

/// `true` when the weight can be used to share leads.
pub(crate) fn weight_is_valid(weight: f64) -> bool {
    weight.is_finite() && weight > 0.0
}

/// The end of the absence covering `now`, if any (the latest end when
/// several overlap, so the explanation gives the real return date).
fn absent_until(rep: &Rep, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    rep.absences
        .iter()
        .filter(|a| a.start <= now && now < a.end)
        .map(|a| a.end)
        .max()
}

/// Every availability filter that keeps `state` from taking a lead at
/// `clock`'s instant. Empty means available.
pub(crate) fn check(state: &RepState, clock: &mut LocalClock) -> SkipReasons {
    let rep = &state.rep;
    let load = &state.load;
    let now = clock.now;
    let mut reasons = SkipReasons::default();
    if !rep.active {
        reasons.insert(SkipReason::Inactive);
    }
    if !weight_is_valid(rep.weight) {
        reasons.insert(SkipReason::InvalidWeight);
    }
    if let Some(until) = absent_until(rep, now) {
        reasons.insert(SkipReason::Absent { until });
    }
    let local = clock.local(rep.time_zone);
    let shift = shift_date(&rep.working_hours, local);
    let day = shift.unwrap_or(local.date());
    if rep.holidays.contains(&day) {
        reasons.insert(SkipReason::Holiday { date: day });
    }
    if shift.is_none() {
        reasons.insert(SkipReason::OutsideWorkingHours {
            local_time: local,
            time_zone: rep.time_zone,
        });
    }
    let today = assigned_today(load, local.date());
    if today >= rep.daily_capacity {
        reasons.insert(SkipReason::DailyCapacityReached {
            assigned_today: today,
            daily_capacity: rep.daily_capacity,
        });
    }
    if load.open_leads >= rep.open_capacity {
        reasons.insert(SkipReason::OpenCapacityReached {
            open_leads: load.open_leads,
            open_capacity: rep.open_capacity,
        });
    }
    reasons
}
