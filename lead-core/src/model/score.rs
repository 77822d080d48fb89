//! Scores and the priority derived from them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A score between 0 and 100 inclusive.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "u8")]
pub struct Score(u8);

impl Score {
    /// The lowest score.
    pub const MIN: Score = Score(0);
    /// The highest score.
    pub const MAX: Score = Score(100);

    /// Clamps any sum of points into 0-100.
    pub fn clamped(points: i64) -> Self {
        Score(points.clamp(0, 100) as u8)
    }

    /// Clamps and rounds a fractional score into 0-100 (NaN becomes 0).
    pub fn from_f64(points: f64) -> Self {
        if points.is_nan() {
            return Score(0);
        }
        Score(points.round().clamp(0.0, 100.0) as u8)
    }

    /// The value, 0-100.
    pub fn value(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for Score {
    type Error = Error;
    fn try_from(value: i64) -> Result<Self> {
        if (0..=100).contains(&value) {
            Ok(Score(value as u8))
        } else {
            Err(Error::invalid(
                "score",
                "out_of_range",
                "score must be between 0 and 100",
            ))
        }
    }
}

impl From<Score> for u8 {
    fn from(value: Score) -> Self {
        value.0
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How urgently a lead should be worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Score below the medium threshold.
    Low,
    /// Score between the medium and high thresholds.
    Medium,
    /// Score at or above the high threshold.
    High,
}

impl Priority {
    /// All priorities, lowest first.
    pub const ALL: [Priority; 3] = [Priority::Low, Priority::Medium, Priority::High];

    /// The lower-case name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        }
    }

    /// Parses `low`, `medium` or `high`.
    pub fn parse(raw: &str) -> Result<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(Priority::Low),
            "medium" => Ok(Priority::Medium),
            "high" => Ok(Priority::High),
            _ => Err(Error::invalid(
                "priority",
                "invalid_priority",
                "priority must be low, medium or high",
            )),
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Score thresholds for priorities: high ≥ `high`, medium ≥ `medium`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityThresholds {
    /// Lowest score that is high priority (default 70).
    pub high: u8,
    /// Lowest score that is medium priority (default 40).
    pub medium: u8,
}

impl Default for PriorityThresholds {
    fn default() -> Self {
        Self {
            high: 70,
            medium: 40,
        }
    }
}

impl PriorityThresholds {
    /// The priority of a score.
    ///
    /// # Example
    ///
    /// ```
    /// use lead_core::{Priority, PriorityThresholds, Score};
    /// let t = PriorityThresholds::default();
    /// assert_eq!(t.priority(Score::clamped(70)), Priority::High);
    /// assert_eq!(t.priority(Score::clamped(69)), Priority::Medium);
    /// assert_eq!(t.priority(Score::clamped(39)), Priority::Low);
    /// ```
    pub fn priority(&self, score: Score) -> Priority {
        if score.value() >= self.high {
            Priority::High
        } else if score.value() >= self.medium {
            Priority::Medium
        } else {
            Priority::Low
        }
    }
}
