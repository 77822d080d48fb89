//! Routing: which sales rep gets a new lead, and why.
//!
//! [`route`] is a pure function of the configuration, the reps with their
//! current workload ([`RepState`]) and the lead ([`RoutingRequest`]). It
//! reads no clock and no store, so the same state always gives the same
//! decision, a dry run is just a call, and [`route_many`] simulates a whole
//! sequence of leads. The steps, in order (SPEC "Routing"):
//!
//! 1. **Availability filters**, in each rep's own time zone and calendar:
//!    active, valid weight, not out of office, not a public holiday, inside
//!    working hours, under daily capacity (counted per local day), under
//!    open-lead capacity. With [`RoutingConfig::allow_off_hours`], when
//!    nobody is in working hours, reps kept out *only* by the clock are used.
//! 2. **Account matching**: the rep who already owns the lead's company gets
//!    it if available; otherwise that is noted and routing goes on.
//! 3. **Skills and territory**: each rep scores one point per matching
//!    industry, region, language and product; when any available rep scores
//!    above zero, only those with the best score stay.
//! 4. **Strategy**: [`RoutingStrategy::Intelligent`] ranks by a composite of
//!    workload, performance and weight, ties broken by weighted fair
//!    round-robin; [`RoutingStrategy::RoundRobin`] uses the fair round-robin
//!    alone (see [below](#fair-round-robin): a rep back from leave gets
//!    their share, not a flood).
//!
//! Every remaining tie is broken by stable keys ending with the rep id, so
//! with distinct rep ids the decision does not depend on the order of the
//! reps either. The [`RoutingExplanation`] lists every rep with what
//! happened to them and the rule that decided.
//!
//! After storing a decision, the caller records it with
//! [`RoutingDecision::apply`] (or [`apply_assignment`]) in the same
//! transaction, and calls [`release_lead`] when a lead closes.
//!
//! # Fair round-robin
//!
//! Each rep carries a virtual `pass` ([`RepLoad::pass`](crate::RepLoad::pass)); a rep with weight
//! `w` advances it by its *stride* `1 / w` per lead, and the rep with the
//! lowest pass goes next. Over a long run each rep gets leads in proportion
//! to its weight (stride scheduling).
//!
//! A rep who was away (leave, off hours, at capacity) kept their old, low
//! pass. Comparing raw passes would hand them every lead until they caught
//! up: a flood. So passes are compared against a **virtual time** `V`, and a
//! rep's *effective* pass is `max(pass, V)`: time away earns no credit.
//!
//! `V` is derived from the state itself, so no extra value has to be stored:
//! `V = max(pass - stride)` over the reps available now. While reps take
//! turns normally every rep's pass stays within one stride of the lowest
//! one, so `V` never exceeds the lowest pass and changes nothing; a rep whose
//! pass fell behind is lifted to within one stride of the front. Assigning
//! sets `pass = max(pass, V) + stride`, so a returning rep gets at most about
//! one turn's worth of extra leads (two in a row with equal weights), never
//! a backlog. The price: a rep who got extra leads out of turn (account
//! owner, skill match) sets the pace, and others' lag beyond one stride is
//! forgotten too; ties among them then go to the fewest open leads.
//!
//! # Example
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use lead_core::routing::{route, RoutingConfig, RoutingRequest, DecidingRule};
//! use lead_core::{Email, LeadFields, MatchKeys, Rep, RepId, RepLoad, RepState};
//!
//! let mut reps: Vec<RepState> = ["ana@example.com", "bo@example.com"]
//!     .into_iter()
//!     .map(|id| RepState {
//!         rep: Rep::new(RepId::parse(id).unwrap(), id),
//!         load: RepLoad::default(),
//!     })
//!     .collect();
//! reps[0].load.open_leads = 5; // Ana is busier
//!
//! let lead = LeadFields::new(Email::parse("jo@acme.com").unwrap());
//! let keys = MatchKeys::of(&lead);
//! let now = Utc.with_ymd_and_hms(2024, 11, 4, 10, 0, 0).unwrap(); // a Monday
//! let request = RoutingRequest { lead: &lead, keys: &keys, account_owner: None, now };
//!
//! let decision = route(&RoutingConfig::default(), &reps, &request);
//! assert_eq!(decision.assigned.as_ref().map(|r| r.as_str()), Some("bo@example.com"));
//! assert_eq!(decision.explanation.rule, DecidingRule::Ranking);
//! assert!(decision.apply(&mut reps));
//! assert_eq!(reps[1].load.open_leads, 1);
//! ```

