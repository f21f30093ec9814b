//! Live progress of a phase (burst, read-back, ceiling) on stderr: a bar
//! when a person is watching a terminal, else a plain line every few seconds
//! so logs of CI runs stay short and stdout stays clean for `--json`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain progress line may be printed.
const PLAIN_LINE_INTERVAL: Duration = Duration::from_secs(5);

/// Progress of one phase of `total` requests.
pub struct Progress {
    phase: &'static str,
    total: u64,
    done: u64,
    failed: u64,
    display: Display,
}

enum Display {
    Bar(ProgressBar),
    Lines { last_printed: Instant },
}

impl Progress {
    /// Starts showing progress; a bar only when `allow_bar` and stderr is a terminal.
    pub fn start(phase: &'static str, total: usize, allow_bar: bool) -> Progress {
        let total = total as u64;
        let display = if allow_bar && std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total).with_prefix(phase).with_style(
                ProgressStyle::with_template(
                    "{prefix:>7} [{bar:30}] {pos}/{len} {percent:>3}% {elapsed:>4} {msg}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            Display::Bar(bar)
        } else {
            Display::Lines {
                last_printed: Instant::now(),
            }
        };
        Progress {
            phase,
            total,
            done: 0,
            failed: 0,
            display,
        }
    }

    /// Counts one finished request.
    pub fn advance(&mut self, succeeded: bool) {
        self.done += 1;
        if !succeeded {
            self.failed += 1;
        }
        match &mut self.display {
            Display::Bar(bar) => {
                bar.inc(1);
                if !succeeded {
                    bar.set_message(format!("{} failed", self.failed));
                }
            }
            Display::Lines { last_printed } => {
                if last_printed.elapsed() >= PLAIN_LINE_INTERVAL {
                    *last_printed = Instant::now();
                    eprintln!(
                        "{}: {}/{} requests ({:.0} %), {} failed",
                        self.phase,
                        self.done,
                        self.total,
                        100.0 * self.done as f64 / self.total.max(1) as f64,
                        self.failed
                    );
                }
            }
        }
    }

    /// Removes the bar, so the report that follows starts on a clean screen.
    pub fn finish(self) {
        if let Display::Bar(bar) = self.display {
            bar.finish_and_clear();
        }
    }
}
