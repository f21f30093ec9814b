//! What the service itself counted during the burst: `/metrics` is scraped
//! on every instance before and after, summed across instances, and the
//! difference says how many write transactions the burst cost and how many
//! requests were collapsed.
//!
//! The Prometheus text is read by the small parser below, scoped to what the
//! format defines for sample lines (name, quoted labels with escapes, value).
//! `prometheus-parse`, the crate made for this, splits label lists on every
//! ',' and '}' even inside quoted values (this service's own route labels
//! contain braces) and its label fixes sit unmerged, so it is not used.

use std::collections::BTreeMap;

use anyhow::Context;
use serde::Serialize;

/// Counter names, as the service exports them (`src/metric_names.rs`).
mod names {
    pub const UPDATES_RECEIVED: &str = "email_sessions_updates_received_total";
    pub const UPDATES_COLLAPSED: &str = "email_sessions_updates_collapsed_total";
    pub const WRITE_TRANSACTIONS: &str = "email_sessions_write_transactions_total";
    pub const NOOP_READS: &str = "email_sessions_noop_reads_total";
    pub const DB_RETRIES: &str = "email_sessions_db_retries_total";
    pub const UPDATES_REJECTED: &str = "email_sessions_updates_rejected_total";
}

/// The service counters the burst report uses. A counter the service has not
/// incremented yet is absent from its output, which reads as 0 here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServerCounters {
    /// Update requests accepted for processing.
    pub updates_received: u64,
    /// Update requests answered without a write transaction of their own.
    pub updates_collapsed: u64,
    /// Write transactions that changed a session.
    pub writes_applied: u64,
    /// Write transactions that found nothing to change.
    pub writes_noop: u64,
    /// Plain reads that confirmed a batch changed nothing.
    pub noop_reads: u64,
    /// Retries of transient database failures, by cause.
    pub retries_by_cause: BTreeMap<String, u64>,
    /// Update requests refused at a bound (503), by bound.
    pub rejected_by_bound: BTreeMap<String, u64>,
}

impl ServerCounters {
    /// Picks the burst's counters out of parsed samples, summing label sets.
    pub fn from_samples(samples: &[Sample]) -> ServerCounters {
        let mut counters = ServerCounters::default();
        for sample in samples {
            // Counters are whole numbers; a negative or NaN value would be a
            // broken exporter, and reads as 0 rather than wrapping.
            let value = sample.value.max(0.0) as u64;
            match sample.name.as_str() {
                names::UPDATES_RECEIVED => counters.updates_received += value,
                names::UPDATES_COLLAPSED => counters.updates_collapsed += value,
                names::NOOP_READS => counters.noop_reads += value,
                names::WRITE_TRANSACTIONS => match sample.label("outcome") {
                    Some("applied") => counters.writes_applied += value,
                    Some("noop") => counters.writes_noop += value,
                    _ => {}
                },
                names::DB_RETRIES => {
                    let cause = sample.label("cause").unwrap_or("unknown").to_owned();
                    *counters.retries_by_cause.entry(cause).or_default() += value;
                }
                names::UPDATES_REJECTED => {
                    let bound = sample.label("bound").unwrap_or("unknown").to_owned();
                    *counters.rejected_by_bound.entry(bound).or_default() += value;
                }
                _ => {}
            }
        }
        counters
    }

    /// Adds another instance's counters to these.
    pub fn add(&mut self, other: &ServerCounters) {
        self.updates_received += other.updates_received;
        self.updates_collapsed += other.updates_collapsed;
        self.writes_applied += other.writes_applied;
        self.writes_noop += other.writes_noop;
        self.noop_reads += other.noop_reads;
        for (cause, count) in &other.retries_by_cause {
            *self.retries_by_cause.entry(cause.clone()).or_default() += count;
        }
        for (bound, count) in &other.rejected_by_bound {
            *self.rejected_by_bound.entry(bound.clone()).or_default() += count;
        }
    }

