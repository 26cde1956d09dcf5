//! `gbal serve` and `gbal migrate`: the configuration turned into a running process.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use gbal_api::{AppState, Audit, MetricsRender, TrackerReplySink};
use gbal_core::{BalanceService, Clock, Gms, SystemClock, Tracker};
use gbal_gms::{Dataset, EisJsonGms, EmbeddedSimulator, NctsXmlGms};
use gbal_tracker::{LockMirror, PgTracker, SqliteTracker};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, Database, Transport, default_sqlite_path};
use crate::pending::{self, PendingGauges};

/// Latency buckets (seconds) of the request and GMS call histograms.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
];

/// The request store of this process.
enum Store {
    Postgres(Arc<PgTracker>),
    Sqlite(Arc<SqliteTracker>),
}

impl Store {
    fn tracker(&self) -> Arc<dyn Tracker> {
        match self {
            Store::Postgres(t) => t.clone(),
            Store::Sqlite(t) => t.clone(),
        }
    }
}

async fn open_store(config: &Config, migrate: bool) -> anyhow::Result<Store> {
    let sqlite = match config.database.store()? {
        Database::Postgres => None,
        Database::DefaultSqlite => {
            let path = default_sqlite_path();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let tracker = SqliteTracker::open(&path)
                .await
                .with_context(|| format!("opening SQLite at {}", path.display()))?;
            tracing::warn!(path = %path.display(), "no database.url: using SQLite, fit for one process only");
            Some(tracker)
        }
        Database::Sqlite(url) => {
            let tracker = SqliteTracker::open_url(&url)
                .await
                .context("opening the SQLite database of database.url")?;
            let path = url
                .path()
                .map_or(":memory:".into(), |p| p.display().to_string());
            tracing::warn!(%path, "database.url is SQLite: fit for one process only");
            Some(tracker)
        }
    };
    if let Some(tracker) = sqlite {
        // SQLite belongs to this one process: its schema always follows the binary.
        tracker.migrate().await.context("migrating SQLite")?;
        return Ok(Store::Sqlite(Arc::new(tracker)));
    }
    let tracker =
        PgTracker::connect(config.database.url.expose(), &config.pg()).context("database.url")?;
    if migrate {
        tracker
            .migrate()
            .await
            .context("applying the PostgreSQL migrations")?;
    }
    Ok(Store::Postgres(Arc::new(tracker)))
}

/// `gbal migrate`: applies the migrations of the configured database.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    match open_store(config, true).await? {
        Store::Postgres(_) => println!("PostgreSQL migrations applied"),
        Store::Sqlite(_) => {
            let path = match config.database.store()? {
                Database::Sqlite(url) => url.path().map(Path::to_path_buf),
                _ => Some(default_sqlite_path()),
            };
            let path = path.map_or(":memory:".into(), |p| p.display().to_string());
            println!("SQLite migrations applied ({path})");
        }
    }
    Ok(())
}

fn build_gms(
    config: &Config,
    tracker: Arc<dyn Tracker>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<dyn Gms>> {
    Ok(match config.gms.transport {
        Transport::Simulator => {
            let dataset = if config.simulator.dataset.is_empty() {
                Dataset::sandbox()
            } else {
                Dataset::load(Path::new(&config.simulator.dataset)).context("simulator.dataset")?
            };
            let embedded = config.embedded_simulator(dataset);
            let sink = Arc::new(TrackerReplySink::new(tracker, clock.clone()));
            Arc::new(EmbeddedSimulator::new(embedded, sink).with_clock(clock))
        }
        Transport::NctsXml => {
            Arc::new(NctsXmlGms::new(config.ncts_xml()?).context("gms (ncts-xml)")?)
        }
        Transport::EisJson => {
            Arc::new(EisJsonGms::new(config.eis_json()?).context("gms (eis-json)")?)
        }
    })
}

/// Installs the process's metrics recorder; `/metrics` renders it, then the pending-request
/// gauges (`pending`, as of `clock`).
fn install_metrics(
    pending: Arc<PendingGauges>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(MetricsRender, metrics_exporter_prometheus::PrometheusHandle)> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("duration_seconds".to_owned()),
            LATENCY_BUCKETS,
        )
        .context("metric buckets")?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).context("installing the metrics recorder")?;
    let render = handle.clone();
    let render = move || {
        let mut text = render.render();
        pending.render_into(&mut text, clock.now());
        text
    };
    Ok((Arc::new(render), handle))
}

/// Lets the lock mirror forget the locks that have freed up, and publishes what it holds and
/// how often it refused (`caller_grn`: from memory; `cluster_lock`: the store's lock).
fn publish_lock_mirror(locks: &LockMirror, now: time::OffsetDateTime) {
    let remembered = locks.forget_expired(now);
    metrics::gauge!("gbal_rate_limit_keys", "limiter" => "caller_grn").set(remembered as f64);
    let counts = locks.counts();
    metrics::counter!("gbal_rate_limit_refusals_total", "reason" => "caller_grn")
        .absolute(counts.held_here);
    metrics::counter!("gbal_rate_limit_refusals_total", "reason" => "cluster_lock")
        .absolute(counts.held_by_store);
}

