//! Sales reps and what routing needs to know about them.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A rep's id: their e-mail address, lower-cased.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepId(String);

impl RepId {
    /// Parses a rep id (an e-mail address).
    pub fn parse(raw: &str) -> Result<Self> {
        let email = super::Email::parse(raw).map_err(|_| {
            Error::invalid(
                "assigned_to",
                "invalid_rep",
                "a rep is identified by a valid e-mail address",
            )
        })?;
        Ok(RepId(email.as_str().to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepId({})", self.0)
    }
}

impl TryFrom<String> for RepId {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        RepId::parse(&value)
    }
}

impl From<RepId> for String {
    fn from(value: RepId) -> Self {
        value.0
    }
}

/// Weekly working hours in the rep's own time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    /// Days the rep works.
    pub days: Vec<Weekday>,
    /// Start of the working day (inclusive).
    pub start: NaiveTime,
    /// End of the working day (exclusive). When `end <= start` the shift
    /// runs past midnight.
    pub end: NaiveTime,
}

impl Default for WorkingHours {
    /// Monday to Friday, 09:00-17:00.
    fn default() -> Self {
        use Weekday::*;
        Self {
            days: [Mon, Tue, Wed, Thu, Fri].into_iter().collect(),
            start: NaiveTime::from_hms_opt(9, 0, 0).expect("valid time"),
            end: NaiveTime::from_hms_opt(17, 0, 0).expect("valid time"),
        }
    }
}

impl WorkingHours {
    /// Every day, all day.
    pub fn always() -> Self {
        use Weekday::*;
        let midnight = NaiveTime::MIN;
        Self {
            days: [Mon, Tue, Wed, Thu, Fri, Sat, Sun].into_iter().collect(),
            start: midnight,
            end: midnight,
        }
    }

    /// `true` when the local weekday is a working day.
    pub fn is_working_day(&self, day: Weekday) -> bool {
        self.days.contains(&day)
    }
}

/// A period a rep is away (holiday, sick leave), `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Absence {
    /// First instant away.
    pub start: DateTime<Utc>,
    /// First instant back.
    pub end: DateTime<Utc>,
}

/// What a rep is good at; leads matching more of it prefer that rep.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Skills {
    /// Industries, lower-case (`software`, `retail`).
    pub industries: BTreeSet<String>,
    /// Products, lower-case.
    pub products: BTreeSet<String>,
    /// Regions or countries, upper-case ISO codes (`ES`, `US`) or names.
    pub regions: BTreeSet<String>,
    /// Languages, lower-case ISO 639-1 (`es`, `en`).
    pub languages: BTreeSet<String>,
}

/// A sales rep.
///
/// Deserializing needs only `id` and `name`; every other field left out
/// takes [`Rep::new`]'s default, and an unknown field is an error (a typo
/// in a reps file must not pass silently).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rep {
    /// Id (e-mail).
    pub id: RepId,
    /// Display name.
    pub name: String,
    /// Inactive reps never receive leads.
    #[serde(default = "defaults::active")]
    pub active: bool,
    /// The rep's time zone (IANA name).
    #[serde(default = "defaults::time_zone")]
    pub time_zone: Tz,
    /// When the rep works, in `time_zone`.
    #[serde(default)]
    pub working_hours: WorkingHours,
    /// Out-of-office periods.
    #[serde(default)]
    pub absences: Vec<Absence>,
    /// Public holidays the rep does not work, in their own calendar.
    #[serde(default)]
    pub holidays: BTreeSet<NaiveDate>,
    /// Most leads the rep receives per local day.
    #[serde(default = "defaults::daily_capacity")]
    pub daily_capacity: u32,
    /// Most open leads the rep holds at once.
    #[serde(default = "defaults::open_capacity")]
    pub open_capacity: u32,
    /// Skills used for matching.
    #[serde(default)]
    pub skills: Skills,
    /// Relative share of leads (1.0 = normal, 2.0 = twice as many).
    #[serde(default = "defaults::weight")]
    pub weight: f64,
    /// Historical conversion rate, 0-1.
    #[serde(default)]
    pub conversion_rate: f64,
}

/// [`Rep::new`]'s defaults, also what deserializing fills in.
mod defaults {
    use chrono_tz::Tz;

    pub(super) fn active() -> bool {
        true
    }
    pub(super) fn time_zone() -> Tz {
        Tz::UTC
    }
    pub(super) fn daily_capacity() -> u32 {
        20
    }
    pub(super) fn open_capacity() -> u32 {
        200
    }
    pub(super) fn weight() -> f64 {
        1.0
    }
}

impl Rep {
    /// A rep with defaults: active, UTC, Mon-Fri 9-17, 20 leads a day, 200 open, weight 1.
    pub fn new(id: RepId, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            active: defaults::active(),
            time_zone: defaults::time_zone(),
            working_hours: WorkingHours::default(),
            absences: Vec::new(),
            holidays: BTreeSet::new(),
            daily_capacity: defaults::daily_capacity(),
            open_capacity: defaults::open_capacity(),
            skills: Skills::default(),
            weight: defaults::weight(),
            conversion_rate: 0.0,
        }
    }
}

/// A rep's current workload, kept by the store and updated in the same
/// transaction as each assignment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RepLoad {
    /// Open leads assigned to the rep.
    pub open_leads: u32,
    /// Leads assigned during the rep's current local day.
    pub assigned_today: u32,
    /// The rep's local date `assigned_today` counts for.
    pub today: Option<NaiveDate>,
    /// When the rep last received a lead.
    pub last_assigned_at: Option<DateTime<Utc>>,
    /// Fair round-robin position ("virtual finish time"); see [`crate::routing`].
    pub pass: f64,
}

/// A rep together with their workload: the state routing decides on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepState {
    /// The rep.
    pub rep: Rep,
    /// The rep's workload.
    pub load: RepLoad,
}
