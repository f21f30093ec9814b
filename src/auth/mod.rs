//! Bearer tokens: API tokens (`<token id>.<secret><tag>`, see `api_token`) and identity tokens
//! of the configured OpenID Connect issuers (JWTs, see `oidc`), told apart by shape.
//!
//! Verified tokens are remembered for a short time so that a burst of duplicate requests costs
//! one verification, not one each, and so is what the database said about an API token's ID.
//! A token this service never issued is refused before any lookup, so a flood of bad tokens
//! costs no query, and nobody is ever refused for an address's failures: they are only logged,
//! once per window (`failure_log`). The first verified token of a new identity provisions its
//! user.

mod api_token;
mod error;
mod expiring;
mod failure_log;
mod oidc;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::OnceCell;

use crate::configuration::AuthSettings;
use crate::domain::identity::{TokenId, UserId};
use crate::stats::Stats;
use crate::storage::{StorageError, Store, StoredToken};

pub(crate) use api_token::{TokenScheme, new_secret};
pub use error::AuthError;
use expiring::ExpiringMap;
use failure_log::FailureLog;
pub(crate) use oidc::require_https_url;
use oidc::{OidcVerifier, Refusal};

/// A token that passed every check, and until when it may be taken on trust.
#[derive(Debug, Clone, Copy)]
struct Verified {
    user_id: UserId,
    /// The token's own expiry, if it comes before the cache entry's.
    valid_until: Option<Instant>,
}

/// Verifies bearer tokens (API tokens against the database, identity tokens against their
/// issuer's keys), remembering for a short time what it learned.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<AuthenticatorInner>,
}

struct AuthenticatorInner {
    store: Store,
    stats: Stats,
    /// Digests of whole tokens verified moments ago: a hit proves the caller presented exactly
    /// such a token, so a burst of duplicate requests costs one lookup, not one each.
    verified: ExpiringMap<[u8; 32], UserId>,
    /// What the database said about an API token ID (or that there is no such token). Only
    /// IDs of tokens this service issued get here, so "no such token" is never said of an ID
    /// that may yet be issued.
    looked_up: ExpiringMap<TokenId, Option<StoredToken>>,
    /// The tag key and the untagged tokens, read on the first API token (not when the instance
    /// starts: it listens before its migrations have run).
    scheme: OnceCell<TokenScheme>,
    /// Addresses that keep failing, for the log.
    failures: FailureLog,
    /// Identity tokens of the configured issuers.
    oidc: OidcVerifier,
}

impl Authenticator {
    /// An authenticator reading users through `store`, counting its lookups in `stats`.
    pub fn new(
        store: Store,
        stats: Stats,
        settings: &AuthSettings,
    ) -> anyhow::Result<Authenticator> {
        let ttl = settings.token_cache_ttl;
        let capacity = settings.token_cache_capacity;
        Ok(Authenticator {
            inner: Arc::new(AuthenticatorInner {
                store,
                stats,
                verified: ExpiringMap::new(ttl, capacity),
                looked_up: ExpiringMap::new(ttl, capacity),
                scheme: OnceCell::new(),
                failures: FailureLog::new(settings.failure_log_window, capacity),
                oidc: OidcVerifier::new(settings)?,
            }),
        })
    }

    /// The user holding `token`, presented from `peer` (named in the log if it fails).
    pub async fn authenticate(
        &self,
        token: &str,
        peer: Option<IpAddr>,
    ) -> Result<UserId, AuthError> {
        let inner = &self.inner;
        let now = Instant::now();
        // The whole token's digest, whichever kind it is: the cache never holds a token itself.
        let digest = api_token::hash_secret(token);
        if let Some(user_id) = inner.verified.get(&digest, now) {
            return Ok(user_id);
        }
        let outcome = if oidc::looks_like_jwt(token) {
            self.verify_identity_token(token, now).await
        } else {
            self.verify_api_token(token, now).await
        };
        match outcome {
            Ok(verified) => {
                inner
                    .verified
                    .insert_until(digest, verified.user_id, now, verified.valid_until);
                Ok(verified.user_id)
            }
            Err(error) => {
                if error.counts_against_caller() {
                    inner.stats.record_auth_failure();
                    if let Some(peer) = peer {
                        inner.failures.failed(peer, now);
                    }
                }
                Err(error)
            }
        }
    }

    async fn verify_api_token(&self, token: &str, now: Instant) -> Result<Verified, AuthError> {
        let inner = &self.inner;
        if !api_token::looks_like_api_token(token) {
            return Err(AuthError::invalid_token("malformed bearer token"));
        }
        let (token_id, secret) = self
            .scheme()
            .await?
            .vouched_secret(token)
            .ok_or_else(|| AuthError::invalid_token("unknown bearer token"))?;
        // What the database said is trusted until its own entry expires, never longer: a
        // verification built on it must not restart the clock a revocation is waiting for.
        let (stored, said_until) = match inner.looked_up.get(&token_id, now) {
            Some(stored) => (stored, inner.looked_up.expires_at(&token_id, now)),
            None => {
                inner.stats.record_token_lookup();
                let stored = inner.store.find_token(token_id).await?;
                inner.looked_up.insert(token_id, stored, now);
                (stored, None)
            }
        };
        // Nothing about the token is told before its secret has been shown to match.
        let stored = stored
            .filter(|stored| api_token::secret_matches(secret, &stored.secret_hash))
            .ok_or_else(|| AuthError::invalid_token("unknown bearer token"))?;
        if stored.revoked {
            return Err(AuthError::invalid_token("this API token has been revoked"));
        }
        let expires = match stored.expires_at {
            None => None,
            Some(expires_at) => {
                let left = expires_at - OffsetDateTime::now_utc();
                if !left.is_positive() {
                    return Err(AuthError::invalid_token("this API token has expired"));
                }
                Some(now + Duration::try_from(left).unwrap_or_default())
            }
        };
        let valid_until = [expires, said_until].into_iter().flatten().min();
        // Once per cache period, not once per request; a failed note costs nobody a request.
        let store = inner.store.clone();
        actix_web::rt::spawn(async move {
            if let Err(error) = store.touch_token(token_id).await {
                tracing::debug!(error = %error, "could not note an API token's use");
            }
        });
        Ok(Verified {
            user_id: stored.user_id,
            valid_until,
        })
    }

    async fn scheme(&self) -> Result<&TokenScheme, StorageError> {
        let inner = &self.inner;
        inner
            .scheme
            .get_or_try_init(async || {
                inner.stats.record_token_lookup();
                let stored = inner.store.token_scheme().await?;
                Ok(TokenScheme::new(
                    stored.tag_key,
                    stored.legacy.into_iter().collect(),
                ))
            })
            .await
    }

    async fn verify_identity_token(
        &self,
        token: &str,
        now: Instant,
    ) -> Result<Verified, AuthError> {
        let verified = self
            .inner
            .oidc
            .verify(token)
            .await
            .map_err(|refusal| match refusal {
                Refusal::Invalid(message) => AuthError::InvalidToken(message),
                Refusal::KeysUnavailable => AuthError::IdentityProviderUnavailable,
            })?;
        let user_id = self.inner.store.provision(&verified.identity).await?;
        Ok(Verified {
            user_id,
            valid_until: Some(now + verified.valid_for),
        })
    }
}
