#![doc = include_str!("../README.md")]

mod coverage;
mod problem;
mod request;
mod schema;
mod spec;
mod validate;

pub use coverage::Coverage;
pub use problem::{Location, Problem, describe};
pub use request::Recorded;
pub use spec::{ApiVersion, Spec, SpecError};
pub use validate::{Operation, validate};
