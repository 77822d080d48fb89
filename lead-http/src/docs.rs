//! Response sets the OpenAPI document repeats across routes, written once.

use crate::error::ErrorBody;

/// The errors of every read of the lead and dashboard APIs.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // documentation only
pub(crate) enum ReadErrors {
    /// The query string does not read (a parameter given twice).
    #[response(status = 400, description = "Malformed query string or body")]
    Malformed(ErrorBody),
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

/// The signature and idempotency headers both capture routes read.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // documentation only
pub(crate) struct CaptureHeaders {
    /// Hex HMAC-SHA256 of the raw body with WEBHOOK_SECRET_KEY
    #[param(rename = "X-Webhook-Signature")]
    legacy_signature: Option<String>,
    /// Standard Webhooks message id (also the idempotency key)
    #[param(rename = "webhook-id")]
    webhook_id: Option<String>,
    /// Standard Webhooks signing time, Unix seconds, within 5 minutes
    #[param(rename = "webhook-timestamp")]
    webhook_timestamp: Option<i64>,
    /// Standard Webhooks signatures: space-separated v1,<base64>
    #[param(rename = "webhook-signature")]
    webhook_signature: Option<String>,
    /// A repeat with the same key and payload answers with the first lead;
    /// the same key with another payload is a 422 (a signed webhook-id wins)
    #[param(
        rename = "Idempotency-Key",
        pattern = r"^[\t ]*[!-~]([ -~]{0,253}[!-~])?[\t ]*$"
    )]
    idempotency_key: Option<String>,
}
