//! `gbal token`: a signed development token, for trying gbal out.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde::Serialize;
use time::OffsetDateTime;

use crate::config::{Config, ConfigError};

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iss: &'a str,
    aud: &'a str,
    scope: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
}

/// A token for `sub` with `scope` (default: the scope gbal requires), valid for `ttl`,
/// signed with the configured HS256 secret.
pub fn mint(
    config: &Config,
    sub: &str,
    scope: Option<&str>,
    ttl: Duration,
) -> Result<String, ConfigError> {
    let secret = config.hs256_secret().ok_or_else(|| {
        ConfigError(
            "auth.hs256_secret: gbal token signs with an HS256 secret; none is configured \
             (tokens for JWKS keys come from your identity provider)"
                .to_owned(),
        )
    })?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let claims = Claims {
        sub,
        iss: &config.auth.issuer,
        aud: &config.auth.audience,
        scope: scope.unwrap_or(&config.auth.scope),
        iat: now,
        nbf: now,
        exp: now.saturating_add(ttl),
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| ConfigError(format!("auth.hs256_secret: cannot sign: {e}")))
}
