#![doc = include_str!("../README.md")]

mod client;
mod config;
mod crm;
mod jwt;
#[cfg(feature = "mock")]
pub mod mock;
mod outbound;
mod wire;

pub use client::ApiUsage;
pub use config::{
    Flow, SalesforceConfig, default_opportunity_stage, default_stage_status, default_status_stage,
};
pub use crm::{COLLECTION_LIMIT, SalesforceClient};
pub use outbound::{
    ACK, ACK_CONTENT_TYPE, MAX_NOTIFICATIONS, Notification, OutboundError, OutboundMessage, fault,
    lead_change, parse,
};
