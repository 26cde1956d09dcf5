//! Bearer-token authentication: each attack refused, the scope, the check order.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use gbal_api::{AppState, KeySource};
use gbal_core::BalanceService;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::sandbox::*;
use crate::support::*;

fn unauthorized(reply: &Reply) {
    reply.assert_code(401, "UNAUTHORIZED");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
}

/// base64url without padding, enough to forge a token by hand.
fn b64(value: &Value) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = value.to_string().into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Every public route, with this Authorization header (or none).
fn requests(authorization: Option<&str>) -> Vec<Request<Body>> {
    let mut list = vec![
        v1_post_raw(
            None,
            &json!({"taxIdentifier": TIN, "guaranteeReference": GRN_BALANCE, "accessCode": CODE})
                .to_string(),
        ),
        {
            let mut r = v1_get("x", "22b9899e-24ee-48e6-a189-97d1f45391c4");
            r.headers_mut().remove("authorization");
            r
        },
        v2_post_raw(None, GRN_BALANCE, r#"{"accessCode":"AC01"}"#),
    ];
    if let Some(value) = authorization {
        for r in &mut list {
            r.headers_mut()
                .insert("authorization", value.parse().unwrap());
        }
    }
    list
}

async fn refused_everywhere(app: &TestApp, authorization: Option<&str>) {
    for request in requests(authorization) {
        let path = request.uri().to_string();
        let reply = app.call(request).await;
        assert_eq!(
            reply.status,
            401,
            "{path} with {authorization:?}: {}",
            reply.text()
        );
        unauthorized(&reply);
    }
}

#[tokio::test]
async fn attacks_are_refused() {
    let app = TestApp::sandbox().await;
    let sub = caller("attacker");
    let mut expired = claims(&sub);
    expired["exp"] = json!(now_secs() - 3600);
    let mut not_yet = claims(&sub);
    not_yet["nbf"] = json!(now_secs() + 3600);
    let mut wrong_issuer = claims(&sub);
    wrong_issuer["iss"] = json!("https://evil.example/");
    let mut wrong_audience = claims(&sub);
    wrong_audience["aud"] = json!("someone-else");
    let mut no_exp = claims(&sub);
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut no_sub = claims(&sub);
    no_sub.as_object_mut().unwrap().remove("sub");

    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(&sub))
    );
    let alg_none_kid = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": KID})),
        b64(&claims(&sub))
    );
    let hs256_with_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(KID.to_owned());
        jsonwebtoken::encode(
            &header,
            &claims(&sub),
            &EncodingKey::from_secret(&key_file("rsa-public.pem")),
        )
        .unwrap()
    };
    let unknown_key = |kid: &str| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(
            &header,
            &claims(&sub),
            &EncodingKey::from_rsa_pem(&key_file("unknown-private.pem")).unwrap(),
        )
        .unwrap()
    };
    let tampered = {
        let good = token(&sub);
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let mut other = claims(&sub);
        other["sub"] = json!("someone-else");
        parts[1] = b64(&other);
        parts.join(".")
    };

    refused_everywhere(&app, None).await;
    for (name, header) in [
        ("garbage", "Bearer garbage".to_owned()),
        ("garbage parts", "Bearer a.b.c".to_owned()),
        ("not bearer", format!("Basic {}", token(&sub))),
        ("alg none", format!("Bearer {alg_none}")),
        ("alg none with kid", format!("Bearer {alg_none_kid}")),
        (
            "HS256 with the RSA public key",
            format!("Bearer {hs256_with_public_key}"),
        ),
        ("expired", format!("Bearer {}", sign(&expired))),
        ("nbf in the future", format!("Bearer {}", sign(&not_yet))),
        ("wrong issuer", format!("Bearer {}", sign(&wrong_issuer))),
        (
            "wrong audience",
            format!("Bearer {}", sign(&wrong_audience)),
        ),
        ("no exp", format!("Bearer {}", sign(&no_exp))),
        ("no sub", format!("Bearer {}", sign(&no_sub))),
        (
            "unknown key, known kid",
            format!("Bearer {}", unknown_key(KID)),
        ),
        (
            "unknown key, unknown kid",
            format!("Bearer {}", unknown_key("other")),
        ),
        ("tampered claims", format!("Bearer {tampered}")),
    ] {
        eprintln!("{name}");
        refused_everywhere(&app, Some(&header)).await;
    }
}

