//! Shared test helpers: queries and contexts, fast adapter configurations, the simulator on
//! port 0, a reply listener standing in for gbal's internal listener, and a reply sink. Log
//! and metrics capture come from gbal-testkit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use gbal_core::{
    AccessCode, BalanceQuery, BalanceRequestId, Grn, MessageId, Outcome, ReplySink, SubmitContext,
    Tin, UniqueReference,
};
use gbal_gms::{
    BearerToken, BreakerConfig, RetryPolicy, SimulatorConfig, UpstreamConfig, Url, serve_simulator,
};
use time::macros::datetime;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// Every test's upper bound on waiting for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// An API v1 query (with TIN).
pub fn query(grn: &str, tin: Option<&str>, code: &str) -> BalanceQuery {
    BalanceQuery {
        grn: Grn::parse_v1(grn).expect("test GRN"),
        access_code: AccessCode::parse(code).expect("test access code"),
        tin: tin.map(|t| Tin::parse(t).expect("test TIN")),
    }
}

/// A fresh submit context with a request id and a traceparent.
pub fn context() -> SubmitContext {
    let balance_id = BalanceRequestId::new();
    SubmitContext {
        balance_id,
        message_id: balance_id.message_id(),
        message_ref: UniqueReference::random(),
        requested_at: datetime!(2026-11-21 13:45:07 UTC),
        request_id: Some("req-7f3a".to_owned()),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
        deadline: None,
    }
}

/// The URL of a server on `addr`, with `path`.
pub fn url(addr: SocketAddr, path: &str) -> Url {
    Url::parse(&format!("http://{addr}{path}")).expect("test URL")
}

/// An endpoint with small timeouts, quick retries and a quick breaker.
pub fn fast(url: Url, token: &str) -> UpstreamConfig {
    UpstreamConfig {
        url,
        token: BearerToken::new(token),
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(800),
        retry: RetryPolicy {
            max_retries: 2,
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(50),
            total: Duration::from_secs(2),
        },
        breaker: BreakerConfig {
            failure_threshold: 3,
            cool_down: Duration::from_millis(300),
        },
    }
}

/// An address nothing listens on.
pub async fn refusing_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}

/// A simulator running on port 0; stops when dropped.
pub struct RunningSimulator {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl RunningSimulator {
    pub async fn start(config: SimulatorConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_simulator(listener, config, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops it and waits until it has.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("running");
        tokio::time::timeout(PATIENCE, task)
            .await
            .expect("the simulator stops in time")
            .expect("the simulator task does not panic")
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// One POST the reply listener received.
#[derive(Debug, Clone)]
pub struct ReceivedReply {
    pub recipient: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl ReceivedReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Stands in for gbal's internal listener: records `POST /balances/{recipient}`.
pub struct ReplyListener {
    pub addr: SocketAddr,
    received: mpsc::UnboundedReceiver<ReceivedReply>,
}

impl ReplyListener {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, received) = mpsc::unbounded_channel();
        let app = Router::new()
            .route(
                "/balances/{recipient}",
                post(
                    |State(tx): State<mpsc::UnboundedSender<ReceivedReply>>,
                     Path(recipient): Path<String>,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        let _ = tx.send(ReceivedReply {
                            recipient,
                            headers,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        });
                    },
                ),
            )
            .with_state(tx);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, received }
    }

    pub fn url(&self) -> Url {
        url(self.addr, "")
    }

    /// The next reply, waiting at most `PATIENCE`.
    pub async fn next(&mut self) -> ReceivedReply {
        tokio::time::timeout(PATIENCE, self.received.recv())
            .await
            .expect("a reply arrives in time")
            .expect("listener running")
    }

    /// Asserts nothing has arrived so far.
    pub fn nothing_yet(&mut self) {
        if let Ok(reply) = self.received.try_recv() {
            panic!("unexpected reply: {reply:?}");
        }
    }

    /// Asserts nothing arrives within `wait`.
    pub async fn nothing_within(&mut self, wait: Duration) {
        if let Ok(Some(reply)) = tokio::time::timeout(wait, self.received.recv()).await {
            panic!("unexpected reply: {reply:?}");
        }
    }
}

/// A reply sink that records deliveries.
#[derive(Debug)]
pub struct RecordingSink {
    tx: mpsc::UnboundedSender<(MessageId, Outcome)>,
}

impl RecordingSink {
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<(MessageId, Outcome)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Arc::new(Self { tx }), rx)
    }
}

#[async_trait]
impl ReplySink for RecordingSink {
    async fn deliver(&self, message_id: MessageId, outcome: Outcome) {
        let _ = self.tx.send((message_id, outcome));
    }
}
