//! One error type for the whole domain, by category rather than by vendor.

use std::time::Duration;

/// The result type used across `lead-core` and its adapters.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A field that failed validation, with a stable machine-readable code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldError {
    /// Name of the input field, as the client sent it (e.g. `email`).
    pub field: String,
    /// Stable code (`required`, `invalid_email`, `invalid_phone`, ...).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Every failure `lead-core` and its adapters report, grouped by what the
/// caller should do about it.
///
/// # Design
///
/// Adapters keep their own private error enums and convert into this one, so
/// retry loops and the HTTP layer decide from the category alone
/// ([`Error::is_temporary`]) and never match on vendor details.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is wrong; the listed fields say where.
    #[error("invalid input: {}", fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// Fields that failed, in input order.
        fields: Vec<FieldError>,
    },
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A concurrent change won (version mismatch) or a uniqueness rule holds.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The requested change is not allowed by a business rule (e.g. stage transition).
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// Credentials are missing or wrong.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The other side asked us to slow down.
    #[error("rate limited{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// How long the other side asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// A dependency (store, CRM, network) is down or timed out; try again
    /// later. The message is safe to show an operator; the error
    /// underneath, when known, is the [`source`](std::error::Error::source).
    #[error("unavailable: {0}")]
    Unavailable(String, #[source] Option<Cause>),
    /// A bug or an unexpected answer; not worth retrying. The error
    /// underneath, when known, is the [`source`](std::error::Error::source).
    #[error("internal error: {0}")]
    Internal(String, #[source] Option<Cause>),
}

/// The error underneath an [`Error::Unavailable`] or [`Error::Internal`]
/// (a driver, I/O or HTTP client error), kept so the log can show the
/// whole chain while answers to clients stay generic.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

impl Error {
    /// A single-field validation error.
    pub fn invalid(field: &str, code: &str, message: impl Into<String>) -> Self {
        Error::Invalid {
            fields: vec![FieldError::new(field, code, message)],
        }
    }

    /// A dependency is down or timed out, with no error underneath.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::Unavailable(message.into(), None)
    }

    /// A bug or unexpected answer, with no error underneath.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into(), None)
    }

    /// The same error with `cause` as the error underneath it, for the
    /// categories that keep one ([`Error::Unavailable`],
    /// [`Error::Internal`]); the others are returned unchanged (their
    /// message says all a caller can act on).
    ///
    /// ```
    /// use std::error::Error as _;
    /// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    /// let err = lead_core::Error::unavailable("store: connection failed").caused_by(io);
    /// assert_eq!(err.to_string(), "unavailable: store: connection failed");
    /// assert_eq!(err.source().map(|c| c.to_string()).as_deref(), Some("refused"));
    /// ```
    pub fn caused_by(self, cause: impl Into<Cause>) -> Self {
        match self {
            Error::Unavailable(message, _) => Error::Unavailable(message, Some(cause.into())),
            Error::Internal(message, _) => Error::Internal(message, Some(cause.into())),
            other => other,
        }
    }

    /// This error and every error underneath it, outermost first, joined
    /// by `": "`: the whole chain for a log line.
    pub fn chain(&self) -> String {
        error_chain(self)
    }

    /// `true` when retrying the same operation later may succeed.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Error::RateLimited { .. } | Error::Unavailable(..))
    }

    /// Whether a change that failed with this error should wait and be
    /// sent again rather than be given up on: a temporary failure, or
    /// credentials the other side refused (it is they that need fixing,
    /// not the change).
    pub fn is_worth_retrying(&self) -> bool {
        self.is_temporary() || matches!(self, Error::Unauthorized(_))
    }
}

/// An error and every error underneath it, outermost first, joined by
/// `": "`: the whole chain for a log line.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}
