//! What the read side is asked and answers: lead listings and their
//! cursors, dashboard figures, follow-up to-do lists. The reference
//! functions ([`page_of`], [`dashboard_of`], [`FollowUpQuery::page_of`])
//! define each answer over plain values; a store's SQL must agree with
//! them (the conformance suite checks it).

mod followups;
mod leads;

pub use followups::{FollowUpCursor, FollowUpPage, FollowUpQuery, MAX_FOLLOWUP_PAGE};
pub use leads::{
    Cursor, Dashboard, DealValue, FUNNEL, LeadPage, LeadQuery, MAX_PAGE, PipelineStats,
    RepPerformance, SourcePerformance, UNKNOWN_CURRENCY, dashboard_of, page_of,
};
