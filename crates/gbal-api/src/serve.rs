//! The two routers and the server that runs them until shutdown.
//!
//! Each listener is served by hyper's HTTP/1.1 connection builder with a timer, under the
//! listener's [`ConnectionLimits`]: a connection is accepted only while fewer than
//! `max_connections` are open (past it new ones wait in the kernel's queue; those already
//! open, such as a load balancer's health connection, keep being served); a request head must
//! arrive within `header_read_timeout` and stay within `max_header_bytes` and `max_headers`
//! (else 431); a kept-alive connection idle for `idle_timeout` after its last answer is
//! closed. HTTP/2 is not served.

use std::convert::Infallible;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::routing::{get, post};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::ConnectionLimits;
use crate::error::ApiError;
use crate::middleware;
use crate::state::AppState;
use crate::{openapi, probe, reply};

async fn uri_not_found() -> ApiError {
    ApiError::UriNotFound
}

/// The public listener's routes: API v1 and v2 under the base path, `/livez`, `/readyz`,
/// `/openapi.json` (the document of these very routes), with the layers of `middleware`. The
/// balance routes' limits (the caller's, then the replica's requests in flight) are taken by
/// their `auth::Caller` extractor, right after authentication.
pub fn public_router(state: AppState) -> Router {
    let config = state.config();
    let (router, document) = openapi::public_routes(&config.base_path).split_for_parts();
    let document = probe::OpenApiJson(openapi::to_json(&document).into());
    let router = router
        .fallback(uri_not_found)
        .layer(axum::Extension(document));
    middleware::around(
        router,
        config.public_body_limit,
        config.public_connections.body_timeout,
        config.request_timeout,
    )
    .with_state(state)
}

/// The internal listener's routes: `POST /balances/{recipient}` (GMS replies) and
/// `GET /metrics`.
pub fn internal_router(state: AppState) -> Router {
    let config = state.config();
    let router = Router::new()
        .route("/balances/{recipient}", post(reply::post_reply))
        .route("/metrics", get(probe::metrics))
        .fallback(uri_not_found);
    middleware::around(
        router,
        config.reply_body_limit,
        config.internal_connections.body_timeout,
        config.request_timeout,
    )
    .with_state(state)
}

/// Serves both listeners until `shutdown` is cancelled, then shuts down in order: `/readyz`
/// turns 503 at once; the listeners keep serving for `shutdown_delay`; the public listener
/// stops accepting and its requests in flight finish; only then does the internal listener
/// stop, so that replies for the checks still waiting keep arriving while they drain. Also
/// runs the front door's background jobs (JWKS refresh, limiter clean-up) until then.
pub async fn serve(
    public: TcpListener,
    internal: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let stop_public = CancellationToken::new();
    let stop_internal = CancellationToken::new();
    let drain = {
        let state = state.clone();
        let stop_public = stop_public.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            state.start_draining();
            tracing::info!("shutting down: readiness is 503, draining requests");
            tokio::time::sleep(state.config().shutdown_delay).await;
            stop_public.cancel();
        })
    };
    let jobs = spawn_jobs(&state, &stop_internal);

    let config = state.config();
    let mut public_server = tokio::spawn(run_listener(
        public,
        public_router(state.clone()),
        config.public_connections,
        stop_public.clone(),
    ));
    let mut internal_server = tokio::spawn(run_listener(
        internal,
        internal_router(state.clone()),
        config.internal_connections,
        stop_internal.clone(),
    ));
    let (public_result, internal_result) = tokio::select! {
        result = &mut public_server => {
            stop_internal.cancel();
            (result, internal_server.await)
        }
        // The internal listener failed: stop the public one too.
        result = &mut internal_server => {
            state.start_draining();
            stop_public.cancel();
            (public_server.await, result)
        }
    };
    stop_internal.cancel();
    drain.abort();
    for job in jobs {
        let _ = job.await;
    }
    for result in [public_result, internal_result] {
        result.map_err(io::Error::other)??;
    }
    Ok(())
}

