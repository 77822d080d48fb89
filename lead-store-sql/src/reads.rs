//! The read side's answers built from rows, once for both SQL stores: a
//! page of leads from its documents, and the dashboard from its aggregate
//! rows. Each store runs its own SQL and hands the rows over.

use lead_core::query::{PipelineStats, RepPerformance, SourcePerformance};
use lead_core::{Cursor, Dashboard, Lead, LeadPage, Priority, RepId, Stage};

use crate::codec::{CodecError, DealColumns, count, deal_value, from_json};

/// The funnel's steps (`lead_core::query::FUNNEL`): a store's funnel
/// query ranks stages in this order (0 for `new` … 5 for `won`).
pub use lead_core::query::FUNNEL;

/// A lead from its stored document.
pub fn lead_of(doc: &str) -> Result<Lead, CodecError> {
    from_json("stored lead", doc)
}

/// A page of leads from the documents of up to `size + 1` rows in page
/// order (the extra row only says that there is a next page).
pub fn lead_page(docs: &[String], size: usize) -> Result<LeadPage, CodecError> {
    let mut leads = docs
        .iter()
        .map(|doc| lead_of(doc))
        .collect::<Result<Vec<Lead>, _>>()?;
    let more = leads.len() > size;
    leads.truncate(size);
    let next_cursor = if more {
        leads.last().map(Cursor::after)
    } else {
        None
    };
    Ok(LeadPage { leads, next_cursor })
}

/// What a store's dashboard queries read for one window, all from one
/// snapshot, as the database returns it.
#[derive(Debug, Default)]
pub struct DashboardRows {
    /// `COUNT(*)`, `SUM(score)` and the unassigned count of the window.
    pub totals: (i64, i64, i64),
    /// The window's leads that have a deal value.
    pub deals: Vec<DealColumns>,
    /// Stage name and count.
    pub stages: Vec<(String, i64)>,
    /// Priority name and count.
    pub priorities: Vec<(String, i64)>,
    /// Source (`unknown` when none), count, score sum, high-priority
    /// count and won count, most leads first, then by name.
    pub sources: Vec<(String, i64, i64, i64, i64)>,
    /// Rep id, assigned count and won count, best first, at most `top`.
    pub reps: Vec<(String, i64, i64)>,
    /// The furthest [`FUNNEL`] rank each lead reached (its stage or one in
    /// its history), and how many leads reached it furthest.
    pub ranks: Vec<(i64, i64)>,
}

/// The dashboard from its rows.
pub fn dashboard(rows: DashboardRows) -> Result<Dashboard, CodecError> {
    let (total, score_sum, unassigned) = rows.totals;
    let total: u64 = count("lead count", total)?;
    let mut stats = PipelineStats {
        total,
        unassigned: count("unassigned count", unassigned)?,
        average_score: if total == 0 {
            0.0
        } else {
            count::<u64>("score sum", score_sum)? as f64 / total as f64
        },
        ..PipelineStats::default()
    };
    // Deal values are folded by the reference's own code, so the figures
    // cannot drift from it.
    stats.set_deal_values(
        rows.deals
            .into_iter()
            .map(deal_value)
            .collect::<Result<Vec<_>, _>>()?,
    );
    for (stage, n) in rows.stages {
        let stage = Stage::parse(&stage).map_err(|_| CodecError::Corrupt("stage"))?;
        stats.by_stage.insert(stage, count("stage count", n)?);
    }
    for (priority, n) in rows.priorities {
        let priority = Priority::parse(&priority).map_err(|_| CodecError::Corrupt("priority"))?;
        stats
            .by_priority
            .insert(priority, count("priority count", n)?);
    }
    let mut source_performance = Vec::with_capacity(rows.sources.len());
    for (source, n, score, high, won) in rows.sources {
        let leads: u64 = count("source count", n)?;
        stats.by_source.insert(source.clone(), leads);
        source_performance.push(SourcePerformance {
            source,
            leads,
            average_score: count::<u64>("score sum", score)? as f64 / leads as f64,
            high_priority: count("high-priority count", high)?,
            won: count("won count", won)?,
        });
    }
    let top_performers = rows
        .reps
        .into_iter()
        .map(|(rep, assigned, won)| {
            let assigned: u64 = count("assigned count", assigned)?;
            let won: u64 = count("won count", won)?;
            Ok(RepPerformance {
                rep: RepId::parse(&rep).map_err(|_| CodecError::Corrupt("rep id"))?,
                assigned,
                won,
                conversion_rate: if assigned == 0 {
                    0.0
                } else {
                    won as f64 / assigned as f64
                },
            })
        })
        .collect::<Result<Vec<_>, CodecError>>()?;
    let mut reached_at_least = [0u64; FUNNEL.len()];
    for (rank, n) in rows.ranks {
        let rank: usize = count("funnel rank", rank)?;
        let n: u64 = count("funnel count", n)?;
        for slot in reached_at_least.iter_mut().take(rank + 1) {
            *slot += n;
        }
    }
    // Every lead is at least new.
    reached_at_least[0] = stats.total;
    let funnel = FUNNEL.iter().copied().zip(reached_at_least).collect();
    Ok(Dashboard {
        stats,
        funnel,
        top_performers,
        source_performance,
    })
}
