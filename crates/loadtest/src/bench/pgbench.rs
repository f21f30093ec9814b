//! The database's own locked-update rate, measured with `pgbench` on the
//! same cluster: each transaction locks one random row of many with
//! `SELECT ... FOR UPDATE` and updates it, which is the shape of one
//! session write without the HTTP and the service around it.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;
use tokio_postgres::NoTls;

/// Rows the script picks from; many, so clients rarely wait on each other,
/// as distinct sessions do.
const ROWS: i32 = 100_000;

const SCRIPT: &str = "\\set id random(1, 100000)
BEGIN;
SELECT n FROM bench_locked_rows WHERE id = :id FOR UPDATE;
UPDATE bench_locked_rows SET n = n + 1 WHERE id = :id;
COMMIT;
";

/// Transactions per second of the locked-update script with `clients`
/// connections for `seconds`.
pub async fn locked_update_rate(
    config: &tokio_postgres::Config,
    url: &str,
    clients: usize,
    seconds: u32,
) -> anyhow::Result<f64> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .context("connecting for pgbench setup")?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS bench_locked_rows (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
             INSERT INTO bench_locked_rows (id) SELECT generate_series(1, {ROWS}) ON CONFLICT DO NOTHING;"
        ))
        .await
        .context("preparing the pgbench table")?;
    let script =
        std::env::temp_dir().join(format!("email-sessions-pgbench-{}.sql", std::process::id()));
    std::fs::write(&script, SCRIPT).context("writing the pgbench script")?;
    // Beside the server binaries when they are a real install; on PATH when
    // those are wrappers (Debian's pg_wrapper puts pgbench in /usr/bin) or
    // when only the client tools are installed (a remote --database-url).
    let program = pg_embedded::find_server_binaries()
        .ok()
        .map(|bin_dir| bin_dir.join("pgbench"))
        .filter(|beside_server| beside_server.is_file())
        .unwrap_or_else(|| PathBuf::from("pgbench"));
    let output = Command::new(&program)
        .args(["-n", "-M", "prepared", "-j", "2"])
        .args(["-c", &clients.to_string(), "-T", &seconds.to_string()])
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
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "pgbench failed: {}{}",
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    parse_tps(&stdout).with_context(|| format!("no tps line in pgbench output:\n{stdout}"))
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
        let output = "number of failed transactions: 0 (0.000%)\nlatency average = 5.1 ms\ninitial connection time = 20.1 ms\ntps = 12474.713822 (without initial connection time)\n";
        assert_eq!(parse_tps(output), Some(12474.713822));
    }
}
