//! Pipedrive for lead-core's [`CrmClient`](lead_core::CrmClient) (issue 20,
//! in progress): the contract mock first (feature `mock`); the client
//! follows.

#[cfg(feature = "mock")]
pub mod mock;
