//! Follow-up planning: the task created with every captured lead (SPEC
//! "Follow-ups").
//!
//! A task is due a number of **business days** after capture, by priority
//! (1 for high, 2 for medium, 3 for low), counted in the assigned rep's time
//! zone and calendar: weekends, the configured holidays and the rep's own
//! holidays are skipped. Unassigned leads use the configured default zone.
//!
//! # Design
//!
//! The due time keeps the **local time of day of the capture**: a lead
//! captured Friday 15:10 in Madrid with one business day is due Monday
//! 15:10 Madrid time. That makes "one business day" mean a full working
//! day's worth of time for the rep, whatever the hour of capture; clamping
//! into working hours would give leads captured late in the day less time
//! (or move them to a different day), and the rep's working hours are
//! already taken into account when routing. Where the local time does not
//! exist on the due date (a daylight-saving gap) the first valid time after
//! it is used; where it exists twice, the earlier instant.
//!
//! Nothing here reads a clock or draws random numbers: `now` and the task id
//! are passed in, so plans are reproducible in tests and replays.

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, Duration, MappedLocalTime, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{LeadExtId, Priority, Rep, RepId};
use crate::routing::local_time;

/// Business days until a follow-up is due, per priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FollowUpDays {
    /// High priority (default 1).
    pub high: u32,
    /// Medium priority (default 2).
    pub medium: u32,
    /// Low priority (default 3).
    pub low: u32,
}

impl Default for FollowUpDays {
    fn default() -> Self {
        Self {
            high: 1,
            medium: 2,
            low: 3,
        }
    }
}

/// Most business days a follow-up can be put off (about four years): a
/// larger configured value is read as this, so a typo cannot make planning
/// walk the calendar for millions of days.
pub const MAX_FOLLOWUP_DAYS: u32 = 1_000;

impl FollowUpDays {
    /// Business days for `priority`, between 1 (a task is never due before
    /// it is created) and [`MAX_FOLLOWUP_DAYS`].
    pub fn for_priority(&self, priority: Priority) -> u32 {
        let days = match priority {
            Priority::High => self.high,
            Priority::Medium => self.medium,
            Priority::Low => self.low,
        };
        days.clamp(1, MAX_FOLLOWUP_DAYS)
    }
}

/// Follow-up planning settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FollowUpConfig {
    /// Business days per priority.
    pub days: FollowUpDays,
    /// Time zone for leads nobody is assigned to (default UTC).
    pub default_time_zone: Tz,
    /// Company-wide holidays, skipped in every rep's calendar.
    pub holidays: BTreeSet<NaiveDate>,
    /// Days that are never business days (default Saturday and Sunday). A
    /// list naming all seven days is ignored: some day must be workable.
    pub weekend: Vec<Weekday>,
}

impl Default for FollowUpConfig {
    fn default() -> Self {
        Self {
            days: FollowUpDays::default(),
            default_time_zone: Tz::UTC,
            holidays: BTreeSet::new(),
            weekend: vec![Weekday::Sat, Weekday::Sun],
        }
    }
}

/// Where a follow-up task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpStatus {
    /// To do.
    #[default]
    Open,
    /// Done by the rep.
    Done,
    /// No longer needed (lead closed, merged, reassigned).
    Cancelled,
}

impl FollowUpStatus {
    /// Every status.
    pub const ALL: [FollowUpStatus; 3] = [
        FollowUpStatus::Open,
        FollowUpStatus::Done,
        FollowUpStatus::Cancelled,
    ];

