//! Response sets the OpenAPI document repeats across routes, written once.

use crate::error::ErrorBody;

/// The errors of every read of the lead and dashboard APIs.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // documentation only
pub(crate) enum ReadErrors {
    /// A filter or window parameter is wrong; `fields` names it.
    #[response(status = 422, description = "Bad parameter; `fields` names it")]
    Invalid(ErrorBody),
    /// No key, or an unknown one.
    #[response(status = 401, description = "Missing or unknown API key")]
    Unauthorized(ErrorBody),
    /// The key lacks the `read` scope.
    #[response(status = 403, description = "The key lacks the read scope")]
    Forbidden(ErrorBody),
    /// The store is down.
    #[response(status = 503, description = "The store is down")]
    Unavailable(ErrorBody),
}

/// The errors of every change made through the lead API.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // documentation only
pub(crate) enum WriteErrors {
    /// The body is not what the route takes.
    #[response(status = 400, description = "Malformed body")]
    Malformed(ErrorBody),
    /// No key, or an unknown one.
    #[response(status = 401, description = "Missing or unknown API key")]
    Unauthorized(ErrorBody),
    /// The key lacks the `write` scope.
    #[response(status = 403, description = "The key lacks the write scope")]
    Forbidden(ErrorBody),
    /// No such lead (or merge).
    #[response(status = 404, description = "No such lead")]
    NotFound(ErrorBody),
    /// The lead changed since the version the change is based on.
    #[response(status = 409, description = "The lead changed (stale version)")]
    Conflict(ErrorBody),
    /// The body is not JSON.
    #[response(status = 415, description = "Not JSON")]
    MediaType(ErrorBody),
    /// A value is invalid or the change is not allowed.
    #[response(status = 422, description = "Invalid value or forbidden change")]
    Invalid(ErrorBody),
    /// The store is down.
    #[response(status = 503, description = "The store is down")]
    Unavailable(ErrorBody),
}
