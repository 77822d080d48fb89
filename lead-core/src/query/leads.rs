//! Reading leads back: filters, cursor pagination, and the pipeline
//! figures the dashboard shows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lead::Lead;
use crate::model::{LeadExtId, Priority, RepId, Stage};

/// Most leads one page may hold.
pub const MAX_PAGE: usize = 500;

/// Filters for listing leads; every `None` means "any". Merged leads are never listed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LeadQuery {
    /// Stage.
    pub stage: Option<Stage>,
    /// Priority.
    pub priority: Option<Priority>,
    /// Assigned rep.
    pub assigned_to: Option<RepId>,
    /// Source, exact (case-insensitive).
    pub source: Option<String>,
    /// Segment name, exact (`score:premium`).
    pub segment: Option<String>,
    /// Case-insensitive substring of e-mail, names or company.
    pub text: Option<String>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_to: Option<DateTime<Utc>>,
    /// Page size, 1-[`MAX_PAGE`] (default 50).
    pub limit: Option<usize>,
    /// Where the previous page ended ([`LeadPage::next_cursor`]).
    pub cursor: Option<Cursor>,
}

impl LeadQuery {
    /// The page size to use, clamped to 1-[`MAX_PAGE`].
    pub fn page_size(&self) -> usize {
        self.limit.unwrap_or(50).clamp(1, MAX_PAGE)
    }

    /// `true` when `lead` passes every filter (the cursor is not checked).
    ///
    /// This is the reference meaning of each filter: SQL stores translate
    /// it, and the conformance suite compares their answers with it.
    pub fn matches(&self, lead: &Lead) -> bool {
        let eq_ci =
            |a: &Option<String>, b: &str| a.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(b));
        lead.merged_into.is_none()
            && self.stage.is_none_or(|s| lead.stage == s)
            && self.priority.is_none_or(|p| lead.priority == p)
            && self
                .assigned_to
                .as_ref()
                .is_none_or(|r| lead.assigned_to.as_ref() == Some(r))
            && self
                .source
                .as_deref()
                .is_none_or(|s| eq_ci(&lead.fields.source, s))
            && self
                .segment
                .as_deref()
                .is_none_or(|s| lead.segments.iter().any(|x| x == s))
            && self.created_from.is_none_or(|t| lead.created_at >= t)
            && self.created_to.is_none_or(|t| lead.created_at < t)
            && self.text.as_deref().is_none_or(|t| {
                let t = t.to_lowercase();
                Self::searched_text(lead).any(|v| v.to_lowercase().contains(&t))
            })
    }

    /// The values the `text` filter looks in (e-mail, first and last name,
    /// company), compared lower-cased. SQL stores keep them lower-cased in a
    /// column, so the filter means the same everywhere.
    pub fn searched_text(lead: &Lead) -> impl Iterator<Item = &str> {
        let f = &lead.fields;
        [
            Some(f.email.as_str()),
            f.first_name.as_deref(),
            f.last_name.as_deref(),
            f.company.as_deref(),
        ]
        .into_iter()
        .flatten()
    }
}

/// A position in the listing order (newest first: `created_at` descending,
/// then `ext_id` descending), so pages stay stable while leads arrive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cursor {
    /// `created_at` of the last lead of the previous page.
    pub created_at: DateTime<Utc>,
    /// `ext_id` of that lead.
    pub ext_id: LeadExtId,
}

impl Cursor {
    /// The cursor after `lead`.
    pub fn after(lead: &Lead) -> Self {
        Cursor {
            created_at: lead.created_at,
            ext_id: lead.ext_id.clone(),
        }
    }

    /// `true` when `lead` comes after this cursor in listing order.
    pub fn precedes(&self, lead: &Lead) -> bool {
        (lead.created_at, &lead.ext_id) < (self.created_at, &self.ext_id)
    }

