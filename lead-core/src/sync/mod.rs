//! Keeping a CRM in step with the leads, whichever CRM it is: the push of
//! the CRM's outbox entries through a [`CrmClient`](crate::ports::CrmClient),
//! and the pull of the CRM's changes under per-field conflict rules.
//! Written only against the ports, so the Salesforce and Pipedrive
//! adapters share it.

mod monitor;
mod pull;
mod push;

pub use monitor::{AuthRecord, RunRecord, Seen, SyncMonitor};
pub use pull::{ConflictRule, PullConfig, PullReport, apply_changes, apply_delivered, pull_once};
pub(crate) use push::held;
pub use push::{
    MAX_RETRY_AFTER, PushConfig, PushReport, backoff, push_once, record_links,
    record_links_from_crm, retry_delay,
};

/// One round both ways (the jobs' `crm_bidirectional_sync`): the CRM's
/// changes since the watermark, then one push run. Each half reports on
/// its own: a CRM that fails the pull still gets the push, and the other
/// way round.
pub async fn sync_once(
    deps: &crate::usecase::Deps,
    outbox: &dyn crate::ports::OutboxStore,
    state: &dyn crate::ports::SyncState,
    crm: &dyn crate::ports::CrmClient,
    policy: &crate::policy::Policy,
    pull: &PullConfig,
    push: &PushConfig,
) -> (
    crate::error::Result<PullReport>,
    crate::error::Result<PushReport>,
) {
    let pulled = pull_once(deps, state, crm, policy, pull).await;
    let pushed = push_once(deps, outbox, crm, push).await;
    (pulled, pushed)
}

#[cfg(test)]
mod tests;
