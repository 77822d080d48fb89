//! The notification port: tell people (Slack, e-mail, webhooks).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{LeadExtId, Priority, RepId};

/// Why someone is being told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A new high-priority lead.
    HighPriorityLead,
    /// A lead nobody touched for too long.
    StaleLead,
    /// A follow-up is due soon.
    FollowUpDue,
    /// A lead reached a critical stage (won, lost, negotiation).
    StageChange,
}

/// A message for people (Slack, e-mail, webhook).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Why.
    pub kind: NotificationKind,
    /// The lead concerned.
    pub lead: LeadExtId,
    /// Who should act, when known.
    pub recipient: Option<RepId>,
    /// The lead's priority.
    pub priority: Priority,
    /// One-line title.
    pub title: String,
    /// Text body.
    pub body: String,
}

/// Sends notifications.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one notification.
    async fn notify(&self, notification: &Notification) -> Result<()>;
}
