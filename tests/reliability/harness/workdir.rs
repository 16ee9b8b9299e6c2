//! Each test's folder under /tmp (the private PostgreSQL's data and the
//! servers' logs) and the loopback ports its servers listen on.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use uuid::Uuid;

use super::postgres::wait_postgres_gone;

/// A fresh folder under /tmp for one test, removed on drop.
pub struct Workdir {
    pub root: PathBuf,
}

impl Workdir {
    pub fn new(tag: &str) -> Self {
        // Short: the PostgreSQL socket path must stay under 100 bytes.
        let root = PathBuf::from(format!(
            "/tmp/crel-{}-{tag}-{}",
            std::process::id(),
            &Uuid::new_v4().simple().to_string()[..6]
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("logs")).expect("create the test folder");
        Workdir { root }
    }

    /// The private PostgreSQL's data folder (`CONCERT_DATA_DIR`).
    pub fn data(&self) -> PathBuf {
        self.root.join("d")
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.root.join("logs").join(format!("{name}.log"))
    }

    /// The URL of the private server while one runs on this folder.
    pub fn database_url(&self) -> String {
        database_url(&self.data())
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        // A server still running on the folder was stopped by `Server::drop`;
        // give its PostgreSQL a moment to finish its fast shutdown.
        wait_postgres_gone(&self.data(), Duration::from_secs(15));
        // CONCERT_RELIABILITY_KEEP=1 keeps the folder (data and logs) to look into.
        if std::env::var_os("CONCERT_RELIABILITY_KEEP").is_some() {
            eprintln!("kept {}", self.root.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// `postgres://...?host=<data dir>`: the private server's unix socket.
pub fn database_url(data_dir: &Path) -> String {
    format!(
        "postgres://postgres@localhost:5432/concert?host={}",
        data_dir.display()
    )
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
