//! The front door's settings and their checks.
//!
//! Plain values: the binary fills in every one from its configuration (`config/default.toml`
//! holds every default, so none is written here). [`ApiConfig::validate`] is the one place
//! they are checked; the binary runs it at start-up, naming its own key for each [`Setting`],
//! and [`AppState::new`](crate::AppState::new) refuses what it refuses.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use gbal_core::BalanceConfig;
use jsonwebtoken::Algorithm;

/// Everything the HTTP layer needs to know.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where the public API routes sit, e.g. `/customs/guarantees`; empty for the root.
    pub base_path: String,
    /// The largest public request body.
    pub public_body_limit: usize,
    /// The most balance requests (`POST` and `GET` of API v1 and v2) served at once; past
    /// it the next ones are answered 503 at once. Probes are not counted.
    pub max_in_flight: usize,
    /// The largest reply body on the internal listener.
    pub reply_body_limit: usize,
    /// How long any request may take before it is answered 503 (longer than the balance
    /// service's waits).
    pub request_timeout: Duration,
    /// How long `/readyz` waits for the request store.
    pub readiness_timeout: Duration,
    /// How long the listeners keep serving after `/readyz` turned 503 on shutdown, so that
    /// load balancers stop sending first (zero when Kubernetes' preStop sleep does it).
    pub shutdown_delay: Duration,
    /// The public listener's connection limits.
    pub public_connections: ConnectionLimits,
    /// The internal listener's connection limits.
    pub internal_connections: ConnectionLimits,
    /// Bearer-token validation.
    pub auth: AuthConfig,
    /// The per-caller request rate.
    pub rate_limit: RateLimitConfig,
    /// The internal reply route.
    pub reply: ReplyConfig,
}

/// How bearer tokens are validated.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The accepted signature algorithms, e.g. `["RS256"]`; anything else is refused.
    pub algorithms: Vec<String>,
    /// Where the verification keys come from.
    pub keys: KeySource,
    /// The required `iss`.
    pub issuer: String,
    /// The required `aud` (one of the token's audiences).
    pub audience: String,
    /// The scope a token must grant in `scope` (space-separated) or `scp`.
    pub required_scope: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// JWKS keys not refreshed for this long are dropped (every token is refused and
    /// readiness fails until a refresh succeeds). Not used with a shared secret.
    pub jwks_max_age: Duration,
    /// The largest JWKS document read, from a file or a URL.
    pub jwks_max_bytes: usize,
}

/// What one listener allows a connection and its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request's head must have arrived within this of when gbal began waiting for it (the
    /// connection's opening, or the end of the previous answer on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// A kept-alive connection with no request for this long after its last answer is closed
    /// (`header_read_timeout` counts that wait too: the shorter of the two closes it).
    pub idle_timeout: Duration,
    /// The most connections open at once; past it new connections wait to be accepted.
    pub max_connections: usize,
    /// The largest request head (request line and headers), in bytes; larger is 431.
    pub max_header_bytes: usize,
    /// The most headers a request may have; more is 431.
    pub max_headers: usize,
    /// A request's body must have arrived within this of its head; a body still arriving is
    /// refused with 400 and its connection closed (the request timeout still bounds the whole
    /// request, if shorter).
    pub body_timeout: Duration,
}

/// One of the two listeners, as a setting names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Callers and probes.
    Public,
    /// GMS replies and metrics.
    Internal,
}

/// Where token verification keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// A JWKS document on disk, re-read every `refresh`.
    JwksFile {
        /// The file.
        path: PathBuf,
        /// How often it is re-read.
        refresh: Duration,
    },
    /// A JWKS document fetched over HTTP(S) at start and every `refresh` after.
    JwksUrl {
        /// The URL.
        url: String,
        /// How often it is fetched again.
        refresh: Duration,
    },
    /// A shared HS256 secret (development only; the algorithms must be `HS256`).
    Hs256Secret(String),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::JwksFile { path, refresh } => f
                .debug_struct("JwksFile")
                .field("path", path)
                .field("refresh", refresh)
                .finish(),
            KeySource::JwksUrl { url, refresh } => f
                .debug_struct("JwksUrl")
                .field("url", url)
                .field("refresh", refresh)
                .finish(),
            KeySource::Hs256Secret(_) => f.write_str("Hs256Secret(<redacted>)"),
        }
    }
}

