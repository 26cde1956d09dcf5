//! The asynchronous path over real HTTP: gbal with the ncts-xml adapter, the standalone GMS
//! simulator replying to gbal's internal listener, PostgreSQL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gbal_api::AppState;
use gbal_core::{BalanceConfig, BalanceService, Gms, SystemClock, Tracker};
use gbal_gms::{BearerToken, Dataset, NctsXmlGms, SimulatorConfig, Url};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::support::*;

pub const GMS_TOKEN: &str = "gms-token-0123456789";
pub const TIN: &str = "GB954131533000";
/// Answered after 3 s.
pub const GRN_SLOW: &str = "26GB0000010000021";
/// Answered after 200 ms.
pub const GRN_FAST: &str = "26GB0000010000039";
/// Answered after 500 ms.
pub const GRN_HALF: &str = "26GB0000010000047";

pub fn dataset() -> Dataset {
    Dataset::from_toml(
        r#"
[[guarantees]]
grn = "26GB0000010000021"
type = "1"
tin = "GB954131533000"
access_code = "AC01"
balance = "12345678.90"
reply_delay = "3s"

[[guarantees]]
grn = "26GB0000010000039"
type = "9"
tin = "GB954131533000"
access_code = "AC01"
balance = "1234.56"
reply_delay = "200ms"

[[guarantees]]
grn = "26GB0000010000047"
type = "1"
tin = "GB954131533000"
access_code = "AC01"
balance = "50000.00"
reply_delay = "500ms"
"#,
    )
    .expect("the test dataset")
}

/// A running simulator.
pub struct Simulator {
    pub url: Url,
    stop: CancellationToken,
}

