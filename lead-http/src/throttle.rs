//! The rate-limit middleware: the state's [`Limiters`](crate::limits) in
//! front of every route, `429` with `Retry-After` over a limit.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lead_core::Error;

use crate::error::ApiError;
use crate::state::AppState;

/// The middleware: `429` with `Retry-After` over a limit.
pub(crate) async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limiters = &state.inner.limiters;
    match limiters.check(&request) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            metrics::counter!("http_rate_limited_total").increment(1);
            ApiError::Core(Error::RateLimited {
                retry_after: Some(Duration::from_secs(wait.as_secs().max(1))),
            })
            .into_response()
        }
    }
}
