//! The service as a real child process, for what only a process can show:
//! signals, crashes, and metrics of one process's own recorder.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::helpers::TestDb;

/// A running `email-sessions serve`.
pub struct ServiceProcess {
    child: Child,
    pub address: String,
}

impl ServiceProcess {
    /// Starts `serve` on `db` with extra `APP_*` settings; returns once
    /// `/readyz` answers 200.
    pub async fn start(db: &TestDb, settings: &[(&str, &str)]) -> ServiceProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_email-sessions"));
        command
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("DATABASE_URL", db.url())
            .env("RUST_LOG", "info")
            .envs(settings.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("starting email-sessions serve");
        let port = read_port(&mut child);
        let process = ServiceProcess {
            child,
            address: format!("http://127.0.0.1:{port}"),
        };
        process.wait_until_ready().await;
        process
    }

    async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::Client::new();
        while Instant::now() < deadline {
            if let Ok(response) = client.get(format!("{}/readyz", self.address)).send().await
                && response.status().is_success()
            {
                return;
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("service did not become ready");
    }

    /// Sends `signal` (e.g. "TERM", "KILL") to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `timeout`.
    pub async fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("polling the child") {
                return Some(status);
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads log lines until the "listening" line names the port; the rest of
/// stderr is drained in the background so the child never blocks on it.
fn read_port(child: &mut Child) -> u16 {
    let stderr = child.stderr.take().expect("piped stderr");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let echo = std::env::var("TEST_LOG").is_ok();
        let mut sender = Some(sender);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if echo {
                eprintln!("{line}");
            }
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line)
                && json["message"] == "listening"
                && let Some(port) = json["port"].as_u64()
                && let Some(sender) = sender.take()
            {
                let _ = sender.send(port as u16);
            }
        }
    });
    receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("the service logged its port")
}
