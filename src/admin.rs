//! What an operator does from the command line: create users, create, list and revoke their
//! API tokens, and look after webhook events (list, retry the dead, resume after a 410). Each command migrates first (so it works on a fresh database) and prints
//! only what it was asked for; a new token is printed once and never stored.

use std::collections::HashMap;

use anyhow::Context;
use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth;
use crate::configuration::Settings;
use crate::domain::identity::{TokenId, UserId};
use crate::storage::admin::{
    find_user, insert_token, insert_user, list_tokens, list_webhook_events, resume_webhooks,
    retry_dead_webhooks, revoke_token, token_tag_key, user_exists, users_with,
};
use crate::storage::{self, EventSummary, Revocation, TokenInfo, UserInfo, migrations};

/// Which user a command is about: operators name users, identity-provider users have only IDs.
#[derive(Debug, Clone)]
pub(crate) enum UserRef {
    Name(String),
    Id(i64),
}

/// A new API token's name and lifetime.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewToken {
    pub(crate) name: Option<String>,
    pub(crate) expires_in_days: Option<u32>,
}

/// Migrates the database, creates a user named `name` with a first token, and returns the
/// token (the only time it exists in full).
pub async fn create_user(
    settings: &Settings,
    database: &tokio_postgres::Config,
    name: &str,
) -> anyhow::Result<String> {
    let mut client = connect(settings, database).await?;
    // The user and its token appear together or not at all.
    let transaction = client.transaction().await?;
    let user_id = insert_user(&transaction, name).await?;
    let token = mint(
        &transaction,
        user_id,
        &NewToken {
            name: Some("first token".to_owned()),
            expires_in_days: None,
        },
    )
    .await?;
    transaction.commit().await?;
    Ok(token)
}

/// Creates a token for `user` and returns it.
pub(crate) async fn create_token(
    settings: &Settings,
    database: &tokio_postgres::Config,
    user: &UserRef,
    new: &NewToken,
) -> anyhow::Result<String> {
    let client = connect(settings, database).await?;
    let user_id = resolve(&client, user).await?;
    mint(&client, user_id, new).await
}

/// `user`'s tokens as a table, without secrets.
pub(crate) async fn list_user_tokens(
    settings: &Settings,
    database: &tokio_postgres::Config,
    user: &UserRef,
) -> anyhow::Result<String> {
    let client = connect(settings, database).await?;
    let user_id = resolve(&client, user).await?;
    let tokens = list_tokens(&client, user_id).await?;
    Ok(token_table(&tokens, OffsetDateTime::now_utc()))
}

/// Users as a table, all of them or those signing in as `subject` (of any issuer).
pub(crate) async fn list_users(
    settings: &Settings,
    database: &tokio_postgres::Config,
    subject: Option<&str>,
) -> anyhow::Result<String> {
    let client = connect(settings, database).await?;
    Ok(user_table(&users_with(&client, subject).await?))
}

/// Revokes token `id`; what happened, in words.
pub(crate) async fn revoke(
    settings: &Settings,
    database: &tokio_postgres::Config,
    id: i64,
) -> anyhow::Result<String> {
    let client = connect(settings, database).await?;
    match revoke_token(&client, TokenId(id)).await? {
        Revocation::Revoked => Ok(format!(
            "revoked token {id}; instances refuse it within auth.token_cache_ttl_ms"
        )),
        Revocation::AlreadyRevoked => Ok(format!("token {id} was already revoked")),
        Revocation::NotFound => anyhow::bail!("there is no token {id}"),
    }
}

/// Which dead webhook events to send again.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DeadEvents {
    One(i64),
    All,
}

/// Undelivered webhook events (pending and dead), or only the dead ones, as a table.
pub(crate) async fn list_webhooks(
    settings: &Settings,
    database: &tokio_postgres::Config,
    dead_only: bool,
) -> anyhow::Result<String> {
    let client = connect(settings, database).await?;
    Ok(event_table(&list_webhook_events(&client, dead_only).await?))
}

/// Makes dead events due again with a fresh retry schedule; what happened, in words.
pub(crate) async fn retry_webhooks(
    settings: &Settings,
    database: &tokio_postgres::Config,
    which: DeadEvents,
) -> anyhow::Result<String> {
    let client = connect(settings, database).await?;
    match which {
        DeadEvents::One(id) => {
            anyhow::ensure!(
                retry_dead_webhooks(&client, Some(id)).await? == 1,
                "there is no dead webhook event {id}"
            );
            Ok(format!("webhook event {id} is due again"))
        }
        DeadEvents::All => {
            let count = retry_dead_webhooks(&client, None).await?;
            Ok(format!("{count} dead webhook events are due again"))
        }
    }
}

/// Resumes webhook delivery after the endpoint answered 410 Gone; what happened, in words.
pub(crate) async fn resume_webhook_delivery(
    settings: &Settings,
    database: &tokio_postgres::Config,
) -> anyhow::Result<String> {
    let client = connect(settings, database).await?;
    Ok(if resume_webhooks(&client).await? {
        "webhook delivery resumed".to_owned()
    } else {
        "webhook delivery was not paused".to_owned()
    })
}

