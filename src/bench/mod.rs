//! `email-sessions bench`: the fixed benchmark matrix, run in one go so every
//! figure is compared with the others measured on the same machine at the
//! same time: the actor path against the direct path (the classic fix), PUT
//! bursts against the `/healthz` ceiling, distinct writes against the
//! database's own locked-update rate. It writes `BENCHMARKS.md`.

mod pgbench;
mod table;

use std::num::NonZeroUsize;
use std::path::PathBuf;

use anyhow::Context;

use crate::auth;
use crate::burst::{self, BurstArgs, Mode, Report};
use crate::configuration::{Settings, WritePath};
use crate::database::{self, Database};
use crate::embedded;
use crate::instance::Instance;
use crate::storage::{self, migrations};

/// Database the benchmark creates afresh on the cluster each run.
const BENCH_DATABASE: &str = "email_sessions_bench";

/// Options of `email-sessions bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Where to write the results.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
    /// Divide every request count by this (a quick smoke run; the
    /// committed figures use 1).
    #[arg(long, default_value = "1")]
    pub scale_down: NonZeroUsize,
}

/// One row of the matrix.
struct Scenario {
    name: &'static str,
    mode: Mode,
    sessions: usize,
    duplicates: usize,
    users: usize,
}

const MATRIX: [Scenario; 3] = [
    Scenario {
        name: "duplicate bursts",
        mode: Mode::Identical,
        sessions: 5000,
        duplicates: 20,
        users: 1,
    },
    Scenario {
        name: "distinct writes",
        mode: Mode::Identical,
        sessions: 20000,
        duplicates: 1,
        users: 1,
    },
    Scenario {
        name: "cross-user bursts",
        mode: Mode::CrossUser,
        sessions: 1000,
        duplicates: 10,
        users: 4,
    },
];

const CONNECTIONS: usize = 64;

/// The outcome of one scenario on one write path.
pub struct Measured {
    scenario: &'static str,
    path: WritePath,
    report: Report,
}

/// Runs the matrix and writes the report; fails if any run's verification did.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mut settings = Settings::load()?;
    let database = Database::open(&settings.database).await?;
    let result = run_on(&args, &mut settings, &database).await;
    let closed = database.close().await;
    result.and(closed)
}

async fn run_on(
    args: &BenchArgs,
    settings: &mut Settings,
    database: &Database,
) -> anyhow::Result<()> {
    let (config, url) = fresh_database(database).await?;
    migrations::run_migrations(&config).await?;
    let tokens = create_users(&config, settings, 4).await?;
    eprintln!("starting two instances (actor and direct write paths)");
    let binary = std::env::current_exe().context("locating our own binary")?;
    // Per-request access logs would cost more than the requests.
    let actor = Instance::start(&binary, &url, &[("RUST_LOG", "warn")]).await?;
    let direct = Instance::start(
        &binary,
        &url,
        &[("RUST_LOG", "warn"), ("APP_SESSIONS__WRITE_PATH", "direct")],
    )
    .await?;

    let mut measured = Vec::new();
    for scenario in &MATRIX {
        for (path, instance) in [(WritePath::Actor, &actor), (WritePath::Direct, &direct)] {
            eprintln!("{} on the {path:?} path", scenario.name);
            let burst_args = burst_args(scenario, &instance.url, args.scale_down.get());
            let report = burst::run(&burst_args, tokens.clone()).await?;
            eprint!("{}", report.render_text());
            measured.push(Measured {
                scenario: scenario.name,
                path,
                report,
            });
        }
    }
    eprintln!("/healthz ceiling");
    let ceiling_args = burst_args(&MATRIX[0], &actor.url, args.scale_down.get());
    let ceiling = burst::measure_ceiling(&ceiling_args).await?;
    eprintln!("pgbench locked-update rate");
    let bin_dir = embedded::find_server_binaries()?;
    let locked_rate = pgbench::locked_update_rate(&bin_dir, &config, &url, CONNECTIONS, 10).await?;
    let peak_rss_kib = actor.peak_rss_kib();

    let markdown = table::render(&table::Inputs {
        measured: &measured,
        ceiling: &ceiling,
        locked_update_rate: locked_rate,
        actor_peak_rss_kib: peak_rss_kib,
        scale_down: args.scale_down.get(),
    });
    std::fs::write(&args.out, &markdown)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("{markdown}");
    let failed: Vec<String> = measured
        .iter()
        .filter(|m| !m.report.passed())
        .map(|m| format!("{} ({:?})", m.scenario, m.path))
        .collect();
    anyhow::ensure!(
        failed.is_empty(),
        "verification failed for: {}",
        failed.join(", ")
    );
    Ok(())
}

fn burst_args(scenario: &Scenario, url: &str, scale_down: usize) -> BurstArgs {
    let count = |n: usize| NonZeroUsize::new((n / scale_down).max(1)).expect("at least 1");
    BurstArgs {
        urls: vec![url.to_owned()],
        sessions: count(scenario.sessions),
        duplicates: NonZeroUsize::new(scenario.duplicates).expect("matrix has D >= 1"),
        users: NonZeroUsize::new(scenario.users).expect("matrix has U >= 1"),
        connections: NonZeroUsize::new(CONNECTIONS).expect("64 > 0"),
        mode: scenario.mode,
        tokens: Vec::new(),
        json: true,
        ceiling: false,
        run_id: None,
        timeout_secs: 60,
    }
}

/// Drops and recreates the benchmark database, so every run starts empty.
async fn fresh_database(database: &Database) -> anyhow::Result<(tokio_postgres::Config, String)> {
    let (client, connection) = database
        .config
        .connect(tokio_postgres::NoTls)
        .await
        .context("connecting to prepare the benchmark database")?;
    tokio::spawn(connection);
    // Two statements: DROP/CREATE DATABASE refuse to run inside the implicit
    // transaction of a multi-statement query.
    for statement in [
        format!("DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)"),
        format!("CREATE DATABASE {BENCH_DATABASE}"),
    ] {
        client
            .batch_execute(&statement)
            .await
            .context("recreating the benchmark database")?;
    }
    let mut config = database.config.clone();
    config.dbname(BENCH_DATABASE);
    let conninfo = database::conninfo(&config);
    Ok((config, conninfo))
}

async fn create_users(
    config: &tokio_postgres::Config,
    settings: &Settings,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let pool = storage::connect_pool(config, &settings.database)?;
    let client = pool
        .get()
        .await
        .context("connecting to create benchmark users")?;
    let mut tokens = Vec::with_capacity(count);
    for user in 0..count {
        tokens.push(auth::create_user(&client, &format!("bench-u{user}")).await?);
    }
    Ok(tokens)
}
