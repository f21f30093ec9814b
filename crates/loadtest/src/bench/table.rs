//! Renders the benchmark as `BENCHMARKS.md`: the machine, the exact
//! command, one table, the ratios that matter, the targets, and the earlier
//! runs' section carried over from the page as it was.

use std::fmt::Write;

use crate::bench::pgbench::{PgbenchRun, ROUND_SECONDS, ROUNDS};
use crate::bench::webhooks::WebhookFigures;
use crate::bench::{DUPLICATE_BURSTS, Measured, ONE_WRITE_PER_SESSION};
use crate::burst::{LoadSummary, Report, ServerReport};

/// Everything the page shows.
pub struct Inputs<'a> {
    pub measured: &'a [Measured],
    pub ceiling: &'a LoadSummary,
    pub locked_update: PgbenchRun,
    pub write_function: PgbenchRun,
    pub peak_rss_kib: Option<u64>,
    pub webhooks: &'a WebhookFigures,
    pub scale_down: usize,
    /// The page's section of earlier runs, kept as it was (a hand-kept record of releases).
    pub earlier_runs: Option<&'a str>,
}

/// The heading of the section that the benchmark keeps from one run to the next.
const EARLIER_RUNS: &str = "## Earlier runs";

/// The section of earlier runs of `page`, from its heading to the end.
pub fn earlier_runs(page: &str) -> Option<&str> {
    page.find(EARLIER_RUNS).map(|start| &page[start..])
}

fn ms(micros: u64) -> String {
    format!("{:.2}", micros as f64 / 1000.0)
}

/// Database transactions per request the service ran for a burst, split by kind.
#[derive(Debug, Clone, Copy)]
struct Transactions {
    writes: f64,
    reads: f64,
}

fn transactions(report: &Report) -> Option<Transactions> {
    let requests = report.burst.requests;
    match &report.server {
        ServerReport::Counted { counters, .. } if requests > 0 => Some(Transactions {
            writes: counters.write_transactions() as f64 / requests as f64,
            reads: counters.noop_reads as f64 / requests as f64,
        }),
        _ => None,
    }
}

/// A phase's service CPU per request over the `/healthz` phase's.
fn cpu_ratio(phase: &LoadSummary, health: &LoadSummary) -> Option<f64> {
    Some(phase.service_cpu_us_per_request? / health.service_cpu_us_per_request?)
}

fn collapsed(report: &Report) -> Option<f64> {
    match &report.server {
        ServerReport::Counted {
            collapsed_fraction, ..
        } => *collapsed_fraction,
        ServerReport::Unavailable { .. } => None,
    }
}

fn opt(value: Option<f64>, format: impl Fn(f64) -> String) -> String {
    value.map(format).unwrap_or_else(|| "n/a".to_owned())
}

fn find<'a>(measured: &'a [Measured], scenario: &str) -> Option<&'a Measured> {
    measured.iter().find(|m| m.scenario == scenario)
}

