//! gbal's configuration: the built-in defaults, an optional file, then the environment.
//!
//! `config/default.toml` (embedded here) is the one source of defaults: every key has its
//! value there, and neither the section types below nor the libraries' settings types have
//! one of their own. [`Config`] turns the sections into the libraries' settings
//! ([`Config::api`], [`Config::balance`], [`Config::pg`], [`Config::embedded_simulator`],
//! [`Config::ncts_xml`], [`Config::eis_json`]).
//!
//! Each rule is written once, next to what it checks: a section's own keys in its `validate`
//! here; the front door's settings in `gbal_api::ApiConfig::validate` and the balance timings
//! in `gbal_core::BalanceConfig::validate`, whose refusals are named here by key. A bad value
//! stops start-up with a message that names the key; secrets are never printed.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use gbal_api::{
    ApiConfig, AuditHttpConfig, AuditSink, ConnectionLimits, KeySource, Listener, RateLimitConfig,
    ReplyConfig, Setting,
};
use gbal_core::{BalanceConfig, TrackerError};
use gbal_gms::{
    BearerToken, BreakerConfig, Dataset, EisJsonConfig, EmbeddedConfig, NctsXmlConfig, QueryLimit,
    RetryPolicy, UpstreamConfig, Url,
};
use gbal_tracker::{PgConfig, SqliteUrl};
use serde::{Deserialize, Serialize, Serializer};

use crate::duration::HumanDuration;

/// The built-in defaults.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// The HS256 secret used when development mode has no key source configured. It is
/// published (here), so anyone can mint tokens with it: it is accepted only in development mode
/// with both listeners on loopback addresses ([`AuthConfig::validate`]).
pub const DEVELOPMENT_SECRET: &str = "gbal-development-secret-do-not-use-in-production";

/// A secret value: its `Debug` and serialised forms never show it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no value is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "[redacted]"
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0.is_empty() { "" } else { "[redacted]" })
    }
}

/// Development conveniences allowed, or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Anything goes, with loud warnings.
    Development,
    /// A key source for tokens, a real GMS (not the simulator), PostgreSQL.
    Production,
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// development or production.
    pub mode: Mode,
    /// The public listener.
    pub public: PublicConfig,
    /// The internal listener.
    pub internal: InternalConfig,
    /// The request store.
    pub database: DatabaseConfig,
    /// Token validation.
    pub auth: AuthConfig,
    /// Balance check timings.
    pub balance: BalanceSection,
    /// Per-caller request rate.
    pub rate_limit: RateLimitSection,
    /// The expiry job.
    pub expiry: ExpiryConfig,
    /// The GMS transport.
    pub gms: GmsSection,
    /// The built-in GMS simulator.
    pub simulator: SimulatorSection,
    /// Logs.
    pub telemetry: TelemetryConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Audit events.
    pub audit: AuditSection,
}

/// `[public]`; checked by the front door ([`Config::api`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PublicConfig {
    pub listen: SocketAddr,
    pub base_path: String,
    pub body_limit: usize,
    pub request_timeout: HumanDuration,
    pub max_in_flight: usize,
    pub readiness_timeout: HumanDuration,
    pub header_read_timeout: HumanDuration,
    pub idle_timeout: HumanDuration,
    pub max_connections: usize,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub body_timeout: HumanDuration,
}

/// `[internal]`; checked by the front door ([`Config::api`]) and, for the transport that
/// needs a reply token, by [`GmsSection::validate`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InternalConfig {
    pub listen: SocketAddr,
    pub reply_token: Secret,
    pub body_limit: usize,
    pub header_read_timeout: HumanDuration,
    pub idle_timeout: HumanDuration,
    pub max_connections: usize,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub body_timeout: HumanDuration,
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: Secret,
    pub max_connections: u32,
    pub acquire_timeout: HumanDuration,
    pub statement_timeout: HumanDuration,
    pub run_migrations: bool,
}

/// `[auth]`: which key source is in force is checked here, the rest by the front door.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub hs256_secret: Secret,
    pub jwks_file: String,
    pub jwks_url: String,
    pub jwks_refresh: HumanDuration,
    pub jwks_max_age: HumanDuration,
    pub jwks_max_bytes: usize,
    pub issuer: String,
    pub audience: String,
    pub scope: String,
    pub algorithms: Vec<String>,
    pub leeway: HumanDuration,
}

/// `[balance]`; checked by [`BalanceConfig::validate`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceSection {
    pub sync_wait: HumanDuration,
    pub v2_wait: HumanDuration,
    pub ttl: HumanDuration,
    pub lock_ttl: HumanDuration,
}

/// `[rate_limit]`; checked by the front door ([`Config::api`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    pub per_second: u32,
    pub burst: u32,
    pub max_in_flight: u32,
}

/// `[expiry]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpiryConfig {
    pub interval: HumanDuration,
    pub batch: u32,
}

/// Which GMS transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// The built-in simulator.
    Simulator,
    /// IE034 over HTTP; replies on the internal listener.
    NctsXml,
    /// Phase-5 JSON calls.
    EisJson,
}

/// `[gms]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GmsSection {
    pub transport: Transport,
    pub url: String,
    pub token: Secret,
    pub connect_timeout: HumanDuration,
    pub request_timeout: HumanDuration,
    pub sender_prefix: String,
    pub recipient: String,
    pub retry: RetrySection,
    pub breaker: BreakerSection,
    pub eis: EisSection,
}

/// `[gms.retry]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySection {
    pub max_attempts: u32,
    pub max_elapsed: HumanDuration,
    pub min_delay: HumanDuration,
    pub max_delay: HumanDuration,
}

/// `[gms.breaker]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSection {
    pub failures: u32,
    pub open_for: HumanDuration,
}

/// `[gms.eis]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EisSection {
    pub gb: EisInstance,
    pub xi: EisInstance,
}

/// `[gms.eis.gb]`, `[gms.eis.xi]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EisInstance {
    pub url: String,
    pub token: Secret,
}

/// `[simulator]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorSection {
    pub dataset: String,
    pub query_limit: u32,
    pub reply_delay: HumanDuration,
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable, for a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[telemetry]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    pub log_level: String,
}

/// `[shutdown]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    pub delay: HumanDuration,
    pub grace: HumanDuration,
}

/// Where audit events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditSinkKind {
    /// JSON lines on the logging target `gbal::audit`.
    Log,
    /// POSTed in batches to `audit.http_url`.
    Http,
    /// Nowhere.
    Off,
}

/// `[audit]`; the HTTP sink's keys are checked when it is the sink ([`AuditSection::sink`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    pub sink: AuditSinkKind,
    pub http_url: String,
    pub http_token: Secret,
    pub queue: usize,
    pub batch_size: usize,
    pub flush_interval: HumanDuration,
    pub retries: u32,
    pub timeout: HumanDuration,
}

impl AuditSection {
    /// The sink these keys describe; an HTTP sink needs an http(s) URL and sizes and times
    /// it can work with.
    pub fn sink(&self) -> Result<AuditSink, ConfigError> {
        match self.sink {
            AuditSinkKind::Log => Ok(AuditSink::Log),
            AuditSinkKind::Off => Ok(AuditSink::Off),
            AuditSinkKind::Http => {
                let config = AuditHttpConfig {
                    url: check_url("audit.http_url", &self.http_url)?,
                    token: (!self.http_token.is_empty())
                        .then(|| self.http_token.expose().to_owned()),
                    queue: self.queue,
                    batch_size: self.batch_size,
                    flush_interval: self.flush_interval.0,
                    retries: self.retries,
                    timeout: self.timeout.0,
                };
                config
                    .validate()
                    .map_err(|(key, why)| bad(&format!("audit.{key}"), why))?;
                Ok(AuditSink::Http(config))
            }
        }
    }
}

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// The configuration's sections: the environment variables that may set them.
const SECTIONS: [&str; 12] = [
    "public",
    "internal",
    "database",
    "auth",
    "balance",
    "rate_limit",
    "expiry",
    "gms",
    "simulator",
    "telemetry",
    "shutdown",
    "audit",
];

fn bad(key: &str, why: impl fmt::Display) -> ConfigError {
    ConfigError(format!("{key}: {why}"))
}

fn above_zero(key: &str, value: HumanDuration) -> Result<(), ConfigError> {
    if value.0.is_zero() {
        return Err(bad(key, "must be above 0"));
    }
    Ok(())
}

