//! lead-http's integration tests: every route over HTTP, duplicate review, capture fuzzing, idempotency keys, limits, attacks and the OpenAPI document.
//!
//! One test binary per crate: each one links the whole dependency tree,
//! so a binary per file cost tens of megabytes of disk and a link step each.

mod abuse;
mod common;
mod duplicates;
mod fuzz;
mod idempotency;
mod limits;
mod openapi;
mod request_id;
mod routes;
mod sales_ops;
