//! The front door's settings: plain values, filled in by the binary from its configuration.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The base path HMRC publishes the API under.
pub const DEFAULT_BASE_PATH: &str = "/customs/guarantees";
/// The scope a token must grant.
pub const DEFAULT_SCOPE: &str = "common-transit-convention-guarantee-balance";
/// The prefix of the message ids gbal sends (MesSenMES3) and receives replies for.
pub const DEFAULT_RECIPIENT_PREFIX: &str = "MDTP-GUA-";

/// Everything the HTTP layer needs to know.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where the public API routes sit, e.g. `/customs/guarantees`; empty for the root.
    pub base_path: String,
    /// The largest public request body (default 16 KiB).
    pub public_body_limit: usize,
    /// The most balance requests (`POST` and `GET` of API v1 and v2) served at once; past
    /// it the next ones are answered 503 at once (default 1024). Probes are not counted.
    pub max_in_flight: usize,
    /// The largest reply body on the internal listener (default 1 MiB).
    pub reply_body_limit: usize,
    /// How long any request may take before it is answered 503 (default 30 s; keep it above
    /// the balance service's `v2_wait`).
    pub request_timeout: Duration,
    /// How long `/readyz` waits for the request store (default 1 s).
    pub readiness_timeout: Duration,
    /// How long the listeners keep serving after `/readyz` turned 503 on shutdown, so that
    /// load balancers stop sending first (default 0: Kubernetes' preStop sleep does it).
    pub shutdown_delay: Duration,
    /// Bearer-token validation.
    pub auth: AuthConfig,
    /// The per-caller request rate.
    pub rate_limit: RateLimitConfig,
    /// The internal reply route.
    pub reply: ReplyConfig,
}

impl ApiConfig {
    /// The defaults, with the given token validation and reply token.
    pub fn new(auth: AuthConfig, reply: ReplyConfig) -> Self {
        Self {
            base_path: DEFAULT_BASE_PATH.to_owned(),
            public_body_limit: 16 * 1024,
            max_in_flight: 1024,
            reply_body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            readiness_timeout: Duration::from_secs(1),
            shutdown_delay: Duration::ZERO,
            auth,
            rate_limit: RateLimitConfig::default(),
            reply,
        }
    }
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
    /// Clock skew allowed on `exp` and `nbf` (default 30 s).
    pub leeway: Duration,
}

impl AuthConfig {
    /// RS256 tokens from `issuer` for `audience`, verified with `keys`.
    pub fn new(keys: KeySource, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            algorithms: vec!["RS256".to_owned()],
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            required_scope: DEFAULT_SCOPE.to_owned(),
            leeway: Duration::from_secs(30),
        }
    }
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
    /// Sustained balance checks per second per caller (default 10).
    pub per_second: u32,
    /// How many may come at once (default 20).
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_second: 10,
            burst: 20,
        }
    }
}

/// The internal reply route.
#[derive(Clone)]
pub struct ReplyConfig {
    /// The bearer token GMS (or the trader router) presents.
    pub token: String,
    /// The prefix of recipient ids (default `MDTP-GUA-`).
    pub recipient_prefix: String,
}

impl ReplyConfig {
    /// Replies authenticated with `token`, for recipients with the default prefix.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            recipient_prefix: DEFAULT_RECIPIENT_PREFIX.to_owned(),
        }
    }
}

impl fmt::Debug for ReplyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyConfig")
            .field("token", &"<redacted>")
            .field("recipient_prefix", &self.recipient_prefix)
            .finish()
    }
}
