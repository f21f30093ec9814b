//! The service's own CPU time, read from `/proc/<pid>/stat` (user + system), so a phase's cost
//! per request is measured where it is spent: robust where requests per second are noisy, on a
//! machine the load generator and PostgreSQL share.

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat`'s times: `USER_HZ`, which Linux fixes at 100
/// for what it reports to user space on every architecture this runs on.
const TICKS_PER_SEC: u64 = 100;

/// The CPU time process `pid` has used so far; `None` off Linux or once it is gone.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// utime + stime of a `/proc/<pid>/stat` line. The command name (field 2) may hold spaces and
/// parentheses, so the fields are counted from its last `)`.
fn parse_stat(stat: &str) -> Option<Duration> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Fields 3.. follow the name: utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_micros(
        (utime + stime) * 1_000_000 / TICKS_PER_SEC,
    ))
}

/// Microseconds of CPU per request between two readings.
pub fn micros_per_request(
    before: Option<Duration>,
    after: Option<Duration>,
    requests: u64,
) -> Option<f64> {
    let spent = after?.checked_sub(before?)?;
    (requests > 0).then(|| spent.as_secs_f64() * 1e6 / requests as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_and_stime_are_read_after_the_command_name() {
        let stat =
            "4242 (email (sessions)) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150 25 0 0 20 0 9";
        assert_eq!(parse_stat(stat), Some(Duration::from_millis(1750)));
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        assert!(cpu_time(std::process::id()).is_some());
    }
}
