//! API tokens: several per user, each named, optionally expiring, revocable. Only the SHA-256
//! of a token's secret is stored; the token itself exists once, on the creator's terminal.

use anyhow::Context;
use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use tokio_postgres::error::SqlState;

use crate::domain::identity::{TokenId, UserId};

/// What verification needs to know about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredToken {
    /// Whose token it is.
    pub user_id: UserId,
    /// SHA-256 of the secret.
    pub secret_hash: [u8; 32],
    /// When it stops working, if ever.
    pub expires_at: Option<OffsetDateTime>,
    /// Whether an operator revoked it.
    pub revoked: bool,
}

/// A token as `token list` shows it: everything but the secret.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// The token's ID (the part before the dot).
    pub id: TokenId,
    /// Its name, unique among the user's live tokens.
    pub name: String,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it expires, if ever.
    pub expires_at: Option<OffsetDateTime>,
    /// When it last authenticated a request (to within the token cache period).
    pub last_used_at: Option<OffsetDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

/// Why a token could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateTokenError {
    /// The user already has a live token of this name.
    #[error("the user already has a live token named {0:?}")]
    NameTaken(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What `revoke` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// The token was live and is revoked now.
    Revoked,
    /// It had been revoked before.
    AlreadyRevoked,
    /// No token has this ID.
    NotFound,
}

/// Stores a new token of `user_id` whose secret hashes to `secret_hash`, named `name` or, by
/// default, `token <id>`.
pub async fn insert(
    client: &impl GenericClient,
    user_id: UserId,
    name: Option<&str>,
    secret_hash: &[u8; 32],
    expires_in_days: Option<u32>,
) -> Result<TokenId, CreateTokenError> {
    let days = expires_in_days
        .map(i32::try_from)
        .transpose()
        .context("expiry in days")?;
    let result = client
        .query_one(
            "WITH new_token AS (SELECT nextval(pg_get_serial_sequence('api_tokens', 'id')) AS id)
             INSERT INTO api_tokens (id, user_id, name, secret_hash, expires_at)
             SELECT id, $1, coalesce($2, 'token ' || id), $3, now() + make_interval(days => $4)
             FROM new_token
             RETURNING id",
            &[&user_id.0, &name, &secret_hash.as_slice(), &days],
        )
        .await;
    match result {
        Ok(row) => Ok(TokenId(row.try_get("id").map_err(anyhow::Error::new)?)),
        Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(
            CreateTokenError::NameTaken(name.unwrap_or("(default)").to_owned()),
        ),
        Err(error) => Err(anyhow::Error::new(error).context("creating a token").into()),
    }
}

/// The tag key and the untagged tokens' secret hashes (`api_token_scheme`, V10), as
/// [`crate::auth`] checks tokens before any lookup.
pub struct StoredScheme {
    pub tag_key: Vec<u8>,
    /// Every token issued before tags, with its secret hash.
    pub legacy: Vec<(TokenId, [u8; 32])>,
}

/// The tag key, which is all minting needs.
pub async fn tag_key(client: &impl GenericClient) -> anyhow::Result<Vec<u8>> {
    let row = client
        .query_one("SELECT tag_key FROM api_token_scheme", &[])
        .await
        .context("reading the token tag key")?;
    Ok(row.try_get("tag_key")?)
}

/// The whole scheme, in one statement.
pub async fn scheme(client: &impl GenericClient) -> anyhow::Result<StoredScheme> {
    let rows = client
        .query(
            "SELECT s.tag_key, t.id, t.secret_hash
             FROM api_token_scheme s
             LEFT JOIN api_tokens t ON t.id <= s.legacy_max_id",
            &[],
        )
        .await
        .context("reading the token scheme")?;
    let tag_key = rows
        .first()
        .context("api_token_scheme has no row")?
        .try_get("tag_key")?;
    let mut legacy = Vec::with_capacity(rows.len());
    for row in &rows {
        if let Some(id) = row.try_get::<_, Option<i64>>("id")? {
            let hash: Vec<u8> = row.try_get("secret_hash")?;
            legacy.push((TokenId(id), stored_hash(hash)?));
        }
    }
    Ok(StoredScheme { tag_key, legacy })
}

fn stored_hash(hash: Vec<u8>) -> anyhow::Result<[u8; 32]> {
    hash.try_into()
        .map_err(|_| anyhow::anyhow!("stored token hash is not 32 bytes"))
}

/// Token `id` as verification needs it.
pub async fn find(client: &impl GenericClient, id: TokenId) -> anyhow::Result<Option<StoredToken>> {
    let statement = client
        .prepare_cached(
            "SELECT user_id, secret_hash, expires_at, revoked_at IS NOT NULL AS revoked
             FROM api_tokens WHERE id = $1",
        )
        .await?;
    let row = client
        .query_opt(&statement, &[&id.0])
        .await
        .context("looking up a token")?;
    row.map(|row| {
        let hash: Vec<u8> = row.try_get("secret_hash")?;
        Ok(StoredToken {
            user_id: UserId(row.try_get("user_id")?),
            secret_hash: stored_hash(hash)?,
            expires_at: row.try_get("expires_at")?,
            revoked: row.try_get("revoked")?,
        })
    })
    .transpose()
}

/// Notes that token `id` was just used.
pub async fn touch(client: &impl GenericClient, id: TokenId) -> anyhow::Result<()> {
    let statement = client
        .prepare_cached("UPDATE api_tokens SET last_used_at = now() WHERE id = $1")
        .await?;
    client
        .execute(&statement, &[&id.0])
        .await
        .context("noting a token's use")?;
    Ok(())
}

/// Every token of `user_id`, oldest first.
pub async fn list(client: &impl GenericClient, user_id: UserId) -> anyhow::Result<Vec<TokenInfo>> {
    let rows = client
        .query(
            "SELECT id, name, created_at, expires_at, last_used_at, revoked_at
             FROM api_tokens WHERE user_id = $1 ORDER BY id",
            &[&user_id.0],
        )
        .await
        .context("listing tokens")?;
    rows.iter()
        .map(|row| {
            Ok(TokenInfo {
                id: TokenId(row.try_get("id")?),
                name: row.try_get("name")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                last_used_at: row.try_get("last_used_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        })
        .collect()
}

/// Revokes token `id`.
pub async fn revoke(client: &impl GenericClient, id: TokenId) -> anyhow::Result<Revocation> {
    // `now()` is this statement's transaction time, so it equals `revoked_at` only when this
    // statement set it: one statement tells all three outcomes apart. A token from before V7
    // (its ID is its user's) is also taken from instances still on the previous release, which
    // read users.token_hash (see sql/V7).
    let row = client
        .query_opt(
            "WITH revoked AS (
                 UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
                 WHERE id = $1 RETURNING id, user_id, revoked_at = now() AS just_now),
             legacy AS (
                 UPDATE users SET token_hash = DEFAULT
                 FROM revoked WHERE users.id = revoked.user_id AND revoked.id = revoked.user_id)
             SELECT just_now FROM revoked",
            &[&id.0],
        )
        .await
        .context("revoking a token")?;
    let just_now = row.map(|row| row.try_get("just_now")).transpose()?;
    Ok(match just_now {
        Some(true) => Revocation::Revoked,
        Some(false) => Revocation::AlreadyRevoked,
        None => Revocation::NotFound,
    })
}
