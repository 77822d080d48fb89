//! Request extractors whose rejections answer in the one error shape.
//!
//! axum's own `Json`, `Query` and `Path` reject with plain-text bodies
//! (a repeated query parameter such as `?limit=1&limit=2` was a plain-text
//! `400`); these wrappers turn every rejection into an [`ApiError`].

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// axum's default body limit, which the lead API's JSON routes keep.
const API_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// A JSON body: `415` without a JSON content type, `400` when it is not
/// JSON, `413` over the body limit, `422` naming the field when it is JSON
/// of the wrong shape.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(JsonRejection::JsonDataError(err)) => Err(shape_error(&err.body_text())),
            Err(rejection) if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::TooLarge {
                    limit: API_BODY_LIMIT,
                })
            }
            Err(rejection) => Err(ApiError::Malformed(rejection.body_text())),
        }
    }
}

/// A body that is JSON but not of the route's shape names the field serde
/// stopped at (`stage: unknown variant ...` → field `stage`).
fn shape_error(text: &str) -> ApiError {
    // axum reads JSON through serde_path_to_error: its text is "Failed to
    // deserialize the JSON body into the target type: <path>: <msg> at
    // line ..", the path absent at the top level.
    let detail = text
        .split_once("target type: ")
        .map_or(text, |(_, rest)| rest);
    let (field, message) = match detail.split_once(": ") {
        Some((path, message)) if !path.contains(' ') => (path.to_owned(), message.to_owned()),
        _ => (
            field_in_message(detail).unwrap_or_else(|| "body".to_owned()),
            detail.to_owned(),
        ),
    };
    ApiError::Core(lead_core::Error::invalid(&field, "invalid", message))
}

/// The field a serde message names (`missing field `stage``, `unknown field `x``).
fn field_in_message(message: &str) -> Option<String> {
    let named = ["missing field `", "unknown field `", "duplicate field `"];
    let start = named
        .iter()
        .find_map(|prefix| message.find(prefix).map(|at| at + prefix.len()))?;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

/// Query parameters: a string that does not deserialize (a repeated
/// parameter, a wrong type) is a `400` in the error shape.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|rejection| ApiError::Malformed(rejection.body_text()))
    }
}

/// Path parameters, with a `400` in the error shape when one does not
/// decode (invalid percent-encoding).
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|rejection| ApiError::Malformed(rejection.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_error_names_the_field() {
        let named = |text: &str| match shape_error(text) {
            ApiError::Core(lead_core::Error::Invalid { fields }) => fields[0].field.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            named(
                "Failed to deserialize the JSON body into the target type: stage: unknown variant `x` at line 1 column 12"
            ),
            "stage"
        );
        assert_eq!(
            named(
                "Failed to deserialize the JSON body into the target type: missing field `stage` at line 1 column 2"
            ),
            "stage"
        );
        assert_eq!(
            named(
                "Failed to deserialize the JSON body into the target type: invalid type: integer `5`, expected a map at line 1 column 1"
            ),
            "body"
        );
    }
}
