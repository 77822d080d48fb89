//! What the SQL lead stores (`lead-store-sqlite`, `lead-store-postgres`)
//! share, so each rule and each conversion is written once:
//!
//! - [`group`]: group commit, one writer task gathering concurrent commits
//!   into one transaction (each store supplies the batch runner);
//! - [`codec`]: domain values as columns and back (timestamps, wire names,
//!   JSON documents);
//! - [`outbox`]: the outbox flow (claim, ack, retry, dead letters) over a
//!   store's [`outbox::OutboxSql`] statements;
//! - [`reads`]: pages and the dashboard assembled from a store's rows;
//! - [`config`]: the pool settings both stores check alike;
//! - [`error`]: the stores' failures classified into `lead_core::Error`,
//!   the driver's error kept as the cause (a [`error::Dialect`] reads its
//!   database's error codes).
//!
//! The rules a commit must satisfy live in `lead-core` (`Commit::check`);
//! what differs between the stores is only SQL dialect and transaction type.

pub mod codec;
pub mod config;
pub mod error;
pub mod group;
pub mod outbox;
pub mod reads;

pub use group::{
    Batcher, GroupCommit, Parts, Stats, answer_batch, in_batch_order, insert_only, replicate,
};