    /// The snake_case wire name (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            FollowUpStatus::Open => "open",
            FollowUpStatus::Done => "done",
            FollowUpStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name, case-insensitively.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Invalid`] on `status` for anything else.
    pub fn parse(raw: &str) -> crate::Result<Self> {
        let wanted = raw.trim().to_ascii_lowercase();
        FollowUpStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == wanted)
            .ok_or_else(|| {
                crate::Error::invalid(
                    "status",
                    "invalid_status",
                    "status is open, done or cancelled",
                )
            })
    }
}

/// A follow-up task for a lead (stored in `sales_followup_tasks`, pushed to
/// the CRM as a task or activity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUpTask {
    /// Task id.
    pub id: Uuid,
    /// The lead to follow up.
    pub lead: LeadExtId,
    /// The rep who should do it, when the lead is assigned.
    pub assigned_to: Option<RepId>,
    /// The lead's priority when the task was planned.
    pub priority: Priority,
    /// When the follow-up is due.
    pub due_at: DateTime<Utc>,
    /// Task title, as shown in the CRM.
    pub subject: String,
    /// Where the task stands.
    pub status: FollowUpStatus,
    /// When the task was planned.
    pub created_at: DateTime<Utc>,
    /// When the rep marked it done (absent from documents stored before
    /// tasks could be completed, hence the default).
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    /// What the rep wrote when completing or rescheduling it, kept with the
    /// task so whoever picks the lead up next can read it.
    #[serde(default)]
    pub notes: Option<String>,
    /// When the follow-up automation found it past due and still open
    /// (marked once; the CRM's task is raised to high priority).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue_at: Option<DateTime<Utc>>,
}

/// Days that count as business days for one rep (or for unassigned leads).
struct Calendar<'a> {
    weekend: &'a [Weekday],
    holidays: &'a BTreeSet<NaiveDate>,
    rep_holidays: Option<&'a BTreeSet<NaiveDate>>,
}

impl Calendar<'_> {
    fn is_business_day(&self, date: NaiveDate) -> bool {
        !self.weekend.contains(&date.weekday())
            && !self.holidays.contains(&date)
            && !self.rep_holidays.is_some_and(|h| h.contains(&date))
    }

    /// The first business day after `date`; `None` only past the end of the
    /// calendar. Terminates: fewer than seven weekend days and finitely many
    /// holidays leave business days in every long enough stretch.
    fn next_business_day(&self, date: NaiveDate) -> Option<NaiveDate> {
        let mut day = date.succ_opt()?;
        while !self.is_business_day(day) {
            day = day.succ_opt()?;
        }
        Some(day)
    }
}

/// How many times a due date may be pushed on because the local time did
/// not land on a business day (only zones that skipped whole days, like
/// Pacific/Apia on 2011-12-30, need more than one try).
const MAX_RESOLVE_ATTEMPTS: usize = 8;

/// The instant of a local wall-clock time in `tz`: the earlier one when the
/// time happens twice, the first valid time after a daylight-saving gap.
fn resolve_local(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        MappedLocalTime::Single(t) => Some(t.with_timezone(&Utc)),
        MappedLocalTime::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        MappedLocalTime::None => {
            // Gaps are 30 minutes to a few hours (a whole day in rare
            // historical cases): probe forward in 15-minute steps, the
            // granularity of every real transition, for up to two days.
            (1..=192).find_map(|step| {
                let probe = local.checked_add_signed(Duration::minutes(15 * step))?;
                tz.from_local_datetime(&probe)
                    .earliest()
                    .map(|t| t.with_timezone(&Utc))
            })
        }
    }
}

/// When a follow-up for a lead of `priority` captured at `now` is due (see
/// the module docs for the rules).
///
/// Never panics. Only at the very end of chrono's calendar, where no later
/// business day exists, it returns `now` plus the days it could add.
pub fn due_at(
    config: &FollowUpConfig,
    priority: Priority,
    assigned: Option<&Rep>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let tz = assigned.map_or(config.default_time_zone, |r| r.time_zone);
    let all_week = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ]
    .iter()
    .all(|d| config.weekend.contains(d));
    let calendar = Calendar {
        weekend: if all_week { &[] } else { &config.weekend },
        holidays: &config.holidays,
        rep_holidays: assigned.map(|r| &r.holidays),
    };
    let days = config.days.for_priority(priority);
    let fallback = || {
        now.checked_add_signed(Duration::days(i64::from(days)))
            .unwrap_or(now)
    };

    let local_now = local_time(now, tz);
    let time_of_day = local_now.time();
    let mut date = local_now.date();
    for _ in 0..days {
        match calendar.next_business_day(date) {
            Some(next) => date = next,
            None => return fallback(),
        }
    }
    for _ in 0..MAX_RESOLVE_ATTEMPTS {
        let due = resolve_local(tz, date.and_time(time_of_day));
        if let Some(due) = due {
            let due_date = local_time(due, tz).date();
            if due > now && calendar.is_business_day(due_date) {
                return due;
            }
            // The wall-clock time moved to another day (a skipped or
            // repeated day): go on from wherever it landed.
            date = date.max(due_date);
        }
        match calendar.next_business_day(date) {
            Some(next) => date = next,
            None => return fallback(),
        }
    }
    fallback()
}

/// Plans the follow-up task for a newly captured lead: due per
/// [`due_at`], open, for the assigned rep.
///
/// # Example
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use lead_core::followup::{plan_followup, FollowUpConfig};
/// use lead_core::{LeadExtId, Priority};
///
/// let friday = Utc.with_ymd_and_hms(2024, 11, 8, 15, 0, 0).unwrap();
/// let task = plan_followup(
///     &FollowUpConfig::default(),
///     LeadExtId::parse("WEB-7KQ2M9XA").unwrap(),
///     Priority::High,
///     None,
///     friday,
///     uuid::Uuid::nil(),
/// );
/// // One business day after a Friday is the Monday, same time of day.
/// assert_eq!(task.due_at, Utc.with_ymd_and_hms(2024, 11, 11, 15, 0, 0).unwrap());
/// ```
pub fn plan_followup(
    config: &FollowUpConfig,
    lead_ext_id: LeadExtId,
    priority: Priority,
    assigned: Option<&Rep>,
    now: DateTime<Utc>,
    id: Uuid,
) -> FollowUpTask {
    FollowUpTask {
        id,
        subject: format!("Follow up with lead {lead_ext_id} ({priority} priority)"),
        lead: lead_ext_id,
        assigned_to: assigned.map(|r| r.id.clone()),
        priority,
        due_at: due_at(config, priority, assigned, now),
        status: FollowUpStatus::Open,
        created_at: now,
        completed_at: None,
        overdue_at: None,
        notes: None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveTime, Timelike};
    use proptest::prelude::*;

    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn rep_in(tz: Tz) -> Rep {
        let mut rep = Rep::new(RepId::parse("ana@example.com").unwrap(), "Ana");
        rep.time_zone = tz;
        rep
    }

    fn lead() -> LeadExtId {
        LeadExtId::parse("WEB-7KQ2M9XA").unwrap()
    }

    #[test]
    fn friday_high_priority_lead_is_due_monday_at_the_same_time() {
        let friday = utc(2024, 11, 8, 15, 30);
        let due = due_at(&FollowUpConfig::default(), Priority::High, None, friday);
        assert_eq!(due, utc(2024, 11, 11, 15, 30));
    }

    #[test]
    fn days_follow_priority_and_skip_the_weekend() {
        let config = FollowUpConfig::default();
        let thursday = utc(2024, 11, 7, 9, 0);
        assert_eq!(
            due_at(&config, Priority::High, None, thursday),
            utc(2024, 11, 8, 9, 0)
        );
        assert_eq!(
            due_at(&config, Priority::Medium, None, thursday),
            utc(2024, 11, 11, 9, 0)
        );
        assert_eq!(
            due_at(&config, Priority::Low, None, thursday),
            utc(2024, 11, 12, 9, 0)
        );
    }

    #[test]
    fn weekend_capture_counts_from_the_next_business_day() {
        let saturday = utc(2024, 11, 9, 10, 0);
        let due = due_at(&FollowUpConfig::default(), Priority::High, None, saturday);
        assert_eq!(due, utc(2024, 11, 11, 10, 0));
    }

    #[test]
    fn configured_and_rep_holidays_are_skipped() {
        let mut config = FollowUpConfig::default();
        config.holidays.insert(date(2024, 11, 11)); // Monday, company-wide
        let mut rep = rep_in(Tz::UTC);
        rep.holidays.insert(date(2024, 11, 12)); // Tuesday, the rep's own
        let friday = utc(2024, 11, 8, 12, 0);

        let for_rep = due_at(&config, Priority::High, Some(&rep), friday);
        let unassigned = due_at(&config, Priority::High, None, friday);

        assert_eq!(for_rep, utc(2024, 11, 13, 12, 0));
        assert_eq!(unassigned, utc(2024, 11, 12, 12, 0));
    }

    #[test]
    fn the_reps_time_zone_decides_the_local_date() {
        // 23:30 UTC on Friday is already Saturday 08:30 in Tokyo, so one
        // business day is Monday 08:30 Tokyo time, not Monday 23:30 UTC.
        let friday_night_utc = utc(2024, 11, 8, 23, 30);
        let rep = rep_in(chrono_tz::Asia::Tokyo);

        let due = due_at(
            &FollowUpConfig::default(),
            Priority::High,
            Some(&rep),
            friday_night_utc,
        );

        let local = due.with_timezone(&chrono_tz::Asia::Tokyo);
        assert_eq!(local.date_naive(), date(2024, 11, 11));
        assert_eq!(local.time(), NaiveTime::from_hms_opt(8, 30, 0).unwrap());
        assert_eq!(due, utc(2024, 11, 10, 23, 30));
    }

    #[test]
    fn a_time_lost_to_daylight_saving_moves_forward_without_panicking() {
        // Friday 2024-03-08 02:30 in New York; Monday is fine but make the
        // due date land on the spring-forward Sunday by making it a workday.
        let config = FollowUpConfig {
            weekend: vec![Weekday::Sat],
            ..FollowUpConfig::default()
        };
        let rep = rep_in(chrono_tz::America::New_York);
        let saturday_0230_local = utc(2024, 3, 9, 7, 30); // 02:30 EST

        let due = due_at(&config, Priority::High, Some(&rep), saturday_0230_local);

        // Sunday 2024-03-10 02:30 does not exist in New York: 03:00 EDT.
        let local = due.with_timezone(&chrono_tz::America::New_York);
        assert_eq!(local.date_naive(), date(2024, 3, 10));
        assert_eq!((local.hour(), local.minute()), (3, 0));
        assert!(due > saturday_0230_local);
    }

    #[test]
    fn a_repeated_hour_picks_the_earlier_instant() {
        let config = FollowUpConfig {
            weekend: vec![Weekday::Sat],
            ..FollowUpConfig::default()
        };
        let rep = rep_in(chrono_tz::America::New_York);
        let saturday_0130_local = utc(2024, 11, 2, 5, 30); // 01:30 EDT

        let due = due_at(&config, Priority::High, Some(&rep), saturday_0130_local);

        // Sunday 2024-11-03 01:30 happens twice: first at 05:30 UTC (EDT).
        assert_eq!(due, utc(2024, 11, 3, 5, 30));
    }

    #[test]
    fn a_skipped_calendar_day_does_not_break_planning() {
        // Samoa skipped Friday 2011-12-30 entirely.
        let rep = rep_in(chrono_tz::Pacific::Apia);
        let thursday_local_noon = utc(2011, 12, 29, 22, 0); // Thu 29th 12:00 at -10:00
        let due = due_at(
            &FollowUpConfig::default(),
            Priority::High,
            Some(&rep),
            thursday_local_noon,
        );
        let local = local_time(due, chrono_tz::Pacific::Apia);
        assert_eq!(local.date(), date(2012, 1, 2));
    }

    #[test]
    fn a_weekend_of_seven_days_is_ignored_rather_than_looping_forever() {
        let config = FollowUpConfig {
            weekend: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun,
            ],
            ..FollowUpConfig::default()
        };
        let friday = utc(2024, 11, 8, 12, 0);
        assert_eq!(
            due_at(&config, Priority::High, None, friday),
            utc(2024, 11, 9, 12, 0)
        );
    }

