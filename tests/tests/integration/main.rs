//! Cross-crate tests: the conformance suite on the in-memory store and duplicate detection quality on generated leads.
//!
//! One test binary per crate: each one links the whole dependency tree,
//! so a binary per file cost tens of megabytes of disk and a link step each.

mod conformance_memory;
mod dedup_quality;
