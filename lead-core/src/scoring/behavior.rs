//! Behavioral scoring: what a lead did, weighted and decayed with age.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{EventKind, LeadEvent, Score};

/// How an event's weight fades with age.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Decay {
    /// Full weight when new, falling in a straight line to zero at `days`.
    Linear {
        /// Age at which an event is worth nothing (default 30).
        days: f64,
    },
    /// Weight halves every `half_life_days`.
    Exponential {
        /// Days for the weight to halve.
        half_life_days: f64,
    },
}

impl Decay {
    /// The fraction of weight left at `age_days` (0-1; a future event counts in full).
    pub fn factor(self, age_days: f64) -> f64 {
        let age = if age_days.is_nan() {
            f64::INFINITY
        } else {
            age_days.max(0.0)
        };
        match self {
            Decay::Linear { days } if days > 0.0 => (1.0 - age / days).max(0.0),
            Decay::Linear { .. } => 0.0,
            Decay::Exponential { half_life_days } if half_life_days > 0.0 => {
                0.5f64.powf(age / half_life_days)
            }
            Decay::Exponential { .. } => 0.0,
        }
    }
}

/// Knobs for behavioral scoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BehaviorConfig {
    /// Points per event kind before decay.
    pub weights: BTreeMap<EventKind, f64>,
    /// How weights fade.
    pub decay: Decay,
    /// Highest score (default 100).
    pub cap: f64,
}

impl Default for BehaviorConfig {
    fn default() -> Self {
        let weights = [
            (EventKind::DemoRequest, 20.0),
            (EventKind::WebinarRegister, 15.0),
            (EventKind::FormSubmit, 10.0),
            (EventKind::PricingView, 8.0),
            (EventKind::Download, 5.0),
            (EventKind::EmailClick, 3.0),
            (EventKind::PageVisit, 1.0),
        ]
        .into_iter()
        .collect();
        Self {
            weights,
            decay: Decay::Linear { days: 30.0 },
            cap: 100.0,
        }
    }
}

/// Points from one event kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindPoints {
    /// The kind.
    pub kind: EventKind,
    /// How many events of this kind counted.
    pub count: u32,
    /// Decayed points, before the cap.
    pub points: f64,
}

/// A behavioral score with its breakdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BehaviorScore {
    /// The capped, rounded score.
    pub score: Score,
    /// Points per kind, heaviest kind first; kinds with no events left out.
    pub by_kind: Vec<KindPoints>,
}

impl BehaviorConfig {
    /// Scores events as of `as_of` (an argument, so results are
    /// reproducible: there is no hidden clock).
    ///
    /// # Example
    ///
    /// ```
    /// use chrono::{Duration, TimeZone, Utc};
    /// use lead_core::{BehaviorConfig, EventKind, LeadEvent};
    /// let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
    /// let ev = |kind, days| LeadEvent { kind, at: now - Duration::days(days), properties: Default::default() };
    /// let events = [ev(EventKind::DemoRequest, 0), ev(EventKind::PricingView, 15), ev(EventKind::Download, 40)];
    /// // 20 + 8 × 0.5 + 0 (too old)
    /// assert_eq!(BehaviorConfig::default().score(&events, now).score.value(), 24);
    /// ```
    pub fn score(&self, events: &[LeadEvent], as_of: DateTime<Utc>) -> BehaviorScore {
        let mut by_kind: Vec<KindPoints> = Vec::new();
        let mut total = 0.0;
        for event in events {
            let weight = self.weights.get(&event.kind).copied().unwrap_or(0.0);
            let age_days = (as_of - event.at).num_seconds() as f64 / 86_400.0;
            let points = weight * self.decay.factor(age_days);
            total += points;
            match by_kind.iter_mut().find(|k| k.kind == event.kind) {
                Some(k) => {
                    k.count += 1;
                    k.points += points;
                }
                None => by_kind.push(KindPoints {
                    kind: event.kind,
                    count: 1,
                    points,
                }),
            }
        }
        by_kind.sort_by_key(|k| k.kind);
        BehaviorScore {
            score: Score::from_f64(total.min(self.cap)),
            by_kind,
        }
    }
}
