//! The state every handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gbal_core::BalanceService;

use crate::authenticator::Authenticator;
use crate::config::ApiConfig;
use crate::error::StartError;
use crate::limit::CallerLimits;

/// Renders the metrics registry as Prometheus text (the binary passes its recorder's handle).
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// What the handlers share: the balance service, the authenticator, the per-caller limiter,
/// the settings and the shutdown flag. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ApiConfig,
    service: BalanceService,
    auth: Authenticator,
    limits: CallerLimits,
    metrics: Option<MetricsRender>,
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
    /// Checks the settings and loads the token keys (fetching a JWKS URL once).
    pub async fn new(
        mut config: ApiConfig,
        service: BalanceService,
        metrics: Option<MetricsRender>,
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
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                service,
                auth,
                limits,
                metrics,
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

    pub(crate) fn metrics(&self) -> Option<&MetricsRender> {
        self.inner.metrics.as_ref()
    }

    /// Re-reads (or re-fetches) the token verification keys now; the old ones stay on failure.
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