    /// Parses the opaque text form (`<microseconds>.<ext_id>`).
    pub fn parse(text: &str) -> Result<Self> {
        let (created_at, ext_id) = cursor_parts(text)?;
        Ok(Cursor {
            created_at,
            ext_id: LeadExtId::parse(ext_id).map_err(|_| invalid_cursor())?,
        })
    }
}

/// The error for cursor text this API did not write.
pub(crate) fn invalid_cursor() -> Error {
    Error::invalid(
        "cursor",
        "invalid_cursor",
        "cursor is not one this API returned",
    )
}

/// The two halves of a cursor's text form, `<microseconds>.<key>`: the
/// instant the listing is ordered by, and the key that breaks its ties.
pub(crate) fn cursor_parts(text: &str) -> Result<(DateTime<Utc>, &str)> {
    let (micros, key) = text.split_once('.').ok_or_else(invalid_cursor)?;
    let micros: i64 = micros.parse().map_err(|_| invalid_cursor())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(invalid_cursor)?;
    Ok((at, key))
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.created_at.timestamp_micros(), self.ext_id)
    }
}

impl TryFrom<String> for Cursor {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Cursor::parse(&value)
    }
}

impl From<Cursor> for String {
    fn from(value: Cursor) -> Self {
        value.to_string()
    }
}

/// One page of leads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadPage {
    /// Leads, newest first.
    pub leads: Vec<Lead>,
    /// Cursor for the next page; `None` on the last page.
    pub next_cursor: Option<Cursor>,
}

/// Applies a query to leads in memory: the reference implementation of
/// listing (filters, order, cursor, page size).
pub fn page_of<'a>(leads: impl IntoIterator<Item = &'a Lead>, query: &LeadQuery) -> LeadPage {
    let mut hits: Vec<&Lead> = leads
        .into_iter()
        .filter(|l| query.matches(l) && query.cursor.as_ref().is_none_or(|c| c.precedes(l)))
        .collect();
    hits.sort_by(|a, b| (b.created_at, &b.ext_id).cmp(&(a.created_at, &a.ext_id)));
    let size = query.page_size();
    let more = hits.len() > size;
    hits.truncate(size);
    let next_cursor = if more {
        hits.last().map(|l| Cursor::after(l))
    } else {
        None
    };
    LeadPage {
        leads: hits.into_iter().cloned().collect(),
        next_cursor,
    }
}

/// Pipeline figures over the leads created in a window.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PipelineStats {
    /// Leads created in the window (merged ones excluded).
    pub total: u64,
    /// Count per stage.
    pub by_stage: BTreeMap<Stage, u64>,
    /// Count per priority.
    pub by_priority: BTreeMap<Priority, u64>,
    /// Count per source (`unknown` when absent).
    pub by_source: BTreeMap<String, u64>,
    /// Mean rule score, 0 when there are no leads.
    pub average_score: f64,
    /// Leads without a rep.
    pub unassigned: u64,
    /// Per currency, the sum of `estimated_value` over the open leads
    /// ([`Stage::is_open`]) that have one. See [`PipelineStats::set_deal_values`].
    #[serde(default)]
    pub pipeline_value: BTreeMap<String, Decimal>,
    /// Per currency, the sum of `estimated_value × probability_pct / 100`
    /// over the same leads as `pipeline_value`.
    #[serde(default)]
    pub weighted_pipeline_value: BTreeMap<String, Decimal>,
    /// Per currency, the sum of `estimated_value` over the won leads.
    #[serde(default)]
    pub won_value: BTreeMap<String, Decimal>,
}

/// The currency key of a value stored without a currency (the API never
/// writes one, but a lead written some other way may hold one).
pub const UNKNOWN_CURRENCY: &str = "unknown";

/// What the value figures of [`PipelineStats`] need of one lead that has an
/// `estimated_value`. SQL stores read these four things from their rows, so
/// the reference and every store fold the same values with the same code
/// ([`PipelineStats::set_deal_values`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealValue {
    /// The lead's stage.
    pub stage: Stage,
    /// The lead's `probability_pct`.
    pub probability_pct: u8,
    /// The lead's currency, as stored.
    pub currency: Option<String>,
    /// The lead's `estimated_value`.
    pub value: Decimal,
}