impl Config {
    /// Loads defaults, then `file`, then the process environment, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let config = Self::load_unchecked(file)?;
        config.validate()?;
        Ok(config)
    }

    /// The built-in defaults alone (no file, no environment): what a client of a local gbal,
    /// such as `gbal check`, can assume.
    pub fn builtin() -> Self {
        Figment::from(Toml::string(DEFAULT_TOML))
            .extract()
            .expect("config/default.toml holds every key (a test checks it)")
    }

    /// [`Config::load`] without the cross-key checks: for `gbal migrate`, which needs only the
    /// database section to be right.
    pub fn load_unchecked(file: Option<&Path>) -> Result<Self, ConfigError> {
        // Only `GBAL_<SECTION>__...` and `GBAL_MODE` are configuration; other GBAL_ variables
        // (GBAL_CONFIG, GBAL_TOKEN, the test and benchmark knobs) belong to someone else.
        let env = Env::prefixed("GBAL_")
            .filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                key == "mode" || SECTIONS.iter().any(|s| key.starts_with(&format!("{s}__")))
            })
            .split("__");
        let database_url = std::env::var("DATABASE_URL").ok();
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "--config: no such file {}",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        if let Some(url) = database_url.filter(|u| !u.is_empty()) {
            figment = figment.merge(("database.url", url));
        }
        figment = figment.merge(env);
        let config: Config = figment.extract().map_err(|e| {
            let key = e.path.join(".");
            let place = match e.metadata.as_ref().map(|m| m.name.to_string()) {
                Some(source) => format!(" (from {source})"),
                None => String::new(),
            };
            if key.is_empty() {
                ConfigError(format!("{}{place}", e.kind))
            } else {
                ConfigError(format!("{key}: {}{place}", e.kind))
            }
        })?;
        Ok(config)
    }

    /// Checks what the types alone cannot, section by section (the key source first: in
    /// production it is the first thing missing).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.auth
            .validate(self.mode, [self.public.listen, self.internal.listen])?;
        let balance = self.balance();
        balance
            .validate()
            .map_err(|e| bad(&format!("balance.{}", e.field), e.reason))?;
        let api = self.api()?;
        api.validate(&balance)
            .map_err(|e| bad(api_key(&api, e.setting), e.reason))?;
        self.balance
            .validate_timing(self.public.request_timeout.0, self.gms.retry_budget())?;
        self.expiry.validate()?;
        self.gms.validate(self.mode, &self.internal)?;
        self.audit.sink()?;
        self.database.validate(self.mode)
    }

    /// The HS256 secret in force: the configured one, or the development secret when
    /// development mode has no key source at all.
    pub fn hs256_secret(&self) -> Option<&str> {
        self.auth.hs256_secret_in_force(self.mode)
    }

    /// What `gbal serve` warns about at start: development conveniences in force, and plain
    /// HTTP to GMS in production.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.hs256_secret() == Some(DEVELOPMENT_SECRET) {
            warnings.push(
                "DEVELOPMENT MODE: tokens are checked with the published development HS256 \
                 secret, which anyone can know; never expose this gbal"
                    .to_owned(),
            );
        }
        if self.mode == Mode::Development && self.gms.transport == Transport::Simulator {
            warnings.push(
                "DEVELOPMENT MODE: balances come from the built-in GMS simulator, not a real GMS"
                    .to_owned(),
            );
        }
        if self.mode == Mode::Production
            && self.audit.sink == AuditSinkKind::Http
            && self
                .audit
                .http_url
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
        {
            warnings.push(
                "audit.http_url is plain http in production mode: audit events and the audit \
                 token cross the network unencrypted; use https"
                    .to_owned(),
            );
        }
        if self.mode == Mode::Production {
            for (key, url) in self.gms.urls_in_use() {
                if url
                    .get(..7)
                    .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
                {
                    warnings.push(format!(
                        "{key} is plain http in production mode: IE034s, their access codes \
                         and the GMS token cross the network unencrypted; use https"
                    ));
                }
            }
        }
        warnings
    }

    /// The configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }

    /// The front door's settings: `[public]`, `[internal]`, `[auth]`, `[rate_limit]`,
    /// `shutdown.delay` and `gms.sender_prefix` (the prefix replies are addressed with).
    pub fn api(&self) -> Result<ApiConfig, ConfigError> {
        let a = &self.auth;
        let (keys, algorithms) = if !a.jwks_file.is_empty() {
            let refresh = a.jwks_refresh.0;
            let path = a.jwks_file.clone().into();
            (KeySource::JwksFile { path, refresh }, a.algorithms.clone())
        } else if !a.jwks_url.is_empty() {
            let refresh = a.jwks_refresh.0;
            let url = a.jwks_url.clone();
            (KeySource::JwksUrl { url, refresh }, a.algorithms.clone())
        } else if let Some(secret) = self.hs256_secret() {
            // A shared secret is used with HS256 alone; `auth.algorithms` is for JWKS keys.
            let secret = KeySource::Hs256Secret(secret.to_owned());
            (secret, vec!["HS256".to_owned()])
        } else {
            return Err(bad("auth.jwks_url", "no key source configured"));
        };
        let reply_token = if self.internal.reply_token.is_empty() {
            // Nothing can post replies then (the embedded simulator delivers in process): an
            // unguessable token closes the route.
            gbal_core::secret::random_token()
        } else {
            self.internal.reply_token.expose().to_owned()
        };
        Ok(ApiConfig {
            base_path: self.public.base_path.clone(),
            public_body_limit: self.public.body_limit,
            max_in_flight: self.public.max_in_flight,
            reply_body_limit: self.internal.body_limit,
            request_timeout: self.public.request_timeout.0,
            readiness_timeout: self.public.readiness_timeout.0,
            shutdown_delay: self.shutdown.delay.0,
            public_connections: self.public.connection_limits(),
            internal_connections: self.internal.connection_limits(),
            auth: gbal_api::AuthConfig {
                algorithms,
                keys,
                issuer: a.issuer.clone(),
                audience: a.audience.clone(),
                required_scope: a.scope.clone(),
                leeway: a.leeway.0,
                jwks_max_age: a.jwks_max_age.0,
                jwks_max_bytes: a.jwks_max_bytes,
            },
            rate_limit: RateLimitConfig {
                per_second: self.rate_limit.per_second,
                burst: self.rate_limit.burst,
                max_in_flight: self.rate_limit.max_in_flight,
            },
            reply: ReplyConfig {
                token: reply_token,
                recipient_prefix: self.gms.sender_prefix.clone(),
            },
        })
    }

    /// The balance service's timings: `[balance]`.
    pub fn balance(&self) -> BalanceConfig {
        let b = &self.balance;
        BalanceConfig {
            sync_wait: b.sync_wait.0,
            v2_wait: b.v2_wait.0,
            ttl: b.ttl.0,
            lock_ttl: b.lock_ttl.0,
        }
    }

    /// The PostgreSQL pool: `[database]`.
    pub fn pg(&self) -> PgConfig {
        PgConfig {
            max_connections: self.database.max_connections,
            acquire_timeout: self.database.acquire_timeout.0,
            statement_timeout: self.database.statement_timeout.0,
        }
    }

    /// The embedded simulator over `dataset`: `[simulator]` and how `[gms]` addresses
    /// messages.
    pub fn embedded_simulator(&self, dataset: Dataset) -> EmbeddedConfig {
        EmbeddedConfig {
            dataset: dataset.with_default_reply_delay(self.simulator.reply_delay.0),
            query_limit: QueryLimit::per_day(self.simulator.query_limit),
            sender_prefix: self.gms.sender_prefix.clone(),
            recipient_office: self.gms.recipient.clone(),
        }
    }

    /// The ncts-xml adapter: `[gms]`.
    pub fn ncts_xml(&self) -> Result<NctsXmlConfig, ConfigError> {
        let g = &self.gms;
        Ok(NctsXmlConfig {
            upstream: g.upstream("gms.url", &g.url, &g.token)?,
            sender_prefix: g.sender_prefix.clone(),
            recipient_office: g.recipient.clone(),
        })
    }

    /// The eis-json adapter: `[gms]` with `[gms.eis.gb]` and `[gms.eis.xi]`.
    pub fn eis_json(&self) -> Result<EisJsonConfig, ConfigError> {
        let g = &self.gms;
        Ok(EisJsonConfig {
            gb: g.upstream("gms.eis.gb.url", &g.eis.gb.url, &g.eis.gb.token)?,
            xi: g.upstream("gms.eis.xi.url", &g.eis.xi.url, &g.eis.xi.token)?,
        })
    }
}

