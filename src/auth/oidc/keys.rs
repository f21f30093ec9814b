//! One issuer's signing keys (its JWKS): fetched when a token names a key ID they lack (that
//! request waits for the fetch), fetched again in the background once they are older than the
//! maximum age (requests keep verifying with them meanwhile), one fetch at a time and at most
//! once per refetch interval. An answer larger than the bounds counts as a failed fetch, and
//! the cached keys stay in use while the issuer cannot be reached or answers with too much.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;

use super::jwks::{self, SigningKey};
use super::{capped_body, require_https_url};
use crate::metric_names;

/// What a lookup by key ID found.
pub(super) enum KeyLookup {
    Found(SigningKey),
    /// The issuer answered, and publishes no such key.
    Unknown,
    /// The key is not cached and the issuer could not be reached.
    Unavailable,
}

/// How often and how patiently keys are fetched, and how much of an answer is read.
#[derive(Debug, Clone, Copy)]
pub(super) struct FetchPolicy {
    pub(super) refetch_interval: Duration,
    pub(super) max_age: Duration,
    /// Of one answer: the discovery document or the JWKS.
    pub(super) max_bytes: usize,
    pub(super) max_keys: usize,
}

/// Shared as an `Arc`, so a background refresh can outlive the request that started it.
pub(super) struct IssuerKeys {
    issuer: String,
    /// Configured, or `None` until discovery found it.
    configured_jwks_uri: Option<String>,
    http: reqwest::Client,
    policy: FetchPolicy,
    /// Swapped whole after each fetch; readers never wait for a fetch.
    keys: RwLock<Arc<KeySet>>,
    /// Held while fetching: concurrent misses wait for one fetch instead of each making one.
    /// An `Arc` of its own, so a background refresh can own its guard.
    fetching: Arc<tokio::sync::Mutex<FetchState>>,
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
            fetching: Arc::default(),
        }
    }

    /// The key named `kid`.
    pub(super) async fn find(self: &Arc<Self>, kid: &str) -> KeyLookup {
        let cached = self.current();
        if let Some(key) = cached.by_id.get(kid) {
            // A stale key still verifies. The request never waits for its refresh: an issuer
            // that drops packets would hold it for the fetch timeout.
            if !self.is_fresh(&cached) {
                self.refresh_in_background();
            }
            return KeyLookup::Found(key.clone());
        }
        // Nothing to verify with: wait for the one fetch in flight, if any.
        let mut state = self.fetching.lock().await;
        // Whoever held the lock before may have fetched just what we need.
        if let Some(key) = self.current().by_id.get(kid) {
            return KeyLookup::Found(key.clone());
        }
        if !self.fetched_lately(&state) {
            self.refresh(&mut state).await;
        }
        // Stale keys beat no keys while the issuer is away.
        match self.current().by_id.get(kid) {
            Some(key) => KeyLookup::Found(key.clone()),
            None if state.last_failed => KeyLookup::Unavailable,
            None => KeyLookup::Unknown,
        }
    }

    /// Starts a refresh on this worker unless one is in flight (that one is the refresh) or
    /// the last one ended less than a refetch interval ago.
    fn refresh_in_background(self: &Arc<Self>) {
        let Ok(mut state) = self.fetching.clone().try_lock_owned() else {
            return;
        };
        if self.fetched_lately(&state) {
            return;
        }
        let keys = Arc::clone(self);
        actix_web::rt::spawn(async move { keys.refresh(&mut state).await });
    }

    /// Counted from the end of the last fetch, so requests queued behind a fetch that timed
    /// out do not each try again.
    fn fetched_lately(&self, state: &FetchState) -> bool {
        state
            .last_attempt
            .is_some_and(|last| last.elapsed() < self.policy.refetch_interval)
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
                // The chain says why (unreachable, too large, too many keys), never what the
                // answer held.
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

    fn is_fresh(&self, keys: &KeySet) -> bool {
        keys.fetched_at
            .is_some_and(|fetched| fetched.elapsed() < self.policy.max_age)
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
        let body = self.get(&jwks_uri).await.context("fetching the JWKS")?;
        let max_keys = self.policy.max_keys;
        // Reading a set takes time in proportion to its size: on a blocking thread, so the
        // HTTP worker that fetched it goes on serving requests (and /healthz) meanwhile.
        let by_id = tokio::task::spawn_blocking(move || jwks::read(&body, max_keys))
            .await
            .context("reading the JWKS stopped before its end")?
            .context("fetching the JWKS")?;
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
        let body = self
            .get(&url)
            .await
            .context("fetching the discovery document")?;
        let document: Discovery =
            serde_json::from_slice(&body).context("reading the discovery document")?;
        anyhow::ensure!(
            document.issuer == self.issuer,
            "the discovery document names issuer {:?}, not the configured one",
            document.issuer
        );
        require_https_url("the discovery document's jwks_uri", &document.jwks_uri)?;
        Ok(document.jwks_uri)
    }

    async fn get(&self, url: &str) -> anyhow::Result<Vec<u8>> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?
            .error_for_status()?;
        capped_body::read(response, self.policy.max_bytes).await
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}
