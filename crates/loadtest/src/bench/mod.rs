//! `loadtest bench`: the fixed benchmark matrix, run in one go so every figure is compared with
//! baselines measured on the same machine at the same time: PUT bursts against the `/healthz`
//! ceiling, one write per session against the database's own locked-update rate and against the
//! write function called straight from pgbench (what the service costs around its one write),
//! and the webhook outbox: what its insert costs a write, and how fast a backlog drains.
//! It writes `BENCHMARKS.md`, keeping the earlier runs' section of the page as it was.
//!
//! It reaches the service only as a user would: `email-sessions user create` for tokens and
//! `email-sessions serve` for one instance (a child process), then HTTP. Its data goes into a
//! database it creates for the run and drops afterwards, on its own embedded cluster unless
//! `--database-url` names a server; it never drops a database it did not create.

mod database;
mod pgbench;
mod table;
mod webhooks;

use std::num::NonZeroUsize;
use std::path::PathBuf;

use anyhow::Context;

use crate::burst::{self, BurstArgs, Mode, Report};
use crate::instance::Instance;
use crate::service_cli::{self, ServiceBinary};
use database::BenchDatabase;

/// Options of `loadtest bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Where to write the results.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
    /// Divide every request count by this (a quick smoke run; the committed figures use 1).
    #[arg(long, default_value = "1")]
    pub scale_down: NonZeroUsize,
    /// A PostgreSQL server to run on (its maintenance database, e.g.
    /// `postgresql://me@db/postgres`). The benchmark creates a database of its own there and
    /// drops it afterwards. Without it, a private cluster under `--embedded-dir` is used.
    #[arg(long, env = "BENCH_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Root of the benchmark's own embedded cluster (when no `--database-url`).
    #[arg(long, default_value = "var/bench-postgres")]
    pub embedded_dir: PathBuf,
    #[command(flatten)]
    pub service: ServiceBinary,
}

/// Scenario names: the load tool's mode, then what makes the scenario what it is.
pub(crate) const DUPLICATE_BURSTS: &str = "identical, D=20";
/// See [`DUPLICATE_BURSTS`].
pub(crate) const ONE_WRITE_PER_SESSION: &str = "identical, D=1";
/// See [`DUPLICATE_BURSTS`].
pub(crate) const CROSS_USER: &str = "cross-user, U=4";

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
        name: DUPLICATE_BURSTS,
        mode: Mode::Identical,
        sessions: 5000,
        duplicates: 20,
        users: 1,
    },
    Scenario {
        name: ONE_WRITE_PER_SESSION,
        mode: Mode::Identical,
        sessions: 20000,
        duplicates: 1,
        users: 1,
    },
    Scenario {
        name: CROSS_USER,
        mode: Mode::CrossUser,
        sessions: 1000,
        duplicates: 10,
        users: 4,
    },
];

const CONNECTIONS: usize = 64;
const USERS: usize = 4;

/// The outcome of one scenario.
pub(crate) struct Measured {
    scenario: &'static str,
    report: Report,
}

/// Runs the matrix and writes the report; fails if any run's verification did.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let database = BenchDatabase::create(args.database_url.as_deref(), &args.embedded_dir).await?;
    let result = run_on(&args, &database).await;
    let dropped = database.drop().await;
    result.and(dropped)
}

async fn run_on(args: &BenchArgs, database: &BenchDatabase) -> anyhow::Result<()> {
    let binary = args.service.path()?;
    let url = database.conninfo();
    let database_env = [("DATABASE_URL", url.as_str())];
    let names: Vec<String> = (0..USERS).map(|user| format!("bench-u{user}")).collect();
    let tokens = service_cli::create_users(&binary, &database_env, &names).await?;
    eprintln!("starting the instance");
    // Per-request access logs would cost more than the requests.
    // The matrix creates tens of thousands of sessions per user: far past the default
    // daily quota, which is not what it measures.
    // Nor is one user's bound on live actors: one user writes 20,000 sessions in a minute.
    let environment = [
        ("RUST_LOG", "warn"),
        ("APP_QUOTAS__NEW_SESSIONS_PER_DAY", "0"),
        ("APP_SESSIONS__MAX_LIVE_ACTORS_PER_USER", "100000"),
    ];
    let instance = Instance::start(&binary, &url, &environment).await?;

    let mut measured = Vec::new();
    for scenario in &MATRIX {
        eprintln!("{}", scenario.name);
        let burst_args = burst_args(scenario, &instance, args.scale_down.get());
        let report = burst::run(&burst_args, tokens.clone()).await?;
        eprint!("{}", report.render_text());
        measured.push(Measured {
            scenario: scenario.name,
            report,
        });
    }
    eprintln!("/healthz ceiling");
    let ceiling_args = burst_args(&MATRIX[0], &instance, args.scale_down.get());
    let ceiling = burst::measure_ceiling(&ceiling_args).await?;
    eprintln!("pgbench: the locked-update rate and the write function's own rate, alternating");
    let (locked_update, write_function) =
        pgbench::compare(database.config(), &url, CONNECTIONS, &names[0]).await?;
    let peak_rss_kib = instance.peak_rss_kib();
    eprintln!("webhooks: {ONE_WRITE_PER_SESSION} without and with them, then a backlog drained");
    let webhook_figures = webhooks::measure(
        &binary,
        database.config(),
        &url,
        &instance,
        &burst_args(&MATRIX[1], &instance, args.scale_down.get()),
        tokens.clone(),
        &environment,
    )
    .await?;
    let earlier_runs = std::fs::read_to_string(&args.out)
        .ok()
        .and_then(|page| table::earlier_runs(&page).map(str::to_owned));

    let markdown = table::render(&table::Inputs {
        measured: &measured,
        ceiling: &ceiling,
        locked_update,
        write_function,
        peak_rss_kib,
        webhooks: &webhook_figures,
        scale_down: args.scale_down.get(),
        earlier_runs: earlier_runs.as_deref(),
    });
    std::fs::write(&args.out, &markdown)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("{markdown}");
    let failed: Vec<String> = measured
        .iter()
        .filter(|m| !m.report.passed())
        .map(|m| m.scenario.to_owned())
        .collect();
    anyhow::ensure!(
        failed.is_empty(),
        "verification failed for: {}",
        failed.join(", ")
    );
    Ok(())
}

fn burst_args(scenario: &Scenario, instance: &Instance, scale_down: usize) -> BurstArgs {
    let count = |n: usize| NonZeroUsize::new((n / scale_down).max(1)).expect("at least 1");
    BurstArgs {
        urls: vec![instance.url.clone()],
        service_pid: Some(instance.pid()),
        sessions: count(scenario.sessions),
        duplicates: NonZeroUsize::new(scenario.duplicates).expect("matrix has D >= 1"),
        users: NonZeroUsize::new(scenario.users).expect("matrix has U >= 1"),
        connections: NonZeroUsize::new(CONNECTIONS).expect("64 > 0"),
        mode: scenario.mode,
        json: true,
        ceiling: false,
        run_id: None,
        timeout_secs: 60,
    }
}