    /// What was counted between `before` and `self`. A counter that went down
    /// (an instance restarted in between) gives 0, not a wrapped number.
    pub fn since(&self, before: &ServerCounters) -> ServerCounters {
        fn map_since(
            after: &BTreeMap<String, u64>,
            before: &BTreeMap<String, u64>,
        ) -> BTreeMap<String, u64> {
            after
                .iter()
                .map(|(key, count)| {
                    let earlier = before.get(key).copied().unwrap_or(0);
                    (key.clone(), count.saturating_sub(earlier))
                })
                .filter(|(_, count)| *count > 0)
                .collect()
        }
        ServerCounters {
            updates_received: self
                .updates_received
                .saturating_sub(before.updates_received),
            updates_collapsed: self
                .updates_collapsed
                .saturating_sub(before.updates_collapsed),
            writes_applied: self.writes_applied.saturating_sub(before.writes_applied),
            writes_noop: self.writes_noop.saturating_sub(before.writes_noop),
            noop_reads: self.noop_reads.saturating_sub(before.noop_reads),
            retries_by_cause: map_since(&self.retries_by_cause, &before.retries_by_cause),
            rejected_by_bound: map_since(&self.rejected_by_bound, &before.rejected_by_bound),
        }
    }

    /// Write transactions of either outcome.
    pub fn write_transactions(&self) -> u64 {
        self.writes_applied + self.writes_noop
    }

    /// Write transactions per update received; `None` when none was received.
    pub fn write_transactions_per_update(&self) -> Option<f64> {
        ratio(self.write_transactions(), self.updates_received)
    }

    /// Share of updates collapsed into another's write; `None` when none was received.
    pub fn collapsed_fraction(&self) -> Option<f64> {
        ratio(self.updates_collapsed, self.updates_received)
    }

    /// Database retries of every cause.
    pub fn retries(&self) -> u64 {
        self.retries_by_cause.values().sum()
    }

    /// Updates refused at any bound.
    pub fn rejected(&self) -> u64 {
        self.rejected_by_bound.values().sum()
    }
}

fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// Scrapes `/metrics` of every base URL and sums the counters.
pub async fn scrape_all(
    client: &reqwest::Client,
    base_urls: &[String],
) -> anyhow::Result<ServerCounters> {
    let mut total = ServerCounters::default();
    for base_url in base_urls {
        let url = format!("{base_url}/metrics");
        let text = client
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("fetching {url}"))?
            .text()
            .await
            .with_context(|| format!("reading {url}"))?;
        let samples = parse_samples(&text).with_context(|| format!("parsing {url}"))?;
        total.add(&ServerCounters::from_samples(&samples));
    }
    Ok(total)
}

/// One sample line: `name{label="value",...} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name, with any `_total`/`_bucket` suffix as written.
    pub name: String,
    /// Label pairs, unescaped, in the order written.
    pub labels: Vec<(String, String)>,
    /// The sample value.
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Parses the sample lines of Prometheus text format 0.0.4; comment lines
/// (`# HELP`, `# TYPE`) and blank lines are skipped. A malformed line is an
/// error naming its line number rather than a silently missing counter.
pub fn parse_samples(text: &str) -> anyhow::Result<Vec<Sample>> {
    text.lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(number, line)| {
            parse_sample_line(line)
                .with_context(|| format!("line {number} is not a sample: {line:?}"))
        })
        .collect()
}

