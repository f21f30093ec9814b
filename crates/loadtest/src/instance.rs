//! A service instance as a child process: what the benchmark runs its load
//! against, and what the tests signal and kill. `serve` announces its
//! address on stdout (whatever the log level), so an instance started on
//! port 0 is found without guessing a free port.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

/// The line `serve` prints once it listens, before the address.
pub const LISTENING_PREFIX: &str = "listening on ";

/// A running `serve` child, killed when dropped.
pub struct Instance {
    child: Child,
    /// Its base URL.
    pub url: String,
}

impl Instance {
    /// Starts `binary serve` on a free loopback port against `database_url`
    /// with extra environment (`APP_*` settings, `RUST_LOG`), and returns
    /// once `/readyz` answers 200.
    pub async fn start(
        binary: &Path,
        database_url: &str,
        environment: &[(&str, &str)],
    ) -> anyhow::Result<Instance> {
        Instance::start_on(binary, database_url, environment, "127.0.0.1:0").await
    }

    /// Like [`Instance::start`], listening on `bind` (a fixed port, to start an instance again
    /// where a load balancer expects it).
    pub async fn start_on(
        binary: &Path,
        database_url: &str,
        environment: &[(&str, &str)],
        bind: &str,
    ) -> anyhow::Result<Instance> {
        Instance::start_logging_to(binary, database_url, environment, bind, Stdio::inherit()).await
    }

    /// Like [`Instance::start_on`], its log (stderr) going to `log`.
    pub async fn start_logging_to(
        binary: &Path,
        database_url: &str,
        environment: &[(&str, &str)],
        bind: &str,
        log: impl Into<Stdio>,
    ) -> anyhow::Result<Instance> {
        let mut child = Command::new(binary)
            .args(["serve", "--bind", bind])
            .env("DATABASE_URL", database_url)
            .envs(environment.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} serve", binary.display()))?;
        let announced = announced_url(&mut child);
        let url =
            tokio::task::spawn_blocking(move || announced.recv_timeout(Duration::from_secs(60)))
                .await?
                .context("the instance did not announce its address")?;
        let instance = Instance { child, url };
        instance.wait_until_ready().await?;
        Ok(instance)
    }

    async fn wait_until_ready(&self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(response) = client.get(format!("{}/readyz", self.url)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("instance at {} did not become ready", self.url)
    }

    /// Sends `signal` (a name such as "TERM" or "KILL") to the process.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .context("running kill")?;
        anyhow::ensure!(status.success(), "kill -{signal} failed");
        Ok(())
    }

    /// Waits at most `timeout` for the process to exit.
    pub async fn wait(&mut self, timeout: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().context("polling the child")? {
                return Ok(Some(status));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(None)
    }

    /// The instance's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The instance's peak resident memory in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the child's stdout on a thread of its own (draining it, so the
/// child never blocks on a full pipe) and sends the announced base URL.
fn announced_url(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(address) = line.strip_prefix(LISTENING_PREFIX) {
                let _ = sender.send(format!("http://{address}"));
            }
        }
    });
    receiver
}
