//! Baselines measured with `pgbench` on the same cluster, so the service's distinct writes can be
//! read as a share of what the database itself does:
//! - the locked-update rate: each transaction locks one random row of many with
//!   `SELECT ... FOR UPDATE` and updates it, the shape of one session write with nothing around it;
//! - the write function's rate: `apply_email_session_change` called directly, each call the first
//!   touch of a new session with a subject and three recipients, as the benchmark's `D=1` requests
//!   are, without the HTTP and the service around it.
//!
//! The two alternate in short rounds ([`compare`]): on a shared machine the load of the minute
//! moves both, so their ratio is read across the same minutes rather than from two runs one
//! after the other (back to back, 10 s each, the ratio moved between 1.10x and 1.65x in four
//! runs of one afternoon).

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;
use tokio_postgres::NoTls;

use crate::burst::service_cpu::machine_busy_time;

/// Rows the script picks from; many, so clients rarely wait on each other,
/// as distinct sessions do.
const ROWS: i32 = 100_000;

const SCRIPT: &str = "\\set id random(1, 100000)
BEGIN;
SELECT n FROM bench_locked_rows WHERE id = :id FOR UPDATE;
UPDATE bench_locked_rows SET n = n + 1 WHERE id = :id;
COMMIT;
";

// The call the service makes, with the values of one first touch; `:session` is random, so
// calls rarely meet on one row, as distinct sessions do.
const WRITE_FUNCTION_SCRIPT: &str = "\\set session random(1, 2000000000)
SELECT version FROM apply_email_session_change(
    p_user_id => :user_id, p_session_id => 'pgbench-' || :session,
    p_set_subject => true, p_subject => 'pgbench ' || :session,
    p_set_recipients => true,
    p_emails => ARRAY['r0-' || :session || '@pgbench.example', 'r1-' || :session || '@pgbench.example',
                      'r2-' || :session || '@pgbench.example'],
    p_names => ARRAY[NULL, 'Smith, Jane', NULL]::text[],
    p_if_match => NULL, p_if_match_any => false, p_if_none_match => NULL,
    p_if_none_match_any => false, p_quota => 0, p_webhooks => false);
";

/// Rounds of each script, alternating.
pub const ROUNDS: u32 = 3;

/// Seconds of one round.
pub const ROUND_SECONDS: u32 = 5;

/// What the rounds of one script measured, together.
#[derive(Debug, Clone, Copy)]
pub struct PgbenchRun {
    /// Transactions per second.
    pub tps: f64,
    /// The whole machine's CPU time (PostgreSQL and pgbench) per transaction, on Linux.
    pub machine_cpu_us_per_transaction: Option<f64>,
}

/// One round's count and cost, or several rounds' together.
#[derive(Debug, Clone, Copy)]
struct Round {
    transactions: u64,
    seconds: f64,
    machine_cpu_us: Option<f64>,
}

impl Round {
    /// No round yet.
    const NONE: Round = Round {
        transactions: 0,
        seconds: 0.0,
        machine_cpu_us: Some(0.0),
    };

    fn add(self, other: Round) -> Round {
        Round {
            transactions: self.transactions + other.transactions,
            seconds: self.seconds + other.seconds,
            machine_cpu_us: self
                .machine_cpu_us
                .zip(other.machine_cpu_us)
                .map(|(a, b)| a + b),
        }
    }

    fn rate(self) -> PgbenchRun {
        let transactions = self.transactions.max(1) as f64;
        PgbenchRun {
            tps: self.transactions as f64 / self.seconds,
            machine_cpu_us_per_transaction: self.machine_cpu_us.map(|us| us / transactions),
        }
    }
}

/// The locked update's rate and the write function's (sessions of the user named `user`, created
/// by the benchmark), each over [`ROUNDS`] rounds of [`ROUND_SECONDS`] with `clients`
/// connections, the two alternating.
pub async fn compare(
    config: &tokio_postgres::Config,
    url: &str,
    clients: usize,
    user: &str,
) -> anyhow::Result<(PgbenchRun, PgbenchRun)> {
    prepare_locked_rows(config).await?;
    let user_id = user_id(config, user).await?;
    let write_function_defines = [format!("user_id={user_id}")];
    let (mut locked_update, mut write_function) = (Round::NONE, Round::NONE);
    for _ in 0..ROUNDS {
        locked_update = locked_update.add(run_pgbench(url, clients, SCRIPT, &[]).await?);
        write_function = write_function
            .add(run_pgbench(url, clients, WRITE_FUNCTION_SCRIPT, &write_function_defines).await?);
    }
    Ok((locked_update.rate(), write_function.rate()))
}

