//! Keeping a CRM in step with the leads, whichever CRM it is: the push of
//! the CRM's outbox entries through a [`CrmClient`](crate::ports::CrmClient),
//! and the pull of the CRM's changes under per-field conflict rules.
//! Written only against the ports, so the Salesforce and Pipedrive
//! adapters share it.

mod monitor;
mod pull;
mod push;

pub use monitor::{AuthRecord, RunRecord, Seen, SyncMonitor};
pub use pull::{ConflictRule, PullConfig, PullReport, apply_changes, pull_once};
pub use push::{PushConfig, PushReport, push_once, retry_delay};

#[cfg(test)]
mod tests;
