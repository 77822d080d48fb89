//! lead-store-postgres against a real PostgreSQL server (DATABASE_URL): the store, group commit, an outage and the conformance suite.
//!
//! One test binary per crate: each one links the whole dependency tree,
//! so a binary per file cost tens of megabytes of disk and a link step each.

mod common;
mod conformance;
mod group_commit;
mod outage;
mod store;
