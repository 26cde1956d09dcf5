//! `gbal gms-sim`: the GMS simulator as a standalone HTTP server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use gbal_gms::{BearerToken, Dataset, QueryLimit, SimulatorConfig, Url, serve_simulator};

/// Longest wait for gbal to take one reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
use tokio_util::sync::CancellationToken;

/// What `gbal gms-sim` was asked to do.
#[derive(Debug, Clone)]
pub struct GmsSimOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// A TOML dataset; the built-in sandbox when absent.
    pub dataset: Option<PathBuf>,
    /// gbal's internal listener, where replies are posted.
    pub reply_to: Option<String>,
    /// Bearer token sent with replies.
    pub reply_token: Option<String>,
    /// Bearer token required from gbal.
    pub token: Option<String>,
    /// Queries per TIN per 24 h.
    pub query_limit: u32,
}

/// Runs until `shutdown` is cancelled.
pub async fn run(options: GmsSimOptions, shutdown: CancellationToken) -> anyhow::Result<()> {
    let dataset = match &options.dataset {
        Some(path) => Dataset::load(path).with_context(|| format!("dataset {}", path.display()))?,
        None => Dataset::sandbox(),
    };
    let mut config = SimulatorConfig::new(
        dataset,
        QueryLimit::per_day(options.query_limit),
        REPLY_TIMEOUT,
    );
    config.token = options.token.clone().map(BearerToken::new);
    config.reply_token = options.reply_token.clone().map(BearerToken::new);
    config.reply_to = match &options.reply_to {
        Some(url) => Some(Url::parse(url).with_context(|| format!("--reply-to {url}"))?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("listening on {}", options.listen))?;
    let local = listener.local_addr()?;
    tracing::info!(%local, reply_to = ?options.reply_to, "GMS simulator listening");
    println!("GMS simulator listening on http://{local}");
    println!("  IE034:  POST http://{local}/movements/messages");
    println!(
        "  EIS:    POST http://{local}/guarantees/{{grn}}/access-codes, GET http://{local}/guarantees/{{grn}}/balance"
    );
    serve_simulator(listener, config, async move { shutdown.cancelled().await })
        .await
        .context("GMS simulator")
}
