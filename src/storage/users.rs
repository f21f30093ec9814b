//! Users: created by an operator (named), or provisioned on the first request of an identity
//! provider's person (unnamed, known by issuer and subject).

use anyhow::Context;
use deadpool_postgres::GenericClient;
use tokio_postgres::error::SqlState;

use time::OffsetDateTime;

use crate::domain::identity::{Identity, UserId};

/// A user as `user list` shows it.
#[derive(Debug, Clone)]
pub struct UserInfo {
    /// Its ID (what `--user-id` takes).
    pub id: UserId,
    /// The operator's name for it; identity users have none.
    pub name: Option<String>,
    /// When it was created (by an operator, or by its identity's first request).
    pub created_at: OffsetDateTime,
    /// Tokens neither revoked nor expired.
    pub live_tokens: i64,
    /// `issuer subject` of each identity it signs in as.
    pub identities: Vec<String>,
}

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
        Ok(row) => Ok(UserId(row.try_get("id").map_err(anyhow::Error::new)?)),
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
    row.map(|row| Ok(UserId(row.try_get("id")?))).transpose()
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
/// `sql/functions/provision_identity.sql` for why concurrent first contacts end with one user.
pub async fn provision(client: &impl GenericClient, identity: &Identity) -> anyhow::Result<UserId> {
    let statement = client
        .prepare_cached("SELECT provision_identity(p_issuer => $1, p_subject => $2) AS user_id")
        .await?;
    let row = client
        .query_one(&statement, &[&identity.issuer, &identity.subject])
        .await
        .context("provisioning an identity's user")?;
    Ok(UserId(row.try_get("user_id")?))
}

/// Every user, or those with an identity whose subject is `subject`, oldest first.
pub async fn list(
    client: &impl GenericClient,
    subject: Option<&str>,
) -> anyhow::Result<Vec<UserInfo>> {
    let rows = client
        .query(
            "SELECT u.id, u.name, u.created_at,
                    (SELECT count(*) FROM api_tokens t
                      WHERE t.user_id = u.id AND t.revoked_at IS NULL
                        AND (t.expires_at IS NULL OR t.expires_at > now())) AS live_tokens,
                    coalesce((SELECT array_agg(i.issuer || ' ' || i.subject ORDER BY i.created_at)
                                FROM identities i WHERE i.user_id = u.id), '{}') AS identities
             FROM users u
             WHERE $1::TEXT IS NULL
                OR EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id AND i.subject = $1)
             ORDER BY u.id",
            &[&subject],
        )
        .await
        .context("listing users")?;
    rows.iter()
        .map(|row| {
            Ok(UserInfo {
                id: UserId(row.try_get("id")?),
                name: row.try_get("name")?,
                created_at: row.try_get("created_at")?,
                live_tokens: row.try_get("live_tokens")?,
                identities: row.try_get("identities")?,
            })
        })
        .collect()
}