mod availability;
mod explain;
mod fair;
mod simulate;
mod skills;

#[cfg(test)]
mod tests;

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::matchkey::MatchKeys;
use crate::model::{LeadFields, RepId, RepState};
use availability::{LocalClock, check};
use fair::{effective_pass, virtual_time_of};

pub use explain::{
    AccountCheck, AccountOutcome, DecidingRule, LeadAttributes, RepOutcome, RepScores, RepVerdict,
    RoutingExplanation, SetAsideReason, SkipReason, SkipReasons,
};
pub use fair::{apply_assignment, release_lead, virtual_time};

pub(crate) use availability::local_time;
pub use simulate::{RoutingSimulation, route_many};

/// Two scores closer than this (relative to their size) are a tie: float
/// sums of strides and ratios differ in the last bits for reps that should
/// be equal.
const TIE_EPSILON: f64 = 1e-9;

/// How the rep is chosen among the eligible reps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingStrategy {
    /// Rank by workload, performance and weight; fair round-robin breaks ties.
    #[default]
    Intelligent,
    /// Weighted fair round-robin only.
    RoundRobin,
}

/// Relative importance of the intelligent ranking's three parts. Only the
/// ratios matter; negative or non-finite values count as 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RankingWeights {
    /// Free open-lead capacity (1 - open / capacity). Default 0.5.
    pub workload: f64,
    /// Historical conversion rate. Default 0.3.
    pub performance: f64,
    /// The rep's weight relative to the largest weight compared. Default 0.2.
    pub weight: f64,
}

impl Default for RankingWeights {
    fn default() -> Self {
        Self {
            workload: 0.5,
            performance: 0.3,
            weight: 0.2,
        }
    }
}

impl RankingWeights {
    /// The three weights made usable and summing to 1 (all 0 when none is positive).
    fn normalized(&self) -> [f64; 3] {
        let clean = |v: f64| if v.is_finite() && v > 0.0 { v } else { 0.0 };
        let parts = [
            clean(self.workload),
            clean(self.performance),
            clean(self.weight),
        ];
        let sum: f64 = parts.iter().sum();
        if sum > 0.0 && sum.is_finite() {
            parts.map(|p| p / sum)
        } else {
            [0.0; 3]
        }
    }
}

/// Routing settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoutingConfig {
    /// How to choose among eligible reps (default intelligent).
    pub strategy: RoutingStrategy,
    /// Weights of the intelligent ranking.
    pub ranking: RankingWeights,
    /// Send a lead to the rep who owns its company (default on).
    pub account_matching: bool,
    /// When no rep is in working hours, let reps who are only outside their
    /// hours (not absent, on holiday or full) take the lead (default off:
    /// the lead waits unassigned for the next routing run).
    pub allow_off_hours: bool,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            strategy: RoutingStrategy::Intelligent,
            ranking: RankingWeights::default(),
            account_matching: true,
            allow_off_hours: false,
        }
    }
}

/// One lead to route.
#[derive(Debug, Clone, Copy)]
pub struct RoutingRequest<'a> {
    /// The lead's normalized fields (industry, country, `metadata.language`,
    /// `metadata.product` are read for skill matching).
    pub lead: &'a LeadFields,
    /// The lead's match keys (the account key is shown in the explanation).
    pub keys: &'a MatchKeys,
    /// The rep who already owns this company / corporate domain, looked up
    /// by the caller in the store.
    pub account_owner: Option<&'a RepId>,
    /// The instant to decide for (availability, local days).
    pub now: DateTime<Utc>,
}

/// The outcome of [`route`]: who, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingDecision {
    /// The chosen rep, `None` when nobody could take the lead.
    pub assigned: Option<RepId>,
    /// The fair round-robin virtual time of this decision; recording the
    /// assignment needs it ([`apply_assignment`]).
    pub virtual_time: f64,
    /// Why.
    pub explanation: RoutingExplanation,
}