/// The per-caller request rate (in process, per replica).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Sustained balance checks per second per caller.
    pub per_second: u32,
    /// How many may come at once.
    pub burst: u32,
    /// The most requests of one caller served at once; past it the next are refused like a
    /// caller over its rate.
    pub max_in_flight: u32,
}

/// The internal reply route.
#[derive(Clone)]
pub struct ReplyConfig {
    /// The bearer token GMS (or the trader router) presents.
    pub token: String,
    /// The prefix of recipient ids: the prefix the GMS adapter puts in front of a message id
    /// as the IE034's sender.
    pub recipient_prefix: String,
}

impl fmt::Debug for ReplyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyConfig")
            .field("token", &"<redacted>")
            .field("recipient_prefix", &self.recipient_prefix)
            .finish()
    }
}

/// One setting of [`ApiConfig`], as a refusal names it. The binary maps each to the key of
/// its configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// [`ApiConfig::base_path`].
    BasePath,
    /// [`ApiConfig::public_body_limit`].
    PublicBodyLimit,
    /// [`ApiConfig::reply_body_limit`].
    ReplyBodyLimit,
    /// [`ApiConfig::max_in_flight`].
    MaxInFlight,
    /// [`ApiConfig::request_timeout`].
    RequestTimeout,
    /// [`ApiConfig::readiness_timeout`].
    ReadinessTimeout,
    /// [`AuthConfig::algorithms`].
    AuthAlgorithms,
    /// [`AuthConfig::keys`].
    AuthKeys,
    /// [`AuthConfig::issuer`].
    AuthIssuer,
    /// [`AuthConfig::audience`].
    AuthAudience,
    /// [`AuthConfig::required_scope`].
    AuthScope,
    /// The `refresh` of a JWKS [`KeySource`].
    AuthJwksRefresh,
    /// [`AuthConfig::jwks_max_age`].
    AuthJwksMaxAge,
    /// [`AuthConfig::jwks_max_bytes`].
    AuthJwksMaxBytes,
    /// [`RateLimitConfig::per_second`].
    RatePerSecond,
    /// [`RateLimitConfig::burst`].
    RateBurst,
    /// [`RateLimitConfig::max_in_flight`].
    CallerMaxInFlight,
    /// [`ConnectionLimits::header_read_timeout`] of a listener.
    HeaderReadTimeout(Listener),
    /// [`ConnectionLimits::idle_timeout`] of a listener.
    IdleTimeout(Listener),
    /// [`ConnectionLimits::max_connections`] of a listener.
    MaxConnections(Listener),
    /// [`ConnectionLimits::max_header_bytes`] of a listener.
    MaxHeaderBytes(Listener),
    /// [`ConnectionLimits::max_headers`] of a listener.
    MaxHeaders(Listener),
    /// [`ConnectionLimits::body_timeout`] of a listener.
    BodyTimeout(Listener),
    /// [`ReplyConfig::token`].
    ReplyToken,
    /// [`ReplyConfig::recipient_prefix`].
    RecipientPrefix,
}