impl DealValue {
    /// The deal of `lead`; `None` when it has no `estimated_value`.
    pub fn of(lead: &Lead) -> Option<DealValue> {
        Some(DealValue {
            stage: lead.stage,
            probability_pct: lead.probability_pct,
            currency: lead.currency.clone(),
            value: lead.estimated_value?,
        })
    }
}

/// Adds `values` exactly, in a fixed order whatever order they came in.
///
/// Decimal addition is exact until a sum needs more than 96 bits of
/// mantissa; past that it rounds, and rounding makes the result depend on
/// the order of the terms. Sorting first (by value, then scale, so even
/// `1.0` and `1.00` have a fixed place) makes the sum a function of the
/// values alone, so a store reading its rows in any order agrees with the
/// reference. A sum beyond `Decimal`'s range (about 7.9 × 10²⁸) saturates
/// rather than failing the whole dashboard.
fn exact_sum(mut values: Vec<Decimal>) -> Decimal {
    values.sort_by(|a, b| a.cmp(b).then(a.scale().cmp(&b.scale())));
    values
        .into_iter()
        .fold(Decimal::ZERO, |sum, v| sum.saturating_add(v))
}

impl PipelineStats {
    /// Sets `pipeline_value`, `weighted_pipeline_value` and `won_value` from
    /// the deals of the window's leads (those that have a value; the caller
    /// has already left out merged leads and leads created before the
    /// window). The one rule for these figures: [`dashboard_of`] and the SQL
    /// stores all call it.
    ///
    /// - `pipeline_value`: open leads ([`Stage::is_open`], so `nurturing`
    ///   counts and `won`, `lost`, `unqualified` do not);
    /// - `weighted_pipeline_value`: the same leads, each value times
    ///   `probability_pct / 100` (exact for values with up to 26 decimal
    ///   places: the product has two more than the value);
    /// - `won_value`: leads in stage `won`.
    ///
    /// Each is keyed by currency ([`UNKNOWN_CURRENCY`] when a value has
    /// none); a currency with no lead in a figure has no key in it.
    pub fn set_deal_values(&mut self, deals: impl IntoIterator<Item = DealValue>) {
        let mut open: BTreeMap<String, Vec<Decimal>> = BTreeMap::new();
        let mut weighted: BTreeMap<String, Vec<Decimal>> = BTreeMap::new();
        let mut won: BTreeMap<String, Vec<Decimal>> = BTreeMap::new();
        for deal in deals {
            let currency = deal.currency.unwrap_or_else(|| UNKNOWN_CURRENCY.to_owned());
            if deal.stage.is_open() {
                let share = Decimal::new(i64::from(deal.probability_pct), 2);
                weighted
                    .entry(currency.clone())
                    .or_default()
                    .push(deal.value.saturating_mul(share));
                open.entry(currency).or_default().push(deal.value);
            } else if deal.stage == Stage::Won {
                won.entry(currency).or_default().push(deal.value);
            }
        }
        let sums = |by_currency: BTreeMap<String, Vec<Decimal>>| {
            by_currency
                .into_iter()
                .map(|(currency, values)| (currency, exact_sum(values)))
                .collect()
        };
        self.pipeline_value = sums(open);
        self.weighted_pipeline_value = sums(weighted);
        self.won_value = sums(won);
    }
}

/// How one rep did in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepPerformance {
    /// The rep.
    pub rep: RepId,
    /// Leads assigned (created in the window).
    pub assigned: u64,
    /// Of those, won.
    pub won: u64,
    /// `won / assigned`, 0 when nothing was assigned.
    pub conversion_rate: f64,
}

/// How one source did in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcePerformance {
    /// Source (`unknown` when absent).
    pub source: String,
    /// Leads.
    pub leads: u64,
    /// Mean rule score.
    pub average_score: f64,
    /// High-priority leads.
    pub high_priority: u64,
    /// Won leads.
    pub won: u64,
}

