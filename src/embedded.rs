//! A private PostgreSQL cluster, used whenever no `DATABASE_URL` is configured.
//!
//! The service should need zero setup: `email-sessions serve` on a fresh machine, and the test
//! suite on a fresh clone, must find a database without anyone provisioning one. So we run our own
//! server from the distribution's PostgreSQL binaries: `initdb` once into a data directory we own,
//! then `pg_ctl start`. The data directory persists, so users and sessions survive restarts of the
//! service; the server listens on no TCP port, only on a Unix socket in a directory nobody else may
//! enter, which is what makes `trust` authentication acceptable. The process that started the
//! server stops it cleanly (`pg_ctl stop -m fast`) when it exits; a server found already running is
//! left alone, so several processes (two test binaries, `serve` and `user create`) can share one
//! cluster. Every step that touches the cluster holds a lock file, so concurrent starters neither
//! run `initdb` twice nor fight over `pg_ctl start`.
//!
//! Layout under the root directory: `data/` (PGDATA), `run/` (the socket directory), `postgres.log`.

use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::process::Command;
use tokio::time::Instant;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

/// The database the service uses; created in every cluster we start.
const DEFAULT_DATABASE: &str = "email_sessions";
/// The cluster's superuser, named by `initdb -U`; trust auth lets it in without a password.
const SUPERUSER: &str = "postgres";
/// The system user the server runs as when we are root (PostgreSQL refuses to run as root).
const SERVER_USER: &str = "postgres";
/// The socket's file name carries the port; the directory is private, so the default cannot clash.
const PORT: u16 = 5432;
/// `sun_path` holds 108 bytes on Linux, including the terminating NUL.
const MAX_SOCKET_PATH_LEN: usize = 107;
/// Bounds `pg_ctl start/stop -w` and waiting for a server another process is starting.
const SERVER_TIMEOUT: Duration = Duration::from_secs(60);
/// Where Debian and Ubuntu install each major version's server binaries.
const DEBIAN_PG_LIB: &str = "/usr/lib/postgresql";

/// Appended to `postgresql.conf` right after `initdb`. The socket directory lives in a separate file,
/// rewritten before every start, because it depends on where the root is now (a moved checkout
/// would otherwise point the server at a directory that no longer exists).
const CLUSTER_SETTINGS: &str = "
# --- email-sessions embedded cluster (see src/embedded.rs) ---
# No TCP at all: trust authentication is only safe because the one way in is a private socket.
listen_addresses = ''
unix_socket_permissions = 0700
# Explicit, so a PGPORT in the environment cannot rename the socket under us.
port = 5432
max_connections = 200
shared_buffers = 128MB
# fsync stays on: this is the service's real default database, not a throwaway.
include_if_exists = 'embedded_socket.conf'
";

/// A private PostgreSQL cluster in a data directory, created on first use.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    cluster: Cluster,
    socket_dir: PathBuf,
    port: u16,
    started_by_us: bool,
}

