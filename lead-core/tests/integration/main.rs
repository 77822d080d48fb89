//! lead-core's integration tests: normalization, policy files, the scoring table and scoring properties.
//!
//! One test binary per crate: each one links the whole dependency tree,
//! so a binary per file cost tens of megabytes of disk and a link step each.

mod normalize;
mod policy;
mod review_jobs;
mod review_notify;
mod score_table;
mod scoring_props;
