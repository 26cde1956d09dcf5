//! JWKS robustness, with a JWKS served over real HTTP (wiremock) and real signed tokens: an
//! unknown `kid` makes the keys be read again (once for a burst, at most once per 30 s), keys
//! past their maximum age are dropped and readiness fails, the document's size is bounded,
//! and an identity provider that is down at start leaves gbal running, not ready, and trying
//! again.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use gbal_api::{AppState, KeySource};
use gbal_core::BalanceService;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::sandbox::*;
use crate::support::served::Served;
use crate::support::*;

/// A JWKS holding each of `documents`' keys.
fn merged(documents: &[String]) -> String {
    let keys = documents
        .iter()
        .flat_map(|d| serde_json::from_str::<JwkSet>(d).unwrap().keys)
        .collect();
    serde_json::to_string(&JwkSet { keys }).unwrap()
}

/// `claims(sub)` signed with the test key under `kid`.
fn token_with_kid(sub: &str, kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_rsa_pem(&key_file("rsa-private.pem")).unwrap();
    jsonwebtoken::encode(&header, &claims(sub), &key).unwrap()
}

async fn serve_jwks(server: &MockServer, status: u16, body: String) {
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        .mount(server)
        .await;
}

async fn fetches(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

/// An app whose keys come from `server`'s `/jwks`, refreshed every `refresh`.
async fn app_on(
    server: &MockServer,
    refresh: Duration,
    tweak: impl FnOnce(&mut gbal_api::AuthConfig),
) -> AppState {
    let mut auth = defaults::auth(KeySource::JwksUrl {
        url: format!("{}/jwks", server.uri()),
        refresh,
    });
    auth.issuer = ISSUER.to_owned();
    auth.audience = AUDIENCE.to_owned();
    auth.algorithms = vec!["RS256".to_owned()];
    tweak(&mut auth);
    let parts = Parts::sqlite().await;
    let gms = parts.simulator();
    let service = BalanceService::new(parts.tracker, gms, parts.clock, defaults::balance());
    AppState::new(defaults::api(auth, REPLY_TOKEN), service, None)
        .await
        .expect("the app starts")
}

fn readyz() -> Request<Body> {
    Request::get("/readyz").body(Body::empty()).unwrap()
}

#[tokio::test]
async fn an_unknown_kid_reads_the_keys_again_once_for_a_burst_and_at_most_every_30_s() {
    let server = MockServer::start().await;
    serve_jwks(&server, 200, unknown_public_jwks("old")).await;
    let state = app_on(&server, Duration::from_secs(600), |_| {}).await;
    let router = gbal_api::public_router(state);
    assert_eq!(fetches(&server).await, 1, "read once at start");

    // Our key rotates in under a new kid; tokens signed with it arrive at once.
    serve_jwks(
        &server,
        200,
        merged(&[unknown_public_jwks("old"), jwks_json()]),
    )
    .await;
    let checks: Vec<_> = (0..10)
        .map(|i| {
            let router = router.clone();
            tokio::spawn(async move {
                let sub = caller(&format!("rotated-{i}"));
                send(router, v2_post(&token(&sub), GRN_BALANCE, CODE)).await
            })
        })
        .collect();
    for check in checks {
        let reply = check.await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    assert_eq!(
        fetches(&server).await,
        1,
        "ten tokens with the new kid shared one read"
    );

    // Made-up kids within 30 s of that read cost the identity provider nothing more.
    for i in 0..5 {
        let reply = send(
            router.clone(),
            v2_post(
                &token_with_kid(&caller("made-up"), &format!("kid-{i}")),
                GRN_BALANCE,
                CODE,
            ),
        )
        .await;
        reply.assert_code(401, "UNAUTHORIZED");
    }
    assert_eq!(fetches(&server).await, 1);
}

#[tokio::test]
async fn keys_past_their_maximum_age_are_dropped_readiness_fails_and_a_refresh_restores_them() {
    let logs = gbal_testkit::logs::capture_global();
    let server = MockServer::start().await;
    serve_jwks(&server, 200, jwks_json()).await;
    let state = app_on(&server, Duration::from_secs(1), |auth| {
        auth.jwks_max_age = Duration::from_millis(1500);
    })
    .await;
    let router = gbal_api::public_router(state.clone());
    assert_eq!(send(router.clone(), readyz()).await.status, 200);
    let sub = caller("aged");
    assert_eq!(
        send(router.clone(), v2_post(&token(&sub), GRN_BALANCE, CODE))
            .await
            .status,
        200
    );

    // The identity provider fails from now on; the keys age past 1.5 s.
    serve_jwks(&server, 500, String::new()).await;
    assert!(state.refresh_keys().await.is_err());
    tokio::time::sleep(Duration::from_millis(1700)).await;
    send(router.clone(), readyz())
        .await
        .assert_code(503, "SERVICE_UNAVAILABLE");
    send(router.clone(), v2_post(&token(&sub), GRN_BALANCE_2, CODE))
        .await
        .assert_code(401, "UNAUTHORIZED");
    let text = logs.text();
    assert!(
        text.contains("not refreshed within their maximum age and are dropped"),
        "{text}"
    );

    serve_jwks(&server, 200, jwks_json()).await;
    state.refresh_keys().await.expect("a refresh");
    assert_eq!(send(router.clone(), readyz()).await.status, 200);
    assert_eq!(
        send(router, v2_post(&token(&sub), GRN_BALANCE_2, CODE))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_jwks_larger_than_its_bound_is_refused() {
    let server = MockServer::start().await;
    // Our key and enough others to pass 4 KiB.
    let big = merged(
        &std::iter::once(jwks_json())
            .chain((0..12).map(|i| unknown_public_jwks(&format!("padding-{i}"))))
            .collect::<Vec<_>>(),
    );
    assert!(big.len() > 4096, "{}", big.len());
    serve_jwks(&server, 200, big.clone()).await;
    let state = app_on(&server, Duration::from_secs(600), |auth| {
        auth.jwks_max_bytes = 4096;
    })
    .await;
    let router = gbal_api::public_router(state.clone());
    send(router.clone(), readyz())
        .await
        .assert_code(503, "SERVICE_UNAVAILABLE");
    let error = state.refresh_keys().await.unwrap_err();
    assert!(
        error.to_string().contains("larger than 4096 bytes"),
        "{error}"
    );
    send(router, v2_post(&token(&caller("big")), GRN_BALANCE, CODE))
        .await
        .assert_code(401, "UNAUTHORIZED");

    // A JWKS file over the bound stops the start.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &big).unwrap();
    let mut auth = defaults::auth(KeySource::JwksFile {
        path: file.path().to_owned(),
        refresh: Duration::from_secs(60),
    });
    auth.jwks_max_bytes = 4096;
    let parts = Parts::sqlite().await;
    let gms = parts.simulator();
    let service = BalanceService::new(parts.tracker, gms, parts.clock, defaults::balance());
    let refused = AppState::new(defaults::api(auth, REPLY_TOKEN), service, None).await;
    assert!(
        refused.is_err_and(|e| e.to_string().contains("larger than 4096 bytes")),
        "a JWKS file over the bound"
    );
}

#[tokio::test]
async fn an_identity_provider_down_at_start_leaves_gbal_not_ready_and_trying_again() {
    let server = MockServer::start().await;
    serve_jwks(&server, 503, String::new()).await;
    let state = app_on(&server, Duration::from_secs(1), |_| {}).await;
    let served = Served::start(state).await;
    let client = crate::support::served::client();
    let ready = |client: reqwest::Client| {
        let url = served.url("/readyz");
        async move {
            client
                .get(url)
                .send()
                .await
                .map_or(0, |r| r.status().as_u16())
        }
    };
    assert_eq!(ready(client.clone()).await, 503, "not ready without keys");
    let check = |client: reqwest::Client| {
        let url = served.url(&format!("{BASE}/{GRN_BALANCE}/balance"));
        async move {
            client
                .post(url)
                .bearer_auth(token(&caller("after-outage")))
                .header("accept", V2)
                .json(&serde_json::json!({"accessCode": CODE}))
                .send()
                .await
                .map_or(0, |r| r.status().as_u16())
        }
    };
    assert_eq!(check(client.clone()).await, 401);

    // It keeps trying: once the identity provider answers, gbal becomes ready by itself.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(fetches(&server).await >= 2, "tried again");
    serve_jwks(&server, 200, jwks_json()).await;
    let mut became_ready = false;
    for _ in 0..60 {
        if ready(client.clone()).await == 200 {
            became_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(became_ready, "ready once the keys could be fetched");
    assert_eq!(check(client).await, 200);
    served.stop().await.expect("a clean stop");
}