/// The whole page.
pub fn render(inputs: &Inputs<'_>) -> String {
    let ceiling = inputs.ceiling.throughput_per_sec;
    let locked_update_rate = inputs.locked_update.tps;
    let write_function_rate = inputs.write_function.tps;
    let mut page = String::new();
    let _ = writeln!(page, "# Benchmarks\n");
    let _ = writeln!(
        page,
        "Command: `cargo build --release --workspace && target/release/loadtest bench`{}\n",
        if inputs.scale_down > 1 {
            format!(
                " `--scale-down {}` (a smoke run, not the reference figures)",
                inputs.scale_down
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(page, "Machine: {}\n", machine());
    let _ = writeln!(
        page,
        "Load generator, one service instance and PostgreSQL all share this machine; C = {} \
         connections. Throughputs are comparable only within this run.\n",
        64
    );
    let ceiling_cpu = inputs.ceiling.service_cpu_us_per_request;
    let _ = writeln!(
        page,
        "| shape | requests | req/s | p50 ms | p99 ms | p99.9 ms | service CPU µs / request | CPU vs `/healthz` | machine CPU µs / request | DB txns / request | writes / request | reads / request | collapsed | non-2xx | verified |"
    );
    let _ = writeln!(
        page,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    let _ = writeln!(
        page,
        "| `GET /healthz` | {} | {:.0} | {} | {} | {} | {} | 1.00x | {} | - | - | - | - | {} | - |",
        inputs.ceiling.requests,
        ceiling,
        ms(inputs.ceiling.latency.p50_us),
        ms(inputs.ceiling.latency.p99_us),
        ms(inputs.ceiling.latency.p999_us),
        opt(ceiling_cpu, |us| format!("{us:.1}")),
        opt(inputs.ceiling.machine_cpu_us_per_request, |us| format!(
            "{us:.1}"
        )),
        inputs.ceiling.statuses.failed(),
    );
    for m in inputs.measured {
        let burst = &m.report.burst;
        let cost = transactions(&m.report);
        let _ = writeln!(
            page,
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.scenario,
            burst.requests,
            burst.throughput_per_sec,
            ms(burst.latency.p50_us),
            ms(burst.latency.p99_us),
            ms(burst.latency.p999_us),
            opt(burst.service_cpu_us_per_request, |us| format!("{us:.1}")),
            opt(cpu_ratio(burst, inputs.ceiling), |r| format!("{r:.2}x")),
            opt(burst.machine_cpu_us_per_request, |us| format!("{us:.1}")),
            opt(cost.map(|c| c.writes + c.reads), |r| format!("{r:.3}")),
            opt(cost.map(|c| c.writes), |r| format!("{r:.3}")),
            opt(cost.map(|c| c.reads), |r| format!("{r:.3}")),
            opt(collapsed(&m.report), |f| format!("{:.1} %", 100.0 * f)),
            burst.statuses.failed(),
            if m.report.passed() { "pass" } else { "FAIL" },
        );
    }
    let _ = writeln!(page);
    let _ = writeln!(
        page,
        "| pgbench on the same cluster (C = 64, {ROUNDS} alternating rounds of {ROUND_SECONDS} s each) | tps | cost vs the locked update | machine CPU µs / transaction |"
    );
    let _ = writeln!(page, "|---|---:|---:|---:|");
    let _ = writeln!(
        page,
        "| locked one-row update (1 of 100k rows, `SELECT ... FOR UPDATE; UPDATE`) | {:.0} | 1.00x | {} |",
        locked_update_rate,
        opt(
            inputs.locked_update.machine_cpu_us_per_transaction,
            |us| format!("{us:.1}")
        ),
    );
    let _ = writeln!(
        page,
        "| write function (`apply_email_session_change`, a new session each call) | {:.0} | {:.2}x | {} |\n",
        write_function_rate,
        locked_update_rate / write_function_rate,
        opt(
            inputs.write_function.machine_cpu_us_per_transaction,
            |us| format!("{us:.1}")
        ),
    );

    let _ = writeln!(page, "## Ratios (same run)\n");
    if let Some(single) = find(inputs.measured, ONE_WRITE_PER_SESSION) {
        let rate = single.report.burst.throughput_per_sec;
        let _ = writeln!(
            page,
            "- {ONE_WRITE_PER_SESSION} / pgbench locked-update rate = **{:.1} %**",
            100.0 * rate / locked_update_rate
        );
        let _ = writeln!(
            page,
            "- {ONE_WRITE_PER_SESSION} / the write function's own rate = **{:.1} %**",
            100.0 * rate / write_function_rate
        );
        let burst = &single.report.burst;
        if let (Some(machine), Some(service), Some(function)) = (
            burst.machine_cpu_us_per_request,
            burst.service_cpu_us_per_request,
            inputs.write_function.machine_cpu_us_per_transaction,
        ) {
            let _ = writeln!(
                page,
                "- a request of {ONE_WRITE_PER_SESSION} costs the machine **{machine:.1} µs** of \
                 CPU (the service {service:.1} µs of it; the machine was {:.0} % busy), \
                 **{:.2}x** what one call of the write function costs it from pgbench",
                100.0 * machine * burst.throughput_per_sec / 1e6 / cores() as f64,
                machine / function,
            );
        }
    }
    let _ = writeln!(
        page,
        "- the write function costs **{:.2}x** the locked update (pgbench tps ratio)",
        locked_update_rate / write_function_rate
    );
    if let Some(bursts) = find(inputs.measured, DUPLICATE_BURSTS)
        && let Some(ratio) = cpu_ratio(&bursts.report.burst, inputs.ceiling)
    {
        let _ = writeln!(
            page,
            "- one PUT of {DUPLICATE_BURSTS} costs **{ratio:.2}x** the service CPU of a `/healthz` GET"
        );
    }
    if let Some(kib) = inputs.peak_rss_kib {
        let _ = writeln!(
            page,
            "- peak RSS of the instance: {:.1} MiB",
            kib as f64 / 1024.0
        );
    }

    let hooks = inputs.webhooks;
    let _ = writeln!(page, "\n## Webhooks (same run)\n");
    let _ = writeln!(
        page,
        "- {ONE_WRITE_PER_SESSION} with webhooks on (delivery paused, so only the outbox insert \
         counts): {:.0} req/s = **{:.1} %** of the same burst just before on an instance without \
         them ({:.0} req/s)",
        hooks.with_rate,
        100.0 * hooks.with_rate / hooks.without_rate,
        hooks.without_rate
    );
    let _ = writeln!(
        page,
        "- a backlog of {} events (the burst's, topped up) drained in **{:.1} s** = **{:.0} \
         events/s** to a receiver on this machine (one instance, `webhooks.max_concurrency` \
         16; {} deliveries received)",
        hooks.backlog,
        hooks.drain_secs,
        hooks.backlog as f64 / hooks.drain_secs,
        hooks.delivered
    );

    let _ = writeln!(page, "\n## Targets (issue 18)\n");
    if let Some(bursts) = find(inputs.measured, DUPLICATE_BURSTS) {
        let burst = &bursts.report.burst;
        let cpu = cpu_ratio(burst, inputs.ceiling);
        target(
            &mut page,
            "a duplicate PUT at most 1.5x the service CPU of a `/healthz` GET",
            opt(cpu, |r| format!("{r:.2}x")),
            cpu.is_some_and(|r| r <= 1.5),
        );
        let total = transactions(&bursts.report).map(|c| c.writes + c.reads);
        target(
            &mut page,
            "at most 0.06 database transactions per request",
            opt(total, |r| format!("{r:.3}")),
            total.is_some_and(|r| r <= 0.06),
        );
        let p99_ms = burst.latency.p99_us as f64 / 1000.0;
        target(
            &mut page,
            "p99 at most 10 ms",
            format!("{p99_ms:.2} ms"),
            p99_ms <= 10.0,
        );
    }
    if let Some(single) = find(inputs.measured, ONE_WRITE_PER_SESSION) {
        let share = single.report.burst.throughput_per_sec / locked_update_rate;
        target(
            &mut page,
            &format!("{ONE_WRITE_PER_SESSION} at least 70 % of the locked-update rate"),
            format!("{:.1} %", 100.0 * share),
            share >= 0.7,
        );
    }
    let function_cost = locked_update_rate / write_function_rate;
    target(
        &mut page,
        "the write function at most 1.5x the locked update",
        format!("{function_cost:.2}x"),
        function_cost <= 1.5,
    );
    if let Some(earlier) = inputs.earlier_runs {
        let _ = write!(page, "\n{earlier}");
    }
    page
}

fn target(page: &mut String, what: &str, measured: String, met: bool) {
    let _ = writeln!(
        page,
        "- {what}: {measured} ({})",
        if met { "met" } else { "missed" }
    );
}

/// Cores, memory and CPU model, read from /proc.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("unknown CPU");
    let cores = cores();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores ({model}), {memory_gib:.0} GiB, Linux {}",
        kernel.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earlier_runs_section_is_carried_over_to_the_end() {
        let page = "# Benchmarks\n\nold run\n\n## Earlier runs\n\n| release |\n| a |\n";
        assert_eq!(
            earlier_runs(page),
            Some("## Earlier runs\n\n| release |\n| a |\n")
        );
        assert_eq!(earlier_runs("# Benchmarks\n"), None);
    }
}