#[tokio::test]
async fn a_valid_token_without_the_scope_is_403() {
    let app = TestApp::sandbox().await;
    let sub = caller("no-scope");
    let mut no_scope = claims(&sub);
    no_scope["scope"] = json!("openid profile");
    let mut wrong_scope = claims(&sub);
    wrong_scope.as_object_mut().unwrap().remove("scope");
    wrong_scope["scp"] = json!(["common-transit-convention"]);
    for c in [no_scope, wrong_scope] {
        let header = format!("Bearer {}", sign(&c));
        for request in requests(Some(&header)) {
            app.call(request).await.assert_code(403, "FORBIDDEN");
        }
    }
    // The scope may come in `scp`, as a string or an array.
    let mut scp = claims(&sub);
    scp.as_object_mut().unwrap().remove("scope");
    scp["scp"] = json!(["openid", SCOPE]);
    let reply = app.call(v2_post(&sign(&scp), GRN_BALANCE, CODE)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    scp["scp"] = json!(SCOPE);
    let reply = app.call(v2_post(&sign(&scp), GRN_BALANCE_2, CODE)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn auth_comes_before_accept_body_and_fields() {
    let app = TestApp::sandbox().await;
    let mut request = v1_post_raw(None, "{not json");
    request.headers_mut().remove("accept");
    request
        .headers_mut()
        .insert("content-type", "text/plain".parse().unwrap());
    unauthorized(&app.call(request).await);
    let mut request = v2_post_raw(None, "bad-grn", "{}");
    request.headers_mut().remove("accept");
    unauthorized(&app.call(request).await);
    // Then Accept before the body.
    let mut request = v1_post_raw(Some(&token(&caller("order"))), "{not json");
    request.headers_mut().remove("accept");
    app.call(request)
        .await
        .assert_code(406, "ACCEPT_HEADER_INVALID");
    // Then the body before the fields.
    let request = v2_post_raw(Some(&token(&caller("order"))), "bad-grn", "{}");
    assert_eq!(
        app.call(request).await.json()["message"],
        "The access code was not supplied."
    );
}

#[tokio::test]
async fn a_leeway_of_zero_refuses_a_token_just_expired() {
    let parts = Parts::sqlite().await;
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |c| c.auth.leeway = Duration::ZERO).await;
    let mut c = claims(&caller("leeway"));
    c["exp"] = json!(now_secs() - 2);
    unauthorized(&app.call(v2_post(&sign(&c), GRN_BALANCE, CODE)).await);
}

async fn app_with_keys(
    keys: KeySource,
    algorithms: &[&str],
) -> Result<AppState, gbal_api::StartError> {
    let mut auth = defaults::auth(keys);
    auth.issuer = ISSUER.to_owned();
    auth.audience = AUDIENCE.to_owned();
    auth.algorithms = algorithms.iter().map(|a| (*a).to_owned()).collect();
    let parts = Parts::sqlite().await;
    let gms = parts.simulator();
    let service = BalanceService::new(parts.tracker, gms, parts.clock, defaults::balance());
    AppState::new(defaults::api(auth, REPLY_TOKEN), service, None).await
}

#[tokio::test]
async fn an_hs256_secret_accepts_hs256_only() {
    let secret = "a-development-secret-of-32-bytes!!";
    let state = app_with_keys(KeySource::Hs256Secret(secret.to_owned()), &["HS256"])
        .await
        .unwrap();
    let router = gbal_api::public_router(state);
    let sub = caller("hs256");
    let good = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&sub),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    let reply = send(router.clone(), v2_post(&good, GRN_BALANCE, CODE)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    // An RS256 token is refused: not on the allow-list.
    unauthorized(&send(router.clone(), v2_post(&token(&sub), GRN_BALANCE_2, CODE)).await);
    let wrong = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&sub),
        &EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes"),
    )
    .unwrap();
    unauthorized(&send(router, v2_post(&wrong, GRN_BALANCE_2, CODE)).await);
}

#[tokio::test]
async fn bad_key_settings_stop_the_start() {
    assert!(
        app_with_keys(KeySource::Hs256Secret("short".to_owned()), &["HS256"])
            .await
            .is_err()
    );
    assert!(
        app_with_keys(
            KeySource::Hs256Secret("a-development-secret-of-32-bytes!!".to_owned()),
            &["RS256"]
        )
        .await
        .is_err()
    );
    let jwks = jwks_tempfile();
    let file = KeySource::JwksFile {
        path: jwks.path().to_owned(),
        refresh: Duration::from_secs(60),
    };
    assert!(
        app_with_keys(file.clone(), &["HS256"]).await.is_err(),
        "HMAC with a JWKS"
    );
    assert!(app_with_keys(file.clone(), &["none"]).await.is_err());
    assert!(app_with_keys(file.clone(), &[]).await.is_err());
    assert!(app_with_keys(file, &["RS256", "ES256"]).await.is_ok());
    let missing = KeySource::JwksFile {
        path: "/nonexistent/jwks.json".into(),
        refresh: Duration::from_secs(60),
    };
    assert!(app_with_keys(missing, &["RS256"]).await.is_err());
}

#[tokio::test]
async fn a_jwks_url_is_fetched_and_refreshed() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let server = MockServer::start().await;
    // At first the JWKS only has a key we do not sign with.
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_string(unknown_public_jwks(KID)))
        .mount(&server)
        .await;
    let keys = KeySource::JwksUrl {
        url: format!("{}/jwks", server.uri()),
        refresh: Duration::from_secs(600),
    };
    let state = app_with_keys(keys, &["RS256"]).await.unwrap();
    let router = gbal_api::public_router(state.clone());
    let sub = caller("jwks-url");
    unauthorized(&send(router.clone(), v2_post(&token(&sub), GRN_BALANCE, CODE)).await);

    // The key rotates in; a refresh picks it up.
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_string(jwks_json()))
        .mount(&server)
        .await;
    state.refresh_keys().await.unwrap();
    let reply = send(router.clone(), v2_post(&token(&sub), GRN_BALANCE, CODE)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    // A failed refresh keeps the keys in use.
    server.reset().await;
    assert!(state.refresh_keys().await.is_err());
    let reply = send(router, v2_post(&token(&sub), GRN_BALANCE_2, CODE)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}
