//! The adapter against a local Salesforce mock that follows the contract.

mod mock;
mod pull;
mod push;
