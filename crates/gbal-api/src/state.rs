//! The state every handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gbal_core::BalanceService;

use crate::audit::Audit;
use crate::authenticator::Authenticator;
use crate::config::ApiConfig;
use crate::error::StartError;
use crate::limit::{CallerLimits, ReplicaInFlight};

/// How long `/readyz` reuses the request store's last answer: a flood of probes costs the
/// database about one ping a second.
pub(crate) const READINESS_CACHE: Duration = Duration::from_secs(1);

/// Renders the metrics registry as Prometheus text (the binary passes its recorder's handle).
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// What the handlers share: the balance service, the authenticator, the per-caller limits,
/// the replica's requests in flight, the store's last readiness, the audit, the settings and
/// the shutdown flag. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ApiConfig,
    service: BalanceService,
    auth: Authenticator,
    limits: CallerLimits,
    in_flight: ReplicaInFlight,
    /// When the store last answered a readiness ping, and how; held while a ping runs, so
    /// that concurrent probes share it.
    store_readiness: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
    metrics: Option<MetricsRender>,
    audit: Audit,
    draining: AtomicBool,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.inner.config)
            .field("service", &self.inner.service)
            .field("draining", &self.is_draining())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// [`AppState::with_audit`], with audit events logged ([`Audit::log`]).
    pub async fn new(
        config: ApiConfig,
        service: BalanceService,
        metrics: Option<MetricsRender>,
    ) -> Result<Self, StartError> {
        Self::with_audit(config, service, metrics, Audit::log()).await
    }

    /// Checks the settings and loads the token keys (fetching a JWKS URL once: if that fails,
    /// the state starts without keys, not ready, and `serve`'s refresh job keeps trying);
    /// audit events go to `audit`.
    pub async fn with_audit(
        mut config: ApiConfig,
        service: BalanceService,
        metrics: Option<MetricsRender>,
        audit: Audit,
    ) -> Result<Self, StartError> {
        config.validate(service.config())?;
        // The service relies on its own settings too (a zero lock TTL would let every check
        // through).
        service
            .config()
            .validate()
            .map_err(|e| StartError::InvalidSetting {
                setting: e.field,
                reason: e.reason.to_owned(),
            })?;
        config.base_path = config.normalised_base_path()?;
        let auth = Authenticator::new(&config.auth).await?;
        let limits = CallerLimits::new(&config.rate_limit)?;
        let in_flight = ReplicaInFlight::new(config.max_in_flight);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                service,
                auth,
                limits,
                in_flight,
                store_readiness: tokio::sync::Mutex::new(None),
                metrics,
                audit,
                draining: AtomicBool::new(false),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// The balance service.
    pub fn service(&self) -> &BalanceService {
        &self.inner.service
    }

    pub(crate) fn auth(&self) -> &Authenticator {
        &self.inner.auth
    }

    pub(crate) fn limits(&self) -> &CallerLimits {
        &self.inner.limits
    }

    pub(crate) fn in_flight(&self) -> &ReplicaInFlight {
        &self.inner.in_flight
    }

    /// Whether the request store answers: its answer to a ping within the readiness timeout,
    /// reused for [`READINESS_CACHE`].
    pub(crate) async fn store_readiness(&self) -> Result<(), String> {
        let mut last = self.inner.store_readiness.lock().await;
        if let Some((at, answer)) = last.as_ref()
            && at.elapsed() < READINESS_CACHE
        {
            return answer.clone();
        }
        let timeout = self.inner.config.readiness_timeout;
        let answer = match tokio::time::timeout(timeout, self.inner.service.tracker().ping()).await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(format!("readiness: {error}")),
            Err(_) => Err(format!(
                "readiness: the request store did not answer within {timeout:?}"
            )),
        };
        *last = Some((Instant::now(), answer.clone()));
        answer
    }

    /// Where audit events go.
    pub(crate) fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    pub(crate) fn metrics(&self) -> Option<&MetricsRender> {
        self.inner.metrics.as_ref()
    }

    /// Re-reads (or re-fetches) the token verification keys now; the old ones stay on failure
    /// (until they are older than `auth.jwks_max_age`).
    pub async fn refresh_keys(&self) -> Result<(), StartError> {
        self.inner.auth.refresh().await
    }

    /// Marks the process as shutting down: `/readyz` answers 503 from now on.
    pub fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the process is shutting down.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }
}
