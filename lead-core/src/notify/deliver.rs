//! Delivery: one consumer's outbox entries sent over its channels, each
//! (entry, channel) marked done in the sync state as soon as the channel
//! took it, the entry acknowledged when every channel has; temporary
//! failures retried with backoff (honouring `Retry-After`), permanent ones
//! parked in the consumer's dead letters.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Notification, NotificationKind, QuietHours};
use crate::commit::{Destination, OutboxKind};
use crate::error::{Error, Result};
use crate::ports::{Claimed, DELIVERY_MARK, Delivery, Notifier, OutboxStore, SyncState};
use crate::sync::held;
use crate::usecase::Deps;

/// One channel of a consumer: Slack, e-mail, one webhook subscriber.
#[derive(Clone)]
pub struct Channel {
    /// Its name in marks, metrics and dead letters (`slack`, `email`,
    /// `webhook:crm-bridge`).
    pub name: String,
    /// The events it gets.
    pub events: BTreeSet<NotificationKind>,
    /// How it sends.
    pub notifier: Arc<dyn Notifier>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.name)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// How a consumer claims, retries and gives up.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliverConfig {
    /// Whose entries ([`Destination::NOTIFY`], [`Destination::WEBHOOKS`]).
    pub destination: Destination,
    /// The lease holder's name (unique per worker and process).
    pub worker: String,
    /// Entries claimed per run.
    pub batch: usize,
    /// How long claimed entries stay this worker's.
    pub lease: Duration,
    /// Attempts after which a temporary failure parks the entry.
    pub max_attempts: u32,
    /// The first retry's delay; each further one doubles it.
    pub base_delay: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
    /// Hours in which nothing is sent (people's channels).
    pub quiet_hours: Option<QuietHours>,
}

impl DeliverConfig {
    /// Defaults for `destination`: batches of 100 under a 2-minute lease,
    /// 12 attempts from 5 s doubling up to 1 h (about 5 hours in all, the
    /// order of Standard Webhooks' suggested schedule's first day).
    pub fn new(destination: Destination) -> Self {
        DeliverConfig {
            worker: format!("{destination}-deliver"),
            destination,
            batch: 100,
            lease: Duration::from_secs(120),
            max_attempts: 12,
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            quiet_hours: None,
        }
    }
}

/// What happened to one notification on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The channel took it.
    Sent,
    /// The channel had nothing to send (no rep to write to).
    Skipped,
    /// It failed and comes back later.
    Retried,
    /// It failed for good and is parked.
    DeadLettered,
}

impl Sent {
    /// The metrics name (`sent`, `skipped`, `retried`, `dead_lettered`).
    pub fn as_str(self) -> &'static str {
        match self {
            Sent::Sent => "sent",
            Sent::Skipped => "skipped",
            Sent::Retried => "retried",
            Sent::DeadLettered => "dead_lettered",
        }
    }
}

/// What one delivery run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliverReport {
    /// Entries claimed.
    pub claimed: usize,
    /// Entries done (every channel took them).
    pub acked: usize,
    /// Entries put back for a later attempt.
    pub retried: usize,
    /// Entries parked.
    pub dead_lettered: usize,
    /// Entries whose lease another worker took meanwhile.
    pub lost_leases: usize,
    /// Entries left untouched because the batch's lease was nearly over
    /// (their channels would otherwise risk a second sender).
    pub unfinished: usize,
    /// Per channel and event, what happened (for metrics).
    pub outcomes: Vec<(String, NotificationKind, Sent)>,
    /// Nothing was claimed: quiet hours last until then.
    pub quiet_until: Option<DateTime<Utc>>,
}

impl DeliverReport {
    /// Entries this run finished one way or another.
    fn done(&self) -> usize {
        self.acked + self.retried + self.dead_lettered + self.lost_leases
    }
}

/// The sync-state name marking `entry` delivered on `channel`; it holds
/// [`DELIVERY_MARK`], so housekeeping forgets it after the retention.
pub fn mark_name(destination: &Destination, entry: Uuid, channel: &str) -> String {
    format!("{destination}{DELIVERY_MARK}{entry}.{channel}")
}

/// One delivery run: claims a batch of `config.destination`, sends each
/// entry over the channels that take its event and have not yet, then
/// acknowledges, retries or parks it. A store failure mid-run leaves the
/// rest to their lease; what was sent is marked, so the next holder does
/// not send it again.
pub async fn deliver_once(
    deps: &Deps,
    outbox: &dyn OutboxStore,
    state: &dyn SyncState,
    channels: &[Channel],
    config: &DeliverConfig,
) -> Result<DeliverReport> {
    let now = deps.clock.now();
    if let Some(until) = config.quiet_hours.and_then(|q| q.ends_after(now)) {
        return Ok(DeliverReport {
            quiet_until: Some(until),
            ..DeliverReport::default()
        });
    }
    let claimed = outbox
        .claim(
            &config.destination,
            &config.worker,
            config.batch,
            config.lease,
            now,
        )
        .await?;
    let mut run = Run {
        outbox,
        state,
        config,
        report: DeliverReport {
            claimed: claimed.len(),
            ..DeliverReport::default()
        },
    };
    for entry in &claimed {
        if !run.deliver(deps, channels, entry).await? {
            // The lease is nearly over: what is left of the batch goes
            // back to whoever claims it next (marked channels are skipped).
            run.report.unfinished = claimed.len() - run.report.done();
            break;
        }
    }
    Ok(run.report)
}