impl PublicConfig {
    /// The public listener's connection limits.
    fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: self.header_read_timeout.0,
            idle_timeout: self.idle_timeout.0,
            max_connections: self.max_connections,
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
            body_timeout: self.body_timeout.0,
        }
    }
}

impl InternalConfig {
    /// The internal listener's connection limits.
    fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: self.header_read_timeout.0,
            idle_timeout: self.idle_timeout.0,
            max_connections: self.max_connections,
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
            body_timeout: self.body_timeout.0,
        }
    }
}

/// The key of a front-door setting. `AuthKeys` is the key of the source in force.
fn api_key(api: &ApiConfig, setting: Setting) -> &'static str {
    match setting {
        Setting::BasePath => "public.base_path",
        Setting::PublicBodyLimit => "public.body_limit",
        Setting::MaxInFlight => "public.max_in_flight",
        Setting::RequestTimeout => "public.request_timeout",
        Setting::ReadinessTimeout => "public.readiness_timeout",
        Setting::ReplyBodyLimit => "internal.body_limit",
        Setting::ReplyToken => "internal.reply_token",
        Setting::AuthAlgorithms => "auth.algorithms",
        Setting::AuthKeys => match api.auth.keys {
            KeySource::Hs256Secret(_) => "auth.hs256_secret",
            KeySource::JwksFile { .. } => "auth.jwks_file",
            KeySource::JwksUrl { .. } => "auth.jwks_url",
        },
        Setting::AuthIssuer => "auth.issuer",
        Setting::AuthAudience => "auth.audience",
        Setting::AuthScope => "auth.scope",
        Setting::AuthJwksRefresh => "auth.jwks_refresh",
        Setting::AuthJwksMaxAge => "auth.jwks_max_age",
        Setting::AuthJwksMaxBytes => "auth.jwks_max_bytes",
        Setting::RatePerSecond => "rate_limit.per_second",
        Setting::RateBurst => "rate_limit.burst",
        Setting::CallerMaxInFlight => "rate_limit.max_in_flight",
        Setting::HeaderReadTimeout(Listener::Public) => "public.header_read_timeout",
        Setting::HeaderReadTimeout(Listener::Internal) => "internal.header_read_timeout",
        Setting::IdleTimeout(Listener::Public) => "public.idle_timeout",
        Setting::IdleTimeout(Listener::Internal) => "internal.idle_timeout",
        Setting::MaxConnections(Listener::Public) => "public.max_connections",
        Setting::MaxConnections(Listener::Internal) => "internal.max_connections",
        Setting::MaxHeaderBytes(Listener::Public) => "public.max_header_bytes",
        Setting::MaxHeaderBytes(Listener::Internal) => "internal.max_header_bytes",
        Setting::MaxHeaders(Listener::Public) => "public.max_headers",
        Setting::MaxHeaders(Listener::Internal) => "internal.max_headers",
        Setting::BodyTimeout(Listener::Public) => "public.body_timeout",
        Setting::BodyTimeout(Listener::Internal) => "internal.body_timeout",
        Setting::RecipientPrefix => "gms.sender_prefix",
    }
}

/// The longest clock skew `auth.leeway` may allow: more would accept tokens long expired.
const MAX_LEEWAY: Duration = Duration::from_secs(5 * 60);
/// The bounds of `auth.jwks_refresh`: a zero period cannot be scheduled, a shorter one
/// hammers the identity provider, a longer one leaves rotated keys unknown for too long.
const JWKS_REFRESH: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(86_400));

impl AuthConfig {
    /// At most one key source; production mode needs one, and an https JWKS URL. The
    /// published development secret, set or implied, only in development mode with both
    /// `listen` addresses on loopback. A JWKS refresh period that can be scheduled, a leeway
    /// of at most 5 minutes.
    pub fn validate(&self, mode: Mode, listen: [SocketAddr; 2]) -> Result<(), ConfigError> {
        let sources = [
            !self.hs256_secret.is_empty(),
            !self.jwks_file.is_empty(),
            !self.jwks_url.is_empty(),
        ];
        match sources.iter().filter(|s| **s).count() {
            0 if mode == Mode::Production => {
                return Err(bad(
                    "auth.jwks_url",
                    "production mode needs a key source (auth.jwks_url, auth.jwks_file or auth.hs256_secret)",
                ));
            }
            0 | 1 => {}
            _ => {
                return Err(bad(
                    "auth.hs256_secret / auth.jwks_file / auth.jwks_url",
                    "set only one key source",
                ));
            }
        }
        if self.hs256_secret_in_force(mode) == Some(DEVELOPMENT_SECRET) {
            let refused = if mode == Mode::Development {
                let exposed = listen.iter().find(|a| !a.ip().is_loopback());
                exposed.map(|addr| format!("a listener on {addr}"))
            } else {
                Some("production mode".to_owned())
            };
            if let Some(why) = refused {
                return Err(bad(
                    "auth.hs256_secret",
                    format!(
                        "the published development secret is accepted only in development mode \
                         with both listeners on loopback addresses, not with {why}: anyone could \
                         mint tokens; set auth.hs256_secret to a secret of your own (32 bytes or \
                         more), or auth.jwks_url"
                    ),
                ));
            }
        }
        if !self.jwks_url.is_empty() {
            let url = check_url("auth.jwks_url", &self.jwks_url)?;
            if mode == Mode::Production && url.scheme() != "https" {
                return Err(bad(
                    "auth.jwks_url",
                    "production mode needs an https URL: keys fetched over plain http can be \
                     replaced on the way",
                ));
            }
        }
        let (shortest, longest) = JWKS_REFRESH;
        if !(shortest..=longest).contains(&self.jwks_refresh.0) {
            return Err(bad(
                "auth.jwks_refresh",
                format!(
                    "must be from {} to {}",
                    HumanDuration(shortest),
                    HumanDuration(longest)
                ),
            ));
        }
        if self.leeway.0 > MAX_LEEWAY {
            return Err(bad(
                "auth.leeway",
                format!("at most {}", HumanDuration(MAX_LEEWAY)),
            ));
        }
        Ok(())
    }

    /// The HS256 secret tokens are checked with: the configured one, or the development secret
    /// when development mode has no key source at all.
    fn hs256_secret_in_force(&self, mode: Mode) -> Option<&str> {
        if !self.hs256_secret.is_empty() {
            return Some(self.hs256_secret.expose());
        }
        let no_source = self.jwks_file.is_empty() && self.jwks_url.is_empty();
        (mode == Mode::Development && no_source).then_some(DEVELOPMENT_SECRET)
    }
}

/// The request store `database.url` names.
#[derive(Debug, Clone)]
pub enum Database {
    /// No URL: SQLite in [`default_sqlite_path`], for one process.
    DefaultSqlite,
    /// A `sqlite:` URL, read as sqlx reads it: for one process.
    Sqlite(Box<SqliteUrl>),
    /// A `postgres://` or `postgresql://` URL: the database every replica shares.
    Postgres,
}

impl DatabaseConfig {
    /// A pool of at least one connection whose waits end, a URL gbal can read; PostgreSQL in
    /// production.
    pub fn validate(&self, mode: Mode) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return Err(bad("database.max_connections", "must be at least 1"));
        }
        above_zero("database.acquire_timeout", self.acquire_timeout)?;
        // Zero is PostgreSQL's "no limit": a stuck statement would hold its connection.
        above_zero("database.statement_timeout", self.statement_timeout)?;
        let store = self.store()?;
        if mode == Mode::Production && !matches!(store, Database::Postgres) {
            return Err(bad(
                "database.url",
                "production mode needs PostgreSQL (set DATABASE_URL)",
            ));
        }
        Ok(())
    }

    /// The store the URL names, by its scheme. The URL may hold a password, so an error
    /// never shows it (only a scheme followed by `//`).
    pub fn store(&self) -> Result<Database, ConfigError> {
        let url = self.url.expose();
        if url.is_empty() {
            return Ok(Database::DefaultSqlite);
        }
        const KNOWN: &str = "use postgres://, postgresql:// or sqlite:";
        match url.split_once(':') {
            Some(("postgres" | "postgresql", rest)) if rest.starts_with("//") => {
                Ok(Database::Postgres)
            }
            Some(("sqlite", _)) => SqliteUrl::parse(url)
                .map(|u| Database::Sqlite(Box::new(u)))
                .map_err(|e| {
                    let why = match e {
                        TrackerError::Other(why) => why,
                        other => other.to_string(),
                    };
                    bad("database.url", why)
                }),
            Some((scheme, rest))
                if rest.starts_with("//")
                    && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                Err(bad(
                    "database.url",
                    format!("the scheme {scheme}:// is not one gbal knows ({KNOWN})"),
                ))
            }
            _ => Err(bad(
                "database.url",
                format!("not a database URL gbal knows ({KNOWN})"),
            )),
        }
    }
}

