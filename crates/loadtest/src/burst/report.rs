//! The result of a burst: what was run, how fast it went, what the service
//! counted, how it compares with the HTTP ceiling, and what verification
//! found; rendered as one screen of text or as JSON with the same content.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::args::Mode;
use super::metrics_scrape::ServerCounters;
use super::tally::{LatencySummary, LoadSummary};
use super::verify::{Failure, FailureKind};

/// Failures printed in the text report.
const FAILURES_SHOWN: usize = 10;

/// Failures kept in the JSON report; the rest are only counted.
const FAILURES_KEPT: usize = 100;

/// The settings a burst ran with.
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    /// Base URLs, visited in turn.
    pub urls: Vec<String>,
    /// What the duplicates carried.
    pub mode: Mode,
    /// Sessions per user.
    pub sessions: usize,
    /// Requests per (user, session).
    pub duplicates: usize,
    /// Users.
    pub users: usize,
    /// Requests in flight.
    pub connections: usize,
    /// Prefix of the session IDs.
    pub run_id: String,
}

/// What the service's own counters say about the burst.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ServerReport {
    /// Counted: the difference of `/metrics` after and before, summed over instances.
    Counted {
        /// The counter deltas.
        counters: ServerCounters,
        /// Write transactions per update received (ideal: sessions / requests).
        write_transactions_per_update: Option<f64>,
        /// Share of updates collapsed into another's write.
        collapsed_fraction: Option<f64>,
    },
    /// `/metrics` could not be read or parsed; the burst result stands without it.
    Unavailable {
        /// Why.
        reason: String,
    },
}

impl ServerReport {
    /// The report for counters scraped before and after the burst.
    pub fn from_scrapes(
        before: anyhow::Result<ServerCounters>,
        after: anyhow::Result<ServerCounters>,
    ) -> ServerReport {
        match (before, after) {
            (Ok(before), Ok(after)) => {
                let counters = after.since(&before);
                ServerReport::Counted {
                    write_transactions_per_update: counters.write_transactions_per_update(),
                    collapsed_fraction: counters.collapsed_fraction(),
                    counters,
                }
            }
            (Err(error), _) | (_, Err(error)) => ServerReport::Unavailable {
                reason: format!("{error:#}"),
            },
        }
    }
}

/// What verification found.
#[derive(Debug, Clone, Serialize)]
pub struct VerificationReport {
    /// Sessions the plan expects.
    pub sessions: usize,
    /// GETs made (owner reads and non-owner probes).
    pub reads: usize,
    /// All failures found.
    pub failures_total: usize,
    /// Failures by kind.
    pub failures_by_kind: BTreeMap<FailureKind, usize>,
    /// The first failures found.
    pub failures: Vec<Failure>,
}

impl VerificationReport {
    /// Summarises the failures of `sessions` sessions checked with `reads` GETs.
    pub fn new(sessions: usize, reads: usize, failures: Vec<Failure>) -> VerificationReport {
        let mut failures_by_kind = BTreeMap::new();
        for failure in &failures {
            *failures_by_kind.entry(failure.kind).or_default() += 1;
        }
        let failures_total = failures.len();
        let mut failures = failures;
        failures.truncate(FAILURES_KEPT);
        VerificationReport {
            sessions,
            reads,
            failures_total,
            failures_by_kind,
            failures,
        }
    }
}

/// Everything a burst found out.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The settings.
    pub config: RunConfig,
    /// The PUT burst.
    pub burst: LoadSummary,
    /// The service's counters.
    pub server: ServerReport,
    /// GET /healthz with the same concurrency, when `--ceiling` was given.
    pub ceiling: Option<LoadSummary>,
    /// Burst throughput as a share of the ceiling's (derived in [`Report::new`]).
    share_of_ceiling: Option<f64>,
    /// Read-back checks.
    pub verification: VerificationReport,
    /// The verdict (derived in [`Report::new`]), kept as a field so the JSON carries it.
    passed: bool,
}

impl Report {
    /// Assembles the report and its verdict.
    pub fn new(
        config: RunConfig,
        burst: LoadSummary,
        server: ServerReport,
        ceiling: Option<LoadSummary>,
        verification: VerificationReport,
    ) -> Report {
        let share_of_ceiling = ceiling
            .as_ref()
            .filter(|ceiling| ceiling.throughput_per_sec > 0.0)
            .map(|ceiling| burst.throughput_per_sec / ceiling.throughput_per_sec);
        let passed = verification.failures_total == 0 && burst.statuses.failed() == 0;
        Report {
            config,
            burst,
            server,
            ceiling,
            share_of_ceiling,
            verification,
            passed,
        }
    }

