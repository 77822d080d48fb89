//! Notifications: which changes are worth telling people and other
//! systems about, how they are queued, and how they are delivered.
//!
//! # Design
//!
//! A use-case that changes a lead asks [`changes`] what the change means
//! for people and queues each event as an outbox entry for every consumer
//! in [`NotifyPolicy::deliver_to`] (the people's channels under
//! [`Destination::NOTIFY`], signed webhooks under
//! [`Destination::WEBHOOKS`]), **in the same commit** as the change: an
//! alert is never lost, and the capture path never waits on Slack or a
//! mail server. Each consumer delivers its entries ([`deliver_once`]) over
//! its channels, marking each (entry, channel) done as it goes, so a retry
//! or a restart mid-batch never sends one channel the same notification
//! twice. Follow-ups due soon or overdue and stale leads are a digest per
//! rep, queued by the `lead_notifications` job ([`digest`]).
//!
//! [`Destination::NOTIFY`]: crate::Destination::NOTIFY
//! [`Destination::WEBHOOKS`]: crate::Destination::WEBHOOKS

mod deliver;
mod digest;
mod event;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

pub use deliver::{Channel, DeliverConfig, DeliverReport, Sent, deliver_once, mark_name};
pub use digest::{DIGEST_WATERMARK, digest};
pub use event::{DigestItem, Event, LeadCard, Notification, NotificationKind, TaskCard};

use crate::commit::{Commit, Destination, OutboxEntry, OutboxKind};
use crate::lead::Lead;
use crate::model::{ChangeOrigin, Priority, Stage};
use crate::ports::{Clock, IdGenerator};

/// What is worth telling, and to which consumers (a `[notifications]`
/// table of the policy file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyPolicy {
    /// The consumers that deliver notifications: each event is queued once
    /// for each. Set by whoever assembles the system from the channels it
    /// runs (the server: [`Destination::NOTIFY`] when Slack or e-mail is
    /// configured, [`Destination::WEBHOOKS`] when a subscriber is); empty
    /// (the default) queues nothing, so no entry waits for a consumer that
    /// does not exist.
    #[serde(skip)]
    pub deliver_to: Vec<Destination>,
    /// The least priority of a new lead that is announced (default `high`).
    pub high_priority: Priority,
    /// Stages whose reaching is announced (default `won` and `lost`).
    pub critical_stages: Vec<Stage>,
    /// Days without contact after which an open lead is stale, by priority.
    pub stale_after_days: StaleDays,
    /// How far ahead a follow-up counts as due soon, in hours (default 24).
    pub due_soon_hours: u32,
    /// How far back the first digest looks, in hours (default 2, the
    /// `lead_notifications` schedule): later digests cover the time since
    /// the previous one.
    pub first_digest_hours: u32,
}

impl Default for NotifyPolicy {
    fn default() -> Self {
        NotifyPolicy {
            deliver_to: Vec::new(),
            high_priority: Priority::High,
            critical_stages: vec![Stage::Won, Stage::Lost],
            stale_after_days: StaleDays::default(),
            due_soon_hours: 24,
            first_digest_hours: 2,
        }
    }
}

impl NotifyPolicy {
    /// Checks the values a policy file gave: hours and days up to ten
    /// years.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`](crate::Error::Invalid) naming the field.
    pub fn check(&self) -> crate::Result<()> {
        let limit = 3650u32;
        let checks = [
            (
                "notifications.due_soon_hours",
                self.due_soon_hours,
                limit * 24,
            ),
            (
                "notifications.first_digest_hours",
                self.first_digest_hours,
                limit * 24,
            ),
            (
                "notifications.stale_after_days.high",
                self.stale_after_days.high,
                limit,
            ),
            (
                "notifications.stale_after_days.medium",
                self.stale_after_days.medium,
                limit,
            ),
            (
                "notifications.stale_after_days.low",
                self.stale_after_days.low,
                limit,
            ),
        ];
        for (field, value, max) in checks {
            if value > max {
                return Err(crate::Error::invalid(
                    field,
                    "out_of_range",
                    format!("{value} is more than {max}"),
                ));
            }
        }
        Ok(())
    }
}

/// Days without contact after which an open lead is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaleDays {
    /// High priority (default 2).
    pub high: u32,
    /// Medium priority (default 5).
    pub medium: u32,
    /// Low priority (default 10).
    pub low: u32,
}

impl Default for StaleDays {
    fn default() -> Self {
        StaleDays {
            high: 2,
            medium: 5,
            low: 10,
        }
    }
}

impl StaleDays {
    /// The days for `priority`.
    pub fn of(&self, priority: Priority) -> u32 {
        match priority {
            Priority::High => self.high,
            Priority::Medium => self.medium,
            Priority::Low => self.low,
        }
    }
}

