//! One error shape for every route: `{"error": code, "message", "fields"}`.
//!
//! The status comes from the error's category, once, here. Internal
//! details (store errors, causes) go to the log, never into a response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lead_core::{Error, FieldError};
use serde::Serialize;

use crate::signature::SignatureError;

/// What a route answers when it fails.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A domain or store error.
    #[error(transparent)]
    Core(#[from] Error),
    /// The webhook signature was refused.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The body could not be read as what the route takes (bad JSON, bad
    /// form encoding, wrong shape).
    #[error("{0}")]
    Malformed(String),
    /// The body is over the route's limit.
    #[error("the body is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The `Content-Type` is not one the route reads.
    #[error("content type must be application/json or application/x-www-form-urlencoded")]
    UnsupportedMediaType,
    /// The API key lacks the scope the route needs.
    #[error("the API key lacks the {0} scope")]
    Forbidden(&'static str),
    /// The path exists but does not take this method.
    #[error("this path does not take {0}")]
    MethodNotAllowed(String),
    /// The request took longer than the server's limit. Unlike a store
    /// that is down, a commit it started may still complete.
    #[error("the request took longer than {limit_ms} ms")]
    TimedOut {
        /// The limit, in milliseconds.
        limit_ms: u128,
    },
}

/// The JSON body of every error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code (`malformed`, `bad_signature`,
    /// `unauthorized`, `forbidden`, `not_found`, `conflict`, `too_large`,
    /// `unsupported_media_type`, `invalid`, `not_allowed`, `rate_limited`,
    /// `unavailable`, `timeout`, `method_not_allowed`, `internal`).
    #[schema(value_type = String)]
    pub error: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// The failing fields, for validation errors; empty otherwise.
    #[schema(value_type = Vec<FieldErrorSchema>)]
    pub fields: Vec<FieldError>,
}

/// One failing field (the shape of `lead_core::FieldError`).
#[derive(Debug, utoipa::ToSchema)]
#[schema(as = FieldError)]
#[allow(dead_code)] // documentation only
pub struct FieldErrorSchema {
    /// The input field, as the client named it.
    field: String,
    /// Stable code (`required`, `invalid_email`, ...).
    code: String,
    /// What is wrong, for people.
    message: String,
}

impl ApiError {
    /// The status and stable code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Core(err) => match err {
                Error::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
                Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
                Error::NotAllowed(_) => (StatusCode::UNPROCESSABLE_ENTITY, "not_allowed"),
                Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
                Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
                Error::Unavailable(..) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            },
            ApiError::Signature(_) => (StatusCode::UNAUTHORIZED, "bad_signature"),
            ApiError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed"),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::TimedOut { .. } => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
        }
    }

    /// The body sent for this error: internal and store failures get a
    /// generic message (the cause is logged instead).
    pub fn body(&self) -> ErrorBody {
        let (_, code) = self.status_and_code();
        let (message, fields) = match self {
            ApiError::Core(Error::Invalid { fields }) => {
                ("the lead has invalid fields".to_owned(), fields.clone())
            }
            ApiError::Core(Error::Unavailable(..)) => (
                "the store is unavailable; nothing was stored, try again".to_owned(),
                Vec::new(),
            ),
            ApiError::Core(Error::Internal(..)) => ("internal error".to_owned(), Vec::new()),
            ApiError::TimedOut { limit_ms } => (
                format!(
                    "the request took longer than {limit_ms} ms; it may or may not have been stored: retry with the same Idempotency-Key"
                ),
                Vec::new(),
            ),
            ApiError::Core(Error::NotFound(what)) => (format!("not found: {what}"), Vec::new()),
            ApiError::Core(Error::Conflict(why)) => (why.clone(), Vec::new()),
            ApiError::Core(Error::NotAllowed(why)) => (why.clone(), Vec::new()),
            ApiError::Core(Error::Unauthorized(why)) => (why.clone(), Vec::new()),
            other => (other.to_string(), Vec::new()),
        };
        ErrorBody {
            error: code,
            message,
            fields,
        }
    }
}

impl ApiError {
    /// This error and every error underneath it, outermost first, joined
    /// by `": "` (for the log, never for a response).
    pub fn chain(&self) -> String {
        match self {
            ApiError::Core(err) => err.chain(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        // The whole chain goes to the log (the driver's or client's error
        // underneath included); the body stays generic.
        let chain = self.chain();
        if status.is_server_error() {
            tracing::error!(error = %chain, "request failed");
        } else {
            tracing::debug!(error = %chain, "request refused");
        }
        let mut response = (status, Json(self.body())).into_response();
        let retry_after = match &self {
            ApiError::Core(Error::RateLimited { retry_after }) => {
                Some(retry_after.map_or(1, |d| d.as_secs().max(1)))
            }
            ApiError::Core(Error::Unavailable(..)) | ApiError::TimedOut { .. } => Some(1),
            _ => None,
        };
        if matches!(self, ApiError::Core(Error::Unauthorized(_))) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lead-capture\""),
            );
        }
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The result of a route.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_gets_the_whole_chain_and_the_body_stays_generic() {
        let driver = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let err =
            ApiError::Core(Error::unavailable("store: the connection broke").caused_by(driver));
        assert_eq!(
            err.chain(),
            "unavailable: store: the connection broke: reset by peer"
        );
        let body = err.body();
        assert_eq!(body.error, "unavailable");
        assert!(!body.message.contains("reset"), "{}", body.message);
        assert!(
            !body.message.contains("connection broke"),
            "{}",
            body.message
        );
        let internal = ApiError::Core(Error::internal("codec").caused_by(driver_error()));
        assert_eq!(internal.body().message, "internal error");
        assert!(
            internal.chain().ends_with("bad byte"),
            "{}",
            internal.chain()
        );
    }

    fn driver_error() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "bad byte")
    }
}
