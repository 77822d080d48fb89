//! What a notification says: the event, with a snapshot of the lead as it
//! was when it happened, so a message sent an hour later (Slack was down,
//! quiet hours) still tells what happened then.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::followup::FollowUpTask;
use crate::lead::Lead;
use crate::model::{ChangeOrigin, LeadExtId, Priority, RepId, Stage};

/// The kinds of events, as named in configuration, metrics and webhook
/// payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A new lead of high priority was captured.
    HighPriorityLead,
    /// A lead was assigned or reassigned to a rep.
    Assigned,
    /// A lead reached a critical stage (won, lost, or one configured).
    StageChanged,
    /// A rep's digest: follow-ups due soon or overdue, stale leads.
    Digest,
}

impl NotificationKind {
    /// Every kind.
    pub const ALL: [NotificationKind; 4] = [
        NotificationKind::HighPriorityLead,
        NotificationKind::Assigned,
        NotificationKind::StageChanged,
        NotificationKind::Digest,
    ];

    /// The configuration and metrics name (`high_priority_lead`).
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::HighPriorityLead => "high_priority_lead",
            NotificationKind::Assigned => "assigned",
            NotificationKind::StageChanged => "stage_changed",
            NotificationKind::Digest => "digest",
        }
    }

    /// The Standard Webhooks event type (`lead.high_priority`): dotted,
    /// `[a-zA-Z0-9_]` parts.
    pub fn webhook_type(self) -> &'static str {
        match self {
            NotificationKind::HighPriorityLead => "lead.high_priority",
            NotificationKind::Assigned => "lead.assigned",
            NotificationKind::StageChanged => "lead.stage_changed",
            NotificationKind::Digest => "rep.digest",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s names.
    pub fn parse(name: &str) -> Option<NotificationKind> {
        NotificationKind::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lead as a message shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadCard {
    /// `WEB-…` id, used in links.
    pub ext_id: LeadExtId,
    /// First and last name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail address.
    pub email: String,
    /// Company, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// Job title, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    /// Score 0-100.
    pub score: u8,
    /// Priority.
    pub priority: Priority,
    /// Stage.
    pub stage: Stage,
    /// The rep it is assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<RepId>,
    /// Where it came from (`source`, else `utm_source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Estimated deal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_value: Option<Decimal>,
    /// Its currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

impl LeadCard {
    /// The card of `lead` as it is now.
    pub fn of(lead: &Lead) -> LeadCard {
        let f = &lead.fields;
        let name = [f.first_name.as_deref(), f.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        LeadCard {
            ext_id: lead.ext_id.clone(),
            name: (!name.is_empty()).then_some(name),
            email: f.email.as_str().to_owned(),
            company: f.company.clone(),
            job_title: f.job_title.clone(),
            score: lead.score.value(),
            priority: lead.priority,
            stage: lead.stage,
            assigned_to: lead.assigned_to.clone(),
            source: f.source.clone().or_else(|| f.utm_source.clone()),
            estimated_value: lead.estimated_value,
            currency: lead.currency.clone(),
        }
    }

    /// The name when known, else the e-mail address.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.email)
    }
}

/// Something worth telling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A new lead of high priority was captured.
    HighPriorityLead {
        /// The lead.
        lead: LeadCard,
    },
    /// A lead was assigned to `to` (from `from`, when it had a rep).
    Assigned {
        /// The lead.
        lead: LeadCard,
        /// The new rep.
        to: RepId,
        /// The rep it had.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<RepId>,
    },
    /// A lead reached a critical stage.
    StageChanged {
        /// The lead (at its new stage).
        lead: LeadCard,
        /// The stage it left.
        from: Stage,
        /// The stage it reached.
        to: Stage,
        /// Where the change was made (here, or in the CRM).
        origin: ChangeOrigin,
    },
    /// What a rep (or, for `rep: None`, the team: unassigned leads) should
    /// look at now.
    Digest {
        /// Whose digest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rep: Option<RepId>,
        /// What is in it, most urgent first.
        items: Vec<DigestItem>,
    },
}

impl Event {
    /// Its kind.
    pub fn kind(&self) -> NotificationKind {
        match self {
            Event::HighPriorityLead { .. } => NotificationKind::HighPriorityLead,
            Event::Assigned { .. } => NotificationKind::Assigned,
            Event::StageChanged { .. } => NotificationKind::StageChanged,
            Event::Digest { .. } => NotificationKind::Digest,
        }
    }

    /// The rep it concerns, who gets it in person (by e-mail): the new rep
    /// of an assignment, the digest's rep, the lead's rep otherwise.
    pub fn recipient(&self) -> Option<&RepId> {
        match self {
            Event::Assigned { to, .. } => Some(to),
            Event::Digest { rep, .. } => rep.as_ref(),
            Event::HighPriorityLead { lead } | Event::StageChanged { lead, .. } => {
                lead.assigned_to.as_ref()
            }
        }
    }

    /// The lead it is about (a digest is about several).
    pub fn lead(&self) -> Option<&LeadCard> {
        match self {
            Event::HighPriorityLead { lead }
            | Event::Assigned { lead, .. }
            | Event::StageChanged { lead, .. } => Some(lead),
            Event::Digest { .. } => None,
        }
    }
}

/// One line of a digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "item", rename_all = "snake_case")]
pub enum DigestItem {
    /// A follow-up past its due time, still open.
    #[serde(rename = "followup_overdue")]
    FollowUpOverdue {
        /// The lead.
        lead: LeadCard,
        /// The task.
        task: TaskCard,
    },
    /// A follow-up due within the configured window.
    #[serde(rename = "followup_due")]
    FollowUpDue {
        /// The lead.
        lead: LeadCard,
        /// The task.
        task: TaskCard,
    },
    /// An open lead nobody contacted for the configured days.
    StaleLead {
        /// The lead.
        lead: LeadCard,
        /// Its last contact (or its capture, if never contacted).
        last_touch: DateTime<Utc>,
        /// Whole days since.
        days: u32,
    },
}

impl DigestItem {
    /// The item's kind as named in payloads, templates and counts
    /// (`followup_overdue`, `followup_due`, `stale_lead`).
    pub fn kind(&self) -> &'static str {
        match self {
            DigestItem::FollowUpOverdue { .. } => "followup_overdue",
            DigestItem::FollowUpDue { .. } => "followup_due",
            DigestItem::StaleLead { .. } => "stale_lead",
        }
    }

    /// The lead of the line.
    pub fn lead(&self) -> &LeadCard {
        match self {
            DigestItem::FollowUpOverdue { lead, .. }
            | DigestItem::FollowUpDue { lead, .. }
            | DigestItem::StaleLead { lead, .. } => lead,
        }
    }
}

/// A follow-up task as a digest shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskCard {
    /// Task id.
    pub id: Uuid,
    /// Title.
    pub subject: String,
    /// When it is due.
    pub due_at: DateTime<Utc>,
}

impl TaskCard {
    /// The card of `task`.
    pub fn of(task: &FollowUpTask) -> TaskCard {
        TaskCard {
            id: task.id,
            subject: task.subject.clone(),
            due_at: task.due_at,
        }
    }
}

/// One notification as a channel gets it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The outbox entry's id: the same on every attempt, so a receiver
    /// that sees it twice (after a crash mid-send) can tell (a webhook's
    /// `webhook-id`).
    pub id: Uuid,
    /// When the event happened.
    pub created_at: DateTime<Utc>,
    /// What happened.
    pub event: Event,
}
