//! Bearer tokens: minting, hashing and verifying them.
//!
//! A token is `<user id>.<secret>`: the ID selects the user's row, and the
//! secret (256 random bits, shown once) is checked against the SHA-256 the
//! row keeps, in constant time. Looking the row up by ID rather than by
//! secret keeps the secret out of any variable-time comparison (a B-tree
//! search included). Verified tokens are remembered for a short time so that
//! a burst of duplicate requests costs one database lookup, not one each, and
//! so is what the database said about an ID, so a flood of bad tokens costs
//! little; an address that keeps failing is refused for a while (`throttle`).

mod expiring;
mod throttle;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use deadpool_postgres::GenericClient;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::configuration::AuthSettings;
use crate::domain::identity::UserId;
use crate::error::{ApiError, ErrorCode};
use crate::stats::Stats;
use crate::storage::{self, CreateUserError, Store};

use expiring::ExpiringMap;
use throttle::Throttle;

/// Creates a user named `name` and returns its new token, the only time the
/// token exists in full.
pub(crate) async fn register_user(
    client: &impl GenericClient,
    name: &str,
) -> Result<String, CreateUserError> {
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let id = storage::insert_user(client, name, &hash_secret(&secret)).await?;
    Ok(format!("{id}.{secret}"))
}

/// The only form in which a token's secret is stored.
fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Splits `<user id>.<secret>`.
///
/// The ID has one spelling only: decimal digits without a sign or leading zeros, so `+7`, `07`
/// and `7` cannot be three cache keys (and three lookups) for one user.
fn parse_token(token: &str) -> Option<(UserId, &str)> {
    let (id, secret) = token.split_once('.')?;
    let canonical = !id.is_empty()
        && id.bytes().all(|byte| byte.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    canonical.then_some(())?;
    Some((UserId(id.parse().ok()?), secret))
}

/// Verifies tokens against the database, remembering for a short time what it learned.
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
    /// What the database said about a user ID (its secret's hash, or that there is no such
    /// user), so a flood of bad tokens naming the same IDs costs no further lookups.
    looked_up: ExpiringMap<UserId, Option<[u8; 32]>>,
    /// Addresses that keep failing.
    throttle: Throttle,
}

impl Authenticator {
    /// An authenticator reading users through `store`, counting its lookups in `stats`.
    pub fn new(store: Store, stats: Stats, settings: &AuthSettings) -> Authenticator {
        let ttl = settings.token_cache_ttl();
        let capacity = settings.token_cache_capacity;
        Authenticator {
            inner: Arc::new(AuthenticatorInner {
                store,
                stats,
                verified: ExpiringMap::new(ttl, capacity),
                looked_up: ExpiringMap::new(ttl, capacity),
                throttle: Throttle::new(
                    settings.failures_before_throttle,
                    Duration::from_millis(settings.throttle_window_ms),
                    capacity,
                ),
            }),
        }
    }

    /// The user holding `token`, presented from `peer`: 401 when it is not a valid token, 429
    /// when `peer` has failed too often lately.
    pub async fn authenticate(
        &self,
        token: &str,
        peer: Option<IpAddr>,
    ) -> Result<UserId, ApiError> {
        let inner = &self.inner;
        let now = Instant::now();
        let digest = hash_secret(token);
        if let Some(id) = inner.verified.get(&digest, now) {
            return Ok(id);
        }
        if let Some(wait) = peer.and_then(|peer| inner.throttle.refused(peer, now)) {
            return Err(ApiError::new(
                ErrorCode::TooManyFailedAuthentications,
                "too many failed authentications from this address; try again later",
            )
            .with_retry_after(wait.as_secs() + 1));
        }
        match self.verify(token, now).await {
            Ok(id) => {
                inner.verified.insert(digest, id, now);
                Ok(id)
            }
            Err(error) => {
                if error.code() == ErrorCode::Unauthorized {
                    inner.stats.record_auth_failure();
                    if let Some(peer) = peer {
                        inner.throttle.failed(peer, now);
                    }
                }
                Err(error)
            }
        }
    }

    async fn verify(&self, token: &str, now: Instant) -> Result<UserId, ApiError> {
        let inner = &self.inner;
        let (user_id, secret) =
            parse_token(token).ok_or_else(|| unauthorized("malformed bearer token"))?;
        let stored = match inner.looked_up.get(&user_id, now) {
            Some(stored) => stored,
            None => {
                inner.stats.record_token_lookup();
                let stored = inner.store.token_hash(user_id).await?;
                inner.looked_up.insert(user_id, stored, now);
                stored
            }
        };
        let verified = stored.is_some_and(|stored| bool::from(stored.ct_eq(&hash_secret(secret))));
        if verified {
            Ok(user_id)
        } else {
            Err(unauthorized("unknown bearer token"))
        }
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}

/// The caller, proven by a valid `Authorization: Bearer <token>` header.
#[derive(Debug, Clone, Copy)]
pub struct AuthenticatedUser(pub UserId);

impl FromRequest for AuthenticatedUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<AuthenticatedUser, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let authenticator = request.app_data::<web::Data<Authenticator>>().cloned();
        let token = bearer_token(request);
        let peer = request.peer_addr().map(|address| address.ip());
        Box::pin(async move {
            let authenticator = authenticator.ok_or_else(|| {
                ApiError::internal(
                    ErrorCode::Internal,
                    "internal error",
                    anyhow::anyhow!("no Authenticator in app data"),
                )
            })?;
            let token = token?;
            authenticator
                .authenticate(&token, peer)
                .await
                .map(AuthenticatedUser)
        })
    }
}

fn bearer_token(request: &HttpRequest) -> Result<String, ApiError> {
    let mut values = request.headers().get_all(header::AUTHORIZATION);
    let value = values
        .next()
        .ok_or_else(|| unauthorized("missing Authorization header; send `Bearer <token>`"))?;
    if values.next().is_some() {
        // Which one a proxy or a cache would honour is anyone's guess: refuse both.
        return Err(ApiError::new(
            ErrorCode::InvalidAuthorization,
            "more than one Authorization header; send exactly one",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| unauthorized("Authorization header is not valid text"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| unauthorized("Authorization header must be `Bearer <token>`"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(unauthorized(
            "Authorization header must be `Bearer <token>`",
        ));
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_into_user_and_secret() {
        assert_eq!(parse_token("42.abc"), Some((UserId(42), "abc")));
        assert_eq!(parse_token("abc"), None);
        assert_eq!(parse_token("x.abc"), None);
        for other_spelling in [
            "+42.abc", "042.abc", "-42.abc", " 42.abc", ".abc", "4_2.abc",
        ] {
            assert_eq!(parse_token(other_spelling), None, "{other_spelling}");
        }
        assert_ne!(hash_secret("a"), hash_secret("b"));
    }
}