impl Setting {
    /// The field's path in [`ApiConfig`].
    pub fn name(self) -> &'static str {
        match self {
            Setting::BasePath => "base_path",
            Setting::PublicBodyLimit => "public_body_limit",
            Setting::ReplyBodyLimit => "reply_body_limit",
            Setting::MaxInFlight => "max_in_flight",
            Setting::RequestTimeout => "request_timeout",
            Setting::ReadinessTimeout => "readiness_timeout",
            Setting::AuthAlgorithms => "auth.algorithms",
            Setting::AuthKeys => "auth.keys",
            Setting::AuthIssuer => "auth.issuer",
            Setting::AuthAudience => "auth.audience",
            Setting::AuthScope => "auth.required_scope",
            Setting::AuthJwksRefresh => "auth.keys.refresh",
            Setting::AuthJwksMaxAge => "auth.jwks_max_age",
            Setting::AuthJwksMaxBytes => "auth.jwks_max_bytes",
            Setting::RatePerSecond => "rate_limit.per_second",
            Setting::RateBurst => "rate_limit.burst",
            Setting::CallerMaxInFlight => "rate_limit.max_in_flight",
            Setting::HeaderReadTimeout(Listener::Public) => {
                "public_connections.header_read_timeout"
            }
            Setting::HeaderReadTimeout(Listener::Internal) => {
                "internal_connections.header_read_timeout"
            }
            Setting::IdleTimeout(Listener::Public) => "public_connections.idle_timeout",
            Setting::IdleTimeout(Listener::Internal) => "internal_connections.idle_timeout",
            Setting::MaxConnections(Listener::Public) => "public_connections.max_connections",
            Setting::MaxConnections(Listener::Internal) => "internal_connections.max_connections",
            Setting::MaxHeaderBytes(Listener::Public) => "public_connections.max_header_bytes",
            Setting::MaxHeaderBytes(Listener::Internal) => "internal_connections.max_header_bytes",
            Setting::MaxHeaders(Listener::Public) => "public_connections.max_headers",
            Setting::MaxHeaders(Listener::Internal) => "internal_connections.max_headers",
            Setting::BodyTimeout(Listener::Public) => "public_connections.body_timeout",
            Setting::BodyTimeout(Listener::Internal) => "internal_connections.body_timeout",
            Setting::ReplyToken => "reply.token",
            Setting::RecipientPrefix => "reply.recipient_prefix",
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A setting the front door cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct InvalidSetting {
    /// Which setting.
    pub setting: Setting,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid(setting: Setting, reason: impl Into<String>) -> InvalidSetting {
    InvalidSetting {
        setting,
        reason: reason.into(),
    }
}

impl ApiConfig {
    /// Checks every setting, and the request timeout against the balance service's waits
    /// (`balance` is checked on its own by [`BalanceConfig::validate`]).
    pub fn validate(&self, balance: &BalanceConfig) -> Result<(), InvalidSetting> {
        self.normalised_base_path()?;
        for (setting, value) in [
            (Setting::PublicBodyLimit, self.public_body_limit),
            (Setting::ReplyBodyLimit, self.reply_body_limit),
            (Setting::MaxInFlight, self.max_in_flight),
        ] {
            if value == 0 {
                return Err(invalid(setting, "must be at least 1"));
            }
        }
        if self.request_timeout <= balance.sync_wait.max(balance.v2_wait) {
            return Err(invalid(
                Setting::RequestTimeout,
                format!(
                    "{:?} must be longer than sync_wait and v2_wait, or every wait ends in a 503",
                    self.request_timeout
                ),
            ));
        }
        if self.readiness_timeout.is_zero() {
            return Err(invalid(Setting::ReadinessTimeout, "must be above 0"));
        }
        self.public_connections.validate(Listener::Public)?;
        self.internal_connections.validate(Listener::Internal)?;
        self.auth.validate()?;
        self.rate_limit.validate()?;
        self.reply.validate()
    }

    /// The base path in the form routes are built with: `/customs/guarantees/` and
    /// `customs/guarantees` both become `/customs/guarantees`, `/` the empty root.
    pub fn normalised_base_path(&self) -> Result<String, InvalidSetting> {
        normalise_base_path(&self.base_path).ok_or_else(|| {
            invalid(
                Setting::BasePath,
                "must be a path of plain segments ([A-Za-z0-9-._~])",
            )
        })
    }
}

fn normalise_base_path(path: &str) -> Option<String> {
    let trimmed = path.trim_matches('/');
    let plain = |segment: &str| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    };
    if trimmed.is_empty() {
        Some(String::new())
    } else if trimmed.split('/').all(plain) {
        Some(format!("/{trimmed}"))
    } else {
        None
    }
}

/// The bounds of [`ConnectionLimits::max_header_bytes`]: room for a long bearer token, and
/// within what the HTTP parser buffers anyway.
pub const MAX_HEADER_BYTES: (usize, usize) = (4 * 1024, 256 * 1024);
/// The bounds of [`ConnectionLimits::max_headers`]: room for what proxies add, and a parse
/// that stays cheap.
pub const MAX_HEADERS: (usize, usize) = (16, 1000);

impl ConnectionLimits {
    /// Timeouts above 0, at least one connection, header bounds within [`MAX_HEADER_BYTES`]
    /// and [`MAX_HEADERS`].
    pub fn validate(&self, listener: Listener) -> Result<(), InvalidSetting> {
        for (setting, value) in [
            (
                Setting::HeaderReadTimeout(listener),
                self.header_read_timeout,
            ),
            (Setting::IdleTimeout(listener), self.idle_timeout),
            (Setting::BodyTimeout(listener), self.body_timeout),
        ] {
            if value.is_zero() {
                return Err(invalid(setting, "must be above 0"));
            }
        }
        if self.max_connections == 0 {
            return Err(invalid(
                Setting::MaxConnections(listener),
                "must be at least 1",
            ));
        }
        for (setting, value, (least, most)) in [
            (
                Setting::MaxHeaderBytes(listener),
                self.max_header_bytes,
                MAX_HEADER_BYTES,
            ),
            (Setting::MaxHeaders(listener), self.max_headers, MAX_HEADERS),
        ] {
            if !(least..=most).contains(&value) {
                return Err(invalid(setting, format!("must be from {least} to {most}")));
            }
        }
        Ok(())
    }
}

impl AuthConfig {
    /// Checks the claims asked for and that the algorithms suit the key source: HS256 alone
    /// with a shared secret of at least 32 bytes, and no HMAC algorithm with a JWKS (whose
    /// public keys must never serve as HMAC secrets).
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        for (setting, value) in [
            (Setting::AuthIssuer, &self.issuer),
            (Setting::AuthAudience, &self.audience),
            (Setting::AuthScope, &self.required_scope),
        ] {
            if value.is_empty() {
                return Err(invalid(setting, "must not be empty"));
            }
        }
        let algorithms = self.parsed_algorithms()?;
        match &self.keys {
            KeySource::Hs256Secret(secret) => {
                if algorithms != [Algorithm::HS256] {
                    return Err(invalid(
                        Setting::AuthAlgorithms,
                        "a shared secret is used with HS256 and nothing else",
                    ));
                }
                if secret.len() < 32 {
                    return Err(invalid(
                        Setting::AuthKeys,
                        "an HS256 secret needs at least 32 bytes",
                    ));
                }
            }
            KeySource::JwksFile { refresh, .. } | KeySource::JwksUrl { refresh, .. } => {
                if algorithms
                    .iter()
                    .any(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
                {
                    return Err(invalid(
                        Setting::AuthAlgorithms,
                        "HMAC algorithms need a shared secret, not a JWKS",
                    ));
                }
                if *refresh < Duration::from_secs(1) {
                    return Err(invalid(Setting::AuthJwksRefresh, "must be at least 1s"));
                }
                if self.jwks_max_age <= *refresh {
                    return Err(invalid(
                        Setting::AuthJwksMaxAge,
                        format!(
                            "{:?} must be longer than the refresh period ({refresh:?}), or the \
                             keys would be dropped between two refreshes",
                            self.jwks_max_age
                        ),
                    ));
                }
                if self.jwks_max_bytes < 1024 {
                    return Err(invalid(Setting::AuthJwksMaxBytes, "must be at least 1024"));
                }
            }
        }
        Ok(())
    }

    /// The algorithms as jsonwebtoken names them; at least one.
    pub(crate) fn parsed_algorithms(&self) -> Result<Vec<Algorithm>, InvalidSetting> {
        let algorithms = self
            .algorithms
            .iter()
            .map(|name| {
                name.parse::<Algorithm>().map_err(|_| {
                    invalid(
                        Setting::AuthAlgorithms,
                        format!("{name:?} is not a supported JWT algorithm"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if algorithms.is_empty() {
            return Err(invalid(
                Setting::AuthAlgorithms,
                "at least one algorithm is needed",
            ));
        }
        Ok(algorithms)
    }
}

impl RateLimitConfig {
    /// All at least 1: a zero would refuse every request.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.per_second == 0 {
            return Err(invalid(Setting::RatePerSecond, "must be at least 1"));
        }
        if self.burst == 0 {
            return Err(invalid(Setting::RateBurst, "must be at least 1"));
        }
        if self.max_in_flight == 0 {
            return Err(invalid(Setting::CallerMaxInFlight, "must be at least 1"));
        }
        Ok(())
    }
}

impl ReplyConfig {
    /// A token long enough not to be guessed, and a prefix to match recipients on.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.token.len() < 16 {
            return Err(invalid(
                Setting::ReplyToken,
                "must have at least 16 characters",
            ));
        }
        if self.recipient_prefix.is_empty() {
            return Err(invalid(Setting::RecipientPrefix, "must not be empty"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths() {
        for (given, routed) in [
            ("/customs/guarantees/", "/customs/guarantees"),
            ("/customs/guarantees", "/customs/guarantees"),
            ("api", "/api"),
            ("/", ""),
            ("", ""),
        ] {
            assert_eq!(
                normalise_base_path(given).as_deref(),
                Some(routed),
                "{given}"
            );
        }
        assert_eq!(normalise_base_path("/a//b"), None);
        assert_eq!(normalise_base_path("/a/{x}"), None);
    }
}
