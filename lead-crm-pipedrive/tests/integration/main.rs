//! The Pipedrive adapter against a local Pipedrive mock that follows the
//! contract; every request it sends is validated against the official
//! OpenAPI files.

mod contract;
mod engine;
mod push;
