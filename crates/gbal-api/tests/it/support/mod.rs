//! What gbal-api's tests share: keys and tokens, apps built in process, requests, a fake GMS,
//! HMRC's JSON schemas. Databases, the test clock, log and metrics capture and the fake
//! tracker are gbal-testkit's (re-exported here where the tests name them).

#![allow(dead_code)]

pub mod defaults;
pub mod served;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use gbal_api::{ApiConfig, AppState, Audit, KeySource, MetricsRender, TrackerReplySink};
use gbal_core::{
    BalanceConfig, BalanceQuery, BalanceService, Clock, Gms, GmsError, ReplySink, Submission,
    SubmitContext, SystemClock, Tracker,
};
use gbal_gms::{Dataset, EmbeddedSimulator};
use gbal_tracker::SqliteTracker;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt;

pub use gbal_testkit::{FakeTracker, Method, TestClock, TestDatabase, Times};

pub const ISSUER: &str = "https://auth.example.test/";
pub const AUDIENCE: &str = "gbal";
pub const SCOPE: &str = "common-transit-convention-guarantee-balance";
pub const KID: &str = "test-key";
pub const REPLY_TOKEN: &str = "reply-token-0123456789abcdef";
pub const BASE: &str = "/customs/guarantees";
pub const V1: &str = "application/vnd.hmrc.1.0+json";
pub const V2: &str = "application/vnd.hmrc.2.0+json";

/// A sandbox guarantee of each kind (docs/sandbox.md).
pub mod sandbox {
    pub const TIN: &str = "GB954131533000";
    pub const CODE: &str = "AC01";
    /// Type 1, balance 12345678.90 GBP.
    pub const GRN_BALANCE: &str = "26GB0000010000021";
    /// Type 9, balance 1234.56 GBP.
    pub const GRN_BALANCE_2: &str = "26GB0000010000039";
    /// Type 0, balance 262626.
    pub const GRN_BALANCE_3: &str = "26GB0000010000012";
    /// Type 1, 50000.00, principal GB123456789000 / AB12.
    pub const GRN_50000: &str = "26GB0000010000047";
    /// Type 2: no balance.
    pub const GRN_TYPE_2: &str = "26GB0000020000019";
    /// The reply comes after 2 s.
    pub const GRN_DELAYED: &str = "26GB0000090000011";
    /// No reply ever.
    pub const GRN_NO_REPLY: &str = "26GB0000090000029";
    /// An IE917 reply.
    pub const GRN_IE917: &str = "26GB0000090000037";
    /// The submission is refused with 503.
    pub const GRN_503: &str = "26GB0000090000045";
    /// A reply that cannot be read.
    pub const GRN_MALFORMED: &str = "26GB0000090000053";
    /// Always over its query limit.
    pub const TIN_QUERY_LIMIT: &str = "GB000000000026";
    /// A GRN that no guarantee has.
    pub const GRN_UNKNOWN: &str = "26GB0000010000999";
}

pub fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/keys")
}

pub fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(keys_dir().join(name)).unwrap_or_else(|e| panic!("tests/keys/{name}: {e}"))
}

/// A JWKS with the test public key (kid `test-key`, RS256), built from `rsa-public.pem`.
pub fn jwks_json() -> String {
    jwks_of(&key_file("rsa-public.pem"), KID)
}

pub fn jwks_of(public_pem: &[u8], kid: &str) -> String {
    let key = DecodingKey::from_rsa_pem(public_pem).expect("an RSA public key");
    let mut jwk = Jwk::from_decoding_key(&key, Some(Algorithm::RS256)).expect("a JWK");
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap()
}

/// The public key of `unknown-private.pem`, as PEM (for a JWKS that does not know ours).
pub fn unknown_public_jwks(kid: &str) -> String {
    let encoding = EncodingKey::from_rsa_pem(&key_file("unknown-private.pem")).unwrap();
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap()
}

pub fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Valid claims for `sub`.
pub fn claims(sub: &str) -> Value {
    json!({
        "sub": sub,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now_secs(),
        "exp": now_secs() + 600,
        "scope": format!("openid {SCOPE}"),
    })
}

/// `claims` signed with the test key.
pub fn sign(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.to_owned());
    let key = EncodingKey::from_rsa_pem(&key_file("rsa-private.pem")).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// A valid token for `sub`.
pub fn token(sub: &str) -> String {
    sign(&claims(sub))
}

/// Tokens and their writers may run in parallel; each test uses callers of its own.
pub fn caller(test: &str) -> String {
    format!("{test}-{}", uuid::Uuid::new_v4().simple())
}

