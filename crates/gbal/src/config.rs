//! gbal's configuration: the built-in defaults, an optional file, then the environment.
//!
//! Every key is documented in `config/default.toml` (embedded here) and `docs/operations.md`.
//! A bad value stops start-up with a message that names the key; secrets are never printed.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize, Serializer};

use crate::duration::HumanDuration;

/// The built-in defaults.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// The HS256 secret used when development mode has no key source configured.
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
    pub rate_limit: RateLimitConfig,
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
}

/// `[public]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PublicConfig {
    pub listen: SocketAddr,
    pub base_path: String,
    pub body_limit: usize,
    pub request_timeout: HumanDuration,
    pub max_in_flight: usize,
}

/// `[internal]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InternalConfig {
    pub listen: SocketAddr,
    pub reply_token: Secret,
    pub body_limit: usize,
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: Secret,
    pub max_connections: u32,
    pub acquire_timeout: HumanDuration,
    pub run_migrations: bool,
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub hs256_secret: Secret,
    pub jwks_file: String,
    pub jwks_url: String,
    pub jwks_refresh: HumanDuration,
    pub issuer: String,
    pub audience: String,
    pub scope: String,
    pub algorithms: Vec<String>,
    pub leeway: HumanDuration,
}

/// `[balance]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceSection {
    pub sync_wait: HumanDuration,
    pub v2_wait: HumanDuration,
    pub ttl: HumanDuration,
    pub lock_ttl: HumanDuration,
}

/// `[rate_limit]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub per_second: u32,
    pub burst: u32,
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

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// The configuration's sections: the environment variables that may set them.
const SECTIONS: [&str; 11] = [
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
];

fn bad(key: &str, why: impl fmt::Display) -> ConfigError {
    ConfigError(format!("{key}: {why}"))
}

impl Config {
    /// Loads defaults, then `file`, then the process environment, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let config = Self::load_unchecked(file)?;
        config.validate()?;
        Ok(config)
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

    /// Checks what the types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let base = &self.public.base_path;
        if !base.is_empty() && (!base.starts_with('/') || base.ends_with('/')) {
            return Err(bad(
                "public.base_path",
                "must start with '/' and not end with '/'",
            ));
        }
        if self.public.max_in_flight == 0 {
            return Err(bad("public.max_in_flight", "must be at least 1"));
        }
        if self.public.body_limit == 0 || self.internal.body_limit == 0 {
            return Err(bad(
                "public.body_limit / internal.body_limit",
                "must be above 0",
            ));
        }
        if !self.internal.reply_token.is_empty() && self.internal.reply_token.expose().len() < 16 {
            return Err(bad(
                "internal.reply_token",
                "must have at least 16 characters",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(bad("database.max_connections", "must be at least 1"));
        }
        let sources = [
            !self.auth.hs256_secret.is_empty(),
            !self.auth.jwks_file.is_empty(),
            !self.auth.jwks_url.is_empty(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(bad(
                "auth.hs256_secret / auth.jwks_file / auth.jwks_url",
                "set only one key source",
            ));
        }
        if !self.auth.hs256_secret.is_empty() && self.auth.hs256_secret.expose().len() < 32 {
            return Err(bad("auth.hs256_secret", "must be at least 32 bytes"));
        }
        if self.auth.scope.is_empty() {
            return Err(bad("auth.scope", "must not be empty"));
        }
        for alg in &self.auth.algorithms {
            if !matches!(
                alg.as_str(),
                "RS256"
                    | "RS384"
                    | "RS512"
                    | "PS256"
                    | "PS384"
                    | "PS512"
                    | "ES256"
                    | "ES384"
                    | "EdDSA"
            ) {
                return Err(bad(
                    "auth.algorithms",
                    format!("'{alg}' is not an accepted asymmetric algorithm"),
                ));
            }
        }
        let b = &self.balance;
        for (key, d) in [
            ("balance.sync_wait", b.sync_wait),
            ("balance.v2_wait", b.v2_wait),
            ("balance.ttl", b.ttl),
            ("balance.lock_ttl", b.lock_ttl),
        ] {
            if d.0.is_zero() {
                return Err(bad(key, "must be above 0"));
            }
        }
        if b.sync_wait >= b.ttl || b.v2_wait >= b.ttl {
            return Err(bad(
                "balance.ttl",
                "must be longer than sync_wait and v2_wait",
            ));
        }
        if self.public.request_timeout <= b.v2_wait || self.public.request_timeout <= b.sync_wait {
            return Err(bad(
                "public.request_timeout",
                "must be longer than balance.sync_wait and balance.v2_wait",
            ));
        }
        if self.rate_limit.per_second == 0 || self.rate_limit.burst == 0 {
            return Err(bad(
                "rate_limit.per_second / rate_limit.burst",
                "must be at least 1",
            ));
        }
        if self.expiry.batch == 0 || self.expiry.interval.0.is_zero() {
            return Err(bad("expiry.batch / expiry.interval", "must be above 0"));
        }
        let g = &self.gms;
        if g.sender_prefix.chars().count() > 11
            || g.sender_prefix
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad(
                "gms.sender_prefix",
                "at most 11 characters without spaces (MesSenMES3 holds 35)",
            ));
        }
        if g.recipient.is_empty() || g.recipient.chars().count() > 35 {
            return Err(bad("gms.recipient", "1 to 35 characters"));
        }
        if g.retry.max_attempts == 0 {
            return Err(bad("gms.retry.max_attempts", "must be at least 1"));
        }
        if g.breaker.failures == 0 {
            return Err(bad("gms.breaker.failures", "must be at least 1"));
        }
        match g.transport {
            Transport::Simulator => {}
            Transport::NctsXml => {
                check_url("gms.url", &g.url)?;
                if self.internal.reply_token.is_empty() {
                    return Err(bad(
                        "internal.reply_token",
                        "the ncts-xml transport needs the token GMS replies carry",
                    ));
                }
            }
            Transport::EisJson => {
                check_url("gms.eis.gb.url", &g.eis.gb.url)?;
                check_url("gms.eis.xi.url", &g.eis.xi.url)?;
            }
        }
        if self.mode == Mode::Production {
            if self.auth.hs256_secret.is_empty()
                && self.auth.jwks_file.is_empty()
                && self.auth.jwks_url.is_empty()
            {
                return Err(bad(
                    "auth.jwks_url",
                    "production mode needs a key source (auth.jwks_url, auth.jwks_file or auth.hs256_secret)",
                ));
            }
            if g.transport == Transport::Simulator {
                return Err(bad(
                    "gms.transport",
                    "production mode cannot use the simulator",
                ));
            }
            if self.database.url.is_empty() {
                return Err(bad(
                    "database.url",
                    "production mode needs PostgreSQL (set DATABASE_URL)",
                ));
            }
        }
        Ok(())
    }

