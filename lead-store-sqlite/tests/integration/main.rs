//! lead-store-sqlite on temporary files: the store, group commit and the conformance suite.
//!
//! One test binary per crate: each one links the whole dependency tree,
//! so a binary per file cost tens of megabytes of disk and a link step each.

mod conformance;
mod group_commit;
mod store;