    #[test]
    fn zero_days_is_read_as_one() {
        let mut config = FollowUpConfig::default();
        config.days.high = 0;
        let monday = utc(2024, 11, 4, 12, 0);
        assert_eq!(
            due_at(&config, Priority::High, None, monday),
            utc(2024, 11, 5, 12, 0)
        );
    }

    #[test]
    fn absurd_day_counts_are_capped() {
        let mut config = FollowUpConfig::default();
        config.days.low = u32::MAX;
        let monday = utc(2024, 11, 4, 12, 0);
        let due = due_at(&config, Priority::Low, None, monday);
        // 1000 business days = 200 weeks of five.
        assert_eq!(due, monday + Duration::weeks(200));
    }

    #[test]
    fn config_reads_partial_json_with_defaults() {
        let config: FollowUpConfig = serde_json::from_str(
            r#"{"days": {"low": 5}, "default_time_zone": "Europe/Madrid", "holidays": ["2024-12-25"]}"#,
        )
        .unwrap();
        assert_eq!(
            config.days,
            FollowUpDays {
                high: 1,
                medium: 2,
                low: 5
            }
        );
        assert_eq!(config.default_time_zone, chrono_tz::Europe::Madrid);
        assert!(config.holidays.contains(&date(2024, 12, 25)));
        assert_eq!(config.weekend, [Weekday::Sat, Weekday::Sun]);
    }

