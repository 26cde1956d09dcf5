//! When a balance request must be answered: its arrival, stamped as routing hands it to a
//! balance route, plus `public.request_timeout` less a margin
//! ([`gbal_core::answer_deadline`]). The balance service ends its GMS submission and its wait
//! by then, so that a check is answered 200, 202 or 504 as its version says, and the timeout
//! layer's 503 stays a last resort.

use std::convert::Infallible;
use std::time::Instant;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// When the request reached its route.
#[derive(Debug, Clone, Copy)]
struct Arrival(Instant);

/// Stamps the request with its arrival, before any extractor reads it (a slow body counts
/// against its deadline too).
pub(crate) async fn stamp_arrival(mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(Arrival(Instant::now()));
    next.run(request).await
}

/// The instant the request's check must have ended by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(pub Instant);

impl FromRequestParts<AppState> for Deadline {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        // A route without the stamp (none today) counts from now.
        let arrival = parts
            .extensions
            .get::<Arrival>()
            .map_or_else(Instant::now, |a| a.0);
        Ok(Deadline(gbal_core::answer_deadline(
            arrival,
            state.config().request_timeout,
        )))
    }
}