/// `gbal serve`: runs until `shutdown` is cancelled, then drains within `shutdown.grace`.
pub async fn serve(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let pending = Arc::new(PendingGauges::default());
    // Before anything records a metric: the GMS breakers publish their gauges when made.
    let (render, handle) = install_metrics(pending.clone(), clock.clone())?;
    let store = open_store(&config, config.database.run_migrations).await?;
    let tracker = store.tracker();
    let gms = build_gms(&config, tracker.clone(), clock.clone())?;
    if config.gms.transport == Transport::Simulator {
        // The simulator has no breaker: it never refuses a call.
        metrics::gauge!(gbal_gms::BREAKER_OPEN, "transport" => gms.transport()).set(0.0);
    }
    // The replica's memory of held (caller, GRN) locks, in front of the store: a caller asking
    // again within the minute is refused without a database round trip.
    let locks = Arc::new(LockMirror::new(tracker.clone()));
    let service = BalanceService::new(locks.clone(), gms, clock.clone(), config.balance());
    let (audit, audit_delivery) = Audit::new(&config.audit.sink()?).context("audit")?;
    let state = AppState::with_audit(config.api()?, service, Some(render), audit)
        .await
        .context("starting the HTTP front door")?;

    let public = TcpListener::bind(config.public.listen)
        .await
        .with_context(|| format!("public.listen {}", config.public.listen))?;
    let internal = TcpListener::bind(config.internal.listen)
        .await
        .with_context(|| format!("internal.listen {}", config.internal.listen))?;
    let public_addr = public.local_addr()?;
    let internal_addr = internal.local_addr()?;
    tracing::info!(%public_addr, %internal_addr, transport = ?config.gms.transport, "gbal listening");
    // The banner is for people at a terminal; with JSON logs the line above carries the same.
    if config.telemetry.log_format == crate::config::LogFormat::Text {
        println!("gbal listening");
        println!(
            "  public API:   http://{public_addr}{}  (probes: /livez /readyz, spec: /openapi.json)",
            config.public.base_path
        );
        println!(
            "  internal:     http://{internal_addr}  (GMS replies: /balances/{{recipient}}, metrics: /metrics)"
        );
        if config.hs256_secret().is_some() {
            println!("  get a token:  gbal token --sub <your-name>");
        }
    }

    let jobs = TaskTracker::new();
    let stop_jobs = CancellationToken::new();
    let deleted = Arc::new(AtomicU64::new(0));
    {
        let (tracker, clock, stop, deleted) = (
            tracker.clone(),
            clock.clone(),
            stop_jobs.clone(),
            deleted.clone(),
        );
        let (interval, batch) = (config.expiry.interval.0, config.expiry.batch);
        jobs.spawn(async move {
            gbal_tracker::run_expiry_counting(tracker, clock, interval, batch, stop, &deleted)
                .await;
        });
    }
    {
        let (tracker, clock, stop, pending) = (
            tracker.clone(),
            clock.clone(),
            stop_jobs.clone(),
            pending.clone(),
        );
        jobs.spawn(async move {
            pending::run_pending_count(tracker, clock, pending::INTERVAL, stop, &pending).await;
        });
    }
    {
        let (stop, clock, store_gauges) = (
            stop_jobs.clone(),
            clock.clone(),
            match &store {
                Store::Postgres(t) => Some(t.clone()),
                Store::Sqlite(_) => None,
            },
        );
        jobs.spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = ticks.tick() => {}
                }
                handle.run_upkeep();
                metrics::counter!("gbal_expired_rows_total")
                    .absolute(deleted.load(Ordering::Relaxed));
                publish_lock_mirror(&locks, clock.now());
                if let Some(pg) = &store_gauges {
                    let pool = pg.pool();
                    metrics::gauge!("gbal_db_pool_connections").set(f64::from(pool.size()));
                    metrics::gauge!("gbal_db_pool_idle_connections").set(pool.num_idle() as f64);
                    metrics::gauge!("gbal_waiting_requests").set(pg.waiting() as f64);
                }
            }
        });
    }
    if let Some(delivery) = audit_delivery {
        // Stopped after the server, so that the events of the last requests are flushed too.
        jobs.spawn(delivery.run(stop_jobs.clone()));
    }
    jobs.close();

    let grace = config.shutdown.grace.0;
    let server = tokio::spawn(gbal_api::serve(public, internal, state, shutdown.clone()));
    let result = tokio::select! {
        r = server => r.map_err(anyhow::Error::new).and_then(|r| r.map_err(anyhow::Error::new)),
        () = async {
            shutdown.cancelled().await;
            tokio::time::sleep(config.shutdown.delay.0 + grace).await;
        } => {
            tracing::warn!(grace = ?grace, "requests still running after the shutdown grace; exiting anyway");
            Ok(())
        }
    };
    stop_jobs.cancel();
    jobs.wait().await;
    if let Store::Postgres(pg) = &store {
        pg.pool().close().await;
    }
    tracing::info!("gbal stopped");
    result.context("serving")
}
