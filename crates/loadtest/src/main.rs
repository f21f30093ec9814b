//! `loadtest`: parses the command line and runs the burst or the benchmark.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use loadtest::bench::{self, BenchArgs};
use loadtest::burst::{self, BurstArgs, BurstUsers};

/// Load tool and benchmark for the email-sessions service.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fires duplicate PUT bursts at running instances, measures them, and reads every session
    /// back to check it.
    Burst {
        #[command(flatten)]
        burst: BurstArgs,
        #[command(flatten)]
        users: BurstUsers,
    },
    /// Runs the fixed benchmark matrix against fresh instances and writes BENCHMARKS.md.
    Bench(BenchArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    // Multi-threaded: the client side of a burst must not be the bottleneck it measures.
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .and_then(|runtime| runtime.block_on(run(cli.command)));
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Burst { mut burst, users } => {
            let run_id = burst
                .run_id
                .get_or_insert_with(burst::random_run_id)
                .clone();
            let tokens = burst::tokens_for(&burst, &users, &run_id).await?;
            let report = burst::run(&burst, tokens).await?;
            if burst.json {
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
        Command::Bench(args) => bench::run(args).await.map(|()| ExitCode::SUCCESS),
    }
}