    /// True when every PUT got a 2xx and verification found nothing wrong.
    pub fn passed(&self) -> bool {
        self.passed
    }

    /// The report as JSON, for `--json` and for machines.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("the report is plain data")
    }

    /// The report as one screen of text.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        self.render_config(&mut out);
        self.render_burst(&mut out);
        self.render_server(&mut out);
        self.render_ceiling(&mut out);
        self.render_verification(&mut out);
        let verdict = if self.passed { "PASS" } else { "FAIL" };
        let _ = writeln!(out, "{:<13}{verdict}", "result");
        out
    }

    fn render_config(&self, out: &mut String) {
        let c = &self.config;
        let _ = writeln!(
            out,
            "burst        mode {}, {} user(s) x {} session(s) x {} duplicate(s), {} connections, run-id {}",
            c.mode.as_str(),
            c.users,
            c.sessions,
            c.duplicates,
            c.connections,
            c.run_id
        );
        let _ = writeln!(out, "{:<13}{}", "urls", c.urls.join(" "));
    }

    fn render_burst(&self, out: &mut String) {
        let b = &self.burst;
        let _ = writeln!(
            out,
            "{:<13}{} PUT in {:.3} s = {:.0} req/s",
            "requests", b.requests, b.duration_secs, b.throughput_per_sec
        );
        let _ = writeln!(out, "{:<13}{}", "latency", latency_line(&b.latency));
        let statuses: Vec<String> = b
            .statuses
            .by_status
            .iter()
            .map(|(status, count)| format!("{status}: {count}"))
            .collect();
        let _ = writeln!(out, "{:<13}{}", "statuses", statuses.join("   "));
        let failed = b.statuses.failed();
        if failed > 0 {
            let _ = writeln!(
                out,
                "{:<13}{failed} failed: {} overloaded (503), {} other status, {} without answer",
                "",
                b.statuses.overloaded(),
                failed - b.statuses.overloaded() - b.statuses.lost,
                b.statuses.lost
            );
            for example in &b.statuses.error_examples {
                let _ = writeln!(out, "{:<13}e.g. {example}", "");
            }
        }
    }

    fn render_server(&self, out: &mut String) {
        match &self.server {
            ServerReport::Counted {
                counters,
                write_transactions_per_update,
                collapsed_fraction,
            } => {
                let per_update = write_transactions_per_update
                    .map_or_else(|| "n/a".to_owned(), |ratio| format!("{ratio:.3}"));
                let collapsed = collapsed_fraction.map_or_else(
                    || "n/a".to_owned(),
                    |ratio| format!("{:.1} %", ratio * 100.0),
                );
                let _ = writeln!(
                    out,
                    "{:<13}{} updates received; write txns/update {per_update} ({} applied, {} no-op); collapsed {collapsed}",
                    "server",
                    counters.updates_received,
                    counters.writes_applied,
                    counters.writes_noop
                );
                let _ = writeln!(
                    out,
                    "{:<13}db retries {}{}; rejected {}{}",
                    "",
                    counters.retries(),
                    by_label(&counters.retries_by_cause),
                    counters.rejected(),
                    by_label(&counters.rejected_by_bound)
                );
            }
            ServerReport::Unavailable { reason } => {
                let _ = writeln!(out, "{:<13}metrics unavailable: {reason}", "server");
            }
        }
    }

    fn render_ceiling(&self, out: &mut String) {
        let Some(ceiling) = &self.ceiling else {
            return;
        };
        let _ = writeln!(
            out,
            "{:<13}GET /healthz {} in {:.3} s = {:.0} req/s; {}",
            "ceiling",
            ceiling.requests,
            ceiling.duration_secs,
            ceiling.throughput_per_sec,
            latency_line(&ceiling.latency)
        );
        if let Some(share) = self.share_of_ceiling {
            let _ = writeln!(
                out,
                "{:<13}PUT bursts ran at {:.1} % of this machine's HTTP ceiling",
                "",
                share * 100.0
            );
        }
    }

    fn render_verification(&self, out: &mut String) {
        let v = &self.verification;
        if v.failures_total == 0 {
            let _ = writeln!(
                out,
                "{:<13}{} sessions, {} reads: no failures",
                "verification", v.sessions, v.reads
            );
            return;
        }
        let kinds: Vec<String> = v
            .failures_by_kind
            .iter()
            .map(|(kind, count)| format!("{} {count}", kind.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "{:<13}{} sessions, {} reads: {} failures ({})",
            "verification",
            v.sessions,
            v.reads,
            v.failures_total,
            kinds.join(", ")
        );
        for failure in v.failures.iter().take(FAILURES_SHOWN) {
            let _ = writeln!(out, "{:<13}{failure}", "");
        }
        if v.failures_total > FAILURES_SHOWN {
            let _ = writeln!(
                out,
                "{:<13}... and {} more (--json lists up to {FAILURES_KEPT})",
                "",
                v.failures_total - FAILURES_SHOWN
            );
        }
    }
}

