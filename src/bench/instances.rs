//! Service instances as child processes of the benchmark, so the load
//! generator and the server are separate processes, as in production.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::configuration::WritePath;

/// A running `email-sessions serve` child, killed when dropped.
pub struct Instance {
    child: Child,
    /// Its base URL.
    pub url: String,
}

impl Instance {
    /// Starts `serve` against `database_url` with the given write path and
    /// waits until `/readyz` answers 200.
    pub async fn start(database_url: &str, write_path: WritePath) -> anyhow::Result<Instance> {
        let port = free_port()?;
        let path = match write_path {
            WritePath::Actor => "actor",
            WritePath::Direct => "direct",
        };
        let child = Command::new(std::env::current_exe().context("locating our own binary")?)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", database_url)
            .env("APP_SESSIONS__WRITE_PATH", path)
            // Per-request access logs would cost more than the requests.
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("starting a service instance")?;
        let instance = Instance {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
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
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("instance at {} did not become ready", self.url)
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

/// A port nobody listens on right now (the OS picks it).
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}
