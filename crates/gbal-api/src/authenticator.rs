//! Verifying bearer tokens against the configured keys and claims: the [`Authenticator`].
//!
//! A token is accepted only when all of these hold, checked in this order: it is three
//! base64url parts with a readable header; its `alg` is on the allow-list (so `none`, which
//! jsonwebtoken cannot even name, and any algorithm not configured are refused); a key of
//! that algorithm's family verifies the signature (a JWKS key by `kid`, or the HS256 secret:
//! an RSA public key is never used as an HMAC secret); `exp` (required) and `nbf` (when
//! present) hold with the configured leeway; `iss` and `aud` (both required) match; `sub` is
//! a valid caller id. Failing any of these is 401. Then the scope must be granted, in
//! `scope` (space-separated) or `scp` (string or array); otherwise 403.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use gbal_core::CallerId;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use crate::config::{AuthConfig, KeySource};
use crate::error::{ApiError, StartError};

/// One verification key.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    /// The algorithm the key is pinned to, when the JWKS says.
    algorithm: Option<Algorithm>,
    key: DecodingKey,
}

/// Verifies tokens against the configured keys and claims.
pub(crate) struct Authenticator {
    algorithms: Vec<Algorithm>,
    source: KeySource,
    keys: RwLock<Arc<Vec<Key>>>,
    issuer: String,
    audience: String,
    scope: String,
    leeway: Duration,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    scope: Option<serde_json::Value>,
    #[serde(default)]
    scp: Option<serde_json::Value>,
}

impl Authenticator {
    /// Loads the keys once. The settings are checked by [`AuthConfig::validate`] first.
    pub(crate) async fn new(config: &AuthConfig) -> Result<Self, StartError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| StartError::Keys(format!("no HTTP client: {e}")))?;
        let authenticator = Self {
            algorithms: config.parsed_algorithms()?,
            source: config.keys.clone(),
            keys: RwLock::new(Arc::new(Vec::new())),
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            scope: config.required_scope.clone(),
            leeway: config.leeway,
            http,
        };
        authenticator.refresh().await?;
        Ok(authenticator)
    }

    /// How often the keys are re-loaded, if they come from a JWKS.
    pub(crate) fn refresh_interval(&self) -> Option<Duration> {
        match &self.source {
            KeySource::JwksFile { refresh, .. } | KeySource::JwksUrl { refresh, .. } => {
                Some(*refresh)
            }
            KeySource::Hs256Secret(_) => None,
        }
    }

    /// Loads the keys again; on failure the previous keys stay in use.
    pub(crate) async fn refresh(&self) -> Result<(), StartError> {
        let keys = match &self.source {
            KeySource::Hs256Secret(secret) => {
                vec![Key {
                    kid: None,
                    algorithm: Some(Algorithm::HS256),
                    key: DecodingKey::from_secret(secret.as_bytes()),
                }]
            }
            KeySource::JwksFile { path, .. } => {
                let file = path.clone();
                let text = tokio::task::spawn_blocking(move || std::fs::read(file))
                    .await
                    .map_err(|e| StartError::Keys(format!("{}: {e}", path.display())))?
                    .map_err(|e| StartError::Keys(format!("{}: {e}", path.display())))?;
                parse_jwks(&text)?
            }
            KeySource::JwksUrl { url, .. } => {
                let response = self
                    .http
                    .get(url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| StartError::Keys(format!("{url}: {e}")))?;
                let text = response
                    .bytes()
                    .await
                    .map_err(|e| StartError::Keys(format!("{url}: {e}")))?;
                parse_jwks(&text)?
            }
        };
        let mut slot = self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = Arc::new(keys);
        Ok(())
    }

    fn current_keys(&self) -> Arc<Vec<Key>> {
        Arc::clone(
            &self
                .keys
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// The caller a token stands for, or why it does not stand for one.
    pub(crate) fn verify(&self, token: &str) -> Result<CallerId, ApiError> {
        let header = decode_header(token).map_err(|_| ApiError::Unauthorized("malformed token"))?;
        let algorithm = header.alg;
        if !self.algorithms.contains(&algorithm) {
            return Err(ApiError::Unauthorized("algorithm not allowed"));
        }
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.leeway = self.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);

        let keys = self.current_keys();
        let family = algorithm.family();
        let candidates = keys.iter().filter(|k| {
            k.key.family() == family
                && k.algorithm.is_none_or(|a| a == algorithm)
                && match (&header.kid, &k.kid) {
                    (Some(wanted), Some(kid)) => wanted == kid,
                    (Some(_), None) => false,
                    (None, _) => true,
                }
        });
        let mut claims = None;
        for key in candidates {
            if let Ok(data) = decode::<Claims>(token, &key.key, &validation) {
                claims = Some(data.claims);
                break;
            }
        }
        let claims = claims.ok_or(ApiError::Unauthorized("no key verifies the token"))?;
        let caller =
            CallerId::parse(&claims.sub).map_err(|_| ApiError::Unauthorized("invalid subject"))?;
        if !grants(claims.scope.as_ref(), &self.scope) && !grants(claims.scp.as_ref(), &self.scope)
        {
            return Err(ApiError::Forbidden);
        }
        Ok(caller)
    }
}

/// Whether a `scope`/`scp` claim (a space-separated string or an array) grants `wanted`.
fn grants(claim: Option<&serde_json::Value>, wanted: &str) -> bool {
    match claim {
        Some(serde_json::Value::String(s)) => s.split_ascii_whitespace().any(|s| s == wanted),
        Some(serde_json::Value::Array(items)) => items.iter().any(|item| {
            item.as_str()
                .is_some_and(|s| s.split_ascii_whitespace().any(|s| s == wanted))
        }),
        _ => false,
    }
}

/// The usable keys of a JWKS document: keys for signatures, of a supported type.
fn parse_jwks(bytes: &[u8]) -> Result<Vec<Key>, StartError> {
    let set: JwkSet =
        serde_json::from_slice(bytes).map_err(|e| StartError::Keys(format!("not a JWKS: {e}")))?;
    let keys: Vec<Key> = set
        .keys
        .iter()
        .filter(|jwk| {
            !matches!(
                jwk.common.public_key_use,
                Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
            )
        })
        .filter_map(|jwk| {
            let key = DecodingKey::from_jwk(jwk).ok()?;
            // Symmetric keys never come from a JWKS here: they would let anyone who can read
            // the JWKS sign tokens.
            if key.family() == jsonwebtoken::AlgorithmFamily::Hmac {
                return None;
            }
            let algorithm = match jwk.common.key_algorithm {
                // Keys pinned to an algorithm jsonwebtoken cannot use (e.g. RSA-OAEP) are skipped.
                Some(alg) => Some(alg.to_string().parse::<Algorithm>().ok()?),
                None => None,
            };
            Some(Key {
                kid: jwk.common.key_id.clone(),
                algorithm,
                key,
            })
        })
        .collect();
    if keys.is_empty() {
        return Err(StartError::Keys(
            "the JWKS has no usable signature key".to_owned(),
        ));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scope_claims() {
        let wanted = "common-transit-convention-guarantee-balance";
        assert!(grants(
            Some(&json!(
                "read write common-transit-convention-guarantee-balance"
            )),
            wanted
        ));
        assert!(grants(Some(&json!(["other", wanted])), wanted));
        assert!(!grants(
            Some(&json!("common-transit-convention-guarantee-balance-x")),
            wanted
        ));
        assert!(!grants(Some(&json!(42)), wanted));
        assert!(!grants(None, wanted));
    }
}
