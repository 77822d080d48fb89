//! Deliveries a CRM sends again until acknowledged (Salesforce Outbound
//! Messages, Pipedrive webhooks), applied once each: a delivery holds a
//! short lease on the message's id while applying it and marks it done
//! in the sync state afterwards. A repeat of a done one changes nothing;
//! one that comes while another delivery applies it is told to come back.
//! The senders' secrets are compared here too ([`same_secret`]).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use lead_core::SyncState;

/// How long a delivery may take to apply a message before another
/// delivery of it may (a crash mid-way is over after it).
const APPLYING: Duration = Duration::minutes(2);

/// Where a message stands for this delivery.
pub(crate) enum Claim {
    /// Applied before: nothing to do.
    Done,
    /// This delivery applies it (holding its lease).
    Mine,
    /// Another delivery is applying it now.
    Busy,
}

/// The messages of one sender, by id.
pub(crate) struct Deliveries {
    state: Arc<dyn SyncState>,
    /// Names in the sync state start with it (`salesforce.outbound`).
    prefix: &'static str,
}

impl Deliveries {
    pub(crate) fn new(state: Arc<dyn SyncState>, prefix: &'static str) -> Self {
        Deliveries { state, prefix }
    }

    fn done_name(&self, id: &str) -> String {
        format!("{}.done.{id}", self.prefix)
    }

    fn lease_name(&self, id: &str) -> String {
        format!("{}.applying.{id}", self.prefix)
    }

    /// Done, or taken for `holder` for [`APPLYING`], or busy.
    pub(crate) async fn claim(
        &self,
        id: &str,
        holder: &str,
        now: DateTime<Utc>,
    ) -> lead_core::Result<Claim> {
        if self.state.watermark(&self.done_name(id)).await?.is_some() {
            return Ok(Claim::Done);
        }
        let mine = self
            .state
            .try_lease(&self.lease_name(id), holder, now + APPLYING, now)
            .await?;
        Ok(if mine { Claim::Mine } else { Claim::Busy })
    }

    /// Remembers the messages as applied, so a repeat changes nothing. A
    /// mark that cannot be written lets a repeat apply it again
    /// (harmless under the conflict rules), never loses it.
    pub(crate) async fn done<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
        now: DateTime<Utc>,
    ) {
        let done = now.to_rfc3339();
        for id in ids {
            if let Err(err) = self.state.set_watermark(&self.done_name(id), &done).await {
                tracing::warn!(error = %err.chain(), sender = self.prefix, "cannot mark a delivery done");
            }
        }
    }

    /// Gives back the leases `holder` holds.
    pub(crate) async fn release<'a>(&self, ids: impl IntoIterator<Item = &'a str>, holder: &str) {
        for id in ids {
            if let Err(err) = self.state.release_lease(&self.lease_name(id), holder).await {
                tracing::warn!(error = %err.chain(), sender = self.prefix, "cannot release a delivery's lease; a repeat waits for it to end");
            }
        }
    }
}

/// Whether a sender's secret is the expected one: both are hashed first
/// and the hashes compared in constant time, so neither the secret nor
/// its length shows in the time taken.
pub(crate) fn same_secret(given: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    let given = lead_http::hash_key(given);
    let expected = lead_http::hash_key(expected);
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}
