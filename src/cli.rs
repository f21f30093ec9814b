//! The `email-sessions` command line: `serve`, `migrate`, `user create|list`, `token
//! create|list|revoke` and `webhook list|retry|resume`. Each command finds
//! its database first (`DATABASE_URL`, or the embedded cluster where the configuration enables
//! it) and stops at once, naming `DATABASE_URL`, when there is none.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::admin::{self, DeadEvents, NewToken, UserRef};
use crate::configuration::Settings;
use crate::database::Database;
use crate::lifecycle::Phase;
use crate::startup::Application;
use crate::storage::migrations;
use crate::telemetry;

/// What `serve` prints on stdout, before the address, once it listens: scripts (and the load
/// tool) that start `serve --bind 127.0.0.1:0` learn the port from this line.
const LISTENING_PREFIX: &str = "listening on ";

/// Email session API: collapses a plugin's duplicate reports into
/// exactly-once session data.
#[derive(Parser)]
#[command(name = "email-sessions", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Listens, applies pending migrations, then serves the API until SIGTERM/SIGINT.
    Serve {
        /// Address to listen on (overrides configuration).
        #[arg(long)]
        bind: Option<SocketAddr>,
    },
    /// Applies pending migrations and exits.
    Migrate {
        /// Stop after this version (e.g. to stage a rollout, or to test a data migration).
        #[arg(long, value_name = "VERSION")]
        target: Option<u32>,
    },
    /// Manages API users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manages users' API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Looks after webhook events: lists them, sends dead ones again, resumes after a 410.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Lists undelivered events (pending and dead), oldest first.
    List {
        /// Only the dead ones (every attempt of the retry schedule failed).
        #[arg(long)]
        dead: bool,
    },
    /// Makes a dead event due again, with a fresh retry schedule.
    Retry {
        /// The event's ID (as `webhook list` shows it).
        #[arg(required_unless_present = "all_dead", conflicts_with = "all_dead")]
        id: Option<i64>,
        /// Every dead event.
        #[arg(long)]
        all_dead: bool,
    },
    /// Resumes delivery after the endpoint answered 410 Gone.
    Resume,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Creates a user and prints its first token alone on stdout.
    Create {
        /// A unique name for the user.
        #[arg(value_parser = parse_name)]
        name: String,
    },
    /// Lists users (ID, name, creation, live tokens, identities), oldest first.
    List {
        /// Only users signing in as this subject (`sub`), of any issuer.
        #[arg(long)]
        subject: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Creates an API token and prints it alone on stdout (the only time it is shown).
    Create {
        #[command(flatten)]
        user: UserArg,
        /// A name telling this token apart from the user's other live tokens
        /// [default: "token <id>"].
        #[arg(long, value_parser = parse_name)]
        name: Option<String>,
        /// Days until the token stops working [default: never].
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
        expires_in: Option<u32>,
    },
    /// Lists a user's tokens: ID, name, creation, expiry, last use and status; never a secret.
    List {
        #[command(flatten)]
        user: UserArg,
    },
    /// Revokes a token; every instance refuses it within `auth.token_cache_ttl_ms`.
    Revoke {
        /// The token's ID (the part before the dot, as `token list` shows it).
        token_id: i64,
    },
}

/// A user by name, or by ID (users provisioned from an identity provider have no name).
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct UserArg {
    /// The user's name.
    user: Option<String>,
    /// The user's ID instead of its name.
    #[arg(long)]
    user_id: Option<i64>,
}

impl From<UserArg> for UserRef {
    fn from(user: UserArg) -> UserRef {
        match (user.user, user.user_id) {
            (_, Some(id)) => UserRef::Id(id),
            (name, None) => UserRef::Name(name.unwrap_or_default()),
        }
    }
}

/// 1-200 characters once trimmed (what the database accepts), none of them a control character
/// (the lists are tab-separated).
fn parse_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if !(1..=200).contains(&name.chars().count()) {
        return Err("a name is 1 to 200 characters".to_owned());
    }
    if name.chars().any(char::is_control) {
        return Err("a name cannot contain control characters (tabs, newlines)".to_owned());
    }
    Ok(name.to_owned())
}