/// How a [`FakeGms`] answers a query.
type Answer = Box<dyn Fn(&BalanceQuery) -> Result<Submission, GmsError> + Send + Sync>;

/// A GMS answering with whatever `answer` says.
pub struct FakeGms {
    answer: Answer,
}

impl std::fmt::Debug for FakeGms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeGms")
    }
}

impl FakeGms {
    pub fn new(
        answer: impl Fn(&BalanceQuery) -> Result<Submission, GmsError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            answer: Box::new(answer),
        })
    }
}

#[async_trait]
impl Gms for FakeGms {
    async fn submit(
        &self,
        query: &BalanceQuery,
        _: &SubmitContext,
    ) -> Result<Submission, GmsError> {
        (self.answer)(query)
    }

    fn transport(&self) -> &'static str {
        "fake"
    }
}

/// The parts of an app under test.
pub struct Parts {
    pub tracker: Arc<dyn Tracker>,
    pub clock: Arc<dyn Clock>,
    pub balance: BalanceConfig,
    pub metrics: Option<MetricsRender>,
    /// Where audit events go (logged by default).
    pub audit: Audit,
}

impl Parts {
    pub async fn sqlite() -> Self {
        let tracker = SqliteTracker::in_memory()
            .await
            .expect("an in-memory SQLite tracker");
        Self::on(Arc::new(tracker))
    }

    pub fn on(tracker: Arc<dyn Tracker>) -> Self {
        Self {
            tracker,
            clock: Arc::new(SystemClock),
            balance: BalanceConfig {
                sync_wait: Duration::from_secs(5),
                v2_wait: Duration::from_secs(5),
                ..defaults::balance()
            },
            metrics: None,
            audit: Audit::log(),
        }
    }

    pub fn sink(&self) -> Arc<dyn ReplySink> {
        Arc::new(TrackerReplySink::new(
            Arc::clone(&self.tracker),
            Arc::clone(&self.clock),
        ))
    }

    /// The embedded simulator over the sandbox dataset, delivering late replies to the tracker.
    pub fn simulator(&self) -> Arc<dyn Gms> {
        self.simulator_with(Dataset::sandbox())
    }

    pub fn simulator_with(&self, dataset: Dataset) -> Arc<dyn Gms> {
        Arc::new(EmbeddedSimulator::new(
            defaults::embedded(dataset),
            self.sink(),
        ))
    }
}

/// An app in process, answering through `oneshot`.
pub struct TestApp {
    pub state: AppState,
    pub tracker: Arc<dyn Tracker>,
    pub clock: Arc<dyn Clock>,
    public: Router,
    internal: Router,
    _jwks: tempfile::NamedTempFile,
}

/// The settings of the tests' apps: JWKS from a file with the test key.
pub fn api_config(jwks: &tempfile::NamedTempFile) -> ApiConfig {
    let keys = KeySource::JwksFile {
        path: jwks.path().to_owned(),
        refresh: Duration::from_secs(300),
    };
    let mut auth = defaults::auth(keys);
    auth.issuer = ISSUER.to_owned();
    auth.audience = AUDIENCE.to_owned();
    defaults::api(auth, REPLY_TOKEN)
}

pub fn jwks_tempfile() -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), jwks_json()).unwrap();
    file
}

impl TestApp {
    /// SQLite, the embedded simulator over the sandbox, default settings.
    pub async fn sandbox() -> Self {
        let parts = Parts::sqlite().await;
        let gms = parts.simulator();
        Self::build(parts, gms, |_| {}).await
    }

    pub async fn build(
        parts: Parts,
        gms: Arc<dyn Gms>,
        tweak: impl FnOnce(&mut ApiConfig),
    ) -> Self {
        let jwks = jwks_tempfile();
        let mut config = api_config(&jwks);
        tweak(&mut config);
        // As the binary wires it: the replica's memory of held locks in front of the store.
        let service = BalanceService::new(
            Arc::new(gbal_tracker::LockMirror::new(Arc::clone(&parts.tracker))),
            gms,
            Arc::clone(&parts.clock),
            parts.balance,
        );
        let state = AppState::with_audit(config, service, parts.metrics.clone(), parts.audit)
            .await
            .expect("the app starts");
        Self {
            public: gbal_api::public_router(state.clone()),
            internal: gbal_api::internal_router(state.clone()),
            state,
            tracker: parts.tracker,
            clock: parts.clock,
            _jwks: jwks,
        }
    }

    pub async fn call(&self, request: Request<Body>) -> Reply {
        send(self.public.clone(), request).await
    }

    pub async fn call_internal(&self, request: Request<Body>) -> Reply {
        send(self.internal.clone(), request).await
    }
}

