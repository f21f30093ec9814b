//! One issuer's signing keys (its JWKS): fetched when first needed, kept, fetched again when a
//! token names a key ID they lack or when they are old, at most once per refetch interval, and
//! kept in use while the issuer cannot be reached.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::require_https_url;
use crate::metric_names;

/// A key that may verify tokens, and the one algorithm it verifies.
#[derive(Clone)]
pub(super) struct SigningKey {
    pub(super) key: DecodingKey,
    pub(super) algorithm: Algorithm,
}

/// What a lookup by key ID found.
pub(super) enum KeyLookup {
    Found(SigningKey),
    /// The issuer answered, and publishes no such key.
    Unknown,
    /// The key is not cached and the issuer could not be reached.
    Unavailable,
}

/// How often and how patiently keys are fetched.
#[derive(Debug, Clone, Copy)]
pub(super) struct FetchPolicy {
    pub(super) refetch_interval: Duration,
    pub(super) max_age: Duration,
}

pub(super) struct IssuerKeys {
    issuer: String,
    /// Configured, or `None` until discovery found it.
    configured_jwks_uri: Option<String>,
    http: reqwest::Client,
    policy: FetchPolicy,
    /// Swapped whole after each fetch; readers never wait for a fetch.
    keys: RwLock<Arc<KeySet>>,
    /// Held while fetching: concurrent misses wait for one fetch instead of each making one.
    fetching: tokio::sync::Mutex<FetchState>,
}

#[derive(Default)]
struct KeySet {
    by_id: HashMap<String, SigningKey>,
    fetched_at: Option<Instant>,
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    last_failed: bool,
    discovered_jwks_uri: Option<String>,
}

impl IssuerKeys {
    pub(super) fn new(
        issuer: String,
        jwks_uri: Option<String>,
        http: reqwest::Client,
        policy: FetchPolicy,
    ) -> IssuerKeys {
        IssuerKeys {
            issuer,
            configured_jwks_uri: jwks_uri,
            http,
            policy,
            keys: RwLock::default(),
            fetching: tokio::sync::Mutex::default(),
        }
    }

    /// The key named `kid`.
    pub(super) async fn find(&self, kid: &str) -> KeyLookup {
        let cached = self.current().by_id.get(kid).cloned();
        let mut state = match cached {
            Some(key) if self.fresh_key(kid).is_some() => return KeyLookup::Found(key),
            // A stale key still verifies: refresh it if nobody else is, but never make a
            // request wait for somebody else's fetch (an issuer that drops packets would hold
            // every request for the fetch timeout).
            Some(key) => match self.fetching.try_lock() {
                Ok(state) => state,
                Err(_) => return KeyLookup::Found(key),
            },
            // Nothing to verify with: wait for the one fetch in flight, if any.
            None => self.fetching.lock().await,
        };
        // Whoever held the lock before may have fetched just what we need.
        if let Some(key) = self.fresh_key(kid) {
            return KeyLookup::Found(key);
        }
        // Counted from the end of the last fetch, so requests queued behind a fetch that timed
        // out do not each try again.
        let fetched_lately = state
            .last_attempt
            .is_some_and(|last| last.elapsed() < self.policy.refetch_interval);
        if !fetched_lately {
            self.refresh(&mut state).await;
        }
        // Stale keys beat no keys while the issuer is away.
        match self.current().by_id.get(kid) {
            Some(key) => KeyLookup::Found(key.clone()),
            None if state.last_failed => KeyLookup::Unavailable,
            None => KeyLookup::Unknown,
        }
    }

    async fn refresh(&self, state: &mut FetchState) {
        let fetched = self.fetch(state).await;
        state.last_attempt = Some(Instant::now());
        let outcome = if fetched.is_ok() { "ok" } else { "failed" };
        metrics::counter!(metric_names::JWKS_FETCHES, "outcome" => outcome).increment(1);
        match fetched {
            Ok(keys) => {
                state.last_failed = false;
                *self
                    .keys
                    .write()
                    .unwrap_or_else(|poison| poison.into_inner()) = Arc::new(keys);
            }
            Err(error) => {
                state.last_failed = true;
                tracing::warn!(
                    issuer = %self.issuer,
                    error = format!("{error:#}"),
                    "could not fetch the issuer's signing keys; the cached ones stay in use"
                );
            }
        }
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    fn fresh_key(&self, kid: &str) -> Option<SigningKey> {
        let keys = self.current();
        let fresh = keys
            .fetched_at
            .is_some_and(|fetched| fetched.elapsed() < self.policy.max_age);
        fresh.then(|| keys.by_id.get(kid).cloned()).flatten()
    }

    async fn fetch(&self, state: &mut FetchState) -> anyhow::Result<KeySet> {
        let jwks_uri = match (&self.configured_jwks_uri, &state.discovered_jwks_uri) {
            (Some(uri), _) | (None, Some(uri)) => uri.clone(),
            (None, None) => {
                let uri = self.discover().await?;
                state.discovered_jwks_uri = Some(uri.clone());
                uri
            }
        };
        let set: JwkSet = self
            .get_json(&jwks_uri)
            .await
            .context("fetching the JWKS")?;
        let by_id = set
            .keys
            .into_iter()
            .filter_map(|value| {
                // One key this service cannot use (an encryption key, an unknown type) must not
                // make the whole set unusable.
                let jwk: Jwk = serde_json::from_value(value).ok()?;
                Some((jwk.common.key_id.clone()?, signing_key(&jwk)?))
            })
            .collect();
        Ok(KeySet {
            by_id,
            fetched_at: Some(Instant::now()),
        })
    }

    /// The `jwks_uri` of the issuer's discovery document, which must name the issuer exactly.
    async fn discover(&self) -> anyhow::Result<String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let document: Discovery = self
            .get_json(&url)
            .await
            .context("fetching the discovery document")?;
        anyhow::ensure!(
            document.issuer == self.issuer,
            "the discovery document names issuer {:?}, not the configured one",
            document.issuer
        );
        require_https_url("the discovery document's jwks_uri", &document.jwks_uri)?;
        Ok(document.jwks_uri)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> anyhow::Result<T> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?
            .error_for_status()?;
        Ok(response.json().await?)
    }
}

/// `jwk` as a verification key, if it is a signing key of an accepted algorithm.
fn signing_key(jwk: &Jwk) -> Option<SigningKey> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(params) if params.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        _ => return None,
    };
    let declared = jwk.common.key_algorithm;
    let fits = match declared {
        None => true,
        Some(KeyAlgorithm::RS256) => algorithm == Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => algorithm == Algorithm::ES256,
        Some(_) => false,
    };
    fits.then_some(())?;
    Some(SigningKey {
        key: DecodingKey::from_jwk(jwk).ok()?,
        algorithm,
    })
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(value: serde_json::Value) -> Jwk {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn only_signing_keys_of_accepted_algorithms_are_kept() {
        let rsa = serde_json::json!({"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"});
        assert_eq!(
            signing_key(&jwk(rsa.clone())).map(|k| k.algorithm),
            Some(Algorithm::RS256)
        );
        let mut encryption = rsa.clone();
        encryption["use"] = "enc".into();
        assert!(signing_key(&jwk(encryption)).is_none());
        let mut rs512 = rsa;
        rs512["alg"] = "RS512".into();
        assert!(signing_key(&jwk(rs512)).is_none());
        let hmac = serde_json::json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"});
        assert!(signing_key(&jwk(hmac)).is_none());
    }
}
