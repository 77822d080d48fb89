//! Weighted fair round-robin and the workload bookkeeping after each
//! assignment.
//!
//! The design is described in the [routing module docs](super).

use chrono::{DateTime, Utc};

use super::availability::{LocalClock, assigned_today, check, local_time};
use crate::model::{Rep, RepState};

/// Largest stride: weights below `1 / MAX_STRIDE` count as that small, so a
/// pass never jumps to infinity.
const MAX_STRIDE: f64 = 1e9;

/// How far a rep's pass advances per lead: `1 / weight`. A weight that
/// routing would reject (zero, negative, NaN, infinite) counts as 1 here,
/// so a manual assignment to such a rep still moves them back in line.
pub(crate) fn stride(rep: &Rep) -> f64 {
    if super::availability::weight_is_valid(rep.weight) {
        (1.0 / rep.weight).min(MAX_STRIDE)
    } else {
        1.0
    }
}

/// The virtual time over the given reps (see the module docs); 0 when none
/// has a usable pass. Non-finite stored passes are ignored: a corrupted
/// value must not stall everyone else.
pub(crate) fn virtual_time_of<'a>(reps: impl Iterator<Item = &'a RepState>) -> f64 {
    reps.filter(|s| s.load.pass.is_finite())
        .map(|s| s.load.pass - stride(&s.rep))
        .fold(None, |acc: Option<f64>, v| {
            Some(acc.map_or(v, |a| a.max(v)))
        })
        .unwrap_or(0.0)
}

/// The rep's pass as compared now: never behind the virtual time, and the
/// virtual time itself when the stored pass is not a finite number.
pub(crate) fn effective_pass(pass: f64, virtual_time: f64) -> f64 {
    if pass.is_finite() {
        pass.max(virtual_time)
    } else {
        virtual_time
    }
}

/// The virtual time at `now` over the reps available then: what
/// [`apply_assignment`] needs for an assignment made outside [`super::route`]
/// (a manual `PUT /assign`).
pub fn virtual_time(reps: &[RepState], now: DateTime<Utc>) -> f64 {
    let mut clock = LocalClock::new(now);
    let available: Vec<&RepState> = reps
        .iter()
        .filter(|s| check(s, &mut clock).is_empty())
        .collect();
    virtual_time_of(available.into_iter())
}

/// Records that `state`'s rep received a lead at `now`: one more open lead,
/// one more for their local day (starting a new day's count when the rep's
/// local date moved on), `last_assigned_at`, and the fair round-robin pass
/// moved to `max(pass, virtual_time) + 1 / weight`.
///
/// `virtual_time` is [`super::RoutingDecision::virtual_time`] for routed
/// leads, or [`virtual_time`] for manual assignments. Counters saturate
/// instead of overflowing.
///
/// # Example
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use lead_core::{Rep, RepId, RepLoad, RepState};
/// use lead_core::routing::apply_assignment;
///
/// let rep = Rep::new(RepId::parse("ana@example.com").unwrap(), "Ana");
/// let mut state = RepState { rep, load: RepLoad::default() };
/// let now = Utc.with_ymd_and_hms(2024, 11, 4, 14, 0, 0).unwrap();
/// apply_assignment(&mut state, 0.0, now);
/// assert_eq!(state.load.open_leads, 1);
/// assert_eq!(state.load.assigned_today, 1);
/// assert_eq!(state.load.pass, 1.0);
/// ```
pub fn apply_assignment(state: &mut RepState, virtual_time: f64, now: DateTime<Utc>) {
    let local_date = local_time(now, state.rep.time_zone).date();
    let load = &mut state.load;
    load.open_leads = load.open_leads.saturating_add(1);
    load.assigned_today = assigned_today(load, local_date).saturating_add(1);
    load.today = Some(local_date);
    load.last_assigned_at = Some(now);
    let base = if virtual_time.is_finite() {
        effective_pass(load.pass, virtual_time)
    } else if load.pass.is_finite() {
        load.pass
    } else {
        0.0
    };
    load.pass = base + stride(&state.rep);
}

/// Records that one of the rep's leads was closed (won, lost, merged,
/// reassigned away): one open lead fewer, never below zero. The daily count
/// and the pass stay: the rep did receive that lead today.
pub fn release_lead(state: &mut RepState) {
    state.load.open_leads = state.load.open_leads.saturating_sub(1);
}
