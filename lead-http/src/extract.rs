//! Request extractors whose rejections answer in the one error shape.
//!
//! axum's own `Json`, `Query` and `Path` reject with plain-text bodies
//! (a repeated query parameter such as `?limit=1&limit=2` was a plain-text
//! `400`); these wrappers turn every rejection into an [`ApiError`].

use axum::body::Bytes;
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
        let json = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| mime.trim().to_ascii_lowercase())
            .is_some_and(|mime| mime == "application/json" || mime.ends_with("+json"));
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::TooLarge {
                        limit: API_BODY_LIMIT,
                    }
                } else {
                    ApiError::Malformed("the body could not be read".into())
                }
            })?;
        let mut reader = serde_json::Deserializer::from_slice(&body);
        let value = deserialize_at(&mut reader, "")?;
        reader
            .end()
            .map_err(|e| ApiError::Malformed(format!("the body is not valid JSON: {e}")))?;
        Ok(ApiJson(value))
    }
}

/// Reads `T` from `input`, naming where it failed: JSON that is not JSON
/// is `400 malformed`; JSON of the wrong shape is `422 invalid` on the
/// field serde stopped at (`stage`, `skills.languages`, `reps[1].id`),
/// prefixed with `prefix`.
pub(crate) fn deserialize_at<'de, T, D>(input: D, prefix: &str) -> Result<T, ApiError>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de, Error = serde_json::Error>,
{
    serde_path_to_error::deserialize(input).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            return ApiError::Malformed(format!("the body is not valid JSON: {inner}"));
        }
        let message = inner.to_string();
        // At the top level serde names the field in the message only
        // (`missing field `stage``, `unknown field `x``).
        let field = if path.is_empty() || path == "." {
            field_in_message(&message).unwrap_or_else(|| "body".to_owned())
        } else {
            path
        };
        ApiError::Core(lead_core::Error::invalid(
            &format!("{prefix}{field}"),
            "invalid",
            message,
        ))
    })
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

    fn named(json: &str) -> ApiError {
        let mut reader = serde_json::Deserializer::from_str(json);
        deserialize_at::<Shape, _>(&mut reader, "").expect_err("refused")
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        stage: Stage,
        skills: Option<Skills>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Stage {
        New,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Skills {
        languages: Vec<String>,
    }

    #[test]
    fn a_shape_error_names_the_field_and_broken_json_is_malformed() {
        let field = |json: &str| match named(json) {
            ApiError::Core(lead_core::Error::Invalid { fields }) => fields[0].field.clone(),
            other => panic!("{json}: {other:?}"),
        };
        assert_eq!(field(r#"{"stage": "x"}"#), "stage");
        assert_eq!(field(r#"{}"#), "stage");
        assert_eq!(field(r#"{"stage": "new", "colour": 1}"#), "colour");
        assert_eq!(
            field(r#"{"stage": "new", "skills": {"languages": [5]}}"#),
            "skills.languages[0]"
        );
        assert_eq!(field("5"), "body");
        assert!(matches!(named(r#"{"stage": "#), ApiError::Malformed(_)));
    }
}