/// Everything the dashboard shows for a window, computed in one go.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Dashboard {
    /// Totals and breakdowns.
    pub stats: PipelineStats,
    /// Leads that reached at least each open stage (`new` counts every
    /// lead; a won lead counts for every stage), in pipeline order.
    pub funnel: Vec<(Stage, u64)>,
    /// Reps by won leads, then conversion rate, then id.
    pub top_performers: Vec<RepPerformance>,
    /// Sources by lead count, then name.
    pub source_performance: Vec<SourcePerformance>,
}

fn source_of(lead: &Lead) -> String {
    lead.fields
        .source
        .as_deref()
        .map(str::to_lowercase)
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The dashboard funnel's steps: the open stages in pipeline order, then
/// won. A lead reached a step when its stage or one in its history is at
/// or past it.
pub const FUNNEL: [Stage; 6] = [
    Stage::New,
    Stage::Contacted,
    Stage::Qualified,
    Stage::Proposal,
    Stage::Negotiation,
    Stage::Won,
];

/// Computes the dashboard from leads in memory: the reference that SQL
/// stores must agree with (the conformance suite compares them).
pub fn dashboard_of<'a>(
    leads: impl IntoIterator<Item = &'a Lead>,
    since: DateTime<Utc>,
    top: usize,
) -> Dashboard {
    let leads: Vec<&Lead> = leads
        .into_iter()
        .filter(|l| l.merged_into.is_none() && l.created_at >= since)
        .collect();
    let mut stats = PipelineStats {
        total: leads.len() as u64,
        ..Default::default()
    };
    let mut score_sum = 0u64;
    let mut reps: BTreeMap<&RepId, (u64, u64)> = BTreeMap::new();
    let mut sources: BTreeMap<String, (u64, u64, u64, u64)> = BTreeMap::new();
    for lead in &leads {
        *stats.by_stage.entry(lead.stage).or_default() += 1;
        *stats.by_priority.entry(lead.priority).or_default() += 1;
        *stats.by_source.entry(source_of(lead)).or_default() += 1;
        score_sum += u64::from(lead.score.value());
        let won = u64::from(lead.stage == Stage::Won);
        match &lead.assigned_to {
            Some(rep) => {
                let e = reps.entry(rep).or_default();
                e.0 += 1;
                e.1 += won;
            }
            None => stats.unassigned += 1,
        }
        let s = sources.entry(source_of(lead)).or_default();
        s.0 += 1;
        s.1 += u64::from(lead.score.value());
        s.2 += u64::from(lead.priority == Priority::High);
        s.3 += won;
    }
    stats.average_score = if leads.is_empty() {
        0.0
    } else {
        score_sum as f64 / leads.len() as f64
    };
    stats.set_deal_values(leads.iter().filter_map(|l| DealValue::of(l)));

    let reached = |lead: &Lead, stage: Stage| {
        let rank = |s: Stage| FUNNEL.iter().position(|o| *o == s);
        let furthest = lead
            .history
            .iter()
            .map(|h| h.to)
            .chain([lead.stage])
            .filter_map(rank)
            .max();
        stage == Stage::New || furthest.zip(rank(stage)).is_some_and(|(f, s)| f >= s)
    };
    let funnel = FUNNEL
        .iter()
        .map(|s| (*s, leads.iter().filter(|l| reached(l, *s)).count() as u64))
        .collect();

    let mut top_performers: Vec<RepPerformance> = reps
        .into_iter()
        .map(|(rep, (assigned, won))| RepPerformance {
            rep: rep.clone(),
            assigned,
            won,
            conversion_rate: if assigned == 0 {
                0.0
            } else {
                won as f64 / assigned as f64
            },
        })
        .collect();
    top_performers.sort_by(|a, b| {
        b.won
            .cmp(&a.won)
            .then(b.conversion_rate.total_cmp(&a.conversion_rate))
            .then(a.rep.cmp(&b.rep))
    });
    top_performers.truncate(top);

    let mut source_performance: Vec<SourcePerformance> = sources
        .into_iter()
        .map(|(source, (n, score, high, won))| SourcePerformance {
            source,
            leads: n,
            average_score: score as f64 / n as f64,
            high_priority: high,
            won,
        })
        .collect();
    source_performance.sort_by(|a, b| b.leads.cmp(&a.leads).then(a.source.cmp(&b.source)));
    Dashboard {
        stats,
        funnel,
        top_performers,
        source_performance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Decimal {
        text.parse().expect("decimal literal")
    }

    fn deal(stage: Stage, pct: u8, currency: Option<&str>, value: &str) -> DealValue {
        DealValue {
            stage,
            probability_pct: pct,
            currency: currency.map(str::to_owned),
            value: dec(value),
        }
    }

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, Decimal> {
        entries
            .iter()
            .map(|(c, v)| ((*c).to_owned(), dec(v)))
            .collect()
    }

    #[test]
    fn deal_values_split_open_won_and_closed_per_currency() {
        let mut stats = PipelineStats::default();
        stats.set_deal_values([
            deal(Stage::Negotiation, 60, Some("EUR"), "1000.00"),
            deal(Stage::Nurturing, 5, Some("EUR"), "200"),
            deal(Stage::Proposal, 40, Some("USD"), "0.05"),
            deal(Stage::Won, 100, Some("EUR"), "700.50"),
            deal(Stage::Lost, 0, Some("EUR"), "9999"),
            deal(Stage::Unqualified, 0, Some("USD"), "9999"),
            deal(Stage::New, 5, None, "10"),
        ]);
        assert_eq!(
            stats.pipeline_value,
            map(&[("EUR", "1200.00"), ("USD", "0.05"), ("unknown", "10")])
        );
        assert_eq!(
            stats.weighted_pipeline_value,
            map(&[("EUR", "610.00"), ("USD", "0.02"), ("unknown", "0.5")])
        );
        assert_eq!(stats.won_value, map(&[("EUR", "700.50")]));
        // Exact decimals, written as strings with their scale.
        let json = serde_json::to_value(&stats).expect("serialize");
        assert_eq!(json["weighted_pipeline_value"]["USD"], "0.0200");
        assert_eq!(json["won_value"]["EUR"], "700.50");
    }

    #[test]
    fn deal_value_sums_do_not_depend_on_row_order() {
        // 10^28 + 0.4 needs more mantissa than a Decimal has, so it rounds:
        // added one by one after the big value, the two 0.4 vanish; added
        // to each other first, they make 0.8 and round the total up.
        let big = dec("10000000000000000000000000000");
        let small = dec("0.4");
        assert_ne!(
            (big + small) + small,
            big + (small + small),
            "these values must round differently by order for this test to mean anything"
        );
        let rows = [big, small, small];
        let orders = [[0, 1, 2], [1, 0, 2], [1, 2, 0], [2, 0, 1]];
        let sums: Vec<PipelineStats> = orders
            .iter()
            .map(|order| {
                let mut stats = PipelineStats::default();
                stats.set_deal_values(order.iter().map(|&i| DealValue {
                    stage: Stage::Won,
                    probability_pct: 100,
                    currency: None,
                    value: rows[i],
                }));
                stats
            })
            .collect();
        assert!(sums.windows(2).all(|w| w[0] == w[1]), "{sums:?}");
        assert_eq!(sums[0].won_value["unknown"], big + (small + small));
    }

    #[test]
    fn a_sum_beyond_the_decimal_range_saturates() {
        let mut stats = PipelineStats::default();
        stats.set_deal_values([
            deal(Stage::Won, 100, Some("EUR"), &Decimal::MAX.to_string()),
            deal(Stage::Won, 100, Some("EUR"), "1"),
        ]);
        assert_eq!(stats.won_value["EUR"], Decimal::MAX);
    }
}
