//! The ports: traits every adapter implements. Use-cases see only these.
//!
//! One file per port family: the store ([`LeadStore`] for captures and
//! writes, [`RepStore`], [`LeadReads`] for the API and dashboard), the
//! outbox and sync state, the CRM, notifications, enrichment, and the
//! clock and ids. Each trait is object-safe and held as `Arc<dyn Trait>`;
//! none has a default method, so a wrapper states every forward. What the
//! traits carry lives with its own domain: the commit model in
//! [`crate::commit`], queries and pages in [`crate::query`], duplicate
//! pairs in [`crate::dedup::review`].

mod clock;
mod crm;
mod enrich;
mod jobs;
mod notify;
mod outbox;
mod store;

pub use clock::{Clock, IdGenerator, ManualClock, RandomIds, SequentialIds, SystemClock};
#[cfg(any(test, feature = "testing"))]
pub use clock::{MockClock, MockIdGenerator};
#[cfg(any(test, feature = "testing"))]
pub use crm::MockCrmClient;
pub use crm::{
    CONTACT_FIELDS, CrmChange, CrmChanges, CrmClient, PushOutcome, TaskPush, should_push,
};
#[cfg(any(test, feature = "testing"))]
pub use enrich::MockEnricher;
pub use enrich::{Enricher, Enrichment};
#[cfg(any(test, feature = "testing"))]
pub use jobs::MockJobStore;
pub use jobs::{DELIVERY_MARK, JobCounts, JobRun, JobStore, Purged, Retention, RunStatus, Trigger};
#[cfg(any(test, feature = "testing"))]
pub use notify::MockNotifier;
pub use notify::{Delivery, Notifier};
pub use outbox::{Claimed, DeadLetter, OutboxStore, SyncState};
#[cfg(any(test, feature = "testing"))]
pub use outbox::{MockOutboxStore, MockSyncState};
pub use store::{
    AccountKey, CaptureContext, LeadReads, LeadStore, RepStore, Replay, Store,
    capture_context_by_reads,
};
#[cfg(any(test, feature = "testing"))]
pub use store::{MockLeadReads, MockLeadStore, MockRepStore};