    #[test]
    fn the_end_of_the_calendar_does_not_panic() {
        let rep = rep_in(chrono_tz::Asia::Tokyo);
        let _ = due_at(
            &FollowUpConfig::default(),
            Priority::Low,
            Some(&rep),
            DateTime::<Utc>::MAX_UTC,
        );
        let _ = due_at(
            &FollowUpConfig::default(),
            Priority::Low,
            Some(&rep),
            DateTime::<Utc>::MIN_UTC,
        );
    }

    #[test]
    fn plan_builds_an_open_task_for_the_assigned_rep() {
        let rep = rep_in(Tz::UTC);
        let now = utc(2024, 11, 4, 9, 0);
        let id = Uuid::from_u128(42);

        let task = plan_followup(
            &FollowUpConfig::default(),
            lead(),
            Priority::Medium,
            Some(&rep),
            now,
            id,
        );

        assert_eq!(task.id, id);
        assert_eq!(task.lead, lead());
        assert_eq!(task.assigned_to, Some(rep.id.clone()));
        assert_eq!(task.status, FollowUpStatus::Open);
        assert_eq!(task.created_at, now);
        assert_eq!(task.due_at, utc(2024, 11, 6, 9, 0));
        assert!(task.subject.contains("WEB-7KQ2M9XA"));
        assert_eq!((task.completed_at, task.notes.as_deref()), (None, None));
        let json = serde_json::to_string(&task).unwrap();
        assert_eq!(serde_json::from_str::<FollowUpTask>(&json).unwrap(), task);
    }