/// How long a request must outlive its own check at least: a v1 caller answered 202 reads it
/// back (and its reply completes it) after the check ended.
const TTL_PAST_REQUEST: Duration = Duration::from_secs(60);

impl BalanceSection {
    /// The timings fit in a request: GMS's retries and the longer of the waits end before
    /// `public.request_timeout` (less the margin a check keeps for its answer,
    /// [`gbal_core::deadline_margin`]), and a request lives at least a minute past its
    /// request's timeout. `retry_budget`: how long the submission may spend retrying.
    pub fn validate_timing(
        &self,
        request_timeout: Duration,
        retry_budget: Duration,
    ) -> Result<(), ConfigError> {
        let wait = self.sync_wait.0.max(self.v2_wait.0);
        let margin = gbal_core::deadline_margin(request_timeout);
        if retry_budget + wait + margin > request_timeout {
            return Err(bad(
                "public.request_timeout",
                format!(
                    "{} cannot hold a check: GMS's retries (gms.retry.max_elapsed, {}) and the \
                     longer wait (balance.sync_wait or balance.v2_wait, {}) need {}, and the \
                     answer {} more; raise it or shorten those",
                    HumanDuration(request_timeout),
                    HumanDuration(retry_budget),
                    HumanDuration(wait),
                    HumanDuration(retry_budget + wait),
                    HumanDuration(margin),
                ),
            ));
        }
        if self.ttl.0 < request_timeout + TTL_PAST_REQUEST {
            return Err(bad(
                "balance.ttl",
                format!(
                    "{} must be at least public.request_timeout ({}) plus {}: a request answered \
                     202 must still be readable, and completable by its reply, afterwards",
                    self.ttl,
                    HumanDuration(request_timeout),
                    HumanDuration(TTL_PAST_REQUEST),
                ),
            ));
        }
        Ok(())
    }
}

impl ExpiryConfig {
    /// A job that runs and deletes something each time.
    pub fn validate(&self) -> Result<(), ConfigError> {
        above_zero("expiry.interval", self.interval)?;
        if self.batch == 0 {
            return Err(bad("expiry.batch", "must be at least 1"));
        }
        Ok(())
    }
}

impl GmsSection {
    /// Message addressing that fits NCTS's fields, retries and a breaker that can act, and
    /// what the transport needs (including the reply token replies arrive with); no simulator
    /// in production.
    pub fn validate(&self, mode: Mode, internal: &InternalConfig) -> Result<(), ConfigError> {
        if self.sender_prefix.chars().count() > 11
            || self
                .sender_prefix
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad(
                "gms.sender_prefix",
                "at most 11 characters without spaces (MesSenMES3 holds 35)",
            ));
        }
        if self.recipient.is_empty() || self.recipient.chars().count() > 35 {
            return Err(bad("gms.recipient", "1 to 35 characters"));
        }
        if self.retry.max_attempts == 0 {
            return Err(bad("gms.retry.max_attempts", "must be at least 1"));
        }
        if self.retry.max_delay < self.retry.min_delay {
            return Err(bad(
                "gms.retry.max_delay",
                "must not be shorter than gms.retry.min_delay",
            ));
        }
        if self.breaker.failures == 0 {
            return Err(bad("gms.breaker.failures", "must be at least 1"));
        }
        match self.transport {
            Transport::Simulator if mode == Mode::Production => Err(bad(
                "gms.transport",
                "production mode cannot use the simulator",
            )),
            Transport::Simulator => Ok(()),
            Transport::NctsXml => {
                check_url("gms.url", &self.url)?;
                if internal.reply_token.is_empty() {
                    return Err(bad(
                        "internal.reply_token",
                        "the ncts-xml transport needs the token GMS replies carry",
                    ));
                }
                Ok(())
            }
            Transport::EisJson => {
                check_url("gms.eis.gb.url", &self.eis.gb.url)?;
                check_url("gms.eis.xi.url", &self.eis.xi.url)?;
                Ok(())
            }
        }
    }

    /// How long a submission may spend retrying before its wait begins: the retry budget of
    /// the HTTP transports, nothing for the simulator.
    fn retry_budget(&self) -> Duration {
        match self.transport {
            Transport::Simulator => Duration::ZERO,
            Transport::NctsXml | Transport::EisJson => self.retry.max_elapsed.0,
        }
    }

    /// The GMS URLs the transport calls, by key.
    fn urls_in_use(&self) -> Vec<(&'static str, &str)> {
        match self.transport {
            Transport::Simulator => Vec::new(),
            Transport::NctsXml => vec![("gms.url", &self.url)],
            Transport::EisJson => vec![
                ("gms.eis.gb.url", &self.eis.gb.url),
                ("gms.eis.xi.url", &self.eis.xi.url),
            ],
        }
    }

    /// One GMS endpoint at `url` (the value of `key`), with this section's timeouts, retries
    /// and breaker.
    fn upstream(
        &self,
        key: &str,
        url: &str,
        token: &Secret,
    ) -> Result<UpstreamConfig, ConfigError> {
        Ok(UpstreamConfig {
            url: check_url(key, url)?,
            token: BearerToken::new(token.expose()),
            connect_timeout: self.connect_timeout.0,
            request_timeout: self.request_timeout.0,
            retry: RetryPolicy {
                max_retries: self.retry.max_attempts.saturating_sub(1) as usize,
                min_delay: self.retry.min_delay.0,
                max_delay: self.retry.max_delay.0,
                total: self.retry.max_elapsed.0,
            },
            breaker: BreakerConfig {
                failure_threshold: self.breaker.failures,
                cool_down: self.breaker.open_for.0,
            },
        })
    }
}

fn check_url(key: &str, url: &str) -> Result<Url, ConfigError> {
    if url.is_empty() {
        return Err(bad(key, "must be set for this transport"));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(bad(key, format!("'{url}' is not an http(s) URL")));
    }
    Url::parse(url).map_err(|e| bad(key, format!("'{url}' is not a URL: {e}")))
}