impl RoutingDecision {
    /// Records the assignment in `reps` (the state the decision was made
    /// on, or its successor), as of the decision's instant: see
    /// [`apply_assignment`]. Returns `false` when nobody was assigned or the
    /// rep is not in `reps`.
    pub fn apply(&self, reps: &mut [RepState]) -> bool {
        let Some(id) = &self.assigned else {
            return false;
        };
        match reps.iter_mut().find(|s| &s.rep.id == id) {
            Some(state) => {
                apply_assignment(state, self.virtual_time, self.explanation.decided_at);
                true
            }
            None => false,
        }
    }
}

/// What routing knows about one rep while deciding.
struct Slot {
    /// Availability reasons (empty = available).
    reasons: SkipReasons,
    /// Passed the filters (or the off-hours fallback let them in).
    available: bool,
    /// Skill score, for available reps.
    skill: u32,
    /// Position in the ranking (0 = picked), for reps that were compared.
    ranked: Option<usize>,
}

/// A rep being compared: position in the input and the scores.
struct Compared {
    index: usize,
    scores: RepScores,
}

/// `a` and `b` are equal up to [`TIE_EPSILON`], relative to their size.
fn near(a: f64, b: f64) -> bool {
    (a - b).abs() <= TIE_EPSILON * a.abs().max(b.abs()).max(1.0)
}

/// The last tie-breakers, shared by every strategy: fewest open leads, then
/// least recently assigned (never assigned first), then rep id, then input
/// position (only reached when two reps share an id).
fn tail_order(reps: &[RepState], a: usize, b: usize) -> Ordering {
    let (x, y) = (&reps[a], &reps[b]);
    x.load
        .open_leads
        .cmp(&y.load.open_leads)
        .then_with(|| x.load.last_assigned_at.cmp(&y.load.last_assigned_at))
        .then_with(|| x.rep.id.cmp(&y.rep.id))
        .then_with(|| a.cmp(&b))
}

/// Weighted fair round-robin among `group`: lowest effective pass (ties
/// within epsilon), then [`tail_order`]. Returns a position in `group`.
fn round_robin_pick(reps: &[RepState], group: &[&Compared]) -> Option<usize> {
    let lowest = group
        .iter()
        .map(|c| c.scores.effective_pass)
        .fold(f64::INFINITY, f64::min);
    group
        .iter()
        .filter(|c| near(c.scores.effective_pass, lowest))
        .min_by(|a, b| tail_order(reps, a.index, b.index))
        .map(|c| c.index)
}

/// The best composite (ties within epsilon), then fair round-robin.
fn intelligent_pick(reps: &[RepState], group: &[&Compared]) -> Option<usize> {
    let composite = |c: &Compared| c.scores.composite.unwrap_or(0.0);
    let best = group
        .iter()
        .map(|c| composite(c))
        .fold(f64::NEG_INFINITY, f64::max);
    let tied: Vec<&Compared> = group
        .iter()
        .copied()
        .filter(|c| near(composite(c), best))
        .collect();
    round_robin_pick(reps, &tied)
}

