#![doc = include_str!("../README.md")]

mod client;
mod config;
mod crm;
#[cfg(feature = "mock")]
pub mod mock;
mod wire;

pub use config::PipedriveConfig;
pub use crm::PipedriveClient;
