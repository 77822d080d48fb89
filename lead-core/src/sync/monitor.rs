//! What the sync worker last did, kept for people: `GET /api/sync/status`
//! and `/ready` read it. In memory, per process: each instance tells
//! about its own worker (the queue, the dead letters and the watermark
//! are read from the shared store).

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::sync::{PullReport, PushReport};

/// One run: when it ended, what it did, or why it failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord<R> {
    /// When the run ended.
    pub at: DateTime<Utc>,
    /// What it did, when it ran through.
    pub report: Option<R>,
    /// Why it failed (the error chain), when it did.
    pub error: Option<String>,
}

impl<R> RunRecord<R> {
    fn of(at: DateTime<Utc>, outcome: Result<R, &Error>) -> Self {
        match outcome {
            Ok(report) => RunRecord {
                at,
                report: Some(report),
                error: None,
            },
            Err(err) => RunRecord {
                at,
                report: None,
                error: Some(err.chain()),
            },
        }
    }
}

/// Whether the CRM took our credentials at the last check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRecord {
    /// When it was checked.
    pub at: DateTime<Utc>,
    /// Whether the CRM gave us a session.
    pub ok: bool,
    /// Why not (the CRM's reason; never the credentials).
    pub error: Option<String>,
}

/// The last push, pull and credentials check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    /// The last push run.
    pub last_push: Option<RunRecord<PushReport>>,
    /// The last push run that moved something (the last one is often an
    /// empty queue's).
    pub last_busy_push: Option<RunRecord<PushReport>>,
    /// The last pull run.
    pub last_pull: Option<RunRecord<PullReport>>,
    /// The last credentials check.
    pub auth: Option<AuthRecord>,
}

/// Shared between the worker, which records, and the API, which reads.
#[derive(Debug, Default)]
pub struct SyncMonitor {
    crm: Option<String>,
    seen: Mutex<Seen>,
}

impl SyncMonitor {
    /// A monitor for the worker of `crm` (`None`: no CRM configured).
    pub fn new(crm: Option<&str>) -> Self {
        SyncMonitor {
            crm: crm.map(str::to_owned),
            seen: Mutex::default(),
        }
    }

    /// The configured CRM's name.
    pub fn crm(&self) -> Option<&str> {
        self.crm.as_deref()
    }

    fn update(&self, change: impl FnOnce(&mut Seen)) {
        // A panic elsewhere while holding the lock leaves plain data: keep
        // using it.
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut seen);
    }

    /// Records a push run.
    pub fn record_push(&self, at: DateTime<Utc>, outcome: Result<PushReport, &Error>) {
        let record = RunRecord::of(at, outcome);
        self.update(|seen| {
            if record.report.is_some_and(|r| r.claimed > 0) {
                seen.last_busy_push = Some(record.clone());
            }
            seen.last_push = Some(record);
        });
    }

    /// Records a pull run.
    pub fn record_pull(&self, at: DateTime<Utc>, outcome: Result<PullReport, &Error>) {
        let record = RunRecord::of(at, outcome);
        self.update(|seen| seen.last_pull = Some(record));
    }

    /// Records a credentials check.
    pub fn record_check(&self, at: DateTime<Utc>, outcome: Result<(), &Error>) {
        let record = AuthRecord {
            at,
            ok: outcome.is_ok(),
            error: outcome.err().map(Error::chain),
        };
        self.update(|seen| seen.auth = Some(record));
    }

    /// What was seen so far.
    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_last_runs_and_check_are_kept_and_a_busy_push_stays_visible() {
        let monitor = SyncMonitor::new(Some("salesforce"));
        let at = |s| Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, s).unwrap();
        let busy = PushReport {
            claimed: 4,
            acked: 4,
            ..PushReport::default()
        };
        monitor.record_push(at(1), Ok(busy));
        monitor.record_push(at(2), Ok(PushReport::default()));
        monitor.record_check(
            at(3),
            Err(&Error::Unauthorized("invalid_grant: expired".into())),
        );
        let seen = monitor.seen();
        assert_eq!(monitor.crm(), Some("salesforce"));
        assert_eq!(seen.last_push.as_ref().map(|r| r.at), Some(at(2)));
        assert_eq!(
            seen.last_busy_push.and_then(|r| r.report),
            Some(busy),
            "the empty run after it does not hide what moved"
        );
        let auth = seen.auth.expect("checked");
        assert!(!auth.ok);
        assert!(auth.error.is_some_and(|e| e.contains("invalid_grant")));
        monitor.record_check(at(4), Ok(()));
        assert!(
            monitor
                .seen()
                .auth
                .is_some_and(|a| a.ok && a.error.is_none())
        );
    }
}
