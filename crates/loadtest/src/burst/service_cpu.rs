//! The service's own CPU time, read from `/proc/<pid>/stat` (user + system), so a phase's cost
//! per request is measured where it is spent: robust where requests per second are noisy, on a
//! machine the load generator and PostgreSQL share. Beside it, the whole machine's busy time
//! (`/proc/stat`): what a request costs everything that serves it, the load generator included,
//! which is what bounds a phase's rate once the machine is full.

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
    Some(from_ticks(utime + stime))
}

/// The CPU time all processes on the machine have used so far, over all its cores; `None` off
/// Linux.
pub fn machine_busy_time() -> Option<Duration> {
    parse_machine_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// user + nice + system + irq + softirq of `/proc/stat`'s `cpu` line: neither idle nor I/O wait,
/// nor the time a hypervisor gave to other guests (steal).
fn parse_machine_stat(stat: &str) -> Option<Duration> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, _idle, _iowait, irq, softirq, ..] = ticks[..] else {
        return None;
    };
    Some(from_ticks(user + nice + system + irq + softirq))
}

fn from_ticks(ticks: u64) -> Duration {
    Duration::from_micros(ticks * 1_000_000 / TICKS_PER_SEC)
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
    fn the_machine_is_busy_in_user_system_and_interrupts_only() {
        let stat = "cpu  100 20 30 5000 40 5 7 300 0 0\ncpu0 50 10 15 2500 20 2 3 150 0 0\n";
        assert_eq!(parse_machine_stat(stat), Some(Duration::from_millis(1620)));
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        assert!(cpu_time(std::process::id()).is_some());
    }
}
