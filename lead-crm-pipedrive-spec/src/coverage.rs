//! Which operations a test's requests exercised.

use std::collections::BTreeMap;
use std::fmt;

use crate::problem::{Problem, describe};
use crate::request::Recorded;
use crate::validate::{Operation, validate};

/// Counts validated requests per operation.
///
/// ```
/// use lead_crm_pipedrive_spec::{Coverage, Recorded};
///
/// let mut coverage = Coverage::new();
/// let request = Recorded::new("GET", "/api/v1/users/me").with_header("x-api-token", "t");
/// coverage.validate(&request).unwrap();
/// assert_eq!(
///     coverage.to_string(),
///     "validated 1 request over 1 operation: GET /api/v1/users/me (getCurrentUser)"
/// );
/// ```
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    requests: usize,
    operations: BTreeMap<Operation, usize>,
}

impl Coverage {
    /// Nothing validated yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one request validated as `operation`.
    pub fn record(&mut self, operation: &Operation) {
        self.requests += 1;
        *self.operations.entry(operation.clone()).or_default() += 1;
    }

    /// [`validate`]s `request` and counts it if it is valid.
    ///
    /// # Errors
    ///
    /// The request's problems; it is then not counted.
    pub fn validate(&mut self, request: &Recorded) -> Result<Operation, Vec<Problem>> {
        let operation = validate(request)?;
        self.record(&operation);
        Ok(operation)
    }

    /// Validates every request and counts the valid ones.
    ///
    /// # Errors
    ///
    /// One report naming each invalid request and its problems.
    pub fn validate_all<'a>(
        &mut self,
        requests: impl IntoIterator<Item = &'a Recorded>,
    ) -> Result<(), String> {
        let mut report = Vec::new();
        for request in requests {
            if let Err(problems) = self.validate(request) {
                report.push(format!(
                    "{} {}:\n{}",
                    request.method,
                    request.path,
                    describe(&problems)
                ));
            }
        }
        if report.is_empty() {
            Ok(())
        } else {
            Err(report.join("\n"))
        }
    }

    /// How many requests were counted.
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// How many distinct operations they covered.
    pub fn operation_count(&self) -> usize {
        self.operations.len()
    }

    /// Each covered operation with its request count, v1 first, then by path
    /// and method.
    pub fn operations(&self) -> impl Iterator<Item = (&Operation, usize)> {
        self.operations.iter().map(|(op, n)| (op, *n))
    }

    /// Whether an operation with this key (`GET /api/v2/persons/search`) or
    /// `operationId` (`searchPersons`) was covered.
    pub fn covers(&self, key_or_id: &str) -> bool {
        self.operations
            .keys()
            .any(|op| op.key() == key_or_id || op.operation_id.as_deref() == Some(key_or_id))
    }
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        write!(
            f,
            "validated {} request{} over {} operation{}",
            self.requests,
            plural(self.requests),
            self.operations.len(),
            plural(self.operations.len())
        )?;
        let mut separator = ": ";
        for (operation, count) in &self.operations {
            write!(f, "{separator}{operation}")?;
            if *count > 1 {
                write!(f, " ×{count}")?;
            }
            separator = ", ";
        }
        Ok(())
    }
}
