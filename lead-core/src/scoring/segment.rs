//! Segmentation: the named groups a lead belongs to.

use serde::{Deserialize, Serialize};

use super::channel::{Channel, channel_of};
use crate::model::{LeadFields, Priority, Score};
use crate::normalize::{DomainKind, classify_domain};

/// Knobs for segmentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SegmentConfig {
    /// Behavioral score from which a lead is `engaged` (default 20).
    pub engaged_behavioral_score: u8,
    /// Employees from which a company is enterprise (default 1000).
    pub enterprise_employees: u32,
    /// Employees from which a company is mid-market (default 100).
    pub mid_market_employees: u32,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        Self {
            engaged_behavioral_score: 20,
            enterprise_employees: 1000,
            mid_market_employees: 100,
        }
    }
}

/// What segmentation looks at.
#[derive(Debug, Clone, Copy)]
pub struct SegmentInput<'a> {
    /// Normalized fields.
    pub fields: &'a LeadFields,
    /// Rule score.
    pub score: Score,
    /// Priority.
    pub priority: Priority,
    /// Behavioral score.
    pub behavioral_score: Score,
    /// Number of behavioral events.
    pub event_count: usize,
}

impl SegmentConfig {
    /// Segment names, `family:value`, in a fixed order:
    ///
    /// - `score:premium|high|medium|low` (80+, 60-79, 40-59, < 40)
    /// - `priority:high|medium|low`
    /// - `source:paid|organic|unknown` (paid and social ads are paid;
    ///   organic, direct and referral are organic)
    /// - `size:enterprise|mid_market|small_business` when size is known
    /// - `behavior:enterprise_contact` (corporate e-mail at an enterprise),
    ///   `behavior:engaged` (behavioral score ≥ threshold), `behavior:new` (no events yet)
    /// - `industry:<name>` when known
    ///
    /// # Example
    ///
    /// ```
    /// use lead_core::{Email, LeadFields, Priority, Score, SegmentConfig, SegmentInput};
    /// let mut f = LeadFields::new(Email::parse("ana@bigcorp.com").unwrap());
    /// f.company_size = Some(5000);
    /// f.industry = Some("software".into());
    /// let s = SegmentConfig::default().segments(SegmentInput {
    ///     fields: &f, score: Score::clamped(85), priority: Priority::High,
    ///     behavioral_score: Score::clamped(0), event_count: 0,
    /// });
    /// assert_eq!(s, ["score:premium", "priority:high", "source:organic", "size:enterprise",
    ///                "behavior:enterprise_contact", "behavior:new", "industry:software"]);
    /// ```
    pub fn segments(&self, input: SegmentInput<'_>) -> Vec<String> {
        let mut out = Vec::with_capacity(7);
        let score = match input.score.value() {
            80.. => "premium",
            60..=79 => "high",
            40..=59 => "medium",
            _ => "low",
        };
        out.push(format!("score:{score}"));
        out.push(format!("priority:{}", input.priority));
        let source = match channel_of(input.fields) {
            Channel::Paid | Channel::Social => "paid",
            Channel::Organic | Channel::Direct | Channel::Referral => "organic",
            Channel::Unknown => "unknown",
        };
        out.push(format!("source:{source}"));
        let enterprise = input
            .fields
            .company_size
            .is_some_and(|n| n >= self.enterprise_employees);
        if let Some(size) = input.fields.company_size {
            let family = if enterprise {
                "enterprise"
            } else if size >= self.mid_market_employees {
                "mid_market"
            } else {
                "small_business"
            };
            out.push(format!("size:{family}"));
        }
        if enterprise && classify_domain(input.fields.email.domain()) == DomainKind::Corporate {
            out.push("behavior:enterprise_contact".to_owned());
        }
        if input.behavioral_score.value() >= self.engaged_behavioral_score {
            out.push("behavior:engaged".to_owned());
        }
        if input.event_count == 0 {
            out.push("behavior:new".to_owned());
        }
        if let Some(industry) = &input.fields.industry {
            out.push(format!("industry:{industry}"));
        }
        out
    }
}
