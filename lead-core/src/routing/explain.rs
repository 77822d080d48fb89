//! Why a lead went where it went: the explanation stored with every
//! routing decision and shown by the API.
//!
//! Every rep of the routing state appears exactly once, as picked, ranked
//! (eligible, scored, not picked) or skipped (with machine-readable reasons
//! and a sentence for people).

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use super::RoutingStrategy;
use crate::model::RepId;

/// The rule that decided the assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidingRule {
    /// The rep who already owns the lead's company got it.
    AccountOwner,
    /// Exactly one eligible rep had the best skill and territory match.
    SkillMatch,
    /// The intelligent ranking (workload, performance, weight) picked the rep.
    Ranking,
    /// Weighted fair round-robin picked the rep.
    RoundRobin,
    /// No rep could take the lead; it stays unassigned.
    NoEligibleRep,
}

impl DecidingRule {
    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DecidingRule::AccountOwner => "account_owner",
            DecidingRule::SkillMatch => "skill_match",
            DecidingRule::Ranking => "ranking",
            DecidingRule::RoundRobin => "round_robin",
            DecidingRule::NoEligibleRep => "no_eligible_rep",
        }
    }
}

impl fmt::Display for DecidingRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a rep could not take a lead at all: the availability filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum SkipReason {
    /// The rep is switched off.
    Inactive,
    /// The rep's weight is zero, negative, infinite or not a number.
    InvalidWeight,
    /// The rep is out of office.
    Absent {
        /// When the rep is back (end of the absence that covers now).
        until: DateTime<Utc>,
    },
    /// A public holiday in the rep's own calendar.
    Holiday {
        /// The holiday, a date in the rep's calendar.
        date: NaiveDate,
    },
    /// Outside the rep's working hours, in the rep's time zone.
    OutsideWorkingHours {
        /// The rep's local time when the lead was routed.
        local_time: NaiveDateTime,
        /// The rep's time zone.
        time_zone: Tz,
    },
    /// The rep already received their daily quota today (local day).
    DailyCapacityReached {
        /// Leads received during the rep's current local day.
        assigned_today: u32,
        /// The rep's daily capacity.
        daily_capacity: u32,
    },
    /// The rep holds as many open leads as they may.
    OpenCapacityReached {
        /// Open leads held.
        open_leads: u32,
        /// The rep's open-lead capacity.
        open_capacity: u32,
    },
}

impl SkipReason {
    /// The stable snake_case code (the `code` field on the wire).
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::Inactive => "inactive",
            SkipReason::InvalidWeight => "invalid_weight",
            SkipReason::Absent { .. } => "absent",
            SkipReason::Holiday { .. } => "holiday",
            SkipReason::OutsideWorkingHours { .. } => "outside_working_hours",
            SkipReason::DailyCapacityReached { .. } => "daily_capacity_reached",
            SkipReason::OpenCapacityReached { .. } => "open_capacity_reached",
        }
    }
}

impl fmt::Display for SkipReason {
    /// A short sentence for people (dashboard, API).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Inactive => f.write_str("inactive"),
            SkipReason::InvalidWeight => f.write_str("weight is not a positive number"),
            SkipReason::Absent { until } => {
                write!(
                    f,
                    "out of office until {}",
                    until.format("%Y-%m-%d %H:%M UTC")
                )
            }
            SkipReason::Holiday { date } => write!(f, "public holiday on {date}"),
            SkipReason::OutsideWorkingHours {
                local_time,
                time_zone,
            } => write!(
                f,
                "outside working hours (local time {} in {})",
                local_time.format("%a %Y-%m-%d %H:%M"),
                time_zone.name()
            ),
            SkipReason::DailyCapacityReached {
                assigned_today,
                daily_capacity,
            } => write!(
                f,
                "daily capacity reached ({assigned_today} of {daily_capacity} today)"
            ),
            SkipReason::OpenCapacityReached {
                open_leads,
                open_capacity,
            } => write!(
                f,
                "open-lead capacity reached ({open_leads} of {open_capacity} open)"
            ),
        }
    }
}

/// The availability filters that failed for one rep: each at most once,
/// always in checking order (the order of [`SkipReason`]'s variants).
///
/// Stored inline rather than in a `Vec`: routing fills one for every rep of
/// the team on every decision, and an allocation each would be most of the
/// cost. On the wire it is a plain array of [`SkipReason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SkipReasons {
    inactive: bool,
    invalid_weight: bool,
    absent_until: Option<DateTime<Utc>>,
    holiday: Option<NaiveDate>,
    outside_working_hours: Option<(NaiveDateTime, Tz)>,
    daily_capacity: Option<(u32, u32)>,
    open_capacity: Option<(u32, u32)>,
}

