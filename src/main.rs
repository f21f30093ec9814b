//! The `email-sessions` command: parses the command line and calls the
//! library; nothing else lives here.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use email_sessions::auth;
use email_sessions::bench::{self, BenchArgs};
use email_sessions::burst::{self, BurstArgs};
use email_sessions::configuration::Settings;
use email_sessions::database::Database;
use email_sessions::instance::LISTENING_PREFIX;
use email_sessions::lifecycle::Phase;
use email_sessions::startup::Application;
use email_sessions::storage::{self, migrations};
use email_sessions::telemetry;

/// Email session API: collapses a plugin's duplicate reports into
/// exactly-once session data.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Applies pending migrations, then serves the API.
    Serve {
        /// Address to listen on (overrides configuration).
        #[arg(long)]
        bind: Option<SocketAddr>,
    },
    /// Applies pending migrations and exits.
    Migrate,
    /// Fires duplicate PUT bursts at a running service, measures them, and
    /// reads every session back to check it.
    Burst(BurstArgs),
    /// Runs the fixed benchmark matrix against fresh instances on the
    /// embedded (or configured) database and writes BENCHMARKS.md.
    Bench(BenchArgs),
    /// Manages API users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Creates a user and prints its new token alone on stdout.
    Create {
        /// A unique name for the user.
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init_tracing();
    let result = match cli.command {
        // The load tools get a multi-threaded runtime: the client side of a
        // burst must not be the bottleneck it measures.
        Command::Burst(args) => tool_runtime().and_then(|rt| rt.block_on(run_burst(args))),
        Command::Bench(args) => tool_runtime()
            .and_then(|rt| rt.block_on(bench::run(args)))
            .map(|()| ExitCode::SUCCESS),
        command => actix_web::rt::System::new()
            .block_on(run(command))
            .map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}

fn tool_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

async fn run(command: Command) -> anyhow::Result<()> {
    let mut settings = Settings::load()?;
    if let Command::Serve { bind: Some(bind) } = &command {
        settings.server.bind = *bind;
    }
    let database = Database::open(&settings.database).await?;
    let result = run_with_database(command, &settings, &database.config).await;
    let closed = database.close().await;
    result.and(closed)
}

async fn run_with_database(
    command: Command,
    settings: &Settings,
    database: &tokio_postgres::Config,
) -> anyhow::Result<()> {
    match command {
        Command::Serve { .. } => serve(settings, database).await,
        Command::Burst(_) | Command::Bench(_) => {
            anyhow::bail!("load tools run on their own runtime, not here")
        }
        Command::Migrate => {
            migrations::run_migrations(database).await?;
            tracing::info!("migrations are up to date");
            Ok(())
        }
        Command::User {
            command: UserCommand::Create { name },
        } => {
            migrations::run_migrations(database).await?;
            let pool = storage::connect_pool(database, &settings.database)?;
            let client = pool.get().await.context("connecting to the database")?;
            let token = auth::create_user(&client, name.trim()).await?;
            println!("{token}");
            Ok(())
        }
    }
}

/// Listens at once (so `/readyz` can say "starting"), migrates, then serves
/// until SIGTERM/SIGINT and drains.
async fn serve(settings: &Settings, database: &tokio_postgres::Config) -> anyhow::Result<()> {
    let pool = storage::connect_pool(database, &settings.database)?;
    let application = Application::build(settings, pool, Phase::Starting)?;
    let lifecycle = application.lifecycle();
    let address = std::net::SocketAddr::new(settings.server.bind.ip(), application.port());
    tracing::info!(%address, "listening");
    // On stdout, whatever the log level: scripts (and the benchmark) that
    // start `serve --bind 127.0.0.1:0` learn the port from this line.
    println!("{LISTENING_PREFIX}{address}");
    let serving = actix_web::rt::spawn(application.run_until_signal());
    migrations::run_migrations(database).await?;
    lifecycle.finish_starting();
    tracing::info!("ready");
    serving.await.context("joining the server task")?
}

/// `burst`: tokens from `--token`, or fresh users when none are given.
async fn run_burst(mut args: BurstArgs) -> anyhow::Result<ExitCode> {
    args.run_id.get_or_insert_with(burst::args::random_run_id);
    let tokens = if args.tokens.is_empty() {
        create_burst_users(&args).await?
    } else {
        args.tokens.clone()
    };
    let report = burst::run(&args, tokens).await?;
    if args.json {
        println!("{:#}", report.to_json());
    } else {
        print!("{}", report.render_text());
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Creates `--users` fresh users in the service's database (named after the
/// run ID) and returns their tokens in order.
async fn create_burst_users(args: &BurstArgs) -> anyhow::Result<Vec<String>> {
    let settings = Settings::load()?;
    let database = Database::open(&settings.database).await?;
    let created = async {
        migrations::run_migrations(&database.config).await?;
        let pool = storage::connect_pool(&database.config, &settings.database)?;
        let client = pool.get().await.context("connecting to the database")?;
        let run_id = args.run_id.as_deref().unwrap_or("burst");
        let mut tokens = Vec::with_capacity(args.users.get());
        for user in 0..args.users.get() {
            let token = auth::create_user(&client, &format!("burst-{run_id}-u{user}"))
                .await
                .context("creating a burst user")?;
            tokens.push(token);
        }
        anyhow::Ok(tokens)
    }
    .await;
    let closed = database.close().await;
    let tokens = created?;
    closed?;
    Ok(tokens)
}
