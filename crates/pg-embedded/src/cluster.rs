//! One cluster's data directory and its server's lifecycle: `initdb`, `pg_ctl start`, status
//! (zombie-aware), `pg_ctl stop`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::process::Command;
use tokio::time::Instant;

use crate::binaries::binaries_for;
use crate::runner::Runner;
use crate::socket::socket_dir_for;
use crate::{PORT, SERVER_TIMEOUT, SERVER_USER, SUPERUSER};

/// Appended to `postgresql.conf` right after `initdb`. The socket directory lives in a separate file,
/// rewritten before every start, because it depends on where the root is now (a moved checkout
/// would otherwise point the server at a directory that no longer exists).
const CLUSTER_SETTINGS: &str = "
# --- embedded cluster (see crates/pg-embedded) ---
# No TCP at all: trust authentication is only safe because the one way in is a private socket.
listen_addresses = ''
unix_socket_permissions = 0700
# Explicit, so a PGPORT in the environment cannot rename the socket under us.
port = 5432
max_connections = 200
shared_buffers = 128MB
# fsync stays on: this is a service's real default database on a developer's machine, not a throwaway.
include_if_exists = 'embedded_socket.conf'
";

/// The cluster's directories and the binaries that manage it.
#[derive(Debug)]
pub(crate) struct Cluster {
    pub(crate) root: PathBuf,
    pub(crate) data_dir: PathBuf,
    pub(crate) bin_dir: PathBuf,
    pub(crate) runner: Runner,
}

impl Cluster {
    pub(crate) fn open(root: PathBuf, runner: Runner) -> anyhow::Result<Cluster> {
        let data_dir = root.join("data");
        if let Runner::ServerUser { uid, .. } = runner {
            let owner = fs::metadata(&data_dir)
                .with_context(|| format!("reading {}", data_dir.display()))?
                .uid();
            if owner != uid {
                bail!(
                    "{} belongs to uid {owner}, but the server runs as `{SERVER_USER}` (uid {uid}); \
                     `chown -R {SERVER_USER}: {}` or set DATABASE_URL",
                    data_dir.display(),
                    data_dir.display()
                );
            }
        }
        let bin_dir = binaries_for(&data_dir)?;
        Ok(Cluster {
            root,
            data_dir,
            bin_dir,
            runner,
        })
    }