fn latency_line(latency: &LatencySummary) -> String {
    let ms = |micros: u64| micros as f64 / 1000.0;
    format!(
        "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
        ms(latency.p50_us),
        ms(latency.p90_us),
        ms(latency.p99_us),
        ms(latency.p999_us),
        ms(latency.max_us)
    )
}

/// ` (a 1, b 2)`, or nothing for an empty map.
fn by_label(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(label, count)| format!("{label} {count}"))
        .collect();
    format!(" ({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::burst::tally::{Ending, Exchange, Tally};

    fn summary(statuses: &[u16], secs: u64) -> LoadSummary {
        let mut tally = Tally::default();
        for &status in statuses {
            let ending = if status < 300 {
                Ending::Success { status, value: () }
            } else {
                Ending::Refused {
                    status,
                    message: "overloaded: retry".to_owned(),
                }
            };
            tally.record(&Exchange {
                latency: Some(Duration::from_millis(2)),
                ending,
            });
        }
        tally.summarize(Duration::from_secs(secs))
    }

    fn config() -> RunConfig {
        RunConfig {
            urls: vec!["http://127.0.0.1:8080".to_owned()],
            mode: Mode::Identical,
            sessions: 2,
            duplicates: 2,
            users: 1,
            connections: 4,
            run_id: "abc".to_owned(),
        }
    }

    fn failure() -> Failure {
        Failure {
            user: 0,
            session_id: "abc-u0-s0".to_owned(),
            kind: FailureKind::Missing,
            detail: "the owner got 404 after the burst".to_owned(),
        }
    }

    #[test]
    fn a_clean_run_passes_and_shows_the_ceiling_share() {
        let report = Report::new(
            config(),
            summary(&[201, 200, 201, 200], 1),
            ServerReport::Unavailable {
                reason: "no metrics".to_owned(),
            },
            Some(summary(&[200; 16], 1)),
            VerificationReport::new(2, 2, vec![]),
        );
        assert!(report.passed());
        let text = report.render_text();
        assert!(
            text.contains("PUT bursts ran at 25.0 % of this machine's HTTP ceiling"),
            "{text}"
        );
        assert!(text.contains("result       PASS"), "{text}");
        assert_eq!(report.to_json()["share_of_ceiling"], 0.25);
    }

    #[test]
    fn a_503_fails_the_run_and_is_reported_apart() {
        let report = Report::new(
            config(),
            summary(&[201, 503, 201, 200], 1),
            ServerReport::Unavailable {
                reason: "no metrics".to_owned(),
            },
            None,
            VerificationReport::new(2, 2, vec![]),
        );
        assert!(!report.passed());
        let text = report.render_text();
        assert!(
            text.contains("1 failed: 1 overloaded (503), 0 other status, 0 without answer"),
            "{text}"
        );
        assert_eq!(report.to_json()["burst"]["statuses"]["by_status"]["503"], 1);
    }

    #[test]
    fn a_verification_failure_fails_the_run_and_is_listed() {
        let report = Report::new(
            config(),
            summary(&[201, 200], 1),
            ServerReport::Unavailable {
                reason: "no metrics".to_owned(),
            },
            None,
            VerificationReport::new(2, 2, vec![failure(); 12]),
        );
        assert!(!report.passed());
        let text = report.render_text();
        assert!(text.contains("12 failures (missing 12)"), "{text}");
        assert_eq!(
            text.matches("the owner got 404").count(),
            FAILURES_SHOWN,
            "{text}"
        );
        assert!(text.contains("... and 2 more"), "{text}");
        let json = report.to_json();
        assert_eq!(json["verification"]["failures_by_kind"]["missing"], 12);
        assert_eq!(json["passed"], false);
    }

    #[test]
    fn server_counters_become_ratios() {
        let counters = ServerCounters {
            updates_received: 40,
            updates_collapsed: 38,
            writes_applied: 2,
            ..ServerCounters::default()
        };
        let server = ServerReport::from_scrapes(Ok(ServerCounters::default()), Ok(counters));
        let report = Report::new(
            config(),
            summary(&[200; 40], 1),
            server,
            None,
            VerificationReport::new(2, 2, vec![]),
        );
        let text = report.render_text();
        assert!(
            text.contains("write txns/update 0.050 (2 applied, 0 no-op); collapsed 95.0 %"),
            "{text}"
        );
        assert_eq!(report.to_json()["server"]["status"], "counted");
    }
}
