//! Rule scoring as data: conditions → points, in groups with caps.
//!
//! A [`RuleSet`] is loaded from TOML or JSON so users add signals without
//! code; [`RuleSet::default`] reproduces the original system's table (SPEC
//! "Rule scoring"), and `rules/default.toml` in this crate is the same set
//! written as a file to copy from.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::channel::{Channel, channel_of};
use super::name::Name;
use crate::error::{Error, Result};
use crate::model::{LeadFields, Score};
use crate::normalize::{DomainKind, classify_domain};

/// A lead field a condition reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// One of the named lead fields ([`crate::CANONICAL_FIELDS`]).
    Named(&'static str),
    /// `metadata.<key>`: a top-level key of the metadata object.
    Metadata(String),
}

impl FromStr for Field {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if let Some(key) = s.strip_prefix("metadata.") {
            return Ok(Field::Metadata(key.to_owned()));
        }
        crate::model::CANONICAL_FIELDS
            .iter()
            .find(|f| **f == s)
            .map(|f| Field::Named(f))
            .ok_or_else(|| {
                Error::invalid(
                    "rules",
                    "unknown_field",
                    format!("rule refers to unknown field `{s}`"),
                )
            })
    }
}

impl Serialize for Field {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Field::Named(n) => serializer.serialize_str(n),
            Field::Metadata(k) => serializer.collect_str(&format_args!("metadata.{k}")),
        }
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl Field {
    fn text(&self, f: &LeadFields) -> Option<String> {
        let borrowed = |v: &Option<String>| v.clone();
        match self {
            Field::Named(name) => match *name {
                "email" => Some(f.email.as_str().to_owned()),
                "first_name" => borrowed(&f.first_name),
                "last_name" => borrowed(&f.last_name),
                "phone" => f.phone.as_ref().map(|p| p.as_str().to_owned()),
                "company" => borrowed(&f.company),
                "source" => borrowed(&f.source),
                "message" => borrowed(&f.message),
                "utm_source" => borrowed(&f.utm_source),
                "utm_campaign" => borrowed(&f.utm_campaign),
                "utm_medium" => borrowed(&f.utm_medium),
                "landing_page" => borrowed(&f.landing_page),
                "job_title" => borrowed(&f.job_title),
                "website" => borrowed(&f.website),
                "country" => borrowed(&f.country),
                "industry" => borrowed(&f.industry),
                "company_size" => f.company_size.map(|n| n.to_string()),
                "budget" => f.budget.map(|b| b.to_string()),
                "timeline" => borrowed(&f.timeline),
                "consent_marketing" => f.consent_marketing.map(|b| b.to_string()),
                "consent_text" => borrowed(&f.consent_text),
                _ => None,
            },
            Field::Metadata(key) => f.metadata.get(key).and_then(|v| match v {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            }),
        }
    }

    /// Presence without allocating: the hot path of the default rules.
    fn is_present(&self, f: &LeadFields) -> bool {
        match self {
            Field::Named(name) => match *name {
                "email" => true,
                "first_name" => f.first_name.is_some(),
                "last_name" => f.last_name.is_some(),
                "phone" => f.phone.is_some(),
                "company" => f.company.is_some(),
                "source" => f.source.is_some(),
                "message" => f.message.is_some(),
                "utm_source" => f.utm_source.is_some(),
                "utm_campaign" => f.utm_campaign.is_some(),
                "utm_medium" => f.utm_medium.is_some(),
                "landing_page" => f.landing_page.is_some(),
                "job_title" => f.job_title.is_some(),
                "website" => f.website.is_some(),
                "country" => f.country.is_some(),
                "industry" => f.industry.is_some(),
                "company_size" => f.company_size.is_some(),
                "budget" => f.budget.is_some(),
                "timeline" => f.timeline.is_some(),
                "consent_marketing" => f.consent_marketing.is_some(),
                "consent_text" => f.consent_text.is_some(),
                _ => false,
            },
            Field::Metadata(_) => self.text(f).is_some_and(|t| !t.trim().is_empty()),
        }
    }

    fn number(&self, f: &LeadFields) -> Option<f64> {
        match self {
            Field::Named("company_size") => f.company_size.map(f64::from),
            Field::Named("budget") => f.budget.and_then(|b| b.to_string().parse().ok()),
            other => other.text(f).and_then(|t| t.trim().parse().ok()),
        }
    }
}

/// When a rule applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The field is given.
    Present(Field),
    /// The field equals one of the values (case-insensitive).
    OneOf {
        /// Field to read.
        field: Field,
        /// Accepted values.
        values: Vec<String>,
    },
    /// The field contains any of the words (case-insensitive substring).
    Contains {
        /// Field to read.
        field: Field,
        /// Substrings, any of which matches.
        any: Vec<String>,
    },
    /// The field, read as a number, is at least `value`.
    AtLeast {
        /// Field to read.
        field: Field,
        /// Lower bound, inclusive.
        value: f64,
    },
    /// The derived marketing channel is one of these.
    Channel(Vec<Channel>),
    /// The e-mail domain is of this kind.
    EmailDomain(DomainKind),
    /// Every inner condition holds.
    All(Vec<Condition>),
    /// At least one inner condition holds.
    Any(Vec<Condition>),
    /// The inner condition does not hold.
    Not(Box<Condition>),
}