impl EmbeddedPostgres {
    /// Creates the cluster under `root` on first use (initdb), starts it unless already running, and makes sure database `email_sessions` exists.
    pub async fn start(root: &Path) -> anyhow::Result<EmbeddedPostgres> {
        fs::create_dir_all(root)
            .with_context(|| format!("creating the embedded PostgreSQL root {}", root.display()))?;
        // Absolute and symlink-free: the socket directory and the /tmp fallback key derive from it.
        let root = root
            .canonicalize()
            .with_context(|| format!("resolving the path {}", root.display()))?;
        let runner = Runner::detect()?;
        runner.give(&root)?;
        runner.check_reachable(&root).await?;

        let _lock = lock_root(&root).await?;
        let data_dir = root.join("data");
        if !data_dir
            .try_exists()
            .with_context(|| format!("checking for {}", data_dir.display()))?
        {
            let bin_dir = find_server_binaries()?;
            init_cluster(&root, &bin_dir, runner).await?;
        }
        let cluster = Cluster::open(root, runner)?;

        let deadline = Instant::now() + SERVER_TIMEOUT;
        let started_by_us = loop {
            if !cluster.is_running().await? {
                let socket_dir = socket_dir_for(&cluster.root);
                ensure_private_dir(&socket_dir, runner)?;
                cluster.write_socket_settings(&socket_dir)?;
                break cluster.start_server().await?;
            }
            // A server someone else runs may still be starting up, or may be dying (pg_ctl status
            // only asks whether the pid lives): wait for it to answer, re-checking it is there.
            let (socket_dir, port) = cluster.socket();
            let url = socket_url(&socket_dir, port, "postgres");
            if tokio_postgres::connect(&url, NoTls).await.is_ok() {
                tracing::info!(data_dir = %cluster.data_dir.display(), "embedded PostgreSQL already running; using it");
                break false;
            }
            if Instant::now() >= deadline {
                let context = cluster.with_log_tail("connecting to the embedded PostgreSQL");
                bail!(
                    "{context}\n\npg_ctl status reports a running server, but none answers at {url}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };

        // The running server knows its socket best, even if another process started it.
        let (socket_dir, port) = cluster.socket();
        let postgres = EmbeddedPostgres {
            cluster,
            socket_dir,
            port,
            started_by_us,
        };
        postgres.ensure_default_database().await?;
        Ok(postgres)
    }

    /// A libpq-style URL for database `dbname` over the cluster's Unix socket, e.g. `postgresql://postgres@/email_sessions?host=%2Fpath%2Fto%2Frun`.
    pub fn database_url(&self, dbname: &str) -> String {
        socket_url(&self.socket_dir, self.port, dbname)
    }

    /// The default database's URL (`email_sessions`).
    pub fn default_url(&self) -> String {
        self.database_url(DEFAULT_DATABASE)
    }

    /// Whether this process started the server (and so `stop` will stop it).
    pub fn started_by_us(&self) -> bool {
        self.started_by_us
    }

    /// The cluster's data directory (PGDATA).
    pub fn data_dir(&self) -> &Path {
        &self.cluster.data_dir
    }

    /// Stops the server with `pg_ctl stop -m fast -w`, but only if this process started it (a cluster already running is left alone).
    pub async fn stop(self) -> anyhow::Result<()> {
        if !self.started_by_us {
            tracing::debug!(data_dir = %self.cluster.data_dir.display(), "leaving embedded PostgreSQL running: another process started it");
            return Ok(());
        }
        let _lock = lock_root(&self.cluster.root).await?;
        self.cluster.stop_server().await
    }

    /// Stops the server at `root` if running, whoever started it (for test-suite cleanup / CI).
    pub async fn stop_at(root: &Path) -> anyhow::Result<()> {
        let data_dir = root.join("data");
        let initialized = data_dir
            .join("PG_VERSION")
            .try_exists()
            .with_context(|| format!("checking for a cluster in {}", data_dir.display()))?;
        if !initialized {
            return Ok(());
        }
        let root = root
            .canonicalize()
            .with_context(|| format!("resolving the path {}", root.display()))?;
        let cluster = Cluster::open(root, Runner::detect()?)?;
        let _lock = lock_root(&cluster.root).await?;
        if cluster.is_running().await? {
            cluster.stop_server().await?;
        }
        Ok(())
    }

    async fn ensure_default_database(&self) -> anyhow::Result<()> {
        // A server that has just started (or just recovered from a crash) can still refuse a
        // connection for a moment; a short retry beats a spurious failure at boot.
        let client = connect_with_retry(&self.database_url("postgres"), SERVER_TIMEOUT)
            .await
            .with_context(|| {
                self.cluster
                    .with_log_tail("connecting to the embedded PostgreSQL")
            })?;
        if database_exists(&client).await? {
            return Ok(());
        }
        // The name is a constant identifier, so formatting it into the statement is safe.
        match client
            .batch_execute(&format!("CREATE DATABASE {DEFAULT_DATABASE}"))
            .await
        {
            Ok(()) => {
                tracing::info!(
                    database = DEFAULT_DATABASE,
                    "created database in embedded PostgreSQL"
                );
                Ok(())
            }
            Err(err) if err.code() == Some(&SqlState::DUPLICATE_DATABASE) => Ok(()),
            // A racing creator can also surface as a unique violation on pg_database; believe the catalog.
            Err(err) if database_exists(&client).await.unwrap_or(false) => {
                tracing::debug!(error = %err, "CREATE DATABASE lost a race; database exists");
                Ok(())
            }
            Err(err) => Err(err).context(format!("creating database {DEFAULT_DATABASE}")),
        }
    }
}

/// Finds the PostgreSQL server binaries: `initdb`/`pg_ctl` on PATH, else the highest version under /usr/lib/postgresql/*/bin.
pub fn find_server_binaries() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|dir| has_server_binaries(dir))
    {
        return Ok(dir);
    }
    // Debian keeps server binaries off PATH (several major versions can coexist).
    let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(DEBIAN_PG_LIB)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = version_key(entry.file_name().to_str()?)?;
            let bin = entry.path().join("bin");
            has_server_binaries(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        anyhow!(
            "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in {DEBIAN_PG_LIB}/*/bin. \
             Install PostgreSQL (Debian/Ubuntu: `apt-get install postgresql`) so the embedded database can run, \
             or set DATABASE_URL to use an existing server"
        )
    })
}

fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl"].iter().all(|name| {
        fs::metadata(dir.join(name))
            .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// "15" -> [15], "9.6" -> [9, 6]; anything else is not a version directory.
fn version_key(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// Who runs `initdb`, `pg_ctl` and so the server.
#[derive(Clone, Copy, Debug)]
enum Runner {
    /// Not root: run the binaries as ourselves; the cluster belongs to our user.
    Myself,
    /// Root, which `initdb` and `postgres` refuse: run them as the `postgres` system user, via
    /// `setpriv` because a minimal system (or container) has no sudo.
    ServerUser { uid: u32, gid: u32 },
}

impl Runner {
    fn detect() -> anyhow::Result<Runner> {
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

    fn command(self, program: impl AsRef<OsStr>, cwd: &Path) -> Command {
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
    fn give(self, path: &Path) -> anyhow::Result<()> {
        if let Runner::ServerUser { uid, gid } = self {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).with_context(|| {
                format!("giving {} to the `{SERVER_USER}` user", path.display())
            })?;
        }
        Ok(())
    }

    /// The server user must be able to reach the root, or every later step fails obscurely.
    async fn check_reachable(self, root: &Path) -> anyhow::Result<()> {
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

/// The cluster's directories and the binaries that manage it.
#[derive(Debug)]
struct Cluster {
    root: PathBuf,
    data_dir: PathBuf,
    bin_dir: PathBuf,
    runner: Runner,
}

impl Cluster {
    fn open(root: PathBuf, runner: Runner) -> anyhow::Result<Cluster> {
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

    async fn is_running(&self) -> anyhow::Result<bool> {
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

    fn write_socket_settings(&self, socket_dir: &Path) -> anyhow::Result<()> {
        let path = self.data_dir.join("embedded_socket.conf");
        // postgresql.conf strings are single-quoted with backslash escapes.
        let quoted = socket_dir
            .to_str()
            .context("the socket directory path is not UTF-8")?
            .replace('\\', "\\\\")
            .replace('\'', "''");
        fs::write(
            &path,
            format!("# Rewritten before every start by email-sessions.\nunix_socket_directories = '{quoted}'\n"),
        )
        .with_context(|| format!("writing {}", path.display()))?;
        self.runner.give(&path)
    }

    /// Returns whether we started it: `false` when another process beat us to it.
    async fn start_server(&self) -> anyhow::Result<bool> {
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

    async fn stop_server(&self) -> anyhow::Result<()> {
        tracing::info!(data_dir = %self.data_dir.display(), "stopping embedded PostgreSQL");
        let output = self
            .pg_ctl()
            .arg("stop")
            .arg("-m")
            .arg("fast")
            .arg("-w")
            .arg("-t")
            .arg(SERVER_TIMEOUT.as_secs().to_string())
            .arg("-D")
            .arg(&self.data_dir)
            .output()
            .await
            .context("running pg_ctl stop")?;
        if output.status.success() || !self.is_running().await.unwrap_or(true) {
            return Ok(());
        }
        Err(anyhow!(
            "pg_ctl stop failed ({}): {}",
            output.status,
            describe(&output)
        ))
        .context(self.with_log_tail("stopping the embedded PostgreSQL"))
    }

    /// Where the server listens: what it wrote to `postmaster.pid` when it can tell us (it may have
    /// been started by another process), else where we would start it.
    fn socket(&self) -> (PathBuf, u16) {
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
    fn with_log_tail(&self, what: &str) -> String {
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
async fn init_cluster(root: &Path, bin_dir: &Path, runner: Runner) -> anyhow::Result<()> {
    let staging = root.join("data.initdb");
    if staging
        .try_exists()
        .with_context(|| format!("checking for {}", staging.display()))?
    {
        fs::remove_dir_all(&staging)
            .with_context(|| format!("removing the unfinished {}", staging.display()))?;
    }
    tracing::info!(root = %root.display(), "initializing embedded PostgreSQL cluster");
    let output = runner
        .command(bin_dir.join("initdb"), root)
        .arg("-D")
        .arg(&staging)
        .arg(format!("--username={SUPERUSER}"))
        .arg("--auth=trust")
        .arg("--encoding=UTF8")
        // A UTF-8 collation like a production server's, so case folding
        // (lower(), the recipient index) behaves here as it will there.
        .arg("--locale=C.UTF-8")
        .output()
        .await
        .context("running initdb")?;
    if !output.status.success() {
        bail!(
            "initdb -D {} failed ({}): {}",
            staging.display(),
            output.status,
            describe(&output)
        );
    }
    let conf = staging.join("postgresql.conf");
    OpenOptions::new()
        .append(true)
        .open(&conf)
        .and_then(|mut file| file.write_all(CLUSTER_SETTINGS.as_bytes()))
        .with_context(|| format!("appending settings to {}", conf.display()))?;
    let data_dir = root.join("data");
    fs::rename(&staging, &data_dir)
        .with_context(|| format!("moving {} to {}", staging.display(), data_dir.display()))
}

/// Prefers the binaries of the major version that created the data directory, so installing a newer
/// PostgreSQL next to it does not make the cluster unstartable.
fn binaries_for(data_dir: &Path) -> anyhow::Result<PathBuf> {
    if let Ok(version) = fs::read_to_string(data_dir.join("PG_VERSION")) {
        let bin = Path::new(DEBIAN_PG_LIB).join(version.trim()).join("bin");
        if has_server_binaries(&bin) {
            return Ok(bin);
        }
    }
    find_server_binaries()
}

/// `root/run`, unless the socket path would exceed `sun_path`; then a short directory under /tmp
/// named by a stable hash of the root, so every process using this root computes the same one.
fn socket_dir_for(root: &Path) -> PathBuf {
    let preferred = root.join("run");
    let socket = preferred.join(format!(".s.PGSQL.{PORT}"));
    if socket.as_os_str().len() <= MAX_SOCKET_PATH_LEN {
        return preferred;
    }
    PathBuf::from(format!(
        "/tmp/email-sessions-pg-{:016x}",
        fnv1a(root.as_os_str().as_bytes())
    ))
}

/// FNV-1a: stable across Rust releases, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Creates `dir` (mode 0700, owned by the server user). Anyone who can reach the socket is
/// superuser under trust auth, so a directory we cannot make private (e.g. someone else's in /tmp)
/// is an error rather than something to reuse.
fn ensure_private_dir(dir: &Path, runner: Runner) -> anyhow::Result<()> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err).with_context(|| format!("creating {}", dir.display())),
    }
    let meta =
        fs::symlink_metadata(dir).with_context(|| format!("inspecting {}", dir.display()))?;
    if !meta.is_dir() {
        bail!(
            "{} should be a directory for the PostgreSQL socket, but is not",
            dir.display()
        );
    }
    runner.give(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private (mode 0700)", dir.display()))
}

/// A lock file held while we initialize, start or stop, so two processes (or tasks) sharing a
/// root take turns. `File::lock` is `flock`: released when the file closes, even on a crash.
async fn lock_root(root: &Path) -> anyhow::Result<File> {
    let path = root.join(".lock");
    tokio::task::spawn_blocking(move || {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(file)
    })
    .await
    .context("waiting for the embedded PostgreSQL lock")?
}

async fn connect_with_retry(
    url: &str,
    timeout: Duration,
) -> anyhow::Result<tokio_postgres::Client> {
    let deadline = Instant::now() + timeout;
    loop {
        match tokio_postgres::connect(url, NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::warn!(error = %err, "embedded PostgreSQL setup connection failed");
                    }
                });
                return Ok(client);
            }
            Err(err) if Instant::now() >= deadline => {
                return Err(err).with_context(|| format!("connecting to {url}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn database_exists(client: &tokio_postgres::Client) -> anyhow::Result<bool> {
    let row = client
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&DEFAULT_DATABASE],
        )
        .await
        .context("looking up the default database")?;
    Ok(row.is_some())
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

fn socket_url(socket_dir: &Path, port: u16, dbname: &str) -> String {
    let mut url = format!(
        "postgresql://{SUPERUSER}@/{}?host={}",
        percent_encode(dbname.as_bytes()),
        percent_encode(socket_dir.as_os_str().as_bytes()),
    );
    if port != PORT {
        url.push_str(&format!("&port={port}"));
    }
    url
}

/// Percent-encodes everything but RFC 3986 unreserved characters (paths may hold `&`, `?`, `%`).
fn percent_encode(bytes: &[u8]) -> String {
    let mut encoded = String::with_capacity(bytes.len());
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn describe(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    format!("{}\n{}", stdout.trim(), stderr.trim())
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use tokio_postgres::config::Host;

    fn postgres_at(socket_dir: &str, port: u16) -> EmbeddedPostgres {
        EmbeddedPostgres {
            cluster: Cluster {
                root: PathBuf::from("/unused"),
                data_dir: PathBuf::from("/unused/data"),
                bin_dir: PathBuf::from("/unused/bin"),
                runner: Runner::Myself,
            },
            socket_dir: PathBuf::from(socket_dir),
            port,
            started_by_us: false,
        }
    }

    #[test]
    fn database_url_is_accepted_by_tokio_postgres() {
        // Arrange
        let postgres = postgres_at("/path/to/run", PORT);

        // Act
        let url = postgres.default_url();
        let config = tokio_postgres::Config::from_str(&url).expect("tokio-postgres parses the URL");

        // Assert
        assert_eq!(
            url,
            "postgresql://postgres@/email_sessions?host=%2Fpath%2Fto%2Frun"
        );
        assert_eq!(
            config.get_hosts(),
            [Host::Unix(PathBuf::from("/path/to/run"))]
        );
        assert_eq!(config.get_user(), Some("postgres"));
        assert_eq!(config.get_dbname(), Some("email_sessions"));
    }

    #[test]
    fn awkward_socket_paths_survive_the_url() {
        // Arrange
        let dir = "/tmp/a b&c=d?e%f#g/run";
        let postgres = postgres_at(dir, 5433);

        // Act
        let config = tokio_postgres::Config::from_str(&postgres.database_url("odd db&x"))
            .expect("tokio-postgres parses the URL");

        // Assert
        assert_eq!(config.get_hosts(), [Host::Unix(PathBuf::from(dir))]);
        assert_eq!(config.get_dbname(), Some("odd db&x"));
        assert_eq!(config.get_ports(), [5433]);
    }

    #[test]
    fn short_roots_keep_the_socket_inside_the_root() {
        assert_eq!(
            socket_dir_for(Path::new("/srv/es")),
            PathBuf::from("/srv/es/run")
        );
    }

    #[test]
    fn long_roots_get_a_stable_short_socket_dir_in_tmp() {
        // Arrange
        let root = PathBuf::from(format!("/{}", "x".repeat(100)));

        // Act
        let first = socket_dir_for(&root);
        let second = socket_dir_for(&root);

        // Assert
        assert_eq!(first, second);
        assert!(first.starts_with("/tmp"), "{}", first.display());
        assert!(first.join(".s.PGSQL.5432").as_os_str().len() <= MAX_SOCKET_PATH_LEN);
        assert_ne!(first, socket_dir_for(&root.join("y")));
    }

    #[test]
    fn version_directories_sort_numerically() {
        let mut versions: Vec<Vec<u32>> = ["9.6", "15", "10"]
            .iter()
            .filter_map(|v| version_key(v))
            .collect();
        versions.sort();
        assert_eq!(versions, [vec![9, 6], vec![10], vec![15]]);
        assert_eq!(version_key("common"), None);
    }
}
