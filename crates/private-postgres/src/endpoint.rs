//! Where clients reach the server: a unix socket or a loopback port.

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::error::{io_err, Result};
use super::{MAX_SOCKET_PATH, SOCKET_PORT};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Endpoint {
    /// Unix socket `<dir>/.s.PGSQL.<port>`, no TCP.
    Socket { dir: PathBuf, port: u16 },
    /// `127.0.0.1:<port>`, no unix socket.
    Tcp { port: u16 },
}

/// The unix socket endpoint in `data_dir`, if its path is short and plain enough.
pub(super) fn socket_endpoint(data_dir: &Path) -> Option<Endpoint> {
    let socket = data_dir.join(format!(".s.PGSQL.{SOCKET_PORT}"));
    let bytes = data_dir.as_os_str().as_bytes();
    // unix_socket_directories is a comma-separated, optionally quoted list.
    let plain = !bytes.iter().any(|b| matches!(b, b',' | b'"' | b'\\'));
    (socket.as_os_str().len() < MAX_SOCKET_PATH && plain).then(|| Endpoint::Socket {
        dir: data_dir.to_path_buf(),
        port: SOCKET_PORT,
    })
}

pub(super) fn free_loopback_port() -> Result<u16> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(io_err("finding a free loopback port"))
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
