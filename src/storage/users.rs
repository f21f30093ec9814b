//! API users and their token hashes. Only the SHA-256 of a token's secret
//! is ever stored; the token itself exists once, on the creator's terminal.

use anyhow::Context;
use deadpool_postgres::GenericClient;
use tokio_postgres::error::SqlState;

use crate::domain::identity::UserId;

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// The name is taken.
    #[error("a user named {0:?} already exists")]
    NameTaken(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Stores a new user with the given token hash.
pub async fn insert(
    client: &impl GenericClient,
    name: &str,
    token_hash: &[u8; 32],
) -> Result<UserId, CreateUserError> {
    let result = client
        .query_one(
            "INSERT INTO users (name, token_hash) VALUES ($1, $2) RETURNING id",
            &[&name, &token_hash.as_slice()],
        )
        .await;
    match result {
        Ok(row) => Ok(UserId(row.get(0))),
        Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            Err(CreateUserError::NameTaken(name.to_owned()))
        }
        Err(error) => Err(anyhow::Error::new(error).context("creating a user").into()),
    }
}

/// The stored hash of user `id`'s token secret.
pub async fn token_hash(
    client: &impl GenericClient,
    id: UserId,
) -> anyhow::Result<Option<[u8; 32]>> {
    let statement = client
        .prepare_cached("SELECT token_hash FROM users WHERE id = $1")
        .await?;
    let row = client
        .query_opt(&statement, &[&id.0])
        .await
        .context("looking up a token")?;
    row.map(|row| {
        let stored: Vec<u8> = row.try_get("token_hash")?;
        stored
            .try_into()
            .map_err(|_| anyhow::anyhow!("stored token hash is not 32 bytes"))
    })
    .transpose()
}