impl SkipReasons {
    /// Adds a reason, replacing an earlier one of the same kind.
    pub fn insert(&mut self, reason: SkipReason) {
        match reason {
            SkipReason::Inactive => self.inactive = true,
            SkipReason::InvalidWeight => self.invalid_weight = true,
            SkipReason::Absent { until } => self.absent_until = Some(until),
            SkipReason::Holiday { date } => self.holiday = Some(date),
            SkipReason::OutsideWorkingHours {
                local_time,
                time_zone,
            } => self.outside_working_hours = Some((local_time, time_zone)),
            SkipReason::DailyCapacityReached {
                assigned_today,
                daily_capacity,
            } => self.daily_capacity = Some((assigned_today, daily_capacity)),
            SkipReason::OpenCapacityReached {
                open_leads,
                open_capacity,
            } => self.open_capacity = Some((open_leads, open_capacity)),
        }
    }

    /// The reasons, in checking order.
    pub fn iter(&self) -> impl Iterator<Item = SkipReason> + use<> {
        [
            self.inactive.then_some(SkipReason::Inactive),
            self.invalid_weight.then_some(SkipReason::InvalidWeight),
            self.absent_until.map(|until| SkipReason::Absent { until }),
            self.holiday.map(|date| SkipReason::Holiday { date }),
            self.outside_working_hours.map(|(local_time, time_zone)| {
                SkipReason::OutsideWorkingHours {
                    local_time,
                    time_zone,
                }
            }),
            self.daily_capacity.map(|(assigned_today, daily_capacity)| {
                SkipReason::DailyCapacityReached {
                    assigned_today,
                    daily_capacity,
                }
            }),
            self.open_capacity.map(
                |(open_leads, open_capacity)| SkipReason::OpenCapacityReached {
                    open_leads,
                    open_capacity,
                },
            ),
        ]
        .into_iter()
        .flatten()
    }

    /// `true` when no filter failed: the rep is available.
    pub fn is_empty(&self) -> bool {
        *self == SkipReasons::default()
    }

    /// Number of failed filters.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// `true` when the only thing keeping the rep away is the clock.
    pub fn only_outside_working_hours(&self) -> bool {
        self.outside_working_hours.is_some()
            && SkipReasons {
                outside_working_hours: None,
                ..*self
            }
            .is_empty()
    }
}

impl FromIterator<SkipReason> for SkipReasons {
    fn from_iter<I: IntoIterator<Item = SkipReason>>(iter: I) -> Self {
        let mut reasons = SkipReasons::default();
        for reason in iter {
            reasons.insert(reason);
        }
        reasons
    }
}

impl fmt::Display for SkipReasons {
    /// The reasons as one sentence, separated by `; `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, reason) in self.iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{reason}")?;
        }
        Ok(())
    }
}

impl Serialize for SkipReasons {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for SkipReasons {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<SkipReason>::deserialize(deserializer).map(|list| list.into_iter().collect())
    }
}

/// Why an available rep was not compared: an earlier rule chose among fewer
/// reps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum SetAsideReason {
    /// The lead's account belongs to another available rep.
    AccountOwnedByOther {
        /// The owner who got the lead.
        owner: RepId,
    },
    /// Other reps match the lead's skills and territory better.
    WeakerSkillMatch {
        /// This rep's skill score.
        skill_score: u32,
        /// The best skill score among available reps.
        best: u32,
    },
}

impl SetAsideReason {
    /// The stable snake_case code (the `code` field on the wire).
    pub fn code(&self) -> &'static str {
        match self {
            SetAsideReason::AccountOwnedByOther { .. } => "account_owned_by_other",
            SetAsideReason::WeakerSkillMatch { .. } => "weaker_skill_match",
        }
    }
}

impl fmt::Display for SetAsideReason {
    /// A short sentence for people (dashboard, API).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetAsideReason::AccountOwnedByOther { owner } => {
                write!(f, "the lead's account belongs to {owner}")
            }
            SetAsideReason::WeakerSkillMatch { skill_score, best } => write!(
                f,
                "weaker skill match ({skill_score} of 4; best available {best})"
            ),
        }
    }
}

/// The numbers a rep was ranked by. All values are finite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepScores {
    /// Skill and territory matches with the lead, 0-4 (industry, region,
    /// language, product).
    pub skill: u32,
    /// Open leads / open capacity, 0-1: **lower** is better.
    pub workload: f64,
    /// Historical conversion rate, clamped to 0-1.
    pub performance: f64,
    /// Weight relative to the largest weight compared, 0-1.
    pub weight: f64,
    /// Composite ranking score, 0-1, higher is better (intelligent strategy only).
    pub composite: Option<f64>,
    /// Fair round-robin position used for this decision (lower goes first).
    pub effective_pass: f64,
    /// Open leads held.
    pub open_leads: u32,
    /// `true` when the rep was outside working hours and only considered
    /// because off-hours routing is allowed and nobody was in hours.
    pub outside_working_hours: bool,
}

