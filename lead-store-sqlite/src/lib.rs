#![doc = include_str!("../README.md")]

mod bulk;
mod codec;
mod commit;
mod config;
mod error;
mod jobs;
mod leads;
mod load;
mod queue;
mod store;

pub use config::{GroupCommit, SqliteConfig, Synchronous};
pub use store::SqliteStore;
