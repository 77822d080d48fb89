//! What a use-case is given: the ports it works through.

use std::sync::Arc;

use crate::ports::{
    Clock, IdGenerator, LeadReads, LeadStore, RandomIds, RepStore, Store, SystemClock,
};

/// The ports a use-case needs, bundled.
#[derive(Clone)]
pub struct Deps {
    /// Where leads are read before a change and written.
    pub store: Arc<dyn LeadStore>,
    /// The reps and their workload.
    pub reps: Arc<dyn RepStore>,
    /// Pages, figures and records to show.
    pub reads: Arc<dyn LeadReads>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Id generation.
    pub ids: Arc<dyn IdGenerator>,
}

impl Deps {
    /// Production defaults around a store: system clock, random ids.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Deps::with(store, Arc::new(SystemClock), Arc::new(RandomIds))
    }

    /// One store for its three sides, with the given clock and ids.
    pub fn with(store: Arc<dyn Store>, clock: Arc<dyn Clock>, ids: Arc<dyn IdGenerator>) -> Self {
        Deps {
            store: store.clone(),
            reps: store.clone(),
            reads: store,
            clock,
            ids,
        }
    }
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}