impl Condition {
    fn holds(&self, f: &LeadFields, channel: &mut Option<Channel>) -> bool {
        match self {
            Condition::Present(field) => field.is_present(f),
            Condition::OneOf { field, values } => field.text(f).is_some_and(|t| {
                values
                    .iter()
                    .any(|v| v.trim().eq_ignore_ascii_case(t.trim()))
            }),
            Condition::Contains { field, any } => field.text(f).is_some_and(|t| {
                let t = t.to_lowercase();
                any.iter().any(|w| t.contains(&w.to_lowercase()))
            }),
            Condition::AtLeast { field, value } => field.number(f).is_some_and(|n| n >= *value),
            Condition::Channel(wanted) => {
                wanted.contains(channel.get_or_insert_with(|| channel_of(f)))
            }
            Condition::EmailDomain(kind) => classify_domain(f.email.domain()) == *kind,
            Condition::All(cs) => cs.iter().all(|c| c.holds(f, channel)),
            Condition::Any(cs) => cs.iter().any(|c| c.holds(f, channel)),
            Condition::Not(c) => !c.holds(f, channel),
        }
    }
}

/// Points given when a condition holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Stable id shown in breakdowns (`full_name`, `utm_campaign`).
    pub id: Name,
    /// Points added (may be negative).
    pub points: i32,
    /// When the rule applies.
    pub when: Condition,
}

/// Rules whose points together are capped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleGroup {
    /// Group name (`basic`, `utm`).
    pub name: Name,
    /// Most points the group can add; `None` = no cap.
    #[serde(default)]
    pub cap: Option<i32>,
    /// The group's rules.
    #[serde(rename = "rule", alias = "rules")]
    pub rules: Vec<Rule>,
}

/// A whole scoring rule set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSet {
    /// Groups, applied in order.
    #[serde(rename = "group", alias = "groups")]
    pub groups: Vec<RuleGroup>,
}

/// One rule's contribution to a score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleHit {
    /// Group name.
    pub group: Name,
    /// Rule id.
    pub rule: Name,
    /// Points counted after the group's cap.
    pub points: i32,
}

/// A score with the rules behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleScore {
    /// The clamped score.
    pub score: Score,
    /// Every rule that applied, in rule-set order.
    pub hits: Vec<RuleHit>,
}

fn rule(id: &str, points: i32, when: Condition) -> Rule {
    Rule {
        id: Name::new(id),
        points,
        when,
    }
}

fn present(name: &'static str) -> Condition {
    Condition::Present(Field::Named(name))
}

impl Default for RuleSet {
    /// The original system's rules (SPEC "Rule scoring").
    fn default() -> Self {
        let group = |name: &str, cap: i32, rules: Vec<Rule>| RuleGroup {
            name: Name::new(name),
            cap: Some(cap),
            rules,
        };
        RuleSet {
            groups: vec![
                group(
                    "basic",
                    40,
                    vec![
                        rule(
                            "full_name",
                            10,
                            Condition::All(vec![present("first_name"), present("last_name")]),
                        ),
                        rule("phone", 10, present("phone")),
                        rule("company", 10, present("company")),
                        rule("message", 10, present("message")),
                    ],
                ),
                group(
                    "utm",
                    20,
                    vec![
                        rule("utm_campaign", 10, present("utm_campaign")),
                        rule("utm_source", 5, present("utm_source")),
                        rule("utm_medium", 5, present("utm_medium")),
                    ],
                ),
                group(
                    "source_quality",
                    20,
                    vec![
                        rule(
                            "channel_organic_direct_referral",
                            10,
                            Condition::Channel(vec![
                                Channel::Organic,
                                Channel::Direct,
                                Channel::Referral,
                            ]),
                        ),
                        rule(
                            "channel_paid_social",
                            5,
                            Condition::Channel(vec![Channel::Paid, Channel::Social]),
                        ),
                    ],
                ),
                group(
                    "metadata",
                    20,
                    vec![rule("landing_page", 5, present("landing_page"))],
                ),
            ],
        }
    }
}

impl RuleSet {
    /// Reads a rule set from TOML.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::invalid("rules", "invalid_rules", e.to_string()))
    }

    /// Reads a rule set from JSON.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text)
            .map_err(|e| Error::invalid("rules", "invalid_rules", e.to_string()))
    }

    /// Writes the rule set as TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| Error::internal(e.to_string()))
    }

    /// Scores normalized lead fields.
    ///
    /// Each group adds the points of its matching rules up to its cap (a
    /// rule that would pass the cap counts only the rest); the total is
    /// clamped to 0-100.
    ///
    /// # Example
    ///
    /// ```
    /// use lead_core::{Email, LeadFields, RuleSet};
    /// let mut f = LeadFields::new(Email::parse("ana@acme.com").unwrap());
    /// f.phone = None;
    /// f.company = Some("Acme".into());
    /// let s = RuleSet::default().score(&f);
    /// // company 10 + direct channel (no source, no referrer) 10
    /// assert_eq!(s.score.value(), 20);
    /// assert_eq!(s.hits.len(), 2);
    /// ```
    pub fn score(&self, fields: &LeadFields) -> RuleScore {
        let mut channel = None;
        let mut total: i64 = 0;
        let mut hits = Vec::new();
        for group in &self.groups {
            let mut group_total: i32 = 0;
            for r in &group.rules {
                if !r.when.holds(fields, &mut channel) {
                    continue;
                }
                let counted = match group.cap {
                    Some(cap) if r.points > 0 => r.points.min((cap - group_total).max(0)),
                    _ => r.points,
                };
                group_total += counted;
                hits.push(RuleHit {
                    group: group.name,
                    rule: r.id,
                    points: counted,
                });
            }
            total += i64::from(group_total);
        }
        RuleScore {
            score: Score::clamped(total),
            hits,
        }
    }
}
