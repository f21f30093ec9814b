//! `loadtest burst`: the duplicate-burst load test. It fires what the
//! email plugin does at its worst (many copies of the same PUT at once, for
//! many sessions and users), measures throughput and latency, reads what the
//! service counted, then reads every session back and checks the
//! guarantees: no duplicate recipients, the content sent, versions that grow
//! by exactly 1 per change, and no session visible to another user.
//!
//! The phases, one file each: [`plan`] decides every request and every
//! expectation; [`runner`] fires them with exactly C in flight; [`tally`]
//! counts latency and statuses; [`metrics_scrape`] diffs the service's
//! counters; [`readback`] GETs the sessions; [`verify`] judges them as pure
//! data; [`report`] renders the result.

mod args;
mod metrics_scrape;
mod plan;
mod progress;
mod readback;
mod report;
mod runner;
pub(crate) mod service_cpu;
mod tally;
mod verify;
mod wire;

use std::sync::Arc;
use std::time::Duration;

pub use args::{BurstArgs, BurstUsers, Mode, random_run_id};
pub use report::Report;
pub(crate) use report::ServerReport;
pub use tally::LoadSummary;

use report::{RunConfig, VerificationReport};
use runner::Targets;

/// The tokens of the burst's users: the given ones, or new users created through the
/// service's command line when `--create-users` says so.
pub async fn tokens_for(
    args: &BurstArgs,
    users: &BurstUsers,
    run_id: &str,
) -> anyhow::Result<Vec<String>> {
    if !users.tokens.is_empty() {
        return Ok(users.tokens.clone());
    }
    anyhow::ensure!(
        users.create_users,
        "no tokens: give --token (or BURST_TOKENS), or --create-users to create users with `email-sessions user create`"
    );
    let names: Vec<String> = (0..args.users.get())
        .map(|user| format!("burst-{run_id}-u{user}"))
        .collect();
    crate::service_cli::create_users(&users.service.path()?, &[], &names).await
}

/// Runs the burst `args` describe as the users whose tokens are given
/// (`tokens[u]` is user u; the first `--users` are used), then verifies
/// every session. Errors only when the run cannot happen (too few tokens,
/// service unreachable); what goes wrong during it is in the report.
pub async fn run(args: &BurstArgs, tokens: Vec<String>) -> anyhow::Result<Report> {
    let users = args.users.get();
    anyhow::ensure!(
        tokens.len() >= users,
        "--users {users} needs {users} token(s), got {}",
        tokens.len()
    );
    let run_id = args.run_id.clone().unwrap_or_else(args::random_run_id);
    let plan = plan::build(plan::Shape {
        run_id: &run_id,
        mode: args.mode,
        sessions: args.sessions.get(),
        duplicates: args.duplicates.get(),
        users,
    })?;
    let targets = Targets {
        tokens: tokens.into_iter().take(users).collect(),
        ..targets(args)?
    };
    runner::check_reachable(&targets.client, &targets.base_urls).await?;
    runner::check_tokens(&targets, &run_id).await?;

    let before = metrics_scrape::scrape_all(&targets.client, &targets.base_urls).await;
    let cpu = CpuReading::take(args);
    let mut burst = runner::fire_burst(&targets, &plan).await?;
    cpu.charge(args, &mut burst.summary);
    let after = metrics_scrape::scrape_all(&targets.client, &targets.base_urls).await;

    let observed = readback::read_back(&targets, &plan, burst.answered).await?;
    let failures = verify::check(&plan.sessions, &observed);

    let ceiling = if args.ceiling {
        Some(measure_ceiling(args).await?)
    } else {
        None
    };
    Ok(Report::new(
        RunConfig {
            urls: args.urls.clone(),
            mode: args.mode,
            sessions: args.sessions.get(),
            duplicates: args.duplicates.get(),
            users,
            connections: args.connections.get(),
            run_id,
        },
        burst.summary,
        ServerReport::from_scrapes(before, after),
        ceiling,
        VerificationReport::new(plan.sessions.len(), observed.len(), failures),
    ))
}

/// Measures the HTTP ceiling: as many `GET /healthz` as the burst has PUTs,
/// with the same concurrency and URLs, on a fresh client so it starts as
/// cold as the burst did.
pub async fn measure_ceiling(args: &BurstArgs) -> anyhow::Result<LoadSummary> {
    let targets = targets(args)?;
    runner::check_reachable(&targets.client, &targets.base_urls).await?;
    let requests = args.sessions.get() * args.users.get() * args.duplicates.get();
    let cpu = CpuReading::take(args);
    let mut summary = runner::fire_ceiling(&targets, requests).await?;
    cpu.charge(args, &mut summary);
    Ok(summary)
}

/// The service's and the machine's CPU time at the start of a phase.
struct CpuReading {
    service: Option<Duration>,
    machine: Option<Duration>,
}

impl CpuReading {
    fn take(args: &BurstArgs) -> CpuReading {
        CpuReading {
            service: args.service_pid.and_then(service_cpu::cpu_time),
            machine: service_cpu::machine_busy_time(),
        }
    }

    /// Charges the CPU used since this reading to the phase's requests.
    fn charge(self, args: &BurstArgs, phase: &mut LoadSummary) {
        let now = CpuReading::take(args);
        phase.service_cpu_us_per_request =
            service_cpu::micros_per_request(self.service, now.service, phase.requests);
        phase.machine_cpu_us_per_request =
            service_cpu::micros_per_request(self.machine, now.machine, phase.requests);
    }
}

/// A fresh client and the URLs, without tokens.
fn targets(args: &BurstArgs) -> anyhow::Result<Targets> {
    anyhow::ensure!(!args.urls.is_empty(), "at least one --url is needed");
    Ok(Targets {
        client: runner::http_client(
            args.connections.get(),
            Duration::from_secs(args.timeout_secs),
        )?,
        base_urls: args.urls.iter().cloned().collect::<Arc<[String]>>(),
        tokens: Arc::from([]),
        concurrency: args.connections.get(),
        allow_bar: !args.json,
    })
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use super::*;
    use crate::service_cli::ServiceBinary;

    #[tokio::test]
    async fn without_tokens_no_user_is_created_unless_asked() {
        // Arrange: a service binary that would fail loudly if it were run.
        let args = BurstArgs {
            urls: vec!["http://127.0.0.1:1".to_owned()],
            sessions: NonZeroUsize::MIN,
            duplicates: NonZeroUsize::MIN,
            users: NonZeroUsize::MIN,
            connections: NonZeroUsize::MIN,
            mode: Mode::Identical,
            json: true,
            ceiling: false,
            run_id: None,
            timeout_secs: 1,
            service_pid: None,
        };
        let users = BurstUsers {
            tokens: Vec::new(),
            create_users: false,
            service: ServiceBinary {
                binary: Some("/nonexistent/email-sessions".into()),
            },
        };

        // Act
        let error = tokens_for(&args, &users, "run").await.unwrap_err();

        // Assert
        assert!(error.to_string().contains("--create-users"), "{error}");
    }
}
