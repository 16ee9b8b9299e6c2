//! PostgreSQL's client tools (`pg_dump`, `pg_restore`) for backups, newest first.

use std::path::{Path, PathBuf};

use super::binaries::{candidate_bin_dirs, is_executable, versioned_dirs};

/// The newest `name` found: the versioned folders first (a newer `pg_dump`
/// reads older servers, not the other way round), then PATH.
pub fn server_tool(name: &str) -> Option<PathBuf> {
    versioned_dirs(Path::new("/usr/lib/postgresql"), "", "bin")
        .into_iter()
        .chain(candidate_bin_dirs())
        .map(|dir| dir.join(name))
        .find(|path| is_executable(path))
}
