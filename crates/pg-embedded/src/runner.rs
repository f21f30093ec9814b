//! Who runs `initdb`, `pg_ctl` and so the server: ourselves, or, when we are root (which
//! PostgreSQL refuses), the `postgres` system user through `setpriv`.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use tokio::process::Command;

use crate::SERVER_USER;

/// Who runs `initdb`, `pg_ctl` and so the server.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Runner {
    /// Not root: run the binaries as ourselves; the cluster belongs to our user.
    Myself,
    /// Root, which `initdb` and `postgres` refuse: run them as the `postgres` system user, via
    /// `setpriv` because a minimal system (or container) has no sudo.
    ServerUser { uid: u32, gid: u32 },
}

impl Runner {
    pub(crate) fn detect() -> anyhow::Result<Runner> {
        if effective_uid()? != 0 {
            return Ok(Runner::Myself);
        }
        let (uid, gid) = lookup_user(SERVER_USER)?.ok_or_else(|| {
            anyhow!(
                "running as root, but PostgreSQL refuses to run as root and there is no `{SERVER_USER}` system user to run it as. \
                 Create a system user `{SERVER_USER}` (`useradd --system --home-dir /var/lib/postgresql --shell /bin/bash {SERVER_USER}`; \
                 installing the Debian package `postgresql` also creates it), or set DATABASE_URL"
            )
        })?;
        Ok(Runner::ServerUser { uid, gid })
    }

    pub(crate) fn command(self, program: impl AsRef<OsStr>, cwd: &Path) -> Command {
        let mut command = match self {
            Runner::Myself => Command::new(program),
            Runner::ServerUser { .. } => {
                let mut command = Command::new("setpriv");
                command
                    .arg(format!("--reuid={SERVER_USER}"))
                    .arg(format!("--regid={SERVER_USER}"))
                    .arg("--init-groups")
                    .arg("--")
                    .arg(program);
                command
            }
        };
        // A cwd the server user can enter: initdb and postgres complain about an unreadable one (e.g. /root).
        command.current_dir(cwd);
        command
    }

    /// Hands `path` to the server user, so the server can write there.
    pub(crate) fn give(self, path: &Path) -> anyhow::Result<()> {
        if let Runner::ServerUser { uid, gid } = self {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).with_context(|| {
                format!("giving {} to the `{SERVER_USER}` user", path.display())
            })?;
        }
        Ok(())
    }

    /// The server user must be able to reach the root, or every later step fails obscurely.
    pub(crate) async fn check_reachable(self, root: &Path) -> anyhow::Result<()> {
        if let Runner::Myself = self {
            return Ok(());
        }
        if self.can_enter(root).await? {
            return Ok(());
        }
        let mut blocked = root;
        for ancestor in root.ancestors().collect::<Vec<_>>().into_iter().rev() {
            if !self.can_enter(ancestor).await? {
                blocked = ancestor;
                break;
            }
        }
        bail!(
            "the embedded PostgreSQL runs as the `{SERVER_USER}` user, which cannot reach {}: {} is not traversable by it \
             (a home directory with mode 0700?). Use a root directory it can reach, `chmod o+x {}`, or set DATABASE_URL",
            root.display(),
            blocked.display(),
            blocked.display()
        )
    }

    /// Makes every directory from `/` down to `root` traversable by the server user (`chmod o+x`)
    /// where it is not yet, top-down so each check fails only for the directory itself. Returns
    /// the directories it changed. For throwaway machines (CI) whose checkout sits under a private
    /// home directory; never done without being asked.
    pub(crate) async fn grant_traverse(self, root: &Path) -> anyhow::Result<Vec<PathBuf>> {
        let mut changed = Vec::new();
        if let Runner::Myself = self {
            return Ok(changed);
        }
        for dir in root.ancestors().collect::<Vec<_>>().into_iter().rev() {
            if self.can_enter(dir).await? {
                continue;
            }
            let mode = fs::metadata(dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .permissions()
                .mode();
            fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o001)).with_context(
                || format!("allowing `{SERVER_USER}` to traverse {}", dir.display()),
            )?;
            changed.push(dir.to_path_buf());
        }
        Ok(changed)
    }

    /// The system user the server runs as, if not ourselves.
    pub(crate) fn server_user(self) -> Option<&'static str> {
        match self {
            Runner::Myself => None,
            Runner::ServerUser { .. } => Some(SERVER_USER),
        }
    }

    async fn can_enter(self, dir: &Path) -> anyhow::Result<bool> {
        let status = self
            .command("test", Path::new("/"))
            .arg("-x")
            .arg(dir)
            .status()
            .await
            .context("running `setpriv ... test -x` to check directory access")?;
        Ok(status.success())
    }
}

/// Without libc, /proc is the std-only way to learn our effective uid.
fn effective_uid() -> anyhow::Result<u32> {
    let status = fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .context("finding the effective uid in /proc/self/status")
}

/// The uid and gid of `name` from /etc/passwd (system users live there, not in a directory service).
fn lookup_user(name: &str) -> anyhow::Result<Option<(u32, u32)>> {
    let passwd = fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 4 && fields[0] == name {
            let uid = fields[2]
                .parse()
                .with_context(|| format!("parsing the uid of `{name}`"))?;
            let gid = fields[3]
                .parse()
                .with_context(|| format!("parsing the gid of `{name}`"))?;
            return Ok(Some((uid, gid)));
        }
    }
    Ok(None)
}