/// Accepts connections on `listener` while fewer than `limits.max_connections` are open, and
/// serves each with `router` until `stop`; then stops accepting, lets every connection finish
/// the request it is serving (an idle one is closed at once) and returns when all are closed.
async fn run_listener(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
) -> io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    let http = Arc::new(http);
    let open = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let connections = TaskTracker::new();
    loop {
        // A place first, then a connection: past the cap, connections wait unaccepted.
        let place = tokio::select! {
            () = stop.cancelled() => break,
            place = Arc::clone(&open).acquire_owned() => place.map_err(io::Error::other)?,
        };
        let stream = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    if !is_per_connection(&error) {
                        tracing::warn!(error = %error, "accepting a connection failed");
                        tokio::select! {
                            () = stop.cancelled() => break,
                            () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        }
                    }
                    continue;
                }
            },
        };
        let (http, router, stop) = (Arc::clone(&http), router.clone(), stop.clone());
        connections.spawn(async move {
            serve_connection(&http, stream, router, limits.idle_timeout, stop).await;
            drop(place);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Accept errors that concern one connection only (it was reset before it was accepted).
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// When a connection's last request ended, and how many it is serving now.
struct Activity {
    serving: usize,
    since: Instant,
    served_any: bool,
}

/// Serves one connection until it closes. Once it has been answered, a kept-alive connection
/// that starts no new request within `idle` of its last answer is asked to close, as it is
/// when `stop` is cancelled: hyper then closes it at once if idle, or after the answer it is
/// writing. (Before its first request, and while a head arrives, hyper's own header-read
/// timer bounds it.)
async fn serve_connection(
    http: &http1::Builder,
    stream: TcpStream,
    router: Router,
    idle: Duration,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Mutex::new(Activity {
        serving: 0,
        since: Instant::now(),
        served_any: false,
    }));
    let tracked = Arc::clone(&activity);
    let service = tower::service_fn(move |request: Request<hyper::body::Incoming>| {
        let (router, activity) = (router.clone(), Arc::clone(&tracked));
        async move {
            lock(&activity).serving += 1;
            let response = router.oneshot(request.map(axum::body::Body::new)).await;
            let mut now = lock(&activity);
            now.serving -= 1;
            now.since = Instant::now();
            now.served_any = true;
            drop(now);
            Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
        }
    });
    let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    let mut connection = std::pin::pin!(connection);
    let mut closing = false;
    loop {
        let idle_until = {
            let now = lock(&activity);
            if now.serving == 0 && now.served_any {
                now.since + idle
            } else {
                Instant::now() + idle
            }
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(error = %error, "connection ended with an error");
                }
                return;
            }
            () = stop.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep_until(idle_until), if !closing => {
                let now = lock(&activity);
                if now.serving == 0 && now.served_any && now.since.elapsed() >= idle {
                    drop(now);
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How often the per-caller limiter forgets the callers it no longer needs: often enough that
/// what it holds follows the last seconds' traffic closely.
const LIMITER_CLEANUP: Duration = Duration::from_secs(10);

fn spawn_jobs(state: &AppState, stop: &CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
    let mut jobs = Vec::new();
    if state.auth().refresh_interval().is_some() {
        let state = state.clone();
        let stop = stop.clone();
        jobs.push(tokio::spawn(async move {
            // Soon after a failure (a JWKS URL down at start included), else every period.
            while let Some(wait) = state.auth().next_refresh() {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(wait) => {
                        if let Err(error) = state.refresh_keys().await {
                            tracing::warn!(error = %error, "the token keys could not be refreshed; the previous ones stay in use until auth.jwks_max_age");
                        }
                        // Logs, once, when the keys in use have just become too old.
                        let _ = state.auth().readiness();
                    }
                }
            }
        }));
    }
    let state = state.clone();
    let stop = stop.clone();
    jobs.push(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(LIMITER_CLEANUP);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = ticks.tick() => state.limits().retain_recent(),
            }
        }
    }));
    jobs
}