struct Run<'a> {
    outbox: &'a dyn OutboxStore,
    state: &'a dyn SyncState,
    config: &'a DeliverConfig,
    report: DeliverReport,
}

impl Run<'_> {
    /// Whether a send may start now: not within the last quarter of the
    /// lease, which covers a channel's timeout (10-30 s under the default
    /// 2-minute lease), so no send is still running when another worker
    /// may claim the entry.
    fn may_send(&self, deps: &Deps, claimed: &Claimed) -> bool {
        let margin =
            chrono::Duration::from_std(self.config.lease / 4).unwrap_or(chrono::Duration::MAX);
        deps.clock.now() < claimed.lease_until - margin
    }

    /// Delivers one entry; `false` when it stopped because the lease was
    /// nearly over (nothing answered for the entry).
    async fn deliver(
        &mut self,
        deps: &Deps,
        channels: &[Channel],
        claimed: &Claimed,
    ) -> Result<bool> {
        let entry = &claimed.entry;
        let event = match entry.kind {
            OutboxKind::Notification => serde_json::from_value(entry.payload.clone())
                .map_err(|e| Error::internal(format!("undecodable notification: {e}"))),
            other => Err(Error::internal(format!(
                "a {other:?} entry is no notification"
            ))),
        };
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                self.park(deps, claimed, &err.to_string(), &[], None)
                    .await?;
                return Ok(true);
            }
        };
        let notification = Notification {
            id: entry.id,
            created_at: entry.created_at,
            event,
        };
        let kind = notification.event.kind();
        let mut failures: Vec<(&Channel, Error)> = Vec::new();
        for channel in channels.iter().filter(|c| c.events.contains(&kind)) {
            let mark = mark_name(&self.config.destination, entry.id, &channel.name);
            if self.state.watermark(&mark).await?.is_some() {
                continue;
            }
            if !self.may_send(deps, claimed) {
                return Ok(false);
            }
            match channel.notifier.notify(&notification).await {
                Ok(Delivery::Sent) => {
                    let at = deps.clock.now().to_rfc3339();
                    self.state.set_watermark(&mark, &at).await?;
                    self.report
                        .outcomes
                        .push((channel.name.clone(), kind, Sent::Sent));
                }
                Ok(Delivery::Skipped(_)) => {
                    self.report
                        .outcomes
                        .push((channel.name.clone(), kind, Sent::Skipped));
                }
                Err(err) => failures.push((channel, err)),
            }
        }
        if failures.is_empty() {
            self.ack(claimed).await?;
            return Ok(true);
        }
        let error = failures
            .iter()
            .map(|(c, e)| format!("{}: {}", c.name, e.chain()))
            .collect::<Vec<_>>()
            .join("; ");
        let failed: Vec<&str> = failures.iter().map(|(c, _)| c.name.as_str()).collect();
        // Parked when nothing can get better by waiting: every failure is
        // permanent, or the budget is spent. A channel that failed for good
        // beside one that failed for now is tried again with it (its
        // repeat costs one refused call); the channels that took the
        // notification are marked and not sent again.
        let waiting_helps = failures.iter().any(|(_, e)| e.is_temporary());
        if !waiting_helps || claimed.attempts + 1 >= self.config.max_attempts {
            self.park(deps, claimed, &error, &failed, Some(kind))
                .await?;
            return Ok(true);
        }
        let delay = failures
            .iter()
            .filter(|(_, e)| e.is_temporary())
            .map(|(_, e)| {
                crate::sync::backoff(
                    self.config.base_delay,
                    self.config.max_delay,
                    entry.id,
                    claimed.attempts,
                    e,
                )
            })
            .max()
            .unwrap_or(self.config.base_delay);
        let at = chrono::Duration::from_std(delay)
            .ok()
            .and_then(|d| deps.clock.now().checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let answer = self
            .outbox
            .retry(entry.id, &self.config.worker, at, &error)
            .await;
        if held(answer, &mut self.report.lost_leases)? {
            self.report.retried += 1;
            self.outcomes(&failed, kind, Sent::Retried);
        }
        Ok(true)
    }

    async fn ack(&mut self, claimed: &Claimed) -> Result<()> {
        if held(
            self.outbox.ack(claimed.entry.id, &self.config.worker).await,
            &mut self.report.lost_leases,
        )? {
            self.report.acked += 1;
        }
        Ok(())
    }

    /// Parks the entry; `failed` names the channels that failed on its
    /// event `kind` (none when it could not be read).
    async fn park(
        &mut self,
        deps: &Deps,
        claimed: &Claimed,
        error: &str,
        failed: &[&str],
        kind: Option<NotificationKind>,
    ) -> Result<()> {
        let now = deps.clock.now();
        let answer = self
            .outbox
            .dead_letter(claimed.entry.id, &self.config.worker, error, now)
            .await;
        if held(answer, &mut self.report.lost_leases)? {
            self.report.dead_lettered += 1;
            if let Some(kind) = kind {
                self.outcomes(failed, kind, Sent::DeadLettered);
            }
        }
        Ok(())
    }

    fn outcomes(&mut self, channels: &[&str], kind: NotificationKind, outcome: Sent) {
        for name in channels {
            self.report
                .outcomes
                .push(((*name).to_owned(), kind, outcome));
        }
    }
}