    fn pg_ctl(&self) -> Command {
        self.runner.command(self.bin_dir.join("pg_ctl"), &self.root)
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    pub(crate) async fn is_running(&self) -> anyhow::Result<bool> {
        let output = self
            .pg_ctl()
            .arg("status")
            .arg("-D")
            .arg(&self.data_dir)
            .output()
            .await
            .context("running pg_ctl status")?;
        // pg_ctl documents 0 = running, 3 = not running; anything else (4: no data dir) is a fault.
        match output.status.code() {
            Some(0) => self.wait_unless_zombie().await,
            Some(3) => Ok(false),
            _ => bail!(
                "pg_ctl status -D {} failed ({}): {}",
                self.data_dir.display(),
                output.status,
                describe(&output)
            ),
        }
    }

    /// `pg_ctl status` trusts `kill(pid, 0)`, which also succeeds for a zombie: a server that died
    /// leaving its pid file, whose parent has not reaped it yet. Our postmasters are orphans, so
    /// their parent is init, and some inits (a sandbox's, or a container's PID 1 that is not an
    /// init) reap late or never; postgres would refuse to start over that pid file too. So wait
    /// for the zombie to go, then report "not running".
    async fn wait_unless_zombie(&self) -> anyhow::Result<bool> {
        let Some(pid) = self.postmaster_pid() else {
            return Ok(true);
        };
        if is_zombie(pid) {
            tracing::info!(
                pid,
                "embedded PostgreSQL died; waiting for its process to be reaped"
            );
        }
        let deadline = Instant::now() + SERVER_TIMEOUT;
        while is_zombie(pid) {
            if Instant::now() >= deadline {
                bail!(
                    "{} names PID {pid}, a dead server that its parent process never reaped (a zombie); \
                     if this runs as PID 1 in a container, add an init (`docker run --init`, tini)",
                    self.data_dir.join("postmaster.pid").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(fs::metadata(format!("/proc/{pid}")).is_ok())
    }

    fn postmaster_pid(&self) -> Option<u32> {
        let pid_file = fs::read_to_string(self.data_dir.join("postmaster.pid")).ok()?;
        pid_file.lines().next()?.trim().parse().ok()
    }

    pub(crate) fn write_socket_settings(&self, socket_dir: &Path) -> anyhow::Result<()> {
        let path = self.data_dir.join("embedded_socket.conf");
        // postgresql.conf strings are single-quoted with backslash escapes.
        let quoted = socket_dir
            .to_str()
            .context("the socket directory path is not UTF-8")?
            .replace('\\', "\\\\")
            .replace('\'', "''");
        fs::write(
            &path,
            format!("# Rewritten before every start by pg-embedded.\nunix_socket_directories = '{quoted}'\n"),
        )
        .with_context(|| format!("writing {}", path.display()))?;
        self.runner.give(&path)
    }

    /// Returns whether we started it: `false` when another process beat us to it.
    pub(crate) async fn start_server(&self) -> anyhow::Result<bool> {
        tracing::info!(data_dir = %self.data_dir.display(), "starting embedded PostgreSQL");
        let output = self
            .pg_ctl()
            .arg("start")
            .arg("-w")
            .arg("-t")
            .arg(SERVER_TIMEOUT.as_secs().to_string())
            .arg("-D")
            .arg(&self.data_dir)
            // With -l the postmaster writes there instead of inheriting our pipes, so `output()` returns.
            .arg("-l")
            .arg(self.log_file())
            .output()
            .await
            .context("running pg_ctl start")?;
        if output.status.success() {
            return Ok(true);
        }
        // Someone outside our lock (a manual pg_ctl, another tool) may have started it meanwhile.
        if self.is_running().await.unwrap_or(false) {
            tracing::info!(
                "embedded PostgreSQL was started by another process meanwhile; using it"
            );
            return Ok(false);
        }
        Err(anyhow!(
            "pg_ctl start failed ({}): {}",
            output.status,
            describe(&output)
        ))
        .context(self.with_log_tail("starting the embedded PostgreSQL"))
    }

    pub(crate) async fn stop_server(&self) -> anyhow::Result<()> {
        tracing::info!(data_dir = %self.data_dir.display(), "stopping embedded PostgreSQL");
        match self
            .control("stop", &["-m", "fast"], "stopping the embedded PostgreSQL")
            .await
        {
            // pg_ctl also fails when someone else stopped it meanwhile: stopped is stopped.
            Err(_) if !self.is_running().await.unwrap_or(true) => Ok(()),
            stopped => stopped,
        }
    }

    /// Where the server listens: what it wrote to `postmaster.pid` when it can tell us (it may have
    /// been started by another process), else where we would start it.
    pub(crate) fn socket(&self) -> (PathBuf, u16) {
        self.running_socket()
            .unwrap_or_else(|| (socket_dir_for(&self.root), PORT))
    }

    /// The socket directory and port from `postmaster.pid` (lines 4 and 5), once the server wrote them.
    fn running_socket(&self) -> Option<(PathBuf, u16)> {
        let pid_file = fs::read_to_string(self.data_dir.join("postmaster.pid")).ok()?;
        let mut lines = pid_file.lines().skip(3);
        let port = lines.next()?.trim().parse().ok()?;
        let socket_dir = lines.next()?.trim();
        (!socket_dir.is_empty()).then(|| (PathBuf::from(socket_dir), port))
    }

    /// What the server itself said is usually the only useful part of a failed start.
    pub(crate) fn with_log_tail(&self, what: &str) -> String {
        let log_file = self.log_file();
        match fs::read_to_string(&log_file) {
            Ok(log) => {
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(20)..].join("\n");
                format!("{what}; last lines of {}:\n{tail}", log_file.display())
            }
            Err(_) => format!("{what} (no log at {})", log_file.display()),
        }
    }
}

/// Runs initdb into a staging directory and renames it into place, so `data/` existing means a
/// complete cluster; a staging directory left by an interrupted run is simply redone.
pub(crate) async fn init_cluster(
    root: &Path,
    bin_dir: &Path,
    runner: Runner,
) -> anyhow::Result<()> {
    let staging = fresh_staging(root, "data.initdb")?;
    tracing::info!(root = %root.display(), "initializing embedded PostgreSQL cluster");
    let mut initdb = runner.command(bin_dir.join("initdb"), root);
    initdb
        .arg("-D")
        .arg(&staging)
        .arg(format!("--username={SUPERUSER}"))
        .arg("--auth=trust")
        .arg("--encoding=UTF8")
        // A UTF-8 collation like a production server's, so case folding
        // (lower(), the recipient index) behaves here as it will there.
        .arg("--locale=C.UTF-8");
    run_to_success(initdb, &format!("initdb -D {}", staging.display())).await?;
    let conf = staging.join("postgresql.conf");
    OpenOptions::new()
        .append(true)
        .open(&conf)
        .and_then(|mut file| file.write_all(CLUSTER_SETTINGS.as_bytes()))
        .with_context(|| format!("appending settings to {}", conf.display()))?;
    move_into_place(root, &staging)
}

/// Runs `command` (`what`, in errors), failing with what it printed unless it succeeds.
async fn run_to_success(mut command: Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .output()
        .await
        .with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!("{what} failed ({}): {}", output.status, describe(&output));
    }
    Ok(())
}

/// `root/<name>`, emptied of whatever an interrupted run left there.
fn fresh_staging(root: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let staging = root.join(name);
    if staging
        .try_exists()
        .with_context(|| format!("checking for {}", staging.display()))?
    {
        fs::remove_dir_all(&staging)
            .with_context(|| format!("removing the unfinished {}", staging.display()))?;
    }
    Ok(staging)
}

/// Renames a finished `staging` to `root/data`, so `data/` existing means a complete cluster.
fn move_into_place(root: &Path, staging: &Path) -> anyhow::Result<()> {
    let data_dir = root.join("data");
    fs::rename(staging, &data_dir)
        .with_context(|| format!("moving {} to {}", staging.display(), data_dir.display()))
}

/// Copies the running server at `primary_socket` into `root/data` with `pg_basebackup -R`: a
/// streaming standby of it, configured to follow it (`standby.signal`, `primary_conninfo`).
/// Staged like [`init_cluster`], so `data/` existing means a complete copy.
pub(crate) async fn base_backup(
    root: &Path,
    bin_dir: &Path,
    runner: Runner,
    primary_socket: &Path,
    primary_port: u16,
) -> anyhow::Result<()> {
    let staging = fresh_staging(root, "data.basebackup")?;
    tracing::info!(root = %root.display(), "copying a standby with pg_basebackup");
    // The server programs may be links on PATH to the version's directory, which also holds
    // pg_basebackup.
    let version_dir = fs::canonicalize(bin_dir.join("initdb"))
        .ok()
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| bin_dir.to_path_buf());
    let mut pg_basebackup = runner.command(version_dir.join("pg_basebackup"), root);
    pg_basebackup
        .arg("-D")
        .arg(&staging)
        .arg("-h")
        .arg(primary_socket)
        .arg("-p")
        .arg(primary_port.to_string())
        .arg(format!("--username={SUPERUSER}"))
        .arg("-R")
        .arg("--wal-method=stream")
        .arg("--checkpoint=fast");
    run_to_success(
        pg_basebackup,
        &format!("pg_basebackup -D {}", staging.display()),
    )
    .await?;
    move_into_place(root, &staging)
}

impl Cluster {
    /// Runs `pg_ctl <action> -w -D data` with `extra` arguments; `what` names it in errors.
    pub(crate) async fn control(
        &self,
        action: &str,
        extra: &[&str],
        what: &str,
    ) -> anyhow::Result<()> {
        let output = self
            .pg_ctl()
            .arg(action)
            .args(extra)
            .arg("-w")
            .arg("-t")
            .arg(SERVER_TIMEOUT.as_secs().to_string())
            .arg("-D")
            .arg(&self.data_dir)
            .output()
            .await
            .with_context(|| format!("running pg_ctl {action}"))?;
        if output.status.success() {
            return Ok(());
        }
        Err(anyhow!(
            "pg_ctl {action} failed ({}): {}",
            output.status,
            describe(&output)
        ))
        .context(self.with_log_tail(what))
    }
}

/// Whether `pid` has exited but is not yet reaped (state `Z` in /proc/<pid>/stat).
fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        // The command name in parentheses may itself contain spaces or ')'.
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn describe(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    format!("{}\n{}", stdout.trim(), stderr.trim())
        .trim()
        .to_string()
}
