#![doc = include_str!("../README.md")]

mod client;
mod config;
mod crm;
#[cfg(feature = "mock")]
pub mod mock;
mod outbound;
mod wire;

pub use client::ApiUsage;
pub use config::{Flow, SalesforceConfig, default_stage_status, default_status_stage};
pub use crm::{COLLECTION_LIMIT, SalesforceClient};
pub use outbound::{
    ACK, ACK_CONTENT_TYPE, MAX_NOTIFICATIONS, Notification, OutboundError, OutboundMessage, fault,
    lead_change, parse,
};
