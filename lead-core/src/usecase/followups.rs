//! Follow-up tasks after they are planned: a rep completes one, or moves
//! it (SPEC "Follow-ups"; `PUT /api/followups/{id}`).

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::outbox;
use crate::commit::{Commit, OutboxKind};
use crate::error::{Error, FieldError, Result};
use crate::followup::{FollowUpStatus, FollowUpTask};
use crate::usecase::Deps;

/// What a person changes on a follow-up task; `None` leaves it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FollowUpChange {
    /// `done` completes it (stamped now), `cancelled` drops it, `open`
    /// reopens it.
    pub status: Option<FollowUpStatus>,
    /// A new due time (rescheduling).
    pub due_at: Option<DateTime<Utc>>,
    /// What the rep wrote (replaces earlier notes).
    pub notes: Option<String>,
}

/// Completes, cancels, reopens or reschedules a follow-up task; the change
/// is queued for the CRM (the task or activity there follows) in the same
/// commit.
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown task; [`Error::Invalid`] for an
/// empty change or notes the store cannot keep; the store's errors.
pub async fn update_followup(
    id: Uuid,
    change: &FollowUpChange,
    deps: &Deps,
) -> Result<FollowUpTask> {
    if change == &FollowUpChange::default() {
        return Err(Error::Invalid {
            fields: vec![FieldError::new(
                "body",
                "empty",
                "give status, due_at or notes",
            )],
        });
    }
    if let Some(notes) = &change.notes {
        crate::normalize::check_text("notes", notes)?;
    }
    let mut task = deps
        .reads
        .get_followup(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("follow-up {id}")))?;
    let now = deps.clock.now();
    if let Some(status) = change.status {
        task.completed_at = match status {
            FollowUpStatus::Done if task.status == FollowUpStatus::Done => task.completed_at,
            FollowUpStatus::Done => Some(now),
            FollowUpStatus::Open | FollowUpStatus::Cancelled => None,
        };
        task.status = status;
    }
    if let Some(due_at) = change.due_at {
        task.due_at = due_at;
    }
    if let Some(notes) = &change.notes {
        let notes = notes.trim();
        task.notes = (!notes.is_empty()).then(|| notes.to_owned());
    }
    let mut commit = Commit::new();
    commit.outbox.push(outbox(
        deps,
        &task.lead,
        OutboxKind::FollowUpUpdated,
        json!({ "task_id": task.id, "status": task.status, "due_at": task.due_at }),
    ));
    commit.followup_updates.push(task.clone());
    deps.store.commit(commit).await?;
    Ok(task)
}
