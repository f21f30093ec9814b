//! Users: created by an operator (named), or provisioned on the first request of an identity
//! provider's person (unnamed, known by issuer and subject).

use anyhow::Context;
use deadpool_postgres::GenericClient;
use tokio_postgres::error::SqlState;

use crate::domain::identity::{Identity, UserId};

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

/// Stores a new user named `name`.
pub async fn insert(client: &impl GenericClient, name: &str) -> Result<UserId, CreateUserError> {
    let result = client
        .query_one(
            "INSERT INTO users (name) VALUES ($1) RETURNING id",
            &[&name],
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

/// The user named `name`, if any.
pub async fn find_by_name(
    client: &impl GenericClient,
    name: &str,
) -> anyhow::Result<Option<UserId>> {
    let row = client
        .query_opt("SELECT id FROM users WHERE name = $1", &[&name])
        .await
        .context("looking up a user by name")?;
    Ok(row.map(|row| UserId(row.get(0))))
}

/// Whether user `id` exists.
pub async fn exists(client: &impl GenericClient, id: UserId) -> anyhow::Result<bool> {
    let row = client
        .query_opt("SELECT 1 FROM users WHERE id = $1", &[&id.0])
        .await
        .context("looking up a user by id")?;
    Ok(row.is_some())
}

/// The user of `identity`, created (with the identity) if this is its first contact; see
/// `provision_identity` in `sql/V7` for why concurrent first contacts end with one user.
pub async fn provision(client: &impl GenericClient, identity: &Identity) -> anyhow::Result<UserId> {
    let statement = client
        .prepare_cached("SELECT provision_identity($1, $2)")
        .await?;
    let row = client
        .query_one(&statement, &[&identity.issuer, &identity.subject])
        .await
        .context("provisioning an identity's user")?;
    Ok(UserId(row.get(0)))
}
