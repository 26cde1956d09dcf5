//! The two routers and the server that runs them until shutdown.

use std::future::IntoFuture;
use std::io;

use axum::routing::{get, post};
use axum::{Extension, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::middleware;
use crate::state::AppState;
use crate::{openapi, probe, reply};

async fn uri_not_found() -> ApiError {
    ApiError::UriNotFound
}

/// The public listener's routes: API v1 and v2 under the base path, `/livez`, `/readyz`,
/// `/openapi.json` (the document of these very routes), with the layers of `middleware`; the
/// balance routes also with the bound on requests in flight (`ApiConfig::max_in_flight`).
pub fn public_router(state: AppState) -> Router {
    let config = state.config();
    let in_flight = middleware::InFlightLimit::new(config.max_in_flight);
    let (router, document) = openapi::public_routes_with(&config.base_path, |api| {
        api.route_layer(axum::middleware::from_fn_with_state(
            in_flight,
            middleware::shed_past_limit,
        ))
    })
    .split_for_parts();
    let document = probe::OpenApiJson(openapi::to_json(&document).into());
    let router = router.fallback(uri_not_found).layer(Extension(document));
    middleware::around(router, config.public_body_limit, config.request_timeout).with_state(state)
}

/// The internal listener's routes: `POST /balances/{recipient}` (GMS replies) and
/// `GET /metrics`.
pub fn internal_router(state: AppState) -> Router {
    let config = state.config();
    let router = Router::new()
        .route("/balances/{recipient}", post(reply::post_reply))
        .route("/metrics", get(probe::metrics))
        .fallback(uri_not_found);
    middleware::around(router, config.reply_body_limit, config.request_timeout).with_state(state)
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

    let mut public_server = tokio::spawn(
        axum::serve(public, public_router(state.clone()))
            .with_graceful_shutdown(stop_public.clone().cancelled_owned())
            .into_future(),
    );
    let mut internal_server = tokio::spawn(
        axum::serve(internal, internal_router(state.clone()))
            .with_graceful_shutdown(stop_internal.clone().cancelled_owned())
            .into_future(),
    );
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

/// How often the per-caller limiter forgets the callers it no longer needs: often enough that
/// what it holds follows the last seconds' traffic closely.
const LIMITER_CLEANUP: std::time::Duration = std::time::Duration::from_secs(10);

fn spawn_jobs(state: &AppState, stop: &CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
    let mut jobs = Vec::new();
    if let Some(every) = state.auth().refresh_interval() {
        let state = state.clone();
        let stop = stop.clone();
        jobs.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = ticks.tick() => {
                        if let Err(error) = state.refresh_keys().await {
                            tracing::warn!(error = %error, "the token keys could not be refreshed; the previous ones stay in use");
                        }
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