/// Scores the reps of `group` (input positions) for comparison.
fn score_group(
    config: &RoutingConfig,
    reps: &[RepState],
    slots: &[Slot],
    group: &[usize],
    virtual_time: f64,
) -> Vec<Compared> {
    let max_weight = group
        .iter()
        .map(|&i| reps[i].rep.weight)
        .filter(|w| availability::weight_is_valid(*w))
        .fold(0.0, f64::max);
    let parts = config.ranking.normalized();
    group
        .iter()
        .map(|&index| {
            let (rep, load) = (&reps[index].rep, &reps[index].load);
            // Open capacity 0 never gets here (filtered), but a full rep can
            // in the off-hours fallback's company: read it as fully loaded.
            let workload = if rep.open_capacity == 0 {
                1.0
            } else {
                (f64::from(load.open_leads) / f64::from(rep.open_capacity)).clamp(0.0, 1.0)
            };
            let performance = if rep.conversion_rate.is_nan() {
                0.0
            } else {
                rep.conversion_rate.clamp(0.0, 1.0)
            };
            let weight = if max_weight > 0.0 && availability::weight_is_valid(rep.weight) {
                (rep.weight / max_weight).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let composite = match config.strategy {
                RoutingStrategy::Intelligent => {
                    Some(parts[0] * (1.0 - workload) + parts[1] * performance + parts[2] * weight)
                }
                RoutingStrategy::RoundRobin => None,
            };
            Compared {
                index,
                scores: RepScores {
                    skill: slots[index].skill,
                    workload,
                    performance,
                    weight,
                    composite,
                    effective_pass: effective_pass(load.pass, virtual_time),
                    open_leads: load.open_leads,
                    outside_working_hours: !slots[index].reasons.is_empty(),
                },
            }
        })
        .collect()
}

/// Orders the compared reps for display: the picked rep first, then by the
/// same keys the pick used (without the epsilon, which a sort cannot use).
fn rank_group(strategy: RoutingStrategy, reps: &[RepState], group: &mut [Compared], picked: usize) {
    group.sort_by(|a, b| {
        let (sa, sb) = (&a.scores, &b.scores);
        (b.index == picked)
            .cmp(&(a.index == picked))
            .then_with(|| match strategy {
                RoutingStrategy::Intelligent => sb
                    .composite
                    .unwrap_or(0.0)
                    .total_cmp(&sa.composite.unwrap_or(0.0)),
                RoutingStrategy::RoundRobin => Ordering::Equal,
            })
            .then_with(|| sa.effective_pass.total_cmp(&sb.effective_pass))
            .then_with(|| tail_order(reps, a.index, b.index))
    });
}

/// Decides which rep gets the lead. Pure and deterministic; see the module
/// docs for the steps.
pub fn route(
    config: &RoutingConfig,
    reps: &[RepState],
    request: &RoutingRequest<'_>,
) -> RoutingDecision {
    let now = request.now;
    let attributes = LeadAttributes::of(request.lead);

    // 1. Availability.
    let mut clock = LocalClock::new(now);
    let mut slots: Vec<Slot> = reps
        .iter()
        .map(|state| {
            let reasons = check(state, &mut clock);
            Slot {
                available: reasons.is_empty(),
                reasons,
                skill: 0,
                ranked: None,
            }
        })
        .collect();
    let mut off_hours_fallback = false;
    if config.allow_off_hours && !slots.iter().any(|s| s.available) {
        for slot in &mut slots {
            if slot.reasons.only_outside_working_hours() {
                slot.available = true;
                off_hours_fallback = true;
            }
        }
    }
    let available: Vec<usize> = (0..reps.len()).filter(|&i| slots[i].available).collect();
    let virtual_time = virtual_time_of(available.iter().map(|&i| &reps[i]));
    for &i in &available {
        slots[i].skill = skills::skill_score(&reps[i].rep.skills, &attributes);
    }

    // 2. Account matching.
    let mut owner_pick = None;
    let account = request.account_owner.map(|owner| {
        let outcome = if !config.account_matching {
            AccountOutcome::Disabled
        } else if let Some(i) = available
            .iter()
            .copied()
            .find(|&i| &reps[i].rep.id == owner)
        {
            owner_pick = Some(i);
            AccountOutcome::Assigned
        } else if let Some(i) = (0..reps.len()).find(|&i| &reps[i].rep.id == owner) {
            AccountOutcome::OwnerUnavailable {
                reasons: slots[i].reasons,
            }
        } else {
            AccountOutcome::OwnerUnknown
        };
        AccountCheck {
            owner: owner.clone(),
            account: request
                .keys
                .corporate_domain()
                .map(str::to_owned)
                .or_else(|| request.keys.company_key()),
            outcome,
        }
    });

    // 3. Skills, then 4. strategy.
    let best_skill = if owner_pick.is_some() {
        0
    } else {
        available.iter().map(|&i| slots[i].skill).max().unwrap_or(0)
    };
    let group: Vec<usize> = match owner_pick {
        Some(i) => vec![i],
        None => available
            .iter()
            .copied()
            .filter(|&i| slots[i].skill == best_skill)
            .collect(),
    };
    let mut compared = score_group(config, reps, &slots, &group, virtual_time);
    let refs: Vec<&Compared> = compared.iter().collect();
    let (rule, picked) = if let Some(i) = owner_pick {
        (DecidingRule::AccountOwner, Some(i))
    } else if group.is_empty() {
        (DecidingRule::NoEligibleRep, None)
    } else if best_skill > 0 && group.len() == 1 {
        (DecidingRule::SkillMatch, Some(group[0]))
    } else {
        match config.strategy {
            RoutingStrategy::Intelligent => (DecidingRule::Ranking, intelligent_pick(reps, &refs)),
            RoutingStrategy::RoundRobin => {
                (DecidingRule::RoundRobin, round_robin_pick(reps, &refs))
            }
        }
    };
    if let Some(p) = picked {
        rank_group(config.strategy, reps, &mut compared, p);
        for (position, c) in compared.iter().enumerate() {
            slots[c.index].ranked = Some(position);
        }
    }

    // 5. Explanation: every rep, in input order.
    let owner_id = owner_pick.map(|i| &reps[i].rep.id);
    let verdicts = reps
        .iter()
        .zip(slots.iter())
        .map(|(state, slot)| {
            let ranked = slot
                .ranked
                .and_then(|p| compared.get(p).map(|c| (p, &c.scores)));
            let outcome = match ranked {
                Some((0, scores)) => RepOutcome::Picked {
                    scores: scores.clone(),
                },
                Some((position, scores)) => RepOutcome::Ranked {
                    rank: u32::try_from(position + 1).unwrap_or(u32::MAX),
                    scores: scores.clone(),
                },
                // In the off-hours fallback an available rep still lists
                // the clock as a reason, waived: what kept them out is the
                // narrowing rule.
                None if slot.available => RepOutcome::SetAside {
                    reason: match owner_id {
                        Some(owner) => SetAsideReason::AccountOwnedByOther {
                            owner: owner.clone(),
                        },
                        None => SetAsideReason::WeakerSkillMatch {
                            skill_score: slot.skill,
                            best: best_skill,
                        },
                    },
                },
                None => RepOutcome::Skipped {
                    reasons: slot.reasons,
                },
            };
            RepVerdict {
                rep: state.rep.id.clone(),
                outcome,
            }
        })
        .collect();

    let assigned = picked.map(|i| reps[i].rep.id.clone());
    let summary = summarize(
        rule,
        assigned.as_ref(),
        account.as_ref(),
        best_skill,
        group.len(),
        reps.len(),
        off_hours_fallback,
    );
    RoutingDecision {
        assigned,
        virtual_time,
        explanation: RoutingExplanation {
            rule,
            summary,
            strategy: config.strategy,
            decided_at: now,
            lead: attributes,
            account,
            best_skill_score: best_skill,
            off_hours_fallback,
            reps: verdicts,
        },
    }
}

/// The one-sentence summary of a decision.
fn summarize(
    rule: DecidingRule,
    assigned: Option<&RepId>,
    account: Option<&AccountCheck>,
    best_skill: u32,
    compared: usize,
    total: usize,
    off_hours_fallback: bool,
) -> String {
    let who = assigned.map_or_else(String::new, RepId::to_string);
    let mut text = match rule {
        DecidingRule::AccountOwner => match account.and_then(|a| a.account.as_deref()) {
            Some(key) => format!("assigned to {who}, who owns the account {key}"),
            None => format!("assigned to {who}, who owns the lead's account"),
        },
        DecidingRule::SkillMatch => format!(
            "assigned to {who}, the only available rep matching {best_skill} of the lead's attributes"
        ),
        DecidingRule::Ranking | DecidingRule::RoundRobin if compared == 1 => {
            format!("assigned to {who}, the only eligible rep")
        }
        DecidingRule::Ranking => {
            format!("assigned to {who}, ranked first of {compared} eligible reps")
        }
        DecidingRule::RoundRobin => {
            format!(
                "assigned to {who}, next in weighted round-robin among {compared} eligible reps"
            )
        }
        DecidingRule::NoEligibleRep if total == 0 => "no reps are configured".to_owned(),
        DecidingRule::NoEligibleRep => {
            format!("none of the {total} reps can take a lead now")
        }
    };
    if best_skill > 0 && matches!(rule, DecidingRule::Ranking | DecidingRule::RoundRobin) {
        text.push_str(&format!(" with the best skill match ({best_skill} of 4)"));
    }
    if let Some(AccountCheck {
        owner,
        outcome: AccountOutcome::OwnerUnavailable { .. },
        ..
    }) = account
    {
        text.push_str(&format!("; account owner {owner} unavailable"));
    }
    if off_hours_fallback {
        text.push_str("; nobody was in working hours, so off-hours reps were considered");
    }
    text
}
