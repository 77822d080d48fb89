//! The lead-server binary itself: kill -9 mid-load, hostile text on SQLite
//! and PostgreSQL, the files it reads at start-up, and the original
//! system's variables, metrics and README examples.
//!
//! One test binary per crate: each one links the whole dependency tree,
//! so a binary per file cost tens of megabytes of disk and a link step each.

mod airflow;
mod common;
mod crash;
mod crm_sync;
mod hostile_input;
mod https;
mod in_process;
mod jobs;
mod jobs_cluster;
mod json_logs;
mod notifications;
mod pipedrive;
mod review_notifications;
mod safe_defaults;
mod seed_compat;
mod start_up_files;
mod timeouts;
