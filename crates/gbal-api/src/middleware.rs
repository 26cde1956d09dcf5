//! The layers around every route, and the order they run in.
//!
//! From the outside in (the first sees the request first and the response last):
//!
//! 1. `sanitize_request_id`: an incoming `X-Request-Id` is kept only if it is 1 to 64
//!    characters of `[A-Za-z0-9._:-]`; anything else is dropped, so that no caller-chosen
//!    bytes reach a log line, and a fresh one is made in step 2.
//! 2. `SetRequestIdLayer`: makes a UUID request id when there is none.
//! 3. `PropagateRequestIdLayer`: echoes the request id on the response.
//! 4. `SetSensitiveRequestHeadersLayer`: marks `Authorization`, `Cookie` and
//!    `Proxy-Authorization` sensitive, so the trace layer never prints them.
//! 5. `TraceLayer`: one span per request with the method (one of the standard methods, or
//!    `other`), the matched route (never the raw path), the request id, and the caller once
//!    authenticated.
//! 6. `record_metrics`: `http_server_request_duration_seconds` by method (as in the span),
//!    matched route (or `unmatched`) and status, so it sees the final status of everything
//!    below; no label holds a value the caller chose.
//! 7. `error_body`: gives bare error responses from below (axum's 405, the timeout's 503, the
//!    body limit's 413) the same JSON body as every other error.
//! 8. `CatchPanicLayer`: a panicking handler becomes the opaque 500 body (the panic is logged).
//! 9. `TimeoutLayer`: a request still running after `request_timeout` is answered 503.
//! 10. `body_deadline`: the body must have arrived within the listener's body timeout of the
//!     request's head; reading it fails after that (400, and the connection is closed), so a
//!     body trickled a byte at a time holds nothing for long. Nothing here reads the body: it
//!     is read, if at all, after authentication.
//! 11. `RequestBodyLimitLayer`: bodies over the listener's limit are refused with 413. A body
//!     whose declared length is over the limit is refused here, before authentication: it is
//!     the cheapest refusal and tells an unauthenticated caller nothing.
//!
//! Then routing; then the handler's extractors: auth and, right after it, the caller's
//! limits and a place among the replica's requests in flight (`auth::Caller`, `limit`), then
//! Accept, body, fields; then the balance service, whose tracker answers the once-a-minute
//! lock. The connection limits (header read, idle, count, head size) are the server's, in
//! `serve`.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use gbal_core::CallContext;
use hyper::body::{Frame, SizeHint};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, ErrorBodyWritten};

/// The request id header.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps every route of `router` (and its fallback) in the layers above.
pub(crate) fn around<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    body_limit: usize,
    body_timeout: Duration,
    request_timeout: Duration,
) -> Router<S> {
    router.layer(
        ServiceBuilder::new()
            .layer(middleware::from_fn(sanitize_request_id))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                header::COOKIE,
                header::PROXY_AUTHORIZATION,
            ]))
            .layer(TraceLayer::new_for_http().make_span_with(make_span))
            .layer(middleware::from_fn(record_metrics))
            .layer(middleware::from_fn(error_body))
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                request_timeout,
            ))
            .layer(middleware::from_fn_with_state(body_timeout, body_deadline))
            .layer(RequestBodyLimitLayer::new(body_limit)),
    )
}

/// Gives the request's body a deadline: `timeout` from now, the arrival of its head.
async fn body_deadline(
    axum::extract::State(timeout): axum::extract::State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let deadline = tokio::time::Instant::now() + timeout;
    next.run(request.map(|body| {
        if body.is_end_stream() {
            body
        } else {
            Body::new(DeadlineBody::new(body, deadline))
        }
    }))
    .await
}

/// Reading a request body past its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within its deadline")]
pub(crate) struct BodyTimedOut;

/// A request body that fails once its deadline has passed. The timer is armed only when a
/// read has to wait, so a body that has already arrived costs none.
struct DeadlineBody {
    inner: Body,
    deadline: tokio::time::Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Body, deadline: tokio::time::Instant) -> Self {
        Self {
            inner,
            deadline,
            sleep: None,
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimedOut.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a request id is safe to keep and log.
pub(crate) fn is_well_formed_request_id(value: &[u8]) -> bool {
    (1..=64).contains(&value.len())
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(b))
}

async fn sanitize_request_id(mut request: Request, next: Next) -> Response {
    let values: Vec<&HeaderValue> = request.headers().get_all(&REQUEST_ID).iter().collect();
    let keep = values.len() == 1 && is_well_formed_request_id(values[0].as_bytes());
    if !keep {
        request.headers_mut().remove(&REQUEST_ID);
    }
    next.run(request).await
}

/// The label of a request's method: one of the standard methods, or `other` for any other
/// token a caller may send (an unbounded set).
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

fn route_of<B>(request: &axum::http::Request<B>) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned())
}

