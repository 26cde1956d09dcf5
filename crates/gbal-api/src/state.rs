//! The state every handler shares.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use gbal_core::BalanceService;

use crate::auth::Authenticator;
use crate::config::ApiConfig;
use crate::limit::RateLimits;

/// Renders the metrics registry as Prometheus text (the binary passes its recorder's handle).
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// A setting that stops the front door from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is not valid; the text names it.
    #[error("invalid setting {setting}: {reason}")]
    InvalidSetting {
        /// Which setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The token verification keys could not be loaded.
    #[error("the token verification keys could not be loaded: {0}")]
    Keys(String),
}

/// What the handlers share: the balance service, the authenticator, the limiters, the
/// settings and the shutdown flag. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ApiConfig,
    service: BalanceService,
    auth: Authenticator,
    limits: RateLimits,
    metrics: Option<MetricsRender>,
    draining: AtomicBool,
    openapi: OnceLock<String>,
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
        config.base_path = normalise_base_path(&config.base_path)?;
        if config.reply.recipient_prefix.is_empty() {
            return Err(StartError::InvalidSetting {
                setting: "reply.recipient_prefix",
                reason: "must not be empty".to_owned(),
            });
        }
        if config.reply.token.len() < 16 {
            return Err(StartError::InvalidSetting {
                setting: "reply.token",
                reason: "must have at least 16 characters".to_owned(),
            });
        }
        let waits = service.config();
        if config.request_timeout <= waits.sync_wait.max(waits.v2_wait) {
            return Err(StartError::InvalidSetting {
                setting: "request_timeout",
                reason: format!(
                    "{:?} must be longer than sync_wait and v2_wait, or every wait ends in a 503",
                    config.request_timeout
                ),
            });
        }
        let auth = Authenticator::new(&config.auth).await?;
        let limits = RateLimits::new(&config.rate_limit, service.config().lock_ttl)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                service,
                auth,
                limits,
                metrics,
                draining: AtomicBool::new(false),
                openapi: OnceLock::new(),
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

    pub(crate) fn limits(&self) -> &RateLimits {
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

    pub(crate) fn openapi_json(&self) -> &str {
        self.inner
            .openapi
            .get_or_init(|| crate::openapi::document_json(&self.inner.config.base_path))
    }
}

/// `/customs/guarantees/` and `customs/guarantees` both become `/customs/guarantees`; `/`
/// becomes the empty root.
fn normalise_base_path(path: &str) -> Result<String, StartError> {
    let trimmed = path.trim_matches('/');
    let valid = trimmed.split('/').all(|segment| {
        trimmed.is_empty()
            || (!segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)))
    });
    if !valid {
        return Err(StartError::InvalidSetting {
            setting: "base_path",
            reason: format!("{path:?} is not a path of plain segments"),
        });
    }
    Ok(if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths() {
        assert_eq!(
            normalise_base_path("/customs/guarantees/").unwrap(),
            "/customs/guarantees"
        );
        assert_eq!(normalise_base_path("api").unwrap(), "/api");
        assert_eq!(normalise_base_path("/").unwrap(), "");
        assert_eq!(normalise_base_path("").unwrap(), "");
        assert!(normalise_base_path("/a//b").is_err());
        assert!(normalise_base_path("/a/{x}").is_err());
    }
}
