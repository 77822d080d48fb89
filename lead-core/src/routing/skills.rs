//! Skill and territory matching: how well a rep fits a lead.

use std::collections::BTreeSet;

use serde_json::Value;

use super::explain::LeadAttributes;
use crate::model::{LeadFields, Skills};

/// At most this many products are read from `metadata.product`: a form can
/// send anything, and routing must stay cheap per rep.
const MAX_PRODUCTS: usize = 16;

impl LeadAttributes {
    /// `true` when the lead has nothing to match skills against.
    pub fn is_empty(&self) -> bool {
        self.industry.is_none()
            && self.region.is_none()
            && self.language.is_none()
            && self.products.is_empty()
    }
}

/// Trimmed and lower-cased; `None` when empty.
fn normalized(raw: &str) -> Option<String> {
    let t = raw.trim();
    (!t.is_empty()).then(|| t.to_lowercase())
}

/// Strings from a metadata value: a string, or the strings of an array.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => normalized(s).into_iter().collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter_map(normalized)
            .take(MAX_PRODUCTS)
            .collect(),
        _ => Vec::new(),
    }
}

impl LeadAttributes {
    /// Reads the attributes skill matching uses from a lead: industry,
    /// country as region, `metadata.language` (first one when it is an
    /// array) and `metadata.product`.
    pub fn of(lead: &LeadFields) -> Self {
        let mut products = strings(lead.metadata.get("product"));
        products.sort();
        products.dedup();
        Self {
            industry: lead.industry.as_deref().and_then(normalized),
            region: lead.country.as_deref().and_then(normalized),
            language: strings(lead.metadata.get("language")).into_iter().next(),
            products,
        }
    }
}

/// `true` when `set` holds `wanted` (already trimmed and lower case),
/// ignoring case and surrounding space in the set: skills are typed by
/// people (`ES`, `es`, ` Retail`).
///
/// A linear scan, no tree lookup first: skill sets hold a handful of
/// entries, most lookups miss, and a miss would pay for both.
fn holds(set: &BTreeSet<String>, wanted: &str) -> bool {
    set.iter().any(|s| same_lowercase(s, wanted))
}

/// `skill`, trimmed, equals `lower` once lower-cased. Routing runs this for
/// every available rep and skill, so the common case (ASCII, no
/// surrounding space) is a plain byte comparison without allocating.
fn same_lowercase(skill: &str, lower: &str) -> bool {
    let bytes = skill.as_bytes();
    // Only an edge that is whitespace or non-ASCII can need trimming.
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_whitespace() || !b.is_ascii());
    let skill = if edge(bytes.first()) || edge(bytes.last()) {
        skill.trim()
    } else {
        skill
    };
    if skill.is_ascii() {
        skill.eq_ignore_ascii_case(lower)
    } else {
        skill.chars().flat_map(char::to_lowercase).eq(lower.chars())
    }
}

/// A language matches on the full tag or on its primary subtag, so a lead
/// in `es-MX` matches a rep who speaks `es`.
fn speaks(set: &BTreeSet<String>, language: &str) -> bool {
    if holds(set, language) {
        return true;
    }
    match language.split(['-', '_']).next() {
        Some(primary) if primary.len() < language.len() => holds(set, primary),
        _ => false,
    }
}

/// Number of the lead's attributes the rep covers: industry, region,
/// language, product (any of the lead's products). 0-4; every dimension
/// counts the same because none is more telling on its own.
pub(crate) fn skill_score(skills: &Skills, lead: &LeadAttributes) -> u32 {
    if lead.is_empty() {
        return 0;
    }
    let industry = lead
        .industry
        .as_deref()
        .is_some_and(|i| holds(&skills.industries, i));
    let region = lead
        .region
        .as_deref()
        .is_some_and(|r| holds(&skills.regions, r));
    let language = lead
        .language
        .as_deref()
        .is_some_and(|l| speaks(&skills.languages, l));
    let product = lead.products.iter().any(|p| holds(&skills.products, p));
    [industry, region, language, product]
        .into_iter()
        .map(u32::from)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn skills_match_ignoring_case_and_surrounding_space() {
        assert!(holds(&set(&["ES"]), "es"));
        assert!(holds(&set(&[" Retail "]), "retail"));
        assert!(holds(&set(&["\u{a0}Ärzte"]), "ärzte"));
        assert!(!holds(&set(&["retailer"]), "retail"));
        assert!(!holds(&set(&[]), "retail"));
    }

    #[test]
    fn a_regional_language_tag_matches_its_language() {
        assert!(speaks(&set(&["es"]), "es-mx"));
        assert!(speaks(&set(&["es-MX"]), "es-mx"));
        assert!(!speaks(&set(&["pt"]), "es-mx"));
        assert!(!speaks(&set(&["es-ES"]), "es"));
    }
}
