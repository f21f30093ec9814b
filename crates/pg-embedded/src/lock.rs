//! The lock that makes starters of one cluster take turns.

use std::fs::{File, OpenOptions};
use std::path::Path;

use anyhow::Context;

/// A lock file held while we initialize, start or stop, so two processes (or tasks) sharing a
/// root take turns. `File::lock` is `flock`: released when the file closes, even on a crash.
pub(crate) async fn lock_root(root: &Path) -> anyhow::Result<File> {
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
