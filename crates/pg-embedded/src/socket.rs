//! Where the server's Unix socket lives, and how its URL is spelled. The socket is the only way
//! in (no TCP, trust authentication), so its directory must be private.

use std::fs::{self, DirBuilder};
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::runner::Runner;
use crate::{PORT, SUPERUSER};

/// `sun_path` holds 108 bytes on Linux, including the terminating NUL.
const MAX_SOCKET_PATH_LEN: usize = 107;

/// `root/run`, unless the socket path would exceed `sun_path`; then a short directory under /tmp
/// named by a stable hash of the root, so every process using this root computes the same one.
pub(crate) fn socket_dir_for(root: &Path) -> PathBuf {
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
pub(crate) fn ensure_private_dir(dir: &Path, runner: Runner) -> anyhow::Result<()> {
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

pub(crate) fn socket_url(socket_dir: &Path, port: u16, dbname: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
