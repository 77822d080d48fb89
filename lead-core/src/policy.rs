//! The policy: every configurable business rule in one value, and the
//! assessment that applies the scoring parts of it to a lead.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::dedup::DedupConfig;
use crate::error::{Error, Result};
use crate::followup::FollowUpConfig;
use crate::model::{
    FieldMap, LeadEvent, LeadFields, Priority, PriorityThresholds, Score, StageProbabilities,
};
use crate::normalize::NormalizeOptions;
use crate::routing::RoutingConfig;
use crate::scoring::{
    BantConfig, BantResult, BehaviorConfig, BehaviorScore, RuleHit, RuleSet, SegmentConfig,
    SegmentInput,
};

/// Every business rule that a deployment may tune, with the SPEC's
/// defaults. Loadable from TOML; missing sections keep their defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Region for phone numbers without a country prefix (ISO code, default `US`).
    #[serde(with = "region_code")]
    pub default_region: crate::model::Region,
    /// Rule scoring.
    pub rules: RuleSet,
    /// Priority thresholds.
    pub priority: PriorityThresholds,
    /// BANT.
    pub bant: BantConfig,
    /// Behavioral scoring.
    pub behavior: BehaviorConfig,
    /// Segmentation.
    pub segments: SegmentConfig,
    /// Win probability per stage.
    pub stage_probabilities: StageProbabilities,
    /// Duplicate detection.
    pub dedup: DedupConfig,
    /// Routing to reps.
    pub routing: RoutingConfig,
    /// Follow-up planning.
    pub followup: FollowUpConfig,
    /// Other form tools' field names, `alias = "lead field"` (a
    /// `[field_aliases]` table): added to the built-in map, which already
    /// knows Contact Form 7, HubSpot, Typeform, Gravity Forms and
    /// Mailchimp names.
    pub field_aliases: std::collections::BTreeMap<String, String>,
    /// Notifications: what is announced and when a lead is stale (the
    /// `[notifications]` table; the channels are the server's settings).
    pub notifications: crate::notify::NotifyPolicy,
}

mod region_code {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::model::Region;

    pub(super) fn serialize<S: Serializer>(region: &Region, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(region.code())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Region, D::Error> {
        let code = String::deserialize(d)?;
        Region::parse(&code).map_err(serde::de::Error::custom)
    }
}

/// Everything the policy says about one lead at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// Rule score.
    pub score: Score,
    /// Priority from the rule score.
    pub priority: Priority,
    /// Rules behind the score.
    pub hits: Vec<RuleHit>,
    /// BANT verdict.
    pub bant: BantResult,
    /// Behavioral score.
    pub behavior: BehaviorScore,
    /// Segments.
    pub segments: Vec<String>,
}

impl Policy {
    /// Reads a policy from TOML.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] when the TOML does not read as a policy, a
    /// field alias names no lead field, or a notification setting is out
    /// of range.
    pub fn from_toml(text: &str) -> Result<Self> {
        let policy: Policy = toml::from_str(text)
            .map_err(|e| Error::invalid("policy", "invalid_policy", e.to_string()))?;
        policy.field_map()?;
        policy.notifications.check()?;
        Ok(policy)
    }

    /// The built-in field map plus [`Policy::field_aliases`].
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] (field `field_aliases.<alias>`) when an alias
    /// names no lead field.
    pub fn field_map(&self) -> Result<FieldMap> {
        let mut map = FieldMap::standard().clone();
        for (alias, canonical) in &self.field_aliases {
            map = map.with_alias(alias, canonical).map_err(|_| {
                Error::invalid(
                    &format!("field_aliases.{alias}"),
                    "unknown_field",
                    format!("`{canonical}` (for `{alias}`) is not a lead field"),
                )
            })?;
        }
        Ok(map)
    }

    /// Normalization options implied by the policy.
    pub fn normalize_options(&self) -> NormalizeOptions {
        NormalizeOptions {
            default_region: self.default_region,
        }
    }

    /// Scores, prioritises, qualifies and segments a lead as of `as_of`.
    ///
    /// # Example
    ///
    /// ```
    /// use chrono::Utc;
    /// use lead_core::{Email, LeadFields, Policy, Priority};
    /// let mut f = LeadFields::new(Email::parse("ana@acme.com").unwrap());
    /// f.first_name = Some("Ana".into());
    /// f.last_name = Some("López".into());
    /// f.company = Some("Acme".into());
    /// f.message = Some("We need a quote".into());
    /// let a = Policy::default().assess(&f, &[], Utc::now());
    /// assert_eq!(a.score.value(), 40); // name 10 + company 10 + message 10 + direct 10
    /// assert_eq!(a.priority, Priority::Medium);
    /// assert!(a.bant.need.met);
    /// ```
    pub fn assess(
        &self,
        fields: &LeadFields,
        events: &[LeadEvent],
        as_of: DateTime<Utc>,
    ) -> Assessment {
        let scored = self.rules.score(fields);
        let priority = self.priority.priority(scored.score);
        let bant = self.bant.evaluate(fields, events);
        let behavior = self.behavior.score(events, as_of);
        let segments = self.segments.segments(SegmentInput {
            fields,
            score: scored.score,
            priority,
            behavioral_score: behavior.score,
            event_count: events.len(),
        });
        Assessment {
            score: scored.score,
            priority,
            hits: scored.hits,
            bant,
            behavior,
            segments,
        }
    }
}
