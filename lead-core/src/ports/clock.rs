//! The time and id ports, so tests and replays control both.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::LeadExtId;

/// The time, as a port so tests and replays control it.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to (tests, simulations).
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(at))
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Makes ids, as a port so tests get predictable ones.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    /// A fresh public lead id.
    fn lead_ext_id(&self) -> LeadExtId;
    /// A fresh internal id (outbox entries, tasks, merge records).
    fn uuid(&self) -> Uuid;
}

/// Random ids: `WEB-` codes from 64 random bits, UUID v7 for the rest.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn lead_ext_id(&self) -> LeadExtId {
        let bytes = Uuid::new_v4().into_bytes();
        let mut bits = [0u8; 8];
        bits.copy_from_slice(&bytes[..8]);
        LeadExtId::from_random(u64::from_le_bytes(bits))
    }

    fn uuid(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// Predictable ids for tests: a counter scrambled into codes.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn lead_ext_id(&self) -> LeadExtId {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        // Multiplying by an odd constant spreads consecutive numbers over the code space.
        LeadExtId::from_random(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn uuid(&self) -> Uuid {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        Uuid::from_u128(u128::from(n))
    }
}