/// Where SQLite keeps its file when no database URL is configured.
pub fn default_sqlite_path() -> PathBuf {
    PathBuf::from("data").join("gbal.sqlite")
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Jail;
    use std::time::Duration;

    /// Loads with `file` (if any) and the jail's environment.
    fn load(jail: &mut Jail, file: Option<&str>) -> Result<Config, ConfigError> {
        let path = file.map(|text| {
            jail.create_file("gbal.toml", text).expect("write config");
            PathBuf::from("gbal.toml")
        });
        Config::load(path.as_deref())
    }

    #[allow(clippy::result_large_err)] // figment's own error type, in tests only
    fn jailed(f: impl FnOnce(&mut Jail)) {
        Jail::expect_with(|jail| {
            // Start from an empty environment: the test command exports DATABASE_URL.
            jail.clear_env();
            f(jail);
            Ok(())
        });
    }

    #[test]
    fn defaults_load_and_are_development() {
        jailed(|jail| {
            let c = load(jail, None).unwrap();
            assert_eq!(c.mode, Mode::Development);
            assert_eq!(c.balance.sync_wait.0, Duration::from_secs(15));
            assert_eq!(c.public.base_path, "/customs/guarantees");
            assert_eq!(c.gms.transport, Transport::Simulator);
            assert_eq!(c.hs256_secret(), Some(DEVELOPMENT_SECRET));
            assert_eq!(c.simulator.query_limit, 1000);
        });
    }

    #[test]
    fn the_builtin_defaults_alone_are_valid_and_fill_every_library_setting() {
        let c = Config::builtin();
        c.validate().unwrap();
        let api = c.api().unwrap();
        assert_eq!(api.base_path, "/customs/guarantees");
        assert_eq!(api.public_body_limit, 16 * 1024);
        assert_eq!(api.auth.algorithms, ["HS256"], "the development secret");
        assert_eq!(api.reply.recipient_prefix, "MDTP-GUA-");
        assert!(
            api.reply.token.len() >= 16,
            "a random token closes the route"
        );
        assert_eq!(c.balance().lock_ttl, Duration::from_secs(60));
        assert_eq!(c.pg().statement_timeout, Duration::from_secs(5));
        let embedded = c.embedded_simulator(Dataset::sandbox());
        assert_eq!(embedded.query_limit.per_tin, 1000);
        assert_eq!(embedded.recipient_office, "NTA.GB");
    }

    #[test]
    fn gms_settings_follow_the_sections() {
        jailed(|jail| {
            jail.set_env("GBAL_INTERNAL__REPLY_TOKEN", "a-reply-token-of-sixteen+");
            let c = load(
                jail,
                Some("[gms]\ntransport = \"ncts-xml\"\nurl = \"https://gms.example/m\"\n[gms.retry]\nmax_attempts = 1\n"),
            )
            .unwrap();
            let ncts = c.ncts_xml().unwrap();
            assert_eq!(ncts.upstream.url.as_str(), "https://gms.example/m");
            assert_eq!(ncts.upstream.retry.max_retries, 0);
            assert_eq!(ncts.upstream.retry.min_delay, Duration::from_millis(100));
            assert_eq!(ncts.upstream.retry.max_delay, Duration::from_secs(2));
            assert_eq!(ncts.upstream.retry.total, Duration::from_secs(5));
            assert_eq!(ncts.upstream.breaker.cool_down, Duration::from_secs(30));
            assert_eq!(ncts.sender_prefix, "MDTP-GUA-");
        });
    }

    #[test]
    fn file_then_environment() {
        jailed(|jail| {
            jail.set_env("GBAL_BALANCE__SYNC_WAIT", "7s");
            jail.set_env("GBAL_INTERNAL__REPLY_TOKEN", "a-reply-token-of-sixteen+");
            let c = load(
                jail,
                Some("[balance]\nsync_wait = \"5s\"\nv2_wait = \"6s\"\n[gms]\ntransport = \"ncts-xml\"\nurl = \"http://gms:9000/movements/messages\"\n"),
            )
            .unwrap();
            assert_eq!(c.balance.sync_wait.0, Duration::from_secs(7));
            assert_eq!(c.balance.v2_wait.0, Duration::from_secs(6));
            assert_eq!(c.gms.transport, Transport::NctsXml);
        });
    }

    #[test]
    fn errors_name_the_key() {
        let cases: [(&str, &str, &str); 6] = [
            ("GBAL_BALANCE__SYNC_WAIT", "soon", "balance.sync_wait"),
            ("GBAL_GMS__TRANSPORT", "carrier-pigeon", "gms.transport"),
            ("GBAL_GMS__TRANSPORT", "ncts-xml", "gms.url"),
            (
                "GBAL_INTERNAL__REPLY_TOKEN",
                "short",
                "internal.reply_token",
            ),
            ("GBAL_RATE_LIMIT__BURST", "0", "rate_limit"),
            ("GBAL_PUBLIC__MAX_IN_FLIGHT", "0", "public.max_in_flight"),
        ];
        for (var, value, key) in cases {
            jailed(|jail| {
                jail.set_env(var, value);
                let e = load(jail, None).unwrap_err();
                assert!(e.0.contains(key), "{var}={value}: {e}");
            });
        }
        jailed(|jail| {
            let e = load(jail, Some("[balance]\nsync_wiat = \"5s\"\n")).unwrap_err();
            assert!(e.0.contains("sync_wiat"), "{e}");
        });
    }

    #[test]
    fn each_section_names_its_own_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("GBAL_PUBLIC__BASE_PATH", "/a/{x}", "public.base_path"),
            ("GBAL_PUBLIC__BODY_LIMIT", "0", "public.body_limit"),
            (
                "GBAL_PUBLIC__REQUEST_TIMEOUT",
                "20s",
                "public.request_timeout",
            ),
            (
                "GBAL_PUBLIC__READINESS_TIMEOUT",
                "0s",
                "public.readiness_timeout",
            ),
            ("GBAL_INTERNAL__BODY_LIMIT", "0", "internal.body_limit"),
            (
                "GBAL_DATABASE__MAX_CONNECTIONS",
                "0",
                "database.max_connections",
            ),
            (
                "GBAL_DATABASE__STATEMENT_TIMEOUT",
                "0s",
                "database.statement_timeout",
            ),
            ("GBAL_AUTH__ISSUER", "", "auth.issuer"),
            ("GBAL_AUTH__SCOPE", "", "auth.scope"),
            ("GBAL_BALANCE__TTL", "20s", "balance.ttl"),
            ("GBAL_BALANCE__LOCK_TTL", "0s", "balance.lock_ttl"),
            ("GBAL_RATE_LIMIT__PER_SECOND", "0", "rate_limit.per_second"),
            ("GBAL_EXPIRY__BATCH", "0", "expiry.batch"),
            ("GBAL_EXPIRY__INTERVAL", "0s", "expiry.interval"),
            ("GBAL_GMS__SENDER_PREFIX", "", "gms.sender_prefix"),
            ("GBAL_GMS__SENDER_PREFIX", "MDTP GUA", "gms.sender_prefix"),
            ("GBAL_GMS__RECIPIENT", "", "gms.recipient"),
            (
                "GBAL_GMS__RETRY__MAX_ATTEMPTS",
                "0",
                "gms.retry.max_attempts",
            ),
            ("GBAL_GMS__RETRY__MAX_DELAY", "50ms", "gms.retry.max_delay"),
            ("GBAL_GMS__BREAKER__FAILURES", "0", "gms.breaker.failures"),
        ];
        for (var, value, key) in cases {
            jailed(|jail| {
                jail.set_env(var, value);
                let e = load(jail, None).unwrap_err();
                assert!(e.0.contains(&format!("{key}:")), "{var}={value}: {e}");
            });
        }
        jailed(|jail| {
            jail.set_env("GBAL_AUTH__JWKS_FILE", "keys.json");
            jail.set_env("GBAL_AUTH__ALGORITHMS", "[\"HS256\"]");
            let e = load(jail, None).unwrap_err();
            assert!(e.0.contains("auth.algorithms:"), "{e}");
        });
        jailed(|jail| {
            jail.set_env("GBAL_GMS__TRANSPORT", "eis-json");
            jail.set_env("GBAL_GMS__EIS__GB__URL", "https://gb.example");
            jail.set_env("GBAL_GMS__EIS__XI__URL", "http://");
            let e = load(jail, None).unwrap_err();
            assert!(e.0.contains("gms.eis.xi.url:"), "{e}");
        });
    }

    #[test]
    fn timings_must_fit_a_request_and_requests_outlive_it() {
        let refused = |env: &[(&str, &str)], key: &str| {
            jailed(|jail| {
                for (var, value) in env {
                    jail.set_env(var, value);
                }
                let e = load(jail, None).unwrap_err();
                assert!(e.0.starts_with(&format!("{key}:")), "{env:?}: {e}");
            });
        };
        let accepted = |env: &[(&str, &str)]| {
            jailed(|jail| {
                for (var, value) in env {
                    jail.set_env(var, value);
                }
                load(jail, None).unwrap_or_else(|e| panic!("{env:?}: {e}"));
            });
        };
        let ncts_xml = [
            ("GBAL_GMS__TRANSPORT", "ncts-xml"),
            ("GBAL_GMS__URL", "http://gms:9000/movements/messages"),
            ("GBAL_INTERNAL__REPLY_TOKEN", "reply-token-0123456789"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut env = ncts_xml.to_vec();
            env.extend_from_slice(extra);
            env
        };
        // The defaults fit: 5 s of retries + the 20 s v2 wait + a second for the answer, in 30 s.
        accepted(&with(&[]));
        // Retries and a wait that cannot both end before the request's deadline.
        refused(
            &with(&[("GBAL_GMS__RETRY__MAX_ELAPSED", "10s")]),
            "public.request_timeout",
        );
        refused(
            &with(&[("GBAL_BALANCE__SYNC_WAIT", "25s")]),
            "public.request_timeout",
        );
        refused(
            &with(&[("GBAL_PUBLIC__REQUEST_TIMEOUT", "25s")]),
            "public.request_timeout",
        );
        // The simulator does not retry: only the wait counts.
        accepted(&[("GBAL_BALANCE__V2_WAIT", "28s")]);
        refused(
            &[("GBAL_BALANCE__V2_WAIT", "29500ms")],
            "public.request_timeout",
        );
        // A request outlives its request by a minute at least.
        accepted(&[("GBAL_BALANCE__TTL", "90s")]);
        refused(&[("GBAL_BALANCE__TTL", "89s")], "balance.ttl");
        refused(
            &[
                ("GBAL_PUBLIC__REQUEST_TIMEOUT", "2m"),
                ("GBAL_BALANCE__TTL", "2m30s"),
            ],
            "balance.ttl",
        );
    }

    #[test]
    fn production_refuses_development_conveniences() {
        jailed(|jail| {
            let e = load(jail, Some("mode = \"production\"\n")).unwrap_err();
            assert!(e.0.contains("auth."), "{e}");
        });
        let base = "mode = \"production\"\n[auth]\njwks_url = \"https://auth/jwks\"\n[gms]\ntransport = \"ncts-xml\"\nurl = \"http://gms/m\"\n";
        jailed(|jail| {
            jail.set_env("DATABASE_URL", "postgres://db/gbal");
            let e = load(jail, Some(base)).unwrap_err();
            assert!(e.0.contains("internal.reply_token"), "{e}");
        });
        jailed(|jail| {
            jail.set_env("GBAL_INTERNAL__REPLY_TOKEN", "r3ply-t0ken-0123456789");
            let e = load(jail, Some(base)).unwrap_err();
            assert!(e.0.contains("database.url"), "{e}");
        });
        jailed(|jail| {
            jail.set_env("DATABASE_URL", "postgres://db/gbal");
            jail.set_env("GBAL_INTERNAL__REPLY_TOKEN", "r3ply-t0ken-0123456789");
            let c = load(jail, Some(base)).unwrap();
            assert_eq!(c.hs256_secret(), None);
            assert_eq!(c.database.url.expose(), "postgres://db/gbal");
        });
    }

    #[test]
    fn database_urls_name_their_store_by_scheme() {
        let store = |url: &str| {
            let mut jailed_result = None;
            jailed(|jail| {
                jail.set_env("GBAL_DATABASE__URL", url);
                jailed_result = Some(load(jail, None).map(|c| c.database.store().unwrap()));
            });
            jailed_result.unwrap()
        };
        assert!(matches!(store(""), Ok(Database::DefaultSqlite)));
        for url in ["postgres://db/gbal", "postgresql://gbal:pw@db:5432/gbal"] {
            assert!(matches!(store(url), Ok(Database::Postgres)), "{url}");
        }
        let path = |url: &str| match store(url) {
            Ok(Database::Sqlite(sqlite)) => sqlite.path().map(Path::to_path_buf),
            other => panic!("{url}: {other:?}"),
        };
        assert_eq!(path("sqlite://x.db"), Some(PathBuf::from("x.db")));
        assert_eq!(path("sqlite:data/x.db"), Some(PathBuf::from("data/x.db")));
        assert_eq!(
            path("sqlite:///var/lib/gbal/x.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/gbal/x.db"))
        );
        assert_eq!(path("sqlite::memory:"), None);

        // Refused by name, never showing the URL (it may hold a password).
        for (url, says) in [
            (
                "mysql://gbal:s3cret@db/gbal",
                "the scheme mysql:// is not one gbal knows",
            ),
            ("gbal:s3cret@db/gbal", "not a database URL gbal knows"),
            ("./data/gbal.sqlite", "not a database URL gbal knows"),
            ("sqlite://x.db?mode=s3cret", "not a SQLite URL"),
            ("sqlite://x.db?s3cret=1", "not a SQLite URL"),
        ] {
            let e = store(url).unwrap_err();
            assert!(
                e.0.starts_with("database.url: ") && e.0.contains(says),
                "{url}: {e}"
            );
            assert!(
                !e.0.contains("gbal:s3cret") && !e.0.contains("db/gbal"),
                "{e}"
            );
        }

        // Production takes PostgreSQL only.
        let production = "mode = \"production\"\n[auth]\njwks_url = \"https://auth/jwks\"\n\
            [internal]\nreply_token = \"r3ply-t0ken-0123456789\"\n\
            [gms]\ntransport = \"ncts-xml\"\nurl = \"http://gms/m\"\n";
        jailed(|jail| {
            jail.set_env("DATABASE_URL", "sqlite://gbal.sqlite");
            let e = load(jail, Some(production)).unwrap_err();
            assert!(
                e.0.contains("database.url") && e.0.contains("PostgreSQL"),
                "{e}"
            );
        });
    }

    #[test]
    fn secrets_are_redacted() {
        jailed(|jail| {
            jail.set_env(
                "GBAL_AUTH__HS256_SECRET",
                "0123456789abcdef0123456789abcdef-topsecret",
            );
            jail.set_env("GBAL_INTERNAL__REPLY_TOKEN", "reply-secret-0123456789");
            jail.set_env("GBAL_AUDIT__HTTP_TOKEN", "audit-secret-0123456789");
            let c = load(jail, None).unwrap();
            let printed = c.to_redacted_toml();
            assert!(
                !printed.contains("topsecret")
                    && !printed.contains("reply-secret")
                    && !printed.contains("audit-secret"),
                "{printed}"
            );
            assert!(printed.contains("[redacted]"));
            assert!(!format!("{c:?}").contains("topsecret"));
        });
    }

    #[test]
    fn example_configurations_load() {
        jailed(|jail| {
            // Its listeners bind 0.0.0.0: the secret must come from the environment.
            let sandbox = include_str!("../../../config/sandbox.toml");
            let e = load(jail, Some(sandbox)).unwrap_err();
            assert!(e.0.starts_with("auth.hs256_secret: "), "{e}");
            jail.set_env("GBAL_AUTH__HS256_SECRET", OWN_SECRET);
            let c = load(jail, Some(sandbox)).unwrap();
            assert_eq!(c.gms.transport, Transport::Simulator);
            assert_eq!(c.hs256_secret(), Some(OWN_SECRET));
        });
        jailed(|jail| {
            jail.set_env("DATABASE_URL", "postgres://gbal@db/gbal");
            jail.set_env("GBAL_INTERNAL__REPLY_TOKEN", "0123456789abcdef-reply");
            let c = load(jail, Some(include_str!("../../../config/production.toml"))).unwrap();
            assert_eq!(c.mode, Mode::Production);
            assert_eq!(c.gms.transport, Transport::NctsXml);
            assert_eq!(c.hs256_secret(), None);
        });
        jailed(|jail| {
            let base = include_str!("../../../deploy/base/gbal.toml");
            jail.set_env("GBAL_INTERNAL__REPLY_TOKEN", "0123456789abcdef-reply");
            jail.set_env("DATABASE_URL", "postgres://gbal@db/gbal");
            let c = load(jail, Some(base)).unwrap();
            assert_eq!(c.mode, Mode::Production);
            // The sandbox overlay, with the listeners and the Secret its Deployment gives it.
            let sandbox = include_str!("../../../deploy/overlays/sandbox/gbal.toml");
            jail.set_env("GBAL_PUBLIC__LISTEN", "0.0.0.0:8080");
            jail.set_env("GBAL_INTERNAL__LISTEN", "0.0.0.0:8081");
            let e = load(jail, Some(sandbox)).unwrap_err();
            assert!(e.0.starts_with("auth.hs256_secret: "), "{e}");
            jail.set_env("GBAL_AUTH__HS256_SECRET", OWN_SECRET);
            let c = load(jail, Some(sandbox)).unwrap();
            assert_eq!(c.mode, Mode::Development);
            assert_eq!(c.hs256_secret(), Some(OWN_SECRET));
        });
        jailed(|jail| {
            // The migrate Job has only DATABASE_URL: migrate must not need the other secrets.
            jail.set_env("DATABASE_URL", "postgres://gbal@db/gbal");
            let base = include_str!("../../../deploy/base/gbal.toml");
            assert!(load(jail, Some(base)).is_err());
            jail.create_file("gbal.toml", base).unwrap();
            assert!(Config::load_unchecked(Some(Path::new("gbal.toml"))).is_ok());
        });
    }

    #[test]
    fn every_key_is_documented_in_operations_md() {
        fn keys(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
            for (k, v) in table {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match v {
                    toml::Value::Table(t) => keys(&key, t, out),
                    _ => out.push(key),
                }
            }
        }
        let table: toml::Table = DEFAULT_TOML.parse().unwrap();
        let mut all = Vec::new();
        keys("", &table, &mut all);
        assert!(all.len() > 40, "{all:?}");
        let doc = include_str!("../../../docs/operations.md");
        let missing: Vec<&String> = all
            .iter()
            .filter(|k| !doc.contains(&format!("`{k}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "keys of config/default.toml missing from docs/operations.md: {missing:?}"
        );
        // Each key's row gives its default exactly as config/default.toml has it.
        let documented = |key: &str| -> Option<String> {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{key}` |")))?;
            row.split('|').nth(3).map(|cell| cell.trim().to_owned())
        };
        let written = |v: &toml::Value| match v {
            toml::Value::String(s) if s.is_empty() => "empty".to_owned(),
            toml::Value::String(s) => format!("`{s}`"),
            toml::Value::Array(items) => {
                let items: Vec<String> = items.iter().map(|i| i.to_string()).collect();
                format!("`[{}]`", items.join(", "))
            }
            other => format!("`{other}`"),
        };
        for key in &all {
            let value = key
                .split('.')
                .try_fold(toml::Value::Table(table.clone()), |v, part| {
                    v.get(part).cloned()
                })
                .unwrap();
            assert_eq!(
                documented(key),
                Some(written(&value)),
                "the default of {key} in docs/operations.md"
            );
        }
    }

    #[test]
    fn other_gbal_variables_are_not_configuration() {
        jailed(|jail| {
            for (k, v) in [
                ("GBAL_CONFIG", "x.toml"),
                ("GBAL_TOKEN", "t"),
                ("GBAL_PG_BIN", "/usr/bin"),
                ("GBAL_SIM_REPLY_TOKEN", "r"),
            ] {
                jail.set_env(k, v);
            }
            assert!(load(jail, None).is_ok());
            // A misspelt key inside a known section is still refused.
            jail.set_env("GBAL_BALANCE__SYNC_WIAT", "5s");
            let e = load(jail, None).unwrap_err();
            assert!(e.0.contains("sync_wiat"), "{e}");
        });
    }

    #[test]
    fn short_hs256_secret_refused() {
        jailed(|jail| {
            jail.set_env("GBAL_AUTH__HS256_SECRET", "short");
            let e = load(jail, None).unwrap_err();
            assert!(e.0.contains("auth.hs256_secret"), "{e}");
        });
    }

    /// A secret of the operator's own (not the published one).
    const OWN_SECRET: &str = "an-operators-own-secret-of-32-bytes-or-more";

    #[test]
    fn the_development_secret_only_in_development_on_loopback() {
        // Implied (no key source) or set explicitly: the same rule.
        for explicit in [false, true] {
            let set = |jail: &mut Jail| {
                if explicit {
                    jail.set_env("GBAL_AUTH__HS256_SECRET", DEVELOPMENT_SECRET);
                }
            };
            for (public, internal) in [
                ("127.0.0.1:8080", "127.0.0.1:8081"),
                ("[::1]:8080", "127.0.0.2:8081"),
            ] {
                jailed(|jail| {
                    set(jail);
                    jail.set_env("GBAL_PUBLIC__LISTEN", public);
                    jail.set_env("GBAL_INTERNAL__LISTEN", internal);
                    let c = load(jail, None).unwrap();
                    assert_eq!(c.hs256_secret(), Some(DEVELOPMENT_SECRET));
                });
            }
            for (public, internal) in [
                ("0.0.0.0:8080", "127.0.0.1:8081"),
                ("127.0.0.1:8080", "0.0.0.0:8081"),
                ("[::]:8080", "[::1]:8081"),
                ("10.1.2.3:8080", "127.0.0.1:8081"),
            ] {
                jailed(|jail| {
                    set(jail);
                    jail.set_env("GBAL_PUBLIC__LISTEN", public);
                    jail.set_env("GBAL_INTERNAL__LISTEN", internal);
                    let e = load(jail, None).unwrap_err();
                    assert!(
                        e.0.starts_with("auth.hs256_secret: "),
                        "{public} {internal}: {e}"
                    );
                    assert!(e.0.contains("loopback"), "{e}");
                    assert!(
                        !e.0.contains(DEVELOPMENT_SECRET),
                        "the secret is never printed: {e}"
                    );
                });
            }
        }
        // Production refuses it even on loopback, also when set explicitly.
        jailed(|jail| {
            jail.set_env("GBAL_MODE", "production");
            jail.set_env("GBAL_AUTH__HS256_SECRET", DEVELOPMENT_SECRET);
            jail.set_env("GBAL_GMS__TRANSPORT", "ncts-xml");
            jail.set_env("GBAL_GMS__URL", "https://gms.example/m");
            jail.set_env("GBAL_INTERNAL__REPLY_TOKEN", "r3ply-t0ken-0123456789");
            jail.set_env("DATABASE_URL", "postgres://db/gbal");
            let e = load(jail, None).unwrap_err();
            assert!(e.0.starts_with("auth.hs256_secret: "), "{e}");
            // The same with a secret of one's own starts.
            jail.set_env("GBAL_AUTH__HS256_SECRET", OWN_SECRET);
            assert_eq!(load(jail, None).unwrap().hs256_secret(), Some(OWN_SECRET));
        });
        // One's own secret is fine on any address in development.
        jailed(|jail| {
            jail.set_env("GBAL_AUTH__HS256_SECRET", OWN_SECRET);
            jail.set_env("GBAL_PUBLIC__LISTEN", "0.0.0.0:8080");
            jail.set_env("GBAL_INTERNAL__LISTEN", "0.0.0.0:8081");
            assert!(load(jail, None).is_ok());
        });
    }

    #[test]
    fn jwks_urls_are_http_or_https_and_https_in_production() {
        let production = |jail: &mut Jail| {
            jail.set_env("GBAL_MODE", "production");
            jail.set_env("GBAL_GMS__TRANSPORT", "ncts-xml");
            jail.set_env("GBAL_GMS__URL", "https://gms.example/m");
            jail.set_env("GBAL_INTERNAL__REPLY_TOKEN", "r3ply-t0ken-0123456789");
            jail.set_env("DATABASE_URL", "postgres://db/gbal");
        };
        for url in ["http://auth.example/jwks", "http://127.0.0.1:9999/jwks"] {
            jailed(|jail| {
                production(jail);
                jail.set_env("GBAL_AUTH__JWKS_URL", url);
                let e = load(jail, None).unwrap_err();
                assert!(e.0.starts_with("auth.jwks_url: "), "{url}: {e}");
                assert!(e.0.contains("https"), "{e}");
            });
            // Development mode allows plain http (a local identity provider).
            jailed(|jail| {
                jail.set_env("GBAL_AUTH__JWKS_URL", url);
                assert!(load(jail, None).is_ok(), "{url}");
            });
        }
        jailed(|jail| {
            production(jail);
            jail.set_env("GBAL_AUTH__JWKS_URL", "https://auth.example/jwks");
            assert!(load(jail, None).is_ok());
        });
        for url in ["ftp://auth.example/jwks", "auth.example/jwks", "https://"] {
            jailed(|jail| {
                jail.set_env("GBAL_AUTH__JWKS_URL", url);
                let e = load(jail, None).unwrap_err();
                assert!(e.0.starts_with("auth.jwks_url: "), "{url}: {e}");
            });
        }
    }

    #[test]
    fn jwks_refresh_and_leeway_are_bounded() {
        for (key, value, ok) in [
            ("GBAL_AUTH__JWKS_REFRESH", "0s", false),
            ("GBAL_AUTH__JWKS_REFRESH", "500ms", false),
            ("GBAL_AUTH__JWKS_REFRESH", "1s", true),
            ("GBAL_AUTH__JWKS_REFRESH", "1d", true),
            ("GBAL_AUTH__JWKS_REFRESH", "1d1s", false),
            ("GBAL_AUTH__LEEWAY", "0s", true),
            ("GBAL_AUTH__LEEWAY", "5m", true),
            ("GBAL_AUTH__LEEWAY", "5m1s", false),
            ("GBAL_AUTH__LEEWAY", "1h", false),
        ] {
            jailed(|jail| {
                jail.set_env("GBAL_AUTH__JWKS_URL", "https://auth.example/jwks");
                // Longer than the longest refresh, which auth.jwks_max_age must be.
                jail.set_env("GBAL_AUTH__JWKS_MAX_AGE", "2d");
                jail.set_env(key, value);
                let loaded = load(jail, None);
                assert_eq!(loaded.is_ok(), ok, "{key}={value}: {loaded:?}");
                if let Err(e) = loaded {
                    let name = key["GBAL_".len()..].to_ascii_lowercase().replace("__", ".");
                    assert!(e.0.starts_with(&format!("{name}: ")), "{e}");
                }
            });
        }
    }

    #[test]
    fn connection_limits_caller_in_flight_and_jwks_bounds_are_checked_by_key() {
        for (key, value, ok) in [
            ("GBAL_PUBLIC__HEADER_READ_TIMEOUT", "0s", false),
            ("GBAL_INTERNAL__HEADER_READ_TIMEOUT", "0s", false),
            ("GBAL_PUBLIC__IDLE_TIMEOUT", "0s", false),
            ("GBAL_INTERNAL__IDLE_TIMEOUT", "0s", false),
            ("GBAL_PUBLIC__IDLE_TIMEOUT", "1m", true),
            ("GBAL_PUBLIC__BODY_TIMEOUT", "0s", false),
            ("GBAL_INTERNAL__BODY_TIMEOUT", "0s", false),
            ("GBAL_PUBLIC__MAX_CONNECTIONS", "0", false),
            ("GBAL_INTERNAL__MAX_CONNECTIONS", "0", false),
            ("GBAL_PUBLIC__MAX_CONNECTIONS", "1", true),
            ("GBAL_PUBLIC__MAX_HEADER_BYTES", "4095", false),
            ("GBAL_PUBLIC__MAX_HEADER_BYTES", "4096", true),
            ("GBAL_INTERNAL__MAX_HEADER_BYTES", "262145", false),
            ("GBAL_PUBLIC__MAX_HEADERS", "15", false),
            ("GBAL_INTERNAL__MAX_HEADERS", "1001", false),
            ("GBAL_RATE_LIMIT__MAX_IN_FLIGHT", "0", false),
            ("GBAL_RATE_LIMIT__MAX_IN_FLIGHT", "1", true),
            ("GBAL_AUTH__JWKS_MAX_AGE", "5m", false),
            ("GBAL_AUTH__JWKS_MAX_AGE", "5m1s", true),
            ("GBAL_AUTH__JWKS_MAX_BYTES", "1023", false),
        ] {
            jailed(|jail| {
                jail.set_env("GBAL_AUTH__JWKS_URL", "https://auth.example/jwks");
                jail.set_env(key, value);
                let loaded = load(jail, None);
                assert_eq!(loaded.is_ok(), ok, "{key}={value}: {loaded:?}");
                if let Err(e) = loaded {
                    let name = key["GBAL_".len()..].to_ascii_lowercase().replace("__", ".");
                    assert!(e.0.starts_with(&format!("{name}: ")), "{e}");
                }
            });
        }
        let api = Config::builtin().api().expect("the defaults");
        assert_eq!(api.public_connections.max_connections, 2048);
        assert_eq!(api.internal_connections.max_connections, 256);
        assert_eq!(api.rate_limit.max_in_flight, 32);
    }

    #[test]
    fn no_duration_is_absurdly_long() {
        for (key, name) in [
            ("GBAL_BALANCE__TTL", "balance.ttl"),
            ("GBAL_BALANCE__LOCK_TTL", "balance.lock_ttl"),
            ("GBAL_EXPIRY__INTERVAL", "expiry.interval"),
            ("GBAL_GMS__BREAKER__OPEN_FOR", "gms.breaker.open_for"),
            ("GBAL_SHUTDOWN__GRACE", "shutdown.grace"),
            ("GBAL_PUBLIC__REQUEST_TIMEOUT", "public.request_timeout"),
        ] {
            for value in ["31d", "999999999999d", "999999999999d999999999999d"] {
                jailed(|jail| {
                    jail.set_env(key, value);
                    let e = load(jail, None).unwrap_err();
                    assert!(e.0.starts_with(&format!("{name}: ")), "{key}={value}: {e}");
                    assert!(e.0.contains("30d"), "{e}");
                });
            }
        }
        jailed(|jail| {
            jail.set_env("GBAL_BALANCE__TTL", "30d");
            assert_eq!(
                load(jail, None).unwrap().balance.ttl.0,
                Duration::from_secs(30 * 86_400)
            );
        });
    }

    #[test]
    fn the_audit_sink_is_logged_by_default_and_an_http_sink_is_checked_by_key() {
        jailed(|jail| {
            assert_eq!(load(jail, None).unwrap().audit.sink(), Ok(AuditSink::Log));
            jail.set_env("GBAL_AUDIT__SINK", "off");
            assert_eq!(load(jail, None).unwrap().audit.sink(), Ok(AuditSink::Off));
            jail.set_env("GBAL_AUDIT__SINK", "syslog");
            let e = load(jail, None).unwrap_err();
            assert!(e.0.starts_with("audit.sink: "), "{e}");
            jail.set_env("GBAL_AUDIT__SINK", "http");
            let e = load(jail, None).unwrap_err();
            assert!(e.0.starts_with("audit.http_url: "), "{e}");
            jail.set_env("GBAL_AUDIT__HTTP_URL", "ftp://audit.example");
            let e = load(jail, None).unwrap_err();
            assert!(e.0.starts_with("audit.http_url: "), "{e}");
            jail.set_env("GBAL_AUDIT__HTTP_URL", "https://audit.example/events");
            jail.set_env("GBAL_AUDIT__HTTP_TOKEN", "audit-token");
            match load(jail, None).unwrap().audit.sink().unwrap() {
                AuditSink::Http(http) => {
                    assert_eq!(http.url.as_str(), "https://audit.example/events");
                    assert_eq!(http.token.as_deref(), Some("audit-token"));
                    assert_eq!((http.queue, http.batch_size, http.retries), (10000, 100, 3));
                }
                other => panic!("{other:?}"),
            }
            for (key, value, good) in [
                ("queue", "0", "10000"),
                ("batch_size", "0", "100"),
                ("batch_size", "20000", "100"),
                ("flush_interval", "0s", "1s"),
                ("retries", "11", "3"),
                ("timeout", "0s", "5s"),
                ("timeout", "2m", "5s"),
            ] {
                let variable = format!("GBAL_AUDIT__{}", key.to_ascii_uppercase());
                jail.set_env(&variable, value);
                let e = load(jail, None).unwrap_err();
                assert!(
                    e.0.starts_with(&format!("audit.{key}: ")),
                    "{key}={value}: {e}"
                );
                jail.set_env(&variable, good);
            }
            assert!(load(jail, None).is_ok());
        });
    }

    #[test]
    fn warnings_at_start() {
        jailed(|jail| {
            let warnings = load(jail, None).unwrap().warnings();
            assert_eq!(warnings.len(), 2, "{warnings:?}");
            assert!(warnings.iter().all(|w| w.starts_with("DEVELOPMENT MODE: ")));
            jail.set_env("GBAL_AUTH__HS256_SECRET", OWN_SECRET);
            let warnings = load(jail, None).unwrap().warnings();
            assert_eq!(warnings.len(), 1, "only the simulator: {warnings:?}");
        });
        let production = |jail: &mut Jail, transport: &str| {
            jail.set_env("GBAL_MODE", "production");
            jail.set_env("GBAL_AUTH__JWKS_URL", "https://auth.example/jwks");
            jail.set_env("GBAL_GMS__TRANSPORT", transport);
            jail.set_env("GBAL_INTERNAL__REPLY_TOKEN", "r3ply-t0ken-0123456789");
            jail.set_env("DATABASE_URL", "postgres://db/gbal");
        };
        jailed(|jail| {
            production(jail, "ncts-xml");
            jail.set_env("GBAL_GMS__URL", "https://gms.example/m");
            assert_eq!(load(jail, None).unwrap().warnings(), Vec::<String>::new());
            jail.set_env("GBAL_GMS__URL", "http://gms.example/m");
            let warnings = load(jail, None).unwrap().warnings();
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(
                warnings[0].starts_with("gms.url is plain http"),
                "{warnings:?}"
            );
        });
        jailed(|jail| {
            production(jail, "eis-json");
            jail.set_env("GBAL_GMS__EIS__GB__URL", "https://gb.example");
            jail.set_env("GBAL_GMS__EIS__XI__URL", "http://xi.example");
            let warnings = load(jail, None).unwrap().warnings();
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(
                warnings[0].starts_with("gms.eis.xi.url is plain http"),
                "{warnings:?}"
            );
        });
        // Development mode does not warn about plain http to GMS (a local stand-in).
        jailed(|jail| {
            jail.set_env("GBAL_AUTH__HS256_SECRET", OWN_SECRET);
            jail.set_env("GBAL_GMS__TRANSPORT", "ncts-xml");
            jail.set_env("GBAL_GMS__URL", "http://127.0.0.1:9000/m");
            jail.set_env("GBAL_INTERNAL__REPLY_TOKEN", "r3ply-t0ken-0123456789");
            assert_eq!(load(jail, None).unwrap().warnings(), Vec::<String>::new());
        });
    }
}
