//! The service's command line, the one way the tools write the service's data: `email-sessions
//! user create NAME` prints a new user's token alone on stdout. (The benchmark's own database,
//! which it creates and drops, is the tools' only other contact with PostgreSQL.)

use std::path::PathBuf;

use anyhow::Context;
use tokio::process::Command;

/// Where the `email-sessions` binary is.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServiceBinary {
    /// The `email-sessions` binary; by default the one next to this program (both are built
    /// into the same target directory), else the one on PATH.
    #[arg(long = "service-bin", env = "EMAIL_SESSIONS_BIN", value_name = "PATH")]
    pub binary: Option<PathBuf>,
}

impl ServiceBinary {
    /// The binary to run.
    pub fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(binary) = &self.binary {
            return Ok(binary.clone());
        }
        let beside_us = std::env::current_exe()
            .context("locating this program")?
            .with_file_name("email-sessions");
        Ok(if beside_us.is_file() {
            beside_us
        } else {
            PathBuf::from("email-sessions")
        })
    }
}

/// Creates one user per name with `binary user create NAME` (in `environment`, which says
/// which database) and returns their tokens in order.
pub async fn create_users(
    binary: &std::path::Path,
    environment: &[(&str, &str)],
    names: &[String],
) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::with_capacity(names.len());
    for name in names {
        let output = Command::new(binary)
            .args(["user", "create", name])
            .envs(environment.iter().copied())
            .output()
            .await
            .with_context(|| format!("running {} user create", binary.display()))?;
        anyhow::ensure!(
            output.status.success(),
            "{} user create {name} failed ({}): {}",
            binary.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        let token = String::from_utf8(output.stdout)
            .context("the token is not UTF-8")?
            .trim()
            .to_owned();
        anyhow::ensure!(!token.is_empty(), "user create {name} printed no token");
        tokens.push(token);
    }
    Ok(tokens)
}