pub async fn send(router: Router, request: Request<Body>) -> Reply {
    let response = router.oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a readable body");
    Reply {
        status,
        headers,
        body,
    }
}

/// A response, read.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("UTF-8")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// `Retry-After` in seconds.
    pub fn retry_after(&self) -> u64 {
        self.header("retry-after")
            .unwrap_or_else(|| panic!("no Retry-After: {self:?}"))
            .parse()
            .unwrap()
    }

    #[track_caller]
    pub fn assert(&self, status: u16, body: Value) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        assert_eq!(self.json(), body, "{}", self.text());
        assert_eq!(self.header("content-type"), Some("application/json"));
    }

    #[track_caller]
    pub fn assert_code(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        assert_eq!(self.json()["code"], code, "{}", self.text());
        assert!(self.json()["message"].is_string(), "{}", self.text());
    }
}

/// `POST <base>/balances` (v1) with this token and raw body.
pub fn v1_post_raw(token: Option<&str>, body: &str) -> Request<Body> {
    let mut builder = Request::post(format!("{BASE}/balances"))
        .header("accept", V1)
        .header("content-type", "application/json");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::from(body.to_owned())).unwrap()
}

/// `POST <base>/balances` (v1) for this query.
pub fn v1_post(token: &str, tin: &str, grn: &str, code: &str) -> Request<Body> {
    v1_post_raw(
        Some(token),
        &json!({"taxIdentifier": tin, "guaranteeReference": grn, "accessCode": code}).to_string(),
    )
}

/// `GET <base>/balances/{id}` (v1).
pub fn v1_get(token: &str, id: &str) -> Request<Body> {
    Request::get(format!("{BASE}/balances/{id}"))
        .header("accept", V1)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

/// `POST <base>/{grn}/balance` (v2) with this raw body.
pub fn v2_post_raw(token: Option<&str>, grn: &str, body: &str) -> Request<Body> {
    let mut builder = Request::post(format!("{BASE}/{grn}/balance"))
        .header("accept", V2)
        .header("content-type", "application/json");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::from(body.to_owned())).unwrap()
}

/// `POST <base>/{grn}/balance` (v2) for this access code.
pub fn v2_post(token: &str, grn: &str, code: &str) -> Request<Body> {
    v2_post_raw(Some(token), grn, &json!({"accessCode": code}).to_string())
}

/// `POST /balances/{recipient}` on the internal listener.
pub fn reply_post(recipient: &str, message_type: Option<&str>, xml: &str) -> Request<Body> {
    let mut builder = Request::post(format!("/balances/{recipient}"))
        .header("authorization", format!("Bearer {REPLY_TOKEN}"))
        .header("content-type", "application/xml");
    if let Some(t) = message_type {
        builder = builder.header("x-message-type", t);
    }
    builder.body(Body::from(xml.to_owned())).unwrap()
}

// --- JSON schemas ------------------------------------------------------------------------

/// Validates `instance` against HMRC's published schema `<name>` of API `version` (kept in
/// `tests/hmrc/<version>/schemas`); the schemas it refers to are loaded from the same folder.
/// Fails (never skips) when missing.
#[track_caller]
pub fn assert_schema(version: &str, name: &str, instance: &Value) {
    let dir = gbal_testkit::reference::hmrc_schemas_dir(version);
    let load = |file: &str| -> Value {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("the schema {} is needed: {e}", path.display()));
        let mut value: Value = serde_json::from_str(&text).unwrap();
        // HMRC's `$id`s are fragments ("#/name.json"); the files refer to each other by file
        // name, so each is registered under a base URI of its own file name instead.
        value.as_object_mut().unwrap().remove("$id");
        value
    };
    let base = format!("file:///hmrc/{version}/schemas/");
    let mut options = jsonschema::options().with_draft(jsonschema::Draft::Draft4);
    for entry in std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the schemas folder {} is needed: {e}", dir.display()))
    {
        let file = entry.unwrap().file_name().into_string().unwrap();
        if file.ends_with(".json") {
            options = options.with_resource(
                format!("{base}{file}"),
                jsonschema::Resource::from_contents(load(&file)),
            );
        }
    }
    let validator = options
        .with_base_uri(format!("{base}{name}"))
        .build(&load(name))
        .unwrap_or_else(|e| panic!("{name} does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{instance} is not valid against {version}/{name}: {errors:#?}"
    );
}

// --- metrics --------------------------------------------------------------------------

/// The process's Prometheus recorder (gbal-testkit's), rendered as `/metrics` renders it.
pub fn metrics_render() -> MetricsRender {
    let handle = gbal_testkit::metrics::prometheus();
    Arc::new(move || handle.render())
}