/// What happened to one rep.
///
/// On the wire skipped and set-aside reps also carry `message`, the reasons
/// as one sentence for people. It is written when serializing, not when
/// routing: most reps of a large team are skipped or set aside, and
/// formatting a sentence for each would cost more than the whole decision.
/// It is ignored when reading.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RepOutcome {
    /// This rep got the lead.
    Picked {
        /// The numbers the rep was compared by.
        scores: RepScores,
    },
    /// Eligible and compared, but another rep came first.
    Ranked {
        /// Position in the ranking (the picked rep is 1, so this is 2 or more).
        rank: u32,
        /// The numbers the rep was compared by.
        scores: RepScores,
    },
    /// Available, but not compared: account matching or skill matching
    /// had already narrowed the field.
    SetAside {
        /// Which rule narrowed the field.
        reason: SetAsideReason,
    },
    /// Could not take the lead now.
    Skipped {
        /// Every availability filter that failed, in checking order.
        reasons: SkipReasons,
    },
}

impl RepOutcome {
    /// For a skipped or set-aside rep, the reasons as one sentence
    /// (`"inactive; public holiday on 2024-12-25"`).
    pub fn message(&self) -> Option<String> {
        match self {
            RepOutcome::SetAside { reason } => Some(reason.to_string()),
            RepOutcome::Skipped { reasons } => Some(reasons.to_string()),
            _ => None,
        }
    }
}

impl Serialize for RepOutcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self {
            RepOutcome::Picked { scores } => {
                map.serialize_entry("outcome", "picked")?;
                map.serialize_entry("scores", scores)?;
            }
            RepOutcome::Ranked { rank, scores } => {
                map.serialize_entry("outcome", "ranked")?;
                map.serialize_entry("rank", rank)?;
                map.serialize_entry("scores", scores)?;
            }
            RepOutcome::SetAside { reason } => {
                map.serialize_entry("outcome", "set_aside")?;
                map.serialize_entry("reason", reason)?;
                map.serialize_entry("message", &self.message())?;
            }
            RepOutcome::Skipped { reasons } => {
                map.serialize_entry("outcome", "skipped")?;
                map.serialize_entry("reasons", reasons)?;
                map.serialize_entry("message", &self.message())?;
            }
        }
        map.end()
    }
}

/// One rep's line in the explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepVerdict {
    /// The rep.
    pub rep: RepId,
    /// What happened to them (flattened on the wire: `{"rep": …,
    /// "outcome": "ranked", "rank": 2, "scores": {…}}`).
    #[serde(flatten)]
    pub outcome: RepOutcome,
}

/// How account matching went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AccountOutcome {
    /// The owner was available and got the lead.
    Assigned,
    /// The owner could not take the lead; routing went on without them.
    OwnerUnavailable {
        /// Why the owner was skipped.
        reasons: SkipReasons,
    },
    /// The owner is not among the reps routing knows.
    OwnerUnknown,
    /// Account matching is switched off in the configuration.
    Disabled,
}

/// The account-matching step, present when the caller named an owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountCheck {
    /// The rep who owns the lead's company.
    pub owner: RepId,
    /// The account key the owner was found by: corporate domain, else company key.
    pub account: Option<String>,
    /// What came of it.
    pub outcome: AccountOutcome,
}

/// The lead attributes skill matching read, normalized (trimmed, lower case).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LeadAttributes {
    /// `lead.industry`.
    pub industry: Option<String>,
    /// `lead.country`.
    pub region: Option<String>,
    /// `metadata.language`.
    pub language: Option<String>,
    /// `metadata.product` (a string or an array of strings).
    pub products: Vec<String>,
}

/// Everything needed to answer "why this rep?".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingExplanation {
    /// The rule that decided.
    pub rule: DecidingRule,
    /// One sentence for people.
    pub summary: String,
    /// The configured strategy.
    pub strategy: RoutingStrategy,
    /// The instant the decision was made for.
    pub decided_at: DateTime<Utc>,
    /// What skill matching read from the lead.
    pub lead: LeadAttributes,
    /// Account matching, when the caller named an owner.
    pub account: Option<AccountCheck>,
    /// Best skill score among reps that were compared (0 = no preference applied).
    pub best_skill_score: u32,
    /// `true` when nobody was in working hours and off-hours reps were used.
    pub off_hours_fallback: bool,
    /// Every rep, in the order they were given.
    pub reps: Vec<RepVerdict>,
}

impl RoutingExplanation {
    /// The verdict for one rep.
    pub fn verdict(&self, rep: &RepId) -> Option<&RepOutcome> {
        self.reps.iter().find(|v| &v.rep == rep).map(|v| &v.outcome)
    }
}
