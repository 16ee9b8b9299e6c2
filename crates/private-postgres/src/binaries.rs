//! Finding the PostgreSQL server binaries and their version.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::{io_err, PrivatePostgresError, Result};

#[derive(Debug, Clone)]
pub(super) struct Binaries {
    pub(super) initdb: PathBuf,
    pub(super) postgres: PathBuf,
    /// Major version, e.g. "15" (None if `postgres -V` said something odd).
    pub(super) version: Option<String>,
}

impl Binaries {
    /// The first binaries found; for an existing cluster, the first of its major version.
    pub(super) fn choose(pgdata: &Path, cluster_version: Option<&str>) -> Result<Self> {
        let mut found = Self::find_all().into_iter();
        let first = found.next().ok_or(PrivatePostgresError::NoBinaries)?;
        let Some(wanted) = cluster_version else {
            return Ok(first);
        };
        if first.version.as_deref() == Some(wanted) {
            return Ok(first);
        }
        found
            .find(|b| b.version.as_deref() == Some(wanted))
            .ok_or_else(|| PrivatePostgresError::VersionMismatch {
                pgdata: pgdata.to_path_buf(),
                cluster: wanted.to_string(),
                found: first.version.unwrap_or_else(|| "(unknown)".into()),
            })
    }

    /// Every directory holding both `initdb` and `postgres`, in order of preference.
    pub(super) fn find_all() -> Vec<Self> {
        let mut seen = Vec::new();
        let mut all = Vec::new();
        for dir in candidate_bin_dirs() {
            let initdb = dir.join("initdb");
            let postgres = dir.join("postgres");
            if !is_executable(&initdb) || !is_executable(&postgres) {
                continue;
            }
            let real = fs::canonicalize(&postgres).unwrap_or_else(|_| postgres.clone());
            if seen.contains(&real) {
                continue;
            }
            seen.push(real);
            let version = major_version(&postgres);
            all.push(Binaries {
                initdb,
                postgres,
                version,
            });
        }
        all
    }
}

pub(super) fn candidate_bin_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path).filter(|d| d.is_absolute()));
    }
    dirs.extend(versioned_dirs(Path::new("/usr/lib/postgresql"), "", "bin"));
    dirs.extend(versioned_dirs(Path::new("/usr"), "pgsql-", "bin"));
    dirs.push(PathBuf::from("/usr/local/pgsql/bin"));
    dirs.extend(versioned_dirs(
        Path::new("/opt/homebrew/opt"),
        "postgresql@",
        "bin",
    ));
    dirs.push(PathBuf::from("/opt/homebrew/bin"));
    dirs.extend(versioned_dirs(
        Path::new("/usr/local/opt"),
        "postgresql@",
        "bin",
    ));
    dirs.push(PathBuf::from("/usr/local/bin"));
    dirs
}

/// `<parent>/<prefix><version>/<sub>` for every version present, highest first.
pub(super) fn versioned_dirs(parent: &Path, prefix: &str, sub: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut found: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            let version = name.to_str()?.strip_prefix(prefix)?;
            let key = version
                .split('.')
                .map(|part| part.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((key, parent.join(&name).join(sub)))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found.into_iter().map(|(_, dir)| dir).collect()
}

pub(super) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

/// "15" from `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`; "9.6" for 9.6.x.
pub(super) fn major_version(postgres: &Path) -> Option<String> {
    let output = Command::new(postgres)
        .arg("-V")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    parse_major_version(&String::from_utf8_lossy(&output.stdout))
}

pub(super) fn parse_major_version(version_output: &str) -> Option<String> {
    let full = version_output
        .split_once("(PostgreSQL)")?
        .1
        .split_whitespace()
        .next()?;
    let digits = |s: &str| -> String { s.chars().take_while(char::is_ascii_digit).collect() };
    let mut parts = full.split('.');
    let major = digits(parts.next()?);
    if major.is_empty() {
        return None;
    }
    match major.parse::<u32>() {
        Ok(m) if m < 10 => Some(format!("{major}.{}", digits(parts.next().unwrap_or("0")))),
        _ => Some(major),
    }
}

pub(super) fn read_cluster_version(pgdata: &Path) -> Result<Option<String>> {
    match fs::read_to_string(pgdata.join("PG_VERSION")) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(format!("reading {}/PG_VERSION", pgdata.display()))(
            e,
        )),
    }
}
