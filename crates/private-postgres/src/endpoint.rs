//! Where clients reach the server: a unix socket or a loopback port.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::error::{io_err, Result};
use super::run_as::RunAs;
use super::{MAX_SOCKET_PATH, SOCKET_PORT};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Endpoint {
    /// Unix socket `<dir>/.s.PGSQL.<port>`, no TCP.
    Socket { dir: PathBuf, port: u16 },
    /// `127.0.0.1:<port>`, no unix socket: only a server an older release
    /// started serves so (`attach`).
    Tcp { port: u16 },
}

/// The unix socket endpoint in `data_dir`, if its path is short and plain enough.
pub(super) fn socket_endpoint(data_dir: &Path) -> Option<Endpoint> {
    let socket = data_dir.join(format!(".s.PGSQL.{SOCKET_PORT}"));
    (socket.as_os_str().len() < MAX_SOCKET_PATH && plain(data_dir)).then(|| Endpoint::Socket {
        dir: data_dir.to_path_buf(),
        port: SOCKET_PORT,
    })
}

/// A fresh folder for the socket of a data folder whose path is too long
/// (or not plain) to hold it, private to `run_as`. Such a data folder once
/// made the server listen on a loopback port instead, where `trust`
/// authentication let every local user in as superuser. The folder is
/// created here, never taken as found (another local user could own one of
/// that name), under the temporary folder, or `/tmp` when that is long too.
pub(super) fn private_socket_dir(run_as: &RunAs) -> Result<PathBuf> {
    let temp = std::env::temp_dir();
    let base = if temp.as_os_str().len() + SHORT_NAME_ROOM < MAX_SOCKET_PATH && plain(&temp) {
        temp
    } else {
        PathBuf::from("/tmp")
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    let mut last_error = None;
    for attempt in 0..100u32 {
        let dir = base.join(format!(
            "concert-pg-{}-{:x}",
            std::process::id(),
            nanos.wrapping_add(attempt.wrapping_mul(0x9e37_79b9))
        ));
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                run_as.chown(&dir)?;
                return Ok(dir);
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => last_error = Some(error),
            Err(error) => return Err(io_err(format!("creating {}", dir.display()))(error)),
        }
    }
    let error = last_error.unwrap_or_else(|| io::Error::other("no free name"));
    Err(io_err(format!(
        "creating a socket folder in {}",
        base.display()
    ))(error))
}

/// Room for `/concert-pg-<pid>-<hex>/.s.PGSQL.5432` after the base folder.
const SHORT_NAME_ROOM: usize = 48;

/// Whether a path can go into `unix_socket_directories` (a comma-separated,
/// optionally quoted list) as it is.
fn plain(path: &Path) -> bool {
    !path
        .as_os_str()
        .as_bytes()
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\\'))
}

/// Percent-encodes everything but unreserved URL characters and `/`.
pub(super) fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
