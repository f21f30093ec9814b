//! Bearer tokens: minting, hashing and verifying them.
//!
//! A token is 256 random bits shown once; the database keeps only its
//! SHA-256. Verified tokens are remembered for a short time so that a burst
//! of duplicate requests costs one database lookup, not one per request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use dashmap::DashMap;
use deadpool_postgres::Pool;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::configuration::AuthSettings;
use crate::domain::identity::UserId;
use crate::error::{ApiError, ErrorCode};
use crate::storage::{StorageError, retry, users};

/// Mints a new random token (64 hex characters).
pub fn generate_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The only form in which a token is stored.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Verifies tokens against the database, with a short-lived cache.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<AuthenticatorInner>,
}

struct AuthenticatorInner {
    pool: Pool,
    // DashMap because every worker thread reads it on every request and
    // writes are rare; shards keep readers from queueing behind each other.
    cache: DashMap<[u8; 32], CachedUser>,
    ttl: Duration,
    capacity: usize,
}

#[derive(Clone, Copy)]
struct CachedUser {
    id: UserId,
    token_hash: [u8; 32],
    expires_at: Instant,
}

impl Authenticator {
    /// An authenticator reading users through `pool`.
    pub fn new(pool: Pool, settings: &AuthSettings) -> Authenticator {
        Authenticator {
            inner: Arc::new(AuthenticatorInner {
                pool,
                cache: DashMap::new(),
                ttl: settings.token_cache_ttl(),
                capacity: settings.token_cache_capacity,
            }),
        }
    }

    /// The user holding `token`, or 401.
    pub async fn authenticate(&self, token: &str) -> Result<UserId, ApiError> {
        let presented = hash_token(token);
        let now = Instant::now();
        if let Some(cached) = self.inner.cache.get(&presented).map(|entry| *entry)
            && cached.expires_at > now
            && bool::from(cached.token_hash.ct_eq(&presented))
        {
            return Ok(cached.id);
        }
        let client = self.inner.pool.get().await.map_err(|error| {
            ApiError::from(StorageError::Unavailable(anyhow::Error::new(error)))
        })?;
        let stored = users::find_by_token_hash(&client, &presented)
            .await
            .map_err(|error| match retry::transient_cause(&error) {
                Some(_) => ApiError::from(StorageError::Unavailable(error)),
                None => ApiError::from(StorageError::Failed(error)),
            })?;
        let user = match stored {
            Some(user) if bool::from(user.token_hash.ct_eq(&presented)) => user,
            _ => return Err(unauthorized("unknown bearer token")),
        };
        self.remember(presented, user.id, now);
        Ok(user.id)
    }

    fn remember(&self, token_hash: [u8; 32], id: UserId, now: Instant) {
        let cache = &self.inner.cache;
        if cache.len() >= self.inner.capacity {
            cache.retain(|_, cached| cached.expires_at > now);
            if cache.len() >= self.inner.capacity {
                return;
            }
        }
        cache.insert(
            token_hash,
            CachedUser {
                id,
                token_hash,
                expires_at: now + self.inner.ttl,
            },
        );
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
                .authenticate(&token)
                .await
                .map(AuthenticatedUser)
        })
    }
}

fn bearer_token(request: &HttpRequest) -> Result<String, ApiError> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("missing Authorization header; send `Bearer <token>`"))?;
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
    fn tokens_are_unique_and_hash_to_32_bytes() {
        let (a, b) = (generate_token(), generate_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(hash_token(&a), hash_token(&b));
    }
}