impl Simulator {
    /// The simulator, sending replies to `reply_to` (gbal's internal listener).
    pub async fn start(reply_to: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config =
            SimulatorConfig::new(dataset(), defaults::query_limit(), Duration::from_secs(5));
        config.token = Some(BearerToken::new(GMS_TOKEN));
        config.reply_to = Some(Url::parse(&format!("http://{reply_to}")).unwrap());
        config.reply_token = Some(BearerToken::new(REPLY_TOKEN));
        config.wrap_replies = true;
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            gbal_gms::serve_simulator(listener, config, shutdown)
                .await
                .unwrap();
        });
        Self {
            url: Url::parse(&format!("http://{addr}/movements/messages")).unwrap(),
            stop,
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A gbal instance on its two listeners.
pub struct Gbal {
    pub public: SocketAddr,
    pub state: AppState,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _jwks: tempfile::NamedTempFile,
}

/// Two listeners, bound before anything needs their addresses.
pub struct Listeners {
    public: TcpListener,
    internal: TcpListener,
}

impl Listeners {
    pub async fn bind() -> Self {
        Self {
            public: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            internal: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        }
    }

    pub fn internal_addr(&self) -> SocketAddr {
        self.internal.local_addr().unwrap()
    }
}

impl Gbal {
    /// gbal on `listeners`, sending IE034s to `gms` over ncts-xml.
    pub async fn start(
        listeners: Listeners,
        tracker: Arc<dyn Tracker>,
        gms: &Url,
        balance: BalanceConfig,
    ) -> Self {
        let adapter: Arc<dyn Gms> = Arc::new(
            NctsXmlGms::new(defaults::ncts_xml(defaults::upstream(
                gms.clone(),
                GMS_TOKEN,
            )))
            .unwrap(),
        );
        let tracker = Arc::new(gbal_tracker::LockMirror::new(tracker));
        let service = BalanceService::new(tracker, adapter, Arc::new(SystemClock), balance);
        let jwks = jwks_tempfile();
        let state = AppState::new(api_config(&jwks), service, None)
            .await
            .unwrap();
        let public = listeners.public.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(gbal_api::serve(
            listeners.public,
            listeners.internal,
            state.clone(),
            stop.clone(),
        ));
        Self {
            public,
            state,
            stop,
            task: Some(task),
            _jwks: jwks,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.public)
    }

    /// Cancels and waits for the server to finish.
    pub async fn shut_down(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for Gbal {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub struct HttpReply {
    pub status: u16,
    pub location: Option<String>,
    pub retry_after: Option<String>,
    pub body: Value,
    pub text: String,
}

pub async fn http(request: reqwest::RequestBuilder) -> HttpReply {
    let response = request.send().await.expect("gbal answers");
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let location = header("location");
    let retry_after = header("retry-after");
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    HttpReply {
        status,
        location,
        retry_after,
        body,
        text,
    }
}

pub fn v1_post_http(
    client: &reqwest::Client,
    gbal: &Gbal,
    sub: &str,
    grn: &str,
) -> reqwest::RequestBuilder {
    client
        .post(gbal.url(&format!("{BASE}/balances")))
        .header("accept", V1)
        .header("content-type", "application/json")
        .bearer_auth(token(sub))
        .body(
            json!({"taxIdentifier": TIN, "guaranteeReference": grn, "accessCode": "AC01"})
                .to_string(),
        )
}

pub fn v2_post_http(
    client: &reqwest::Client,
    gbal: &Gbal,
    sub: &str,
    grn: &str,
) -> reqwest::RequestBuilder {
    client
        .post(gbal.url(&format!("{BASE}/{grn}/balance")))
        .header("accept", V2)
        .header("content-type", "application/json")
        .bearer_auth(token(sub))
        .body(r#"{"accessCode":"ac01"}"#)
}

#[tokio::test]
async fn a_reply_later_than_sync_wait_is_202_then_pending_then_the_balance() {
    let db = TestDatabase::migrated("gbal_api").await;
    let tracker = Arc::new(db.tracker().await);
    tracker.until_listening().await;
    let listeners = Listeners::bind().await;
    let simulator = Simulator::start(listeners.internal_addr()).await;
    let balance = BalanceConfig {
        sync_wait: Duration::from_secs(1),
        ..defaults::balance()
    };
    let gbal = Gbal::start(listeners, tracker, &simulator.url, balance).await;
    let client = reqwest::Client::new();
    let sub = caller("http-async");

    let reply = http(v1_post_http(&client, &gbal, &sub, GRN_SLOW)).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let id = reply.body["balanceId"].as_str().unwrap().to_owned();
    assert_eq!(
        reply.location.as_deref(),
        Some(format!("{BASE}/balances/{id}").as_str())
    );

    let get = || {
        client
            .get(gbal.url(&format!("{BASE}/balances/{id}")))
            .header("accept", V1)
            .bearer_auth(token(&sub))
    };
    let pending = http(get()).await;
    assert_eq!(pending.status, 200, "{}", pending.text);
    assert!(
        pending.body["request"].get("response").is_none(),
        "{}",
        pending.text
    );

    // The simulator replies 3 s after the submission; "eventually", bounded generously.
    let done = gbal_testkit::eventually_some_every(
        Duration::from_secs(30),
        Duration::from_millis(200),
        "GET shows the reply",
        || async {
            let reply = http(get()).await;
            reply.body["request"]
                .get("response")
                .is_some()
                .then_some(reply)
        },
    )
    .await;
    assert_eq!(
        done.body["request"]["response"],
        json!({"status": "SUCCESS", "balance": 12345678.9, "currency": "GBP"})
    );
    assert!(done.text.contains(r#""balance":12345678.9,"#));
    assert_schema("v1", "get-balance-request-response-schema.json", &done.body);

    gbal.shut_down().await;
    drop(simulator);
    db.drop_database().await;
}

#[tokio::test]
async fn a_reply_sooner_than_sync_wait_is_200() {
    let db = TestDatabase::migrated("gbal_api").await;
    let tracker = Arc::new(db.tracker().await);
    tracker.until_listening().await;
    let listeners = Listeners::bind().await;
    let simulator = Simulator::start(listeners.internal_addr()).await;
    let balance = BalanceConfig {
        sync_wait: Duration::from_secs(3),
        v2_wait: Duration::from_secs(3),
        ..defaults::balance()
    };
    let gbal = Gbal::start(listeners, tracker, &simulator.url, balance).await;
    let client = reqwest::Client::new();

    let reply = http(v1_post_http(&client, &gbal, &caller("http-sync"), GRN_FAST)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.text,
        r#"{"response":{"balance":1234.56,"currency":"GBP"}}"#
    );

    let reply = http(v2_post_http(&client, &gbal, &caller("http-sync"), GRN_FAST)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["balance"], json!(1234.56));
    assert_schema(
        "v2",
        "post-get-guarantee-balance-response-ok-schema.json",
        &reply.body,
    );

    gbal.shut_down().await;
    drop(simulator);
    db.drop_database().await;
}

#[tokio::test]
async fn shutdown_turns_readyz_503_first_and_lets_requests_finish() {
    let db = TestDatabase::migrated("gbal_api").await;
    let tracker = Arc::new(db.tracker().await);
    tracker.until_listening().await;
    let listeners = Listeners::bind().await;
    let simulator = Simulator::start(listeners.internal_addr()).await;
    let balance = BalanceConfig {
        sync_wait: Duration::from_secs(5),
        ..defaults::balance()
    };
    let gbal = Gbal::start(listeners, tracker, &simulator.url, balance).await;
    let client = reqwest::Client::new();
    assert_eq!(http(client.get(gbal.url("/readyz"))).await.status, 200);

    // A check in flight (answered 3 s after its submission) when shutdown starts: once its
    // request is recorded.
    let in_flight = tokio::spawn(http(v1_post_http(
        &client,
        &gbal,
        &caller("drain"),
        GRN_SLOW,
    )));
    let pool = db.pool().await;
    gbal_testkit::eventually(Duration::from_secs(20), "the check recorded", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM balance_requests")
            .fetch_one(&pool)
            .await
            .expect("count")
            == 1
    })
    .await;
    pool.close().await;
    gbal.state.start_draining();
    assert!(!in_flight.is_finished(), "the check ended before shutdown");
    assert_eq!(http(client.get(gbal.url("/readyz"))).await.status, 503);
    gbal.shut_down().await;
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.text,
        r#"{"response":{"balance":12345678.9,"currency":"GBP"}}"#
    );
    drop(simulator);
    db.drop_database().await;
}
