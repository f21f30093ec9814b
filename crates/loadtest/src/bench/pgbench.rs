//! Baselines measured with `pgbench` on the same cluster, so the service's distinct writes can be
//! read as a share of what the database itself does:
//! - the locked-update rate: each transaction locks one random row of many with
//!   `SELECT ... FOR UPDATE` and updates it, the shape of one session write with nothing around it;
//! - the write function's rate: `apply_email_session_change` called directly, each call the first
//!   touch of a new session with a subject and three recipients, as the benchmark's `D=1` requests
//!   are, without the HTTP and the service around it.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;
use tokio_postgres::NoTls;

use crate::burst::service_cpu::{machine_busy_time, micros_per_request};

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

/// What one pgbench run measured.
#[derive(Debug, Clone, Copy)]
pub struct PgbenchRun {
    /// Transactions per second.
    pub tps: f64,
    /// The whole machine's CPU time (PostgreSQL and pgbench) per transaction, on Linux.
    pub machine_cpu_us_per_transaction: Option<f64>,
}

/// Transactions per second of the locked-update script with `clients`
/// connections for `seconds`.
pub async fn locked_update_rate(
    config: &tokio_postgres::Config,
    url: &str,
    clients: usize,
    seconds: u32,
) -> anyhow::Result<PgbenchRun> {
    let client = connect(config).await?;
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS bench_locked_rows (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
             INSERT INTO bench_locked_rows (id) SELECT generate_series(1, {ROWS}) ON CONFLICT DO NOTHING;"
        ))
        .await
        .context("preparing the pgbench table")?;
    run_pgbench(url, clients, seconds, SCRIPT, &[]).await
}

/// Calls per second of the write function with `clients` connections for `seconds`, writing
/// sessions of the user named `user` (created by the benchmark).
pub async fn write_function_rate(
    config: &tokio_postgres::Config,
    url: &str,
    clients: usize,
    seconds: u32,
    user: &str,
) -> anyhow::Result<PgbenchRun> {
    let client = connect(config).await?;
    let user_id: i64 = client
        .query_one("SELECT id FROM users WHERE name = $1", &[&user])
        .await
        .with_context(|| format!("looking up the user {user:?}"))?
        .get(0);
    run_pgbench(
        url,
        clients,
        seconds,
        WRITE_FUNCTION_SCRIPT,
        &[format!("user_id={user_id}")],
    )
    .await
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

/// Runs `script` with `clients` connections for `seconds` (variables from `defines`, each
/// `name=value`); its transactions per second.
async fn run_pgbench(
    url: &str,
    clients: usize,
    seconds: u32,
    script_text: &str,
    defines: &[String],
) -> anyhow::Result<PgbenchRun> {
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
        .args(["-c", &clients.to_string(), "-T", &seconds.to_string()])
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
    Ok(PgbenchRun {
        tps,
        machine_cpu_us_per_transaction: parse_processed(&stdout).and_then(|transactions| {
            micros_per_request(machine_before, machine_after, transactions)
        }),
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
    fn reads_the_tps_line_of_pgbench_15() {
        let output = "number of transactions actually processed: 124747\nnumber of failed transactions: 0 (0.000%)\nlatency average = 5.1 ms\ninitial connection time = 20.1 ms\ntps = 12474.713822 (without initial connection time)\n";
        assert_eq!(parse_tps(output), Some(12474.713822));
        assert_eq!(parse_processed(output), Some(124747));
    }
}
