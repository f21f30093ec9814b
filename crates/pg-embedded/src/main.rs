//! `pg-embedded`: the private PostgreSQL of local runs and tests, from a shell. CI uses it to
//! check that a cluster can start before the tests run and to stop the clusters the tests left.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pg_embedded::EmbeddedPostgres;

/// Starts, stops and checks private PostgreSQL clusters.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prints the directory of the PostgreSQL server binaries; fails when there are none.
    Binaries,
    /// Checks that a cluster under ROOT could start (binaries, server user, directory access).
    Check {
        /// The cluster's root directory.
        root: PathBuf,
        /// Make directories above ROOT traversable by the server user where they are not
        /// (chmod o+x). For throwaway machines such as CI.
        #[arg(long)]
        grant_traverse: bool,
    },
    /// Starts the cluster under ROOT (creating it on first use) and prints the URL of DATABASE.
    /// The server keeps running after this command exits.
    Start {
        /// The cluster's root directory.
        root: PathBuf,
        /// The database to create if absent and print the URL of.
        #[arg(long, default_value = "postgres")]
        database: String,
    },
    /// Stops the clusters under each ROOT that are running; roots without a cluster are skipped.
    Stop {
        /// Cluster root directories.
        roots: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Cli::parse().command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Binaries => println!("{}", pg_embedded::find_server_binaries()?.display()),
        Command::Check {
            root,
            grant_traverse,
        } => {
            let preflight = pg_embedded::check(&root, grant_traverse).await?;
            for dir in &preflight.granted {
                eprintln!("allowed the server user to traverse {}", dir.display());
            }
            println!(
                "ok: server binaries in {}, server runs as {}, {} is reachable",
                preflight.bin_dir.display(),
                preflight.server_user.unwrap_or("the current user"),
                root.display()
            );
        }
        Command::Start { root, database } => {
            let cluster = EmbeddedPostgres::start(&root).await?;
            cluster.ensure_database(&database).await?;
            println!("{}", cluster.database_url(&database));
        }
        Command::Stop { roots } => {
            // Every root gets its try: one cluster that will not stop must not keep the others
            // running.
            let mut failed = Vec::new();
            for root in roots {
                if let Err(error) = EmbeddedPostgres::stop_at(&root).await {
                    eprintln!(
                        "error: stopping the cluster under {}: {error:#}",
                        root.display()
                    );
                    failed.push(root.display().to_string());
                }
            }
            anyhow::ensure!(failed.is_empty(), "could not stop: {}", failed.join(", "));
        }
    }
    Ok(())
}
