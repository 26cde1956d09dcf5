//! gbal's built-in configuration, `config/default.toml` (the one source of defaults), turned
//! into the settings of an app under test as `gbal serve` turns it with no configuration
//! (read by `gbal_testkit::defaults`).

use gbal_api::{ApiConfig, AuthConfig, ConnectionLimits, KeySource, RateLimitConfig, ReplyConfig};
use gbal_core::BalanceConfig;
use gbal_gms::{
    BearerToken, BreakerConfig, Dataset, EmbeddedConfig, NctsXmlConfig, QueryLimit, RetryPolicy,
    UpstreamConfig, Url,
};
use gbal_testkit::defaults::{duration, integer, string, strings};
use gbal_tracker::PgConfig;

/// `[balance]`.
pub fn balance() -> BalanceConfig {
    BalanceConfig {
        sync_wait: duration("balance.sync_wait"),
        v2_wait: duration("balance.v2_wait"),
        ttl: duration("balance.ttl"),
        lock_ttl: duration("balance.lock_ttl"),
    }
}

/// `[auth]` with `keys` (HS256 alone for a shared secret, as the binary does).
pub fn auth(keys: KeySource) -> AuthConfig {
    let algorithms = match keys {
        KeySource::Hs256Secret(_) => vec!["HS256".to_owned()],
        KeySource::JwksFile { .. } | KeySource::JwksUrl { .. } => strings("auth.algorithms"),
    };
    AuthConfig {
        algorithms,
        keys,
        issuer: string("auth.issuer"),
        audience: string("auth.audience"),
        required_scope: string("auth.scope"),
        leeway: duration("auth.leeway"),
        jwks_max_age: duration("auth.jwks_max_age"),
        jwks_max_bytes: integer("auth.jwks_max_bytes"),
    }
}

/// The connection limits of the listener `section` (`public` or `internal`).
pub fn connections(section: &str) -> ConnectionLimits {
    let key = |name: &str| format!("{section}.{name}");
    ConnectionLimits {
        header_read_timeout: duration(&key("header_read_timeout")),
        idle_timeout: duration(&key("idle_timeout")),
        max_connections: integer(&key("max_connections")),
        max_header_bytes: integer(&key("max_header_bytes")),
        max_headers: integer(&key("max_headers")),
        body_timeout: duration(&key("body_timeout")),
    }
}

/// The front door's settings, with `auth` and replies authenticated by `reply_token`.
pub fn api(auth: AuthConfig, reply_token: &str) -> ApiConfig {
    ApiConfig {
        base_path: string("public.base_path"),
        public_body_limit: integer("public.body_limit"),
        max_in_flight: integer("public.max_in_flight"),
        reply_body_limit: integer("internal.body_limit"),
        request_timeout: duration("public.request_timeout"),
        readiness_timeout: duration("public.readiness_timeout"),
        shutdown_delay: duration("shutdown.delay"),
        public_connections: connections("public"),
        internal_connections: connections("internal"),
        auth,
        rate_limit: RateLimitConfig {
            per_second: integer("rate_limit.per_second"),
            burst: integer("rate_limit.burst"),
            max_in_flight: integer("rate_limit.max_in_flight"),
        },
        reply: ReplyConfig {
            token: reply_token.to_owned(),
            recipient_prefix: string("gms.sender_prefix"),
        },
    }
}

/// The simulator's per-TIN query limit.
pub fn query_limit() -> QueryLimit {
    QueryLimit::per_day(integer("simulator.query_limit"))
}

/// The embedded simulator over `dataset`.
pub fn embedded(dataset: Dataset) -> EmbeddedConfig {
    EmbeddedConfig {
        dataset,
        query_limit: query_limit(),
        sender_prefix: string("gms.sender_prefix"),
        recipient_office: string("gms.recipient"),
    }
}

/// A GMS endpoint at `url` presenting `token`, with `[gms]`'s timeouts, retries and breaker.
pub fn upstream(url: Url, token: &str) -> UpstreamConfig {
    let attempts: usize = integer("gms.retry.max_attempts");
    UpstreamConfig {
        url,
        token: BearerToken::new(token),
        connect_timeout: duration("gms.connect_timeout"),
        request_timeout: duration("gms.request_timeout"),
        retry: RetryPolicy {
            max_retries: attempts - 1,
            min_delay: duration("gms.retry.min_delay"),
            max_delay: duration("gms.retry.max_delay"),
            total: duration("gms.retry.max_elapsed"),
        },
        breaker: BreakerConfig {
            failure_threshold: integer("gms.breaker.failures"),
            cool_down: duration("gms.breaker.open_for"),
        },
    }
}

/// The ncts-xml adapter reaching `upstream`.
pub fn ncts_xml(upstream: UpstreamConfig) -> NctsXmlConfig {
    NctsXmlConfig {
        upstream,
        sender_prefix: string("gms.sender_prefix"),
        recipient_office: string("gms.recipient"),
    }
}

/// `[database]`'s pool settings.
pub fn pg() -> PgConfig {
    PgConfig {
        max_connections: integer("database.max_connections"),
        acquire_timeout: duration("database.acquire_timeout"),
        statement_timeout: duration("database.statement_timeout"),
    }
}