    #[test]
    fn a_document_stored_before_completion_fields_still_reads() {
        let old = r#"{"id": "00000000-0000-0000-0000-00000000002a", "lead": "WEB-7KQ2M9XA",
            "assigned_to": null, "priority": "high", "due_at": "2024-11-11T15:00:00Z",
            "subject": "Follow up", "status": "open", "created_at": "2024-11-08T15:00:00Z"}"#;
        let task: FollowUpTask = serde_json::from_str(old).unwrap();
        assert_eq!(task.id, Uuid::from_u128(42));
        assert_eq!((task.completed_at, task.notes), (None, None));
        let done = FollowUpTask {
            status: FollowUpStatus::Done,
            completed_at: Some(utc(2024, 11, 11, 16, 0)),
            notes: Some("Demo booked ✓".into()),
            ..task
        };
        let json = serde_json::to_string(&done).unwrap();
        assert_eq!(serde_json::from_str::<FollowUpTask>(&json).unwrap(), done);
    }

    const ZONES: &[Tz] = &[
        Tz::UTC,
        chrono_tz::America::New_York,
        chrono_tz::America::Santiago,
        chrono_tz::America::St_Johns,
        chrono_tz::Europe::Madrid,
        chrono_tz::Asia::Tokyo,
        chrono_tz::Asia::Kolkata,
        chrono_tz::Asia::Kathmandu,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::Pacific::Apia,
        chrono_tz::Pacific::Kiritimati,
        chrono_tz::Pacific::Chatham,
    ];

    proptest! {
        #[test]
        fn due_is_after_now_and_on_a_business_day_in_the_reps_zone(
            secs in 0i64..4_102_444_800, // 1970..2100
            zone in 0usize..ZONES.len(),
            priority in prop::sample::select(Priority::ALL.to_vec()),
            holiday_offsets in prop::collection::btree_set(0i64..30, 0..8),
            rep_holiday_offsets in prop::collection::btree_set(0i64..30, 0..8),
            assigned in any::<bool>(),
        ) {
            let now = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
            let tz = ZONES[zone];
            let base = local_time(now, tz).date();
            let shift = |o: &i64| base + Duration::days(*o);
            let mut config = FollowUpConfig { default_time_zone: tz, ..FollowUpConfig::default() };
            config.holidays = holiday_offsets.iter().map(shift).collect();
            let mut rep = rep_in(tz);
            rep.holidays = rep_holiday_offsets.iter().map(shift).collect();
            let assigned = assigned.then_some(&rep);

            let due = due_at(&config, priority, assigned, now);

            let local = local_time(due, tz).date();
            prop_assert!(due > now);
            prop_assert!(!matches!(local.weekday(), Weekday::Sat | Weekday::Sun));
            prop_assert!(!config.holidays.contains(&local));
            if assigned.is_some() {
                prop_assert!(!rep.holidays.contains(&local));
            }
            // Never more than the business days asked for plus every
            // weekend and holiday in between (and a day of slack for gaps).
            let limit = i64::from(config.days.for_priority(priority)) * 3 + 16 + 2;
            prop_assert!(due - now <= Duration::days(limit));
        }
    }
}
