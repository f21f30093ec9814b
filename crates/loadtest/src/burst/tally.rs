//! Counting one phase's requests as they finish: latency into an HDR
//! histogram (microseconds, 3 significant digits), answers by status, and
//! failures with a few examples, summed up as a [`LoadSummary`] at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Longest latency the histogram tells apart (1 hour); longer ones count as this.
const MAX_TRACKED_LATENCY_US: u64 = 3_600_000_000;

/// Failure messages kept as examples; the rest are only counted.
const ERROR_EXAMPLES: usize = 5;

/// How one request ended.
#[derive(Debug)]
pub enum Ending<T> {
    /// A 2xx whose body was read, and what was taken from it.
    Success {
        /// The HTTP status.
        status: u16,
        /// What the caller took from the body.
        value: T,
    },
    /// An answer other than 2xx.
    Refused {
        /// The HTTP status.
        status: u16,
        /// The error the service gave, for a human.
        message: String,
    },
    /// No usable answer: connection error, timeout, or a 2xx body that could not be read.
    Lost {
        /// What went wrong.
        message: String,
    },
}

/// One request: how long it took (when an answer arrived) and how it ended.
#[derive(Debug)]
pub struct Exchange<T> {
    /// From sending to the last byte of the answer; `None` without an answer.
    pub latency: Option<Duration>,
    /// How it ended.
    pub ending: Ending<T>,
}

impl<T> Exchange<T> {
    /// Whether this request got a 2xx with a usable body.
    pub fn succeeded(&self) -> bool {
        matches!(self.ending, Ending::Success { .. })
    }
}

/// Answers by status, and requests that got none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    /// Requests answered, by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests without a usable answer (transport error, timeout, unreadable 2xx body).
    pub lost: u64,
    /// The first few distinct failure messages.
    pub error_examples: Vec<String>,
}

impl StatusCounts {
    /// Requests answered 2xx with a usable body.
    pub fn succeeded(&self) -> u64 {
        self.by_status
            .iter()
            .filter(|(status, _)| (200..300).contains(*status))
            .map(|(_, count)| count)
            .sum()
    }

    /// Requests that did not succeed, 503s included.
    pub fn failed(&self) -> u64 {
        self.by_status.values().sum::<u64>() + self.lost - self.succeeded()
    }

    /// 503 answers: the service shedding load, reported apart from other failures.
    pub fn overloaded(&self) -> u64 {
        self.by_status.get(&503).copied().unwrap_or(0)
    }

    fn note_error(&mut self, message: String) {
        if self.error_examples.len() < ERROR_EXAMPLES && !self.error_examples.contains(&message) {
            self.error_examples.push(message);
        }
    }
}

/// Latency percentiles of one phase, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    /// Requests measured (those that got an answer).
    pub samples: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Slowest.
    pub max_us: u64,
}

/// One phase's totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadSummary {
    /// Requests sent.
    pub requests: u64,
    /// Wall time from the first send to the last answer.
    pub duration_secs: f64,
    /// Requests per second over that time.
    pub throughput_per_sec: f64,
    /// Latency percentiles.
    pub latency: LatencySummary,
    /// Outcomes.
    pub statuses: StatusCounts,
    /// The service's CPU time per request in this phase, when its process ID was given.
    pub service_cpu_us_per_request: Option<f64>,
    /// The whole machine's CPU time per request in this phase (every process, the load
    /// generator's included), on Linux.
    pub machine_cpu_us_per_request: Option<f64>,
}

/// Accumulates exchanges into a [`LoadSummary`].
pub struct Tally {
    latency: Histogram<u64>,
    statuses: StatusCounts,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            latency: Histogram::new_with_bounds(1, MAX_TRACKED_LATENCY_US, 3)
                .expect("the bounds are valid"),
            statuses: StatusCounts::default(),
        }
    }
}

impl Tally {
    /// Counts one exchange.
    pub fn record<T>(&mut self, exchange: &Exchange<T>) {
        if let Some(latency) = exchange.latency {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            // Sub-microsecond answers count as 1 µs, the histogram's floor.
            self.latency.saturating_record(micros.max(1));
        }
        match &exchange.ending {
            Ending::Success { status, .. } => {
                *self.statuses.by_status.entry(*status).or_default() += 1;
            }
            Ending::Refused { status, message } => {
                *self.statuses.by_status.entry(*status).or_default() += 1;
                self.statuses
                    .note_error(format!("HTTP {status}: {message}"));
            }
            Ending::Lost { message } => {
                self.statuses.lost += 1;
                self.statuses.note_error(message.clone());
            }
        }
    }

    /// The summary, given the phase's wall time.
    pub fn summarize(self, elapsed: Duration) -> LoadSummary {
        let requests = self.statuses.by_status.values().sum::<u64>() + self.statuses.lost;
        let duration_secs = elapsed.as_secs_f64();
        let histogram = &self.latency;
        LoadSummary {
            requests,
            duration_secs,
            throughput_per_sec: if duration_secs > 0.0 {
                requests as f64 / duration_secs
            } else {
                0.0
            },
            latency: LatencySummary {
                samples: histogram.len(),
                p50_us: histogram.value_at_quantile(0.50),
                p90_us: histogram.value_at_quantile(0.90),
                p99_us: histogram.value_at_quantile(0.99),
                p999_us: histogram.value_at_quantile(0.999),
                max_us: histogram.max(),
            },
            statuses: self.statuses,
            service_cpu_us_per_request: None,
            machine_cpu_us_per_request: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, millis: u64) -> Exchange<()> {
        let ending = if (200..300).contains(&status) {
            Ending::Success { status, value: () }
        } else {
            Ending::Refused {
                status,
                message: "overloaded".to_owned(),
            }
        };
        Exchange {
            latency: Some(Duration::from_millis(millis)),
            ending,
        }
    }

    #[test]
    fn statuses_latency_and_throughput_add_up() {
        // Arrange
        let mut tally = Tally::default();
        for millis in 1..=98 {
            tally.record(&answered(200, millis));
        }
        tally.record(&answered(503, 500));
        tally.record(&Exchange::<()> {
            latency: None,
            ending: Ending::Lost {
                message: "timed out".to_owned(),
            },
        });

        // Act
        let summary = tally.summarize(Duration::from_secs(2));

        // Assert
        assert_eq!(summary.requests, 100);
        assert_eq!(summary.throughput_per_sec, 50.0);
        assert_eq!(summary.statuses.succeeded(), 98);
        assert_eq!(summary.statuses.overloaded(), 1);
        assert_eq!(summary.statuses.failed(), 2);
        assert_eq!(
            summary.statuses.error_examples,
            ["HTTP 503: overloaded", "timed out"]
        );
        assert_eq!(summary.latency.samples, 99);
        let p50_ms = summary.latency.p50_us as f64 / 1000.0;
        assert!((49.0..=51.0).contains(&p50_ms), "{p50_ms}");
        let max_ms = summary.latency.max_us as f64 / 1000.0;
        assert!((499.0..=501.0).contains(&max_ms), "{max_ms}");
    }
}