/// Parses the command line, runs the command, and reports a failure on stderr.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init_tracing();
    let result = actix_web::rt::System::new().block_on(run(cli.command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    let mut settings = Settings::load()?;
    if let Command::Serve { bind: Some(bind) } = &command {
        settings.server.bind = *bind;
    }
    let database = Database::open(&settings).await?;
    let result = match command {
        Command::Serve { .. } => serve(&settings, &database.config).await,
        Command::Migrate { target } => migrations::run_migrations_to(&database.config, target)
            .await
            .map(|()| tracing::info!("migrations are up to date")),
        Command::User {
            command: UserCommand::Create { name },
        } => admin::create_user(&settings, &database.config, &name)
            .await
            .map(|token| println!("{token}")),
        Command::User {
            command: UserCommand::List { subject },
        } => admin::list_users(&settings, &database.config, subject.as_deref())
            .await
            .map(|table| print!("{table}")),
        Command::Token { command } => run_token_command(&settings, &database.config, command).await,
        Command::Webhook { command } => {
            run_webhook_command(&settings, &database.config, command).await
        }
    };
    let closed = database.close().await;
    result.and(closed)
}

/// Listens at once (so `/readyz` can say "starting"), migrates, then serves
/// until SIGTERM/SIGINT and drains.
async fn serve(settings: &Settings, database: &tokio_postgres::Config) -> anyhow::Result<()> {
    let application = Application::build(settings, database, Phase::Starting)?;
    let lifecycle = application.lifecycle();
    let address = SocketAddr::new(settings.server.bind.ip(), application.port());
    tracing::info!(%address, "listening");
    // On stdout, whatever the log level.
    println!("{LISTENING_PREFIX}{address}");
    let serving = actix_web::rt::spawn(application.run_until_signal());
    migrations::run_migrations(database).await?;
    lifecycle.finish_starting();
    tracing::info!("ready");
    serving.await.context("joining the server task")?
}

async fn run_token_command(
    settings: &Settings,
    database: &tokio_postgres::Config,
    command: TokenCommand,
) -> anyhow::Result<()> {
    let output = match command {
        TokenCommand::Create {
            user,
            name,
            expires_in,
        } => {
            let new = NewToken {
                name,
                expires_in_days: expires_in,
            };
            admin::create_token(settings, database, &user.into(), &new).await?
        }
        TokenCommand::List { user } => {
            let table = admin::list_user_tokens(settings, database, &user.into()).await?;
            print!("{table}");
            return Ok(());
        }
        TokenCommand::Revoke { token_id } => admin::revoke(settings, database, token_id).await?,
    };
    println!("{output}");
    Ok(())
}

async fn run_webhook_command(
    settings: &Settings,
    database: &tokio_postgres::Config,
    command: WebhookCommand,
) -> anyhow::Result<()> {
    let output = match command {
        WebhookCommand::List { dead } => {
            print!("{}", admin::list_webhooks(settings, database, dead).await?);
            return Ok(());
        }
        WebhookCommand::Retry { id, .. } => {
            let which = id.map_or(DeadEvents::All, DeadEvents::One);
            admin::retry_webhooks(settings, database, which).await?
        }
        WebhookCommand::Resume => admin::resume_webhook_delivery(settings, database).await?,
    };
    println!("{output}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn a_user_is_named_or_given_by_id_but_not_both() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        assert!(parse(&["es", "token", "list", "dana"]).is_ok());
        assert!(parse(&["es", "token", "list", "--user-id", "7"]).is_ok());
        assert!(parse(&["es", "token", "list"]).is_err());
        assert!(parse(&["es", "token", "list", "dana", "--user-id", "7"]).is_err());
        assert!(parse(&["es", "token", "create", "dana", "--expires-in", "0"]).is_err());
        assert!(parse(&["es", "token", "create", "dana", "--name", " "]).is_err());
        assert!(parse(&["es", "token", "create", "dana", "--name", "a\tb"]).is_err());
    }
}
