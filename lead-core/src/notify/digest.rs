//! The `lead_notifications` job: per rep, the follow-ups that became due
//! soon or overdue and the leads that went stale since the previous
//! digest, queued as one [`Event::Digest`] each.
//!
//! Each line is told once: a run covers what crossed its threshold (or
//! was created past it) between the previous run and now, the previous
//! run's time kept in the sync state under [`DIGEST_WATERMARK`]. The
//! watermark moves only after the digests are committed, so a run that
//! fails repeats its window rather than skipping it (a store that fails
//! between the commit and the watermark's write makes the next digest
//! repeat those lines: told twice rather than never).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::{DigestItem, Event, LeadCard, TaskCard, queue};
use crate::commit::Commit;
use crate::error::Result;
use crate::followup::{FollowUpStatus, FollowUpTask};
use crate::lead::Lead;
use crate::model::RepId;
use crate::policy::Policy;
use crate::ports::{JobCounts, SyncState};
use crate::query::{FollowUpQuery, LeadQuery, MAX_FOLLOWUP_PAGE, MAX_PAGE};
use crate::usecase::{Deps, Progress, add, counts};

/// The sync-state name holding the previous digest's time.
pub const DIGEST_WATERMARK: &str = "notify.digest";

/// Queues this window's digests. Counts: `tasks` and `leads` read,
/// `followup_due`, `followup_overdue`, `stale_lead` lines, `digests`
/// queued.
///
/// # Errors
///
/// The store's errors; nothing is queued and the watermark stays.
pub async fn digest(
    policy: &Policy,
    deps: &Deps,
    state: &dyn SyncState,
    progress: &dyn Progress,
) -> Result<JobCounts> {
    let settings = &policy.notifications;
    let now = deps.clock.now();
    let since = state
        .watermark(DIGEST_WATERMARK)
        .await?
        .and_then(|at| DateTime::parse_from_rfc3339(&at).ok())
        .map(|at| at.with_timezone(&Utc))
        .unwrap_or_else(|| now - hours(settings.first_digest_hours));
    let window = |entered: DateTime<Utc>| entered > since && entered <= now;
    let mut counts = counts(&[
        "tasks",
        "leads",
        "followup_due",
        "followup_overdue",
        "stale_lead",
        "digests",
    ]);
    let mut lines: BTreeMap<Option<RepId>, Vec<DigestItem>> = BTreeMap::new();
    if now <= since {
        // This clock is behind the previous digest's (another instance, a
        // clock step): its window is empty, and the watermark stays.
        return Ok(counts);
    }

    let soon = hours(settings.due_soon_hours);
    let mut query = FollowUpQuery {
        status: Some(FollowUpStatus::Open),
        due_to: Some(now + soon),
        limit: Some(MAX_FOLLOWUP_PAGE),
        ..FollowUpQuery::default()
    };
    loop {
        let page = deps.reads.followups(&query).await?;
        for task in &page.tasks {
            add(&mut counts, "tasks", 1);
            let overdue = task.due_at <= now;
            let crossed = if overdue {
                task.due_at
            } else {
                task.due_at - soon
            };
            if !window(crossed.max(task.created_at)) {
                continue;
            }
            let Some(lead) = open_lead(deps, task).await? else {
                continue;
            };
            let (lead, task_card) = (LeadCard::of(&lead), TaskCard::of(task));
            let item = if overdue {
                add(&mut counts, "followup_overdue", 1);
                DigestItem::FollowUpOverdue {
                    lead,
                    task: task_card,
                }
            } else {
                add(&mut counts, "followup_due", 1);
                DigestItem::FollowUpDue {
                    lead,
                    task: task_card,
                }
            };
            let rep = task
                .assigned_to
                .clone()
                .or_else(|| item.lead().assigned_to.clone());
            lines.entry(rep).or_default().push(item);
        }
        progress.update("follow-ups", counts["tasks"], None);
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }

    let mut query = LeadQuery {
        limit: Some(MAX_PAGE),
        ..LeadQuery::default()
    };
    loop {
        let page = deps.reads.list(&query).await?;
        for lead in page.leads.iter().filter(|l| l.is_open()) {
            add(&mut counts, "leads", 1);
            let last_touch = lead.last_contacted_at.unwrap_or(lead.created_at);
            let days = settings.stale_after_days.of(lead.priority);
            if !window(last_touch + Duration::days(i64::from(days.min(MAX_DAYS)))) {
                continue;
            }
            add(&mut counts, "stale_lead", 1);
            let days = u32::try_from((now - last_touch).num_days()).unwrap_or(0);
            lines
                .entry(lead.assigned_to.clone())
                .or_default()
                .push(DigestItem::StaleLead {
                    lead: LeadCard::of(lead),
                    last_touch,
                    days,
                });
        }
        progress.update("stale leads", counts["leads"], None);
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }

    let mut events = Vec::new();
    for (rep, mut items) in lines {
        items.sort_by_key(urgency);
        events.push(Event::Digest { rep, items });
    }
    add(&mut counts, "digests", events.len() as u64);
    if !events.is_empty() && !settings.deliver_to.is_empty() {
        let mut commit = Commit::new();
        queue(&mut commit, events, settings, &*deps.clock, &*deps.ids);
        deps.store.commit(commit).await?;
    }
    state
        .set_watermark(DIGEST_WATERMARK, &now.to_rfc3339())
        .await?;
    Ok(counts)
}

/// The most hours or days a digest setting counts (ten years): a larger
/// value means "never" and must not overflow the clock.
const MAX_DAYS: u32 = 3650;

fn hours(n: u32) -> Duration {
    Duration::hours(i64::from(n.min(MAX_DAYS * 24)))
}

/// Overdue first (oldest due first), then due soon (soonest first), then
/// stale (longest untouched first).
fn urgency(item: &DigestItem) -> (u8, DateTime<Utc>) {
    match item {
        DigestItem::FollowUpOverdue { task, .. } => (0, task.due_at),
        DigestItem::FollowUpDue { task, .. } => (1, task.due_at),
        DigestItem::StaleLead { last_touch, .. } => (2, *last_touch),
    }
}

/// The task's lead, when it is still open and not merged away.
async fn open_lead(deps: &Deps, task: &FollowUpTask) -> Result<Option<Lead>> {
    Ok(deps
        .store
        .get(&task.lead)
        .await?
        .filter(|l| l.merged_into.is_none() && l.is_open()))
}