/// The rows the locked-update script picks from.
async fn prepare_locked_rows(config: &tokio_postgres::Config) -> anyhow::Result<()> {
    let client = connect(config).await?;
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS bench_locked_rows (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
             INSERT INTO bench_locked_rows (id) SELECT generate_series(1, {ROWS}) ON CONFLICT DO NOTHING;"
        ))
        .await
        .context("preparing the pgbench table")?;
    Ok(())
}

/// The ID of the user named `user`.
async fn user_id(config: &tokio_postgres::Config, user: &str) -> anyhow::Result<i64> {
    let client = connect(config).await?;
    Ok(client
        .query_one("SELECT id FROM users WHERE name = $1", &[&user])
        .await
        .with_context(|| format!("looking up the user {user:?}"))?
        .get(0))
}

/// A connection for preparing a run, alive while the returned client is.
async fn connect(config: &tokio_postgres::Config) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .context("connecting to prepare a pgbench run")?;
    tokio::spawn(connection);
    Ok(client)
}

/// Runs `script` with `clients` connections for one round (variables from `defines`, each
/// `name=value`).
async fn run_pgbench(
    url: &str,
    clients: usize,
    script_text: &str,
    defines: &[String],
) -> anyhow::Result<Round> {
    let script =
        std::env::temp_dir().join(format!("email-sessions-pgbench-{}.sql", std::process::id()));
    std::fs::write(&script, script_text).context("writing the pgbench script")?;
    // Beside the server binaries when they are a real install; on PATH when
    // those are wrappers (Debian's pg_wrapper puts pgbench in /usr/bin) or
    // when only the client tools are installed (a remote --database-url).
    let program = pg_embedded::find_server_binaries()
        .ok()
        .map(|bin_dir| bin_dir.join("pgbench"))
        .filter(|beside_server| beside_server.is_file())
        .unwrap_or_else(|| PathBuf::from("pgbench"));
    let machine_before = machine_busy_time();
    let output = Command::new(&program)
        .args(["-n", "-M", "prepared", "-j", "2"])
        .args(["-c", &clients.to_string(), "-T", &ROUND_SECONDS.to_string()])
        .args(defines.iter().flat_map(|define| ["-D", define.as_str()]))
        .arg("-f")
        .arg(&script)
        .arg(url)
        .output()
        .with_context(|| {
            format!(
                "running {} (Debian: apt-get install postgresql-client)",
                program.display()
            )
        })?;
    let machine_after = machine_busy_time();
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "pgbench failed: {}{}",
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    let tps =
        parse_tps(&stdout).with_context(|| format!("no tps line in pgbench output:\n{stdout}"))?;
    let transactions = parse_processed(&stdout)
        .with_context(|| format!("no transaction count in pgbench output:\n{stdout}"))?;
    Ok(Round {
        transactions,
        // The time pgbench counted its transactions in, without connecting.
        seconds: transactions as f64 / tps,
        machine_cpu_us: machine_before
            .zip(machine_after)
            .and_then(|(before, after)| after.checked_sub(before))
            .map(|spent| spent.as_secs_f64() * 1e6),
    })
}

/// Reads `number of transactions actually processed: 123456`.
fn parse_processed(output: &str) -> Option<u64> {
    output
        .lines()
        .find_map(|line| line.strip_prefix("number of transactions actually processed: "))
        .and_then(|count| count.split_whitespace().next()?.parse().ok())
}

/// Reads `tps = 1234.5 (without initial connection time)`.
fn parse_tps(output: &str) -> Option<f64> {
    output
        .lines()
        .find(|line| line.starts_with("tps = ") && line.contains("without initial connection"))
        .and_then(|line| {
            line.strip_prefix("tps = ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_add_up_to_one_rate() {
        let round = |transactions, seconds, machine_cpu_us| Round {
            transactions,
            seconds,
            machine_cpu_us,
        };
        let both = Round::NONE
            .add(round(1000, 5.0, Some(200_000.0)))
            .add(round(3000, 5.0, Some(400_000.0)));
        let rate = both.rate();
        assert_eq!(rate.tps, 400.0);
        assert_eq!(rate.machine_cpu_us_per_transaction, Some(150.0));
        let unknown = both.add(round(1000, 5.0, None)).rate();
        assert_eq!(unknown.machine_cpu_us_per_transaction, None);
    }

    #[test]
    fn reads_the_tps_line_of_pgbench_15() {
        let output = "number of transactions actually processed: 124747\nnumber of failed transactions: 0 (0.000%)\nlatency average = 5.1 ms\ninitial connection time = 20.1 ms\ntps = 12474.713822 (without initial connection time)\n";
        assert_eq!(parse_tps(output), Some(12474.713822));
        assert_eq!(parse_processed(output), Some(124747));
    }
}