/// Reads W3C trace context from request headers.
struct HeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

fn make_span(request: &axum::http::Request<Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        method = method_label(request.method()),
        route = %route_of(request),
        request_id = %request_id,
        caller = tracing::field::Empty,
    );
    // Continue the caller's trace when it sent one (a no-op unless OpenTelemetry is on).
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&HeaderExtractor(request.headers()))
    });
    let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(&span, parent);
    span
}

/// The `traceparent` of the current span when OpenTelemetry records it.
fn current_traceparent() -> Option<String> {
    let context = tracing_opentelemetry::OpenTelemetrySpanExt::context(&tracing::Span::current());
    let mut fields = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut fields));
    fields.remove("traceparent").filter(|t| is_traceparent(t))
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = route_of(&request);
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::histogram!(
        "http_server_request_duration_seconds",
        "http_request_method" => method,
        "http_route" => route,
        "http_response_status_code" => response.status().as_u16().to_string(),
    )
    .record(started.elapsed().as_secs_f64());
    response
}

async fn error_body(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<ErrorBodyWritten>().is_some()
    {
        return response;
    }
    let (parts, _) = response.into_parts();
    let mut replaced = ApiError::from_status(status).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replaced.headers_mut().insert(name.clone(), value.clone());
        }
    }
    replaced
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    ApiError::Internal(format!("the handler panicked: {detail}")).into_response()
}

/// The request id and trace context of the current request, to pass on to GMS.
#[derive(Debug, Clone)]
pub(crate) struct Correlation(pub CallContext);

impl<S: Send + Sync> FromRequestParts<S> for Correlation {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let text = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        // The span gbal is in (a child of the caller's) when traces are recorded; otherwise
        // the caller's own context, passed through.
        let traceparent =
            current_traceparent().or_else(|| text("traceparent").filter(|t| is_traceparent(t)));
        Ok(Correlation(CallContext {
            request_id: text("x-request-id"),
            traceparent,
            deadline: None,
        }))
    }
}

/// The request id the middleware gave the exchange (the caller's, when well-formed).
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let id = parts.headers.get(&REQUEST_ID).and_then(|v| v.to_str().ok());
        Ok(RequestId(id.map(str::to_owned)))
    }
}

/// Whether `value` is a W3C `traceparent` of version 00: `00-<32 hex>-<16 hex>-<2 hex>`.
fn is_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1] != "0".repeat(32)
        && parts[2] != "0".repeat(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_are_a_closed_set() {
        for standard in ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
            let method = Method::from_bytes(standard.as_bytes()).unwrap();
            assert_eq!(method_label(&method), standard);
        }
        for made_up in ["XGET", "get", "PROPFIND", "A1B2C3D4E5F6"] {
            let method = Method::from_bytes(made_up.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other", "{made_up}");
        }
    }

    /// A body that sends its first bytes and then nothing more, ever.
    struct Stalls(Option<Bytes>);

    impl HttpBody for Stalls {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            match self.0.take() {
                Some(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                None => Poll::Pending,
            }
        }
    }

    #[tokio::test]
    async fn a_body_past_its_deadline_fails_and_one_in_time_is_read() {
        let stalls = Body::new(Stalls(Some(Bytes::from_static(b"{"))));
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        let body = Body::new(DeadlineBody::new(stalls, deadline));
        let started = Instant::now();
        let error = axum::body::to_bytes(body, 1024).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "{error}");
        assert!(format!("{error:?}").contains("BodyTimedOut"), "{error:?}");

        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        let body = Body::new(DeadlineBody::new(Body::from("{}"), deadline));
        assert_eq!(axum::body::to_bytes(body, 1024).await.unwrap(), "{}");
    }

    #[test]
    fn request_ids() {
        assert!(is_well_formed_request_id(b"abc-123_x.y:z"));
        assert!(is_well_formed_request_id(&[b'a'; 64]));
        assert!(!is_well_formed_request_id(&[b'a'; 65]));
        assert!(!is_well_formed_request_id(b""));
        assert!(!is_well_formed_request_id(b"a b"));
        assert!(!is_well_formed_request_id("é".as_bytes()));
    }

    #[test]
    fn traceparents() {
        assert!(is_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_traceparent(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
        assert!(!is_traceparent(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_traceparent(
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_traceparent("garbage"));
    }
}