fn parse_sample_line(line: &str) -> anyhow::Result<Sample> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let (name, mut rest) = line.split_at(name_end);
    anyhow::ensure!(
        name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == ':'),
        "no metric name"
    );
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = parse_labels(after_brace, &mut labels)?;
    }
    let value = rest.split_whitespace().next().context("no value")?;
    // Rust parses "+Inf", "-Inf" and "NaN" (case-insensitively) as the format writes them.
    let value: f64 = value
        .parse()
        .with_context(|| format!("bad value {value:?}"))?;
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Reads `name="value",...}` into `labels` and returns what follows the '}'.
fn parse_labels<'a>(
    mut rest: &'a str,
    labels: &mut Vec<(String, String)>,
) -> anyhow::Result<&'a str> {
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let (name, after_name) = rest.split_once('=').context("label without '='")?;
        let name = name.trim();
        anyhow::ensure!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad label name {name:?}"
        );
        let quoted = after_name
            .trim_start()
            .strip_prefix('"')
            .context("label value without opening quote")?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let close = loop {
            match chars.next().context("label value without closing quote")? {
                (index, '"') => break index,
                (_, '\\') => match chars.next().context("dangling escape")?.1 {
                    'n' => value.push('\n'),
                    escaped => value.push(escaped),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((name.to_owned(), value));
        rest = quoted[close + 1..].trim_start();
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma;
        } else {
            anyhow::ensure!(rest.starts_with('}'), "expected ',' or '}}' after a label");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like the service's real output, including a route label with
    /// braces and a histogram.
    const EXPOSITION: &str = r#"# HELP email_sessions_updates_received_total Update requests accepted for processing
# TYPE email_sessions_updates_received_total counter
email_sessions_updates_received_total 2000
# TYPE email_sessions_updates_collapsed_total counter
email_sessions_updates_collapsed_total 1900
# TYPE email_sessions_write_transactions_total counter
email_sessions_write_transactions_total{outcome="applied"} 95
email_sessions_write_transactions_total{outcome="noop"} 5
# TYPE email_sessions_db_retries_total counter
email_sessions_db_retries_total{cause="40001"} 3
email_sessions_db_retries_total{cause="40P01"} 1
# TYPE email_sessions_http_requests_total counter
email_sessions_http_requests_total{method="PUT",route="/api/email/update/{session_id}",status="2xx"} 2000
# TYPE email_sessions_http_request_duration_seconds histogram
email_sessions_http_request_duration_seconds_bucket{route="/healthz",status="2xx",le="+Inf"} 7
email_sessions_live_actors 12
"#;

    #[test]
    fn the_services_exposition_parses_into_counters() {
        let samples = parse_samples(EXPOSITION).unwrap();
        let counters = ServerCounters::from_samples(&samples);
        assert_eq!(counters.updates_received, 2000);
        assert_eq!(counters.updates_collapsed, 1900);
        assert_eq!(counters.writes_applied, 95);
        assert_eq!(counters.writes_noop, 5);
        assert_eq!(counters.retries(), 4);
        assert_eq!(counters.retries_by_cause["40P01"], 1);
        assert_eq!(counters.noop_reads, 0, "an absent counter reads as 0");
    }

    #[test]
    fn quoted_label_values_keep_braces_commas_and_escapes() {
        let sample =
            parse_sample_line(r#"m{route="/a/{id}",note="x, y \"q\" \\ end"} 1.5 1700000000000"#)
                .unwrap();
        assert_eq!(sample.label("route"), Some("/a/{id}"));
        assert_eq!(sample.label("note"), Some(r#"x, y "q" \ end"#));
        assert_eq!(sample.value, 1.5);
    }

    #[test]
    fn special_values_parse() {
        assert_eq!(parse_sample_line("m +Inf").unwrap().value, f64::INFINITY);
        assert!(parse_sample_line("m NaN").unwrap().value.is_nan());
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_it() {
        let error = parse_samples("ok 1\nbroken{x=\"1\" 2\n").unwrap_err();
        assert!(format!("{error:#}").contains("line 2"), "{error:#}");
        assert!(parse_samples("m{x=1} 2").is_err());
        assert!(parse_samples("m notanumber").is_err());
    }

    fn counters(
        received: u64,
        collapsed: u64,
        applied: u64,
        retries: &[(&str, u64)],
    ) -> ServerCounters {
        ServerCounters {
            updates_received: received,
            updates_collapsed: collapsed,
            writes_applied: applied,
            retries_by_cause: retries.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..ServerCounters::default()
        }
    }

    #[test]
    fn the_delta_is_what_was_counted_in_between() {
        // Arrange
        let before = counters(100, 50, 10, &[("40001", 2)]);
        let after = counters(2100, 1950, 110, &[("40001", 5), ("40P01", 1)]);

        // Act
        let delta = after.since(&before);

        // Assert
        assert_eq!(
            delta,
            counters(2000, 1900, 100, &[("40001", 3), ("40P01", 1)])
        );
        assert_eq!(delta.write_transactions_per_update(), Some(0.05));
        assert_eq!(delta.collapsed_fraction(), Some(0.95));
        assert_eq!(delta.retries(), 4);
    }

    #[test]
    fn a_counter_that_went_down_gives_zero_not_a_wrapped_number() {
        let delta =
            counters(10, 0, 1, &[("40001", 1)]).since(&counters(500, 0, 9, &[("40001", 4)]));
        assert_eq!(delta, ServerCounters::default());
        assert_eq!(delta.write_transactions_per_update(), None);
    }

    #[test]
    fn instances_add_up() {
        let mut total = counters(10, 5, 2, &[("40001", 1)]);
        total.add(&counters(20, 15, 3, &[("40001", 2), ("40P01", 1)]));
        assert_eq!(total, counters(30, 20, 5, &[("40001", 3), ("40P01", 1)]));
    }
}
