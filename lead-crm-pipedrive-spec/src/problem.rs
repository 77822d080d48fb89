//! What is wrong with a request, and where.

use std::fmt;

/// Which part of the request a [`Problem`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// The path as a whole: no operation of either document matches it.
    Path,
    /// The method: the path exists, but not with this method.
    Method,
    /// A path parameter, by its name in the template (`id`).
    PathParam(String),
    /// A query parameter, by name (`limit`).
    Query(String),
    /// A header, by name (`content-type`).
    Header(String),
    /// The credentials the operation's `security` asks for.
    Credentials,
    /// The JSON body, at a JSON pointer (`/emails/0/value`; empty for the
    /// whole body).
    Body(String),
    /// The OpenAPI document itself (a `$ref` that points nowhere, a schema
    /// the validator cannot compile): the request could not be checked.
    Spec,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Path => f.write_str("path"),
            Location::Method => f.write_str("method"),
            Location::PathParam(name) => write!(f, "path `{name}`"),
            Location::Query(name) => write!(f, "query `{name}`"),
            Location::Header(name) => write!(f, "header `{name}`"),
            Location::Credentials => f.write_str("credentials"),
            Location::Body(pointer) if pointer.is_empty() => f.write_str("body"),
            Location::Body(pointer) => write!(f, "body: {pointer}"),
            Location::Spec => f.write_str("spec"),
        }
    }
}

/// One thing wrong with a request; displays as `query `limit`: 900 is above
/// maximum 500`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the request.
    pub location: Location,
    /// What is wrong, in words.
    pub message: String,
}

impl Problem {
    /// A problem at `location`.
    pub fn new(location: Location, message: impl Into<String>) -> Self {
        Problem {
            location,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl std::error::Error for Problem {}

/// The problems one per line, for a test failure message.
pub fn describe(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}
