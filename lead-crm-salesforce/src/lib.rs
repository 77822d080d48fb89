#![doc = include_str!("../README.md")]

mod client;
mod config;
mod crm;
mod jwt;
#[cfg(feature = "mock")]
pub mod mock;
pub mod outbound;
mod record;
mod wire;

pub use client::ApiUsage;
pub use config::{
    Flow, SalesforceConfig, default_opportunity_stage, default_stage_status, default_status_stage,
};
pub use crm::{COLLECTION_LIMIT, SalesforceClient};
pub use outbound::{Notification, OutboundError, OutboundMessage};