async fn connect(
    settings: &Settings,
    database: &tokio_postgres::Config,
) -> anyhow::Result<deadpool_postgres::Object> {
    migrations::run_migrations(database).await?;
    let pool = storage::connect_pool(database, settings.database.pool(), None)?;
    pool.get().await.context("connecting to the database")
}

async fn mint(
    client: &impl GenericClient,
    user_id: UserId,
    new: &NewToken,
) -> anyhow::Result<String> {
    let (secret, hash) = auth::new_secret();
    let id = insert_token(
        client,
        user_id,
        new.name.as_deref(),
        &hash,
        new.expires_in_days,
    )
    .await?;
    let scheme = auth::TokenScheme::new(token_tag_key(client).await?, HashMap::new());
    Ok(scheme.token(id, &secret))
}

async fn resolve(client: &impl GenericClient, user: &UserRef) -> anyhow::Result<UserId> {
    match user {
        UserRef::Name(name) => find_user(client, name)
            .await?
            .with_context(|| format!("there is no user named {name:?}")),
        UserRef::Id(id) => {
            anyhow::ensure!(
                user_exists(client, UserId(*id)).await?,
                "there is no user {id}"
            );
            Ok(UserId(*id))
        }
    }
}

/// A tab-separated table with a header line: aligned enough on a terminal, and `cut -f`
/// friendly in a script (names cannot contain control characters).
fn tsv<const N: usize>(header: [&str; N], rows: impl IntoIterator<Item = [String; N]>) -> String {
    let mut table = header.join("\t") + "\n";
    for row in rows {
        table.push_str(&row.join("\t"));
        table.push('\n');
    }
    table
}

/// RFC 3339 to the second, or `-`.
fn when(at: Option<OffsetDateTime>) -> String {
    at.and_then(|at| at.replace_nanosecond(0).ok()?.format(&Rfc3339).ok())
        .unwrap_or_else(|| "-".to_owned())
}

fn token_table(tokens: &[TokenInfo], now: OffsetDateTime) -> String {
    let rows = tokens.iter().map(|token| {
        let status = match (token.revoked_at, token.expires_at) {
            (Some(_), _) => "revoked",
            (None, Some(expires)) if expires <= now => "expired",
            _ => "active",
        };
        [
            token.id.to_string(),
            token.name.clone(),
            when(Some(token.created_at)),
            when(token.expires_at),
            when(token.last_used_at),
            status.to_owned(),
        ]
    });
    tsv(
        ["ID", "NAME", "CREATED", "EXPIRES", "LAST USED", "STATUS"],
        rows,
    )
}

fn user_table(users: &[UserInfo]) -> String {
    let rows = users.iter().map(|user| {
        [
            user.id.to_string(),
            user.name.clone().unwrap_or_else(|| "-".to_owned()),
            when(Some(user.created_at)),
            user.live_tokens.to_string(),
            if user.identities.is_empty() {
                "-".to_owned()
            } else {
                user.identities.join(", ")
            },
        ]
    });
    tsv(["ID", "NAME", "CREATED", "LIVE TOKENS", "IDENTITIES"], rows)
}

fn event_table(events: &[EventSummary]) -> String {
    let rows = events.iter().map(|event| {
        [
            event.id.to_string(),
            event.kind.clone(),
            event.user_id.to_string(),
            event.session_id.clone(),
            event.version.to_string(),
            when(Some(event.created_at)),
            event.attempts.to_string(),
            event.state.to_owned(),
            event
                .last_error
                .as_deref()
                .unwrap_or("-")
                .replace(char::is_control, " "),
        ]
    });
    tsv(
        [
            "ID",
            "TYPE",
            "USER",
            "SESSION",
            "VERSION",
            "CREATED",
            "ATTEMPTS",
            "STATE",
            "LAST ERROR",
        ],
        rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_token_table_shows_status_and_no_secret() {
        let now = datetime!(2026-11-30 12:00 UTC);
        let token = |id, name: &str, expires_at, revoked_at| TokenInfo {
            id: TokenId(id),
            name: name.to_owned(),
            created_at: datetime!(2026-11-01 08:00:00.5 UTC),
            expires_at,
            last_used_at: None,
            revoked_at,
        };
        let table = token_table(
            &[
                token(1, "first token", None, None),
                token(2, "ci", Some(datetime!(2026-11-02 0:00 UTC)), None),
                token(3, "laptop", None, Some(now)),
            ],
            now,
        );
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], "ID\tNAME\tCREATED\tEXPIRES\tLAST USED\tSTATUS");
        assert_eq!(
            lines[1],
            "1\tfirst token\t2026-11-01T08:00:00Z\t-\t-\tactive"
        );
        assert!(lines[2].ends_with("expired"));
        assert!(lines[3].ends_with("revoked"));
    }
}
