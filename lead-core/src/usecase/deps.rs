//! What a use-case is given: the ports it works through.

use std::sync::Arc;

use crate::ports::{Clock, IdGenerator, LeadStore, RandomIds, SystemClock};

/// The ports a use-case needs, bundled.
#[derive(Clone)]
pub struct Deps {
    /// Where leads live.
    pub store: Arc<dyn LeadStore>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Id generation.
    pub ids: Arc<dyn IdGenerator>,
}

impl Deps {
    /// Production defaults around a store: system clock, random ids.
    pub fn new(store: Arc<dyn LeadStore>) -> Self {
        Deps {
            store,
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds),
        }
    }
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}
