#![doc = include_str!("../README.md")]

mod client;
mod config;
mod crm;
#[cfg(feature = "mock")]
pub mod mock;
mod pull;
mod webhook;
mod wire;

pub use config::{DEAL_STAGES, PipedriveConfig};
pub use crm::PipedriveClient;
pub use webhook::{WEBHOOK_OBJECTS, WebhookAction, WebhookEvent};
