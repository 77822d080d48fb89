//! A [`LeadStore`] that wakes the outbox consumers after each commit that
//! queued something for them, so a captured lead reaches the CRM, Slack
//! or a subscriber at once instead of at the consumer's next interval.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lead_core::ports::{AccountKey, CaptureContext};
use lead_core::{Commit, CrmLink, Destination, Lead, LeadExtId, LeadStore, MergeRecord, RepId};
use tokio::sync::Notify;
use uuid::Uuid;

/// `inner`, waking each destination's consumer on commits that queued
/// entries for it.
#[deny(clippy::missing_trait_methods)]
pub(crate) struct Waking {
    inner: Arc<dyn LeadStore>,
    wakes: Vec<(Destination, Arc<Notify>)>,
}

impl Waking {
    /// `inner` with no consumer to wake yet.
    pub(crate) fn new(inner: Arc<dyn LeadStore>) -> Self {
        Waking {
            inner,
            wakes: Vec::new(),
        }
    }

    /// Also wakes `wake`'s waiter on commits for `destination`.
    pub(crate) fn with(mut self, destination: Destination, wake: Arc<Notify>) -> Self {
        self.wakes.push((destination, wake));
        self
    }
}

#[async_trait]
impl LeadStore for Waking {
    async fn commit(&self, commit: Commit) -> lead_core::Result<Vec<Lead>> {
        let woken: Vec<&Arc<Notify>> = self
            .wakes
            .iter()
            .filter(|(d, _)| commit.outbox.iter().any(|e| &e.destination == d))
            .map(|(_, wake)| wake)
            .collect();
        let written = self.inner.commit(commit).await?;
        for wake in woken {
            wake.notify_one();
        }
        Ok(written)
    }

    async fn capture_context<'a>(
        &self,
        idempotency_key: Option<&'a str>,
        email_key: &str,
        account: &AccountKey,
        now: DateTime<Utc>,
    ) -> lead_core::Result<CaptureContext> {
        self.inner
            .capture_context(idempotency_key, email_key, account, now)
            .await
    }

    async fn get(&self, ext_id: &LeadExtId) -> lead_core::Result<Option<Lead>> {
        self.inner.get(ext_id).await
    }

    async fn account_owner(&self, key: &AccountKey) -> lead_core::Result<Option<RepId>> {
        self.inner.account_owner(key).await
    }

    async fn get_merge(&self, id: Uuid) -> lead_core::Result<Option<MergeRecord>> {
        self.inner.get_merge(id).await
    }

    async fn find_by_crm_link(&self, link: &CrmLink) -> lead_core::Result<Option<Lead>> {
        self.inner.find_by_crm_link(link).await
    }
}
