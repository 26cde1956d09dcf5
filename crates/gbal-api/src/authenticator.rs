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
//!
//! JWKS keys are read again every refresh period, and sooner when a token names a `kid` none
//! of them has (at most once per [`UNKNOWN_KID_REFRESH`], one read shared by every token
//! waiting for it); a failed read keeps the keys in use until they are older than the
//! configured maximum age, when they are dropped and readiness fails. A JWKS larger than the
//! configured bound is refused.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use gbal_core::CallerId;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use crate::config::{AuthConfig, KeySource};
use crate::error::{ApiError, StartError};

/// The soonest a token naming an unknown `kid` makes the JWKS be read again after the last
/// read: a key rotated in is found within this, and tokens with made-up `kid`s cost the
/// identity provider at most one request per period.
pub(crate) const UNKNOWN_KID_REFRESH: Duration = Duration::from_secs(30);
/// How soon a failed read of the JWKS is tried again (or the refresh period, if shorter).
pub(crate) const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// How long one fetch of a JWKS URL may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// One verification key.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    /// The algorithm the key is pinned to, when the JWKS says.
    algorithm: Option<Algorithm>,
    key: DecodingKey,
}

/// The keys in use and when they were loaded.
struct Loaded {
    keys: Arc<Vec<Key>>,
    /// `None` until the first successful load.
    at: Option<Instant>,
    /// Why the last load failed, if it did.
    failure: Option<String>,
}

/// When the keys were last read.
#[derive(Default)]
struct Reads {
    /// Any read, finished.
    any: Option<Instant>,
    /// The last read a token with an unknown `kid` asked for, started.
    for_unknown_kid: Option<Instant>,
}

