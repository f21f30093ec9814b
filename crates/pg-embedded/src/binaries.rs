//! Finding the PostgreSQL server programs (`initdb`, `pg_ctl`): on PATH, else where Debian and
//! Ubuntu install each major version side by side.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::anyhow;

/// Where Debian and Ubuntu install each major version's server binaries.
const DEBIAN_PG_LIB: &str = "/usr/lib/postgresql";

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

pub(crate) fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl"].iter().all(|name| {
        fs::metadata(dir.join(name))
            .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// "15" -> [15], "9.6" -> [9, 6]; anything else is not a version directory.
pub(crate) fn version_key(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// Prefers the binaries of the major version that created the data directory, so installing a newer
/// PostgreSQL next to it does not make the cluster unstartable.
pub(crate) fn binaries_for(data_dir: &Path) -> anyhow::Result<PathBuf> {
    if let Ok(version) = fs::read_to_string(data_dir.join("PG_VERSION")) {
        let bin = Path::new(DEBIAN_PG_LIB).join(version.trim()).join("bin");
        if has_server_binaries(&bin) {
            return Ok(bin);
        }
    }
    find_server_binaries()
}

#[cfg(test)]
mod tests {
    use super::*;

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
