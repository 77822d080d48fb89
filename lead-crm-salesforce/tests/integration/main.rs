//! The adapter against a local Salesforce mock that follows the contract.

mod engine;
mod jwt;
mod pull;
mod push;
mod records;
