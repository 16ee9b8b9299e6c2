//! The `concert serve` process under test, and what it leaves behind: the
//! private PostgreSQL's processes, and raw requests on connections of their own.

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use nix::unistd::Pid;

use crate::ADMIN_TOKEN;

/// A `concert serve` process on a data folder under /tmp (short, so the
/// private server uses a unix socket). On drop the process is killed if still
/// running (its PostgreSQL follows through the parent-death signal); the folder
/// stays for inspection unless the test passes.
pub struct Service {
    dir: PathBuf,
    child: Option<Child>,
}

impl Service {
    pub fn start(dir: &Path, address: &str) -> Self {
        Self::start_with(dir, address, &[])
    }

    /// Started with the settings `envs` besides the test's own.
    pub fn start_with(dir: &Path, address: &str, envs: &[(&str, &str)]) -> Self {
        let log = File::create(dir.join("serve.log")).unwrap();
        let child = concert(dir)
            .arg("--demo")
            .env("CONCERT_BIND", address)
            .envs(envs.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the concert binary starts");
        Service {
            dir: dir.to_path_buf(),
            child: Some(child),
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().unwrap().try_wait().unwrap()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The binary, with the test's data folder and admin token and no DATABASE_URL.
pub fn concert(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_concert"));
    command
        .env_remove("DATABASE_URL")
        .env("CONCERT_DATA_DIR", dir)
        .env("CONCERT_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("CONCERT_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    command
}

/// Sends `request_line` with a `Host` header on a connection of its own and
/// returns the answer's status line.
pub fn send_raw(address: &str, request_line: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!("{request_line} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).unwrap();
    status_line.trim_end().to_string()
}

pub fn free_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Live (not zombie) PostgreSQL processes working for the cluster in `dir`.
pub fn postgres_processes(dir: &Path) -> Vec<i32> {
    let dir = dir.to_string_lossy().to_string();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if !matches!(comm.trim(), "postgres" | "postmaster") {
            continue;
        }
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cwd = fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        // The postmaster names the folder on its command line; its children
        // rename themselves but keep working in it.
        let ours = String::from_utf8_lossy(&cmdline).contains(&dir) || cwd.starts_with(&dir);
        if ours && !zombie {
            found.push(pid);
        }
    }
    found
}