    /// The HS256 secret in force: the configured one, or the development secret when
    /// development mode has no key source at all.
    pub fn hs256_secret(&self) -> Option<&str> {
        if !self.auth.hs256_secret.is_empty() {
            return Some(self.auth.hs256_secret.expose());
        }
        let no_source = self.auth.jwks_file.is_empty() && self.auth.jwks_url.is_empty();
        (self.mode == Mode::Development && no_source).then_some(DEVELOPMENT_SECRET)
    }

    /// The configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }
}

fn check_url(key: &str, url: &str) -> Result<(), ConfigError> {
    if url.is_empty() {
        return Err(bad(key, "must be set for this transport"));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(bad(key, format!("'{url}' is not an http(s) URL")));
    }
    Ok(())
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
    fn production_refuses_development_conveniences() {
        jailed(|jail| {
            let e = load(jail, Some("mode = \"production\"\n")).unwrap_err();
            assert!(e.0.contains("auth."), "{e}");
        });
        let base = "mode = \"production\"\n[auth]\njwks_url = \"http://auth/jwks\"\n[gms]\ntransport = \"ncts-xml\"\nurl = \"http://gms/m\"\n";
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
    fn secrets_are_redacted() {
        jailed(|jail| {
            jail.set_env(
                "GBAL_AUTH__HS256_SECRET",
                "0123456789abcdef0123456789abcdef-topsecret",
            );
            jail.set_env("GBAL_INTERNAL__REPLY_TOKEN", "reply-secret-0123456789");
            let c = load(jail, None).unwrap();
            let printed = c.to_redacted_toml();
            assert!(
                !printed.contains("topsecret") && !printed.contains("reply-secret"),
                "{printed}"
            );
            assert!(printed.contains("[redacted]"));
            assert!(!format!("{c:?}").contains("topsecret"));
        });
    }

    #[test]
    fn example_configurations_load() {
        jailed(|jail| {
            let c = load(jail, Some(include_str!("../../../config/sandbox.toml"))).unwrap();
            assert_eq!(c.gms.transport, Transport::Simulator);
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
            let sandbox = include_str!("../../../deploy/overlays/sandbox/gbal.toml");
            assert!(load(jail, Some(sandbox)).is_ok());
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
}
