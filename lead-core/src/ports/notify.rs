//! The notification port: tell people (Slack, e-mail) and other systems
//! (signed webhooks) about the moments sales cares about.
//!
//! What is worth telling is decided in [`crate::notify`]; a [`Notifier`]
//! only delivers one [`Notification`] over its channel.

use async_trait::async_trait;

use crate::error::Result;
use crate::notify::Notification;

/// What a channel did with a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The channel took it (Slack answered `ok`, the mail server accepted
    /// the message, the subscriber answered 2xx).
    Sent,
    /// Nothing to send on this channel (an e-mail for an event with no
    /// rep to write to); the reason is a short fixed phrase.
    Skipped(&'static str),
}

/// Delivers notifications over one channel.
///
/// # Contract
///
/// An error is classified as the CRM adapters' are: a temporary one
/// ([`Error::is_temporary`](crate::Error::is_temporary), with
/// [`Error::RateLimited`](crate::Error::RateLimited)'s `retry_after` when
/// the other side said how long to wait) is tried again later; anything
/// else can never succeed as it is and is parked for people to look at.
/// The same [`Notification::id`] may be delivered again after a crash
/// mid-send; a channel that can tell its receiver (a webhook's
/// `webhook-id`) does.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one notification.
    async fn notify(&self, notification: &Notification) -> Result<Delivery>;
}