/// What a change of one lead means for people: the events to tell, given
/// the lead before the change (`None` for a new lead) and after it.
///
/// - a new lead of at least [`NotifyPolicy::high_priority`]: announced;
/// - a new rep (on capture, by hand, by routing, from the CRM): the rep is
///   told (a new high-priority lead's rep learns it from the announcement);
/// - a stage in [`NotifyPolicy::critical_stages`] reached: announced.
///
/// The tests in `notify/tests.rs` run each case through the use-cases.
pub fn changes(
    before: Option<&Lead>,
    after: &Lead,
    origin: ChangeOrigin,
    policy: &NotifyPolicy,
) -> Vec<Event> {
    let mut events = Vec::new();
    if after.merged_into.is_some() {
        return events;
    }
    let card = || LeadCard::of(after);
    let announced = before.is_none() && after.priority >= policy.high_priority;
    if announced {
        events.push(Event::HighPriorityLead { lead: card() });
    }
    let previous = before.and_then(|b| b.assigned_to.clone());
    if let Some(to) = &after.assigned_to
        && previous.as_ref() != Some(to)
        && !announced
    {
        events.push(Event::Assigned {
            lead: card(),
            to: to.clone(),
            from: previous,
        });
    }
    if let Some(before) = before
        && before.stage != after.stage
        && policy.critical_stages.contains(&after.stage)
    {
        events.push(Event::StageChanged {
            lead: card(),
            from: before.stage,
            to: after.stage,
            origin,
        });
    }
    events
}

/// Queues `events` in `commit`, one entry per event and consumer of
/// [`NotifyPolicy::deliver_to`].
pub fn queue(
    commit: &mut Commit,
    events: Vec<Event>,
    policy: &NotifyPolicy,
    clock: &dyn Clock,
    ids: &dyn IdGenerator,
) {
    for event in events {
        let lead = match &event {
            Event::Digest { items, .. } => match items.first() {
                Some(item) => item.lead().ext_id.clone(),
                None => continue,
            },
            other => match other.lead() {
                Some(card) => card.ext_id.clone(),
                None => continue,
            },
        };
        let payload = serde_json::to_value(&event).unwrap_or_default();
        for destination in &policy.deliver_to {
            commit.outbox.push(OutboxEntry {
                id: ids.uuid(),
                destination: destination.clone(),
                lead: lead.clone(),
                kind: OutboxKind::Notification,
                payload: payload.clone(),
                created_at: clock.now(),
            });
        }
    }
}

/// Quiet hours: people's channels hold their messages from `start` to
/// `end` (local time of `time_zone`; a span over midnight when `end` is
/// before `start`) and send them when they end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// When they start (`22:00`).
    pub start: NaiveTime,
    /// When they end (`07:00`).
    pub end: NaiveTime,
    /// Whose clock (default UTC).
    #[serde(default = "utc")]
    pub time_zone: Tz,
}

fn utc() -> Tz {
    Tz::UTC
}

impl QuietHours {
    /// When the quiet hours around `now` end, or `None` when `now` is not
    /// in them.
    ///
    /// ```
    /// use chrono::{NaiveTime, TimeZone, Utc};
    /// use lead_core::notify::QuietHours;
    /// let quiet = QuietHours {
    ///     start: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
    ///     end: NaiveTime::from_hms_opt(7, 0, 0).unwrap(),
    ///     time_zone: chrono_tz::Tz::UTC,
    /// };
    /// let night = Utc.with_ymd_and_hms(2026, 12, 3, 23, 30, 0).unwrap();
    /// assert_eq!(quiet.ends_after(night), Some(Utc.with_ymd_and_hms(2026, 12, 4, 7, 0, 0).unwrap()));
    /// assert_eq!(quiet.ends_after(Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()), None);
    /// ```
    pub fn ends_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.start == self.end {
            return None;
        }
        let local = now.with_timezone(&self.time_zone);
        let time = local.time();
        let date = local.date_naive();
        let quiet = if self.start < self.end {
            time >= self.start && time < self.end
        } else {
            time >= self.start || time < self.end
        };
        if !quiet {
            return None;
        }
        let end_date = if self.start > self.end && time >= self.start {
            date.succ_opt()?
        } else {
            date
        };
        let mut end = end_date.and_time(self.end);
        // A daylight-saving gap may skip the end's local time: the quiet
        // hours end when the gap does (the first local minute that exists).
        // In a repeated hour, the end is the first one still ahead.
        for _ in 0..=24 * 60 {
            match self.time_zone.from_local_datetime(&end) {
                chrono::LocalResult::Single(at) => return Some(at.with_timezone(&Utc)),
                chrono::LocalResult::Ambiguous(first, second) => {
                    let first = first.with_timezone(&Utc);
                    return Some(if first > now {
                        first
                    } else {
                        second.with_timezone(&Utc)
                    });
                }
                chrono::LocalResult::None => end += chrono::Duration::minutes(1),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
