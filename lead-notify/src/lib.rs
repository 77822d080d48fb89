#![doc = include_str!("../README.md")]

#[cfg(feature = "email")]
pub mod email;
mod error;
mod links;
#[cfg(feature = "slack")]
pub mod slack;
#[cfg(feature = "webhooks")]
mod ssrf;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "webhooks")]
pub mod webhook;

#[cfg(feature = "email")]
pub use email::{EmailConfig, EmailNotifier, Rendered, Tls};
pub use error::ConfigError;
pub use links::LeadLinks;
#[cfg(feature = "slack")]
pub use slack::{SlackConfig, SlackNotifier};
#[cfg(feature = "webhooks")]
pub use webhook::{SignedRequest, WebhookConfig, WebhookNotifier};