/// Verifies tokens against the configured keys and claims.
pub(crate) struct Authenticator {
    algorithms: Vec<Algorithm>,
    source: KeySource,
    loaded: RwLock<Loaded>,
    /// JWKS keys older than this are not used (never for a shared secret).
    max_age: Option<Duration>,
    max_bytes: usize,
    /// Held while the keys are read, so that the reads a burst of unknown `kid`s asks for
    /// collapse into one.
    reading: tokio::sync::Mutex<Reads>,
    /// Whether dropping stale keys has been logged since they were last loaded.
    dropped_logged: AtomicBool,
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
    /// Loads the keys once. The settings are checked by [`AuthConfig::validate`] first. A JWKS
    /// URL that cannot be read now is not fatal: the authenticator starts without keys (every
    /// token refused, [`Authenticator::readiness`] failing) and the refresh job keeps trying.
    /// A shared secret or a JWKS file that cannot be read is.
    pub(crate) async fn new(config: &AuthConfig) -> Result<Self, StartError> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| StartError::Keys(format!("no HTTP client: {e}")))?;
        let max_age = match config.keys {
            KeySource::Hs256Secret(_) => None,
            KeySource::JwksFile { .. } | KeySource::JwksUrl { .. } => Some(config.jwks_max_age),
        };
        let authenticator = Self {
            algorithms: config.parsed_algorithms()?,
            source: config.keys.clone(),
            loaded: RwLock::new(Loaded {
                keys: Arc::new(Vec::new()),
                at: None,
                failure: None,
            }),
            max_age,
            max_bytes: config.jwks_max_bytes,
            reading: tokio::sync::Mutex::new(Reads::default()),
            dropped_logged: AtomicBool::new(false),
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            scope: config.required_scope.clone(),
            leeway: config.leeway,
            http,
        };
        match (authenticator.refresh().await, &authenticator.source) {
            (Ok(()), _) => {}
            (Err(error), KeySource::JwksUrl { .. }) => tracing::warn!(
                error = %error,
                "the token keys could not be fetched; not ready until they are, and trying again"
            ),
            (Err(error), _) => return Err(error),
        }
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

    /// When the refresh job should read the keys next: a refresh period after a success, soon
    /// after a failure (or before the first success).
    pub(crate) fn next_refresh(&self) -> Option<Duration> {
        let every = self.refresh_interval()?;
        let failing = {
            let loaded = self.read_loaded();
            loaded.failure.is_some() || loaded.at.is_none()
        };
        Some(if failing {
            every.min(RETRY_AFTER_FAILURE)
        } else {
            every
        })
    }

    /// Loads the keys again now; on failure the previous keys stay in use (until they are
    /// older than the maximum age).
    pub(crate) async fn refresh(&self) -> Result<(), StartError> {
        let mut reads = self.reading.lock().await;
        let result = self.load().await;
        reads.any = Some(Instant::now());
        result
    }

    /// Loads the keys again for a token whose `kid` none of them has, unless a token did so
    /// less than [`UNKNOWN_KID_REFRESH`] ago. Concurrent callers share one read: those that
    /// waited for a read use its keys.
    async fn refresh_for_unknown_kid(&self) {
        let asked = Instant::now();
        let mut reads = self.reading.lock().await;
        let read_meanwhile = reads.any.is_some_and(|at| at >= asked);
        let recent = reads
            .for_unknown_kid
            .is_some_and(|at| at.elapsed() < UNKNOWN_KID_REFRESH);
        if read_meanwhile || recent {
            return;
        }
        reads.for_unknown_kid = Some(Instant::now());
        let result = self.load().await;
        reads.any = Some(Instant::now());
        if let Err(error) = result {
            tracing::warn!(error = %error, "a token names a key gbal does not have, and the keys could not be read again");
        }
    }

    /// Reads the key source and puts its keys in use, or records why it could not.
    async fn load(&self) -> Result<(), StartError> {
        let result = self.read_source().await;
        let mut loaded = self
            .loaded
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match result {
            Ok(keys) => {
                *loaded = Loaded {
                    keys: Arc::new(keys),
                    at: Some(Instant::now()),
                    failure: None,
                };
                self.dropped_logged.store(false, Ordering::Relaxed);
                Ok(())
            }
            Err(error) => {
                loaded.failure = Some(error.to_string());
                Err(error)
            }
        }
    }

    async fn read_source(&self) -> Result<Vec<Key>, StartError> {
        let max = self.max_bytes;
        match &self.source {
            KeySource::Hs256Secret(secret) => Ok(vec![Key {
                kid: None,
                algorithm: Some(Algorithm::HS256),
                key: DecodingKey::from_secret(secret.as_bytes()),
            }]),
            KeySource::JwksFile { path, .. } => {
                let file = path.clone();
                let text = tokio::task::spawn_blocking(move || read_at_most(&file, max))
                    .await
                    .map_err(|e| StartError::Keys(format!("{}: {e}", path.display())))?
                    .map_err(|e| StartError::Keys(format!("{}: {e}", path.display())))?;
                parse_jwks(&text)
            }
            KeySource::JwksUrl { url, .. } => {
                let failed = |e: &dyn std::fmt::Display| StartError::Keys(format!("{url}: {e}"));
                let mut response = self
                    .http
                    .get(url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| failed(&e))?;
                let too_large = || failed(&format!("the JWKS is larger than {max} bytes"));
                if response.content_length().is_some_and(|n| n > max as u64) {
                    return Err(too_large());
                }
                // Read piece by piece, so that an endless body stops at the bound.
                let mut text = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|e| failed(&e))? {
                    if text.len() + chunk.len() > max {
                        return Err(too_large());
                    }
                    text.extend_from_slice(&chunk);
                }
                parse_jwks(&text)
            }
        }
    }

    fn read_loaded(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How long ago the keys in use were loaded, when that is past the maximum age.
    fn stale_for(&self, loaded: &Loaded) -> Option<Duration> {
        let (max_age, at) = (self.max_age?, loaded.at?);
        let age = at.elapsed();
        (age > max_age).then_some(age)
    }

    /// The keys to verify with: none while none were ever loaded or while the loaded ones
    /// are older than the maximum age (which is logged once).
    fn current_keys(&self) -> Arc<Vec<Key>> {
        let loaded = self.read_loaded();
        if let Some(age) = self.stale_for(&loaded) {
            self.log_dropped(age, loaded.failure.as_deref());
            return Arc::new(Vec::new());
        }
        Arc::clone(&loaded.keys)
    }

    fn log_dropped(&self, age: Duration, failure: Option<&str>) {
        if !self.dropped_logged.swap(true, Ordering::Relaxed) {
            tracing::error!(
                age = ?age,
                max_age = ?self.max_age,
                last_failure = failure.unwrap_or("none"),
                "the token keys were not refreshed within their maximum age and are dropped: \
                 every token is refused and /readyz answers 503 until a refresh succeeds"
            );
        }
    }

    /// Whether tokens can be verified: keys loaded, and not older than the maximum age. The
    /// error says why not.
    pub(crate) fn readiness(&self) -> Result<(), String> {
        let loaded = self.read_loaded();
        let failure = loaded.failure.as_deref().unwrap_or("not read yet");
        if loaded.at.is_none() {
            return Err(format!("no token keys loaded yet ({failure})"));
        }
        if let Some(age) = self.stale_for(&loaded) {
            self.log_dropped(age, loaded.failure.as_deref());
            return Err(format!(
                "the token keys were last loaded {}s ago, more than their maximum age; the last \
                 refresh failed: {failure}",
                age.as_secs()
            ));
        }
        Ok(())
    }

    /// The caller a token stands for, or why it does not stand for one. A token naming a
    /// `kid` that no JWKS key has makes the keys be read again first (see
    /// [`UNKNOWN_KID_REFRESH`]).
    pub(crate) async fn verify(&self, token: &str) -> Result<CallerId, ApiError> {
        let header = decode_header(token).map_err(|_| ApiError::Unauthorized("malformed token"))?;
        let algorithm = header.alg;
        if !self.algorithms.contains(&algorithm) {
            return Err(ApiError::Unauthorized("algorithm not allowed"));
        }
        let mut keys = self.current_keys();
        if let Some(kid) = &header.kid
            && self.refresh_interval().is_some()
            && !keys.iter().any(|k| k.kid.as_ref() == Some(kid))
        {
            self.refresh_for_unknown_kid().await;
            keys = self.current_keys();
        }
        let claims = self.decode_with(token, &header, &keys)?;
        let caller =
            CallerId::parse(&claims.sub).map_err(|_| ApiError::Unauthorized("invalid subject"))?;
        if !grants(claims.scope.as_ref(), &self.scope) && !grants(claims.scp.as_ref(), &self.scope)
        {
            return Err(ApiError::Forbidden);
        }
        Ok(caller)
    }

    /// The claims of `token`, verified by one of `keys`.
    fn decode_with(
        &self,
        token: &str,
        header: &jsonwebtoken::Header,
        keys: &[Key],
    ) -> Result<Claims, ApiError> {
        let algorithm = header.alg;
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.leeway = self.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);

        let family = algorithm.family();
        keys.iter()
            .filter(|k| {
                k.key.family() == family
                    && k.algorithm.is_none_or(|a| a == algorithm)
                    && match (&header.kid, &k.kid) {
                        (Some(wanted), Some(kid)) => wanted == kid,
                        (Some(_), None) => false,
                        (None, _) => true,
                    }
            })
            .find_map(|key| decode::<Claims>(token, &key.key, &validation).ok())
            .map(|data| data.claims)
            .ok_or(ApiError::Unauthorized("no key verifies the token"))
    }
}

/// The file at `path`, refused when it is larger than `max` bytes.
fn read_at_most(path: &std::path::Path, max: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut text = Vec::new();
    std::fs::File::open(path)?
        .take(max as u64 + 1)
        .read_to_end(&mut text)?;
    if text.len() > max {
        return Err(std::io::Error::other(format!(
            "the JWKS is larger than {max} bytes"
        )));
    }
    Ok(text)
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
