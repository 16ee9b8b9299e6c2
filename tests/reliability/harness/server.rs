//! A running `concert serve`: started on a test's folder and waited for
//! until ready, killed, restarted, stopped gracefully, with its log.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use concert_client::{Client, Options};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::cli::concert_command;
use super::postgres::{alive, postmaster_pid, signal_postgres, wait_postgres_gone};
use super::workdir::{free_port, Workdir};
use super::ADMIN;

/// Settings common to every test server.
fn base_env(data_dir: &Path, port: u16) -> Vec<(String, String)> {
    [
        ("CONCERT_DATA_DIR", data_dir.display().to_string()),
        ("CONCERT_BIND", format!("127.0.0.1:{port}")),
        ("CONCERT_ADMIN_TOKEN", ADMIN.to_string()),
        ("CONCERT_SCHEDULER_INTERVAL_MS", "50".to_string()),
        ("CONCERT_PAYMENT_RECOVERY_SECS", "1".to_string()),
        ("CONCERT_LOG_FORMAT", "json".to_string()),
        (
            "RUST_LOG",
            "warn,concert::private_postgres=info".to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A running `concert serve`.
pub struct Server {
    pub name: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    /// Starts of this server (1 + restarts).
    pub starts: u32,
}

impl Server {
    /// Starts `concert serve` on `work`'s data folder with `extra` settings
    /// (which override the common ones) and waits until `/readyz` answers 200.
    pub async fn start(work: &Workdir, name: &str, extra: &[(&str, String)]) -> Server {
        let port = free_port();
        let mut env = base_env(&work.data(), port);
        for (key, value) in extra {
            env.retain(|(k, _)| k != key);
            env.push((key.to_string(), value.clone()));
        }
        let mut server = Server {
            name: name.to_string(),
            port,
            data_dir: work.data(),
            log: work.log(name),
            env,
            child: None,
            starts: 0,
        };
        server.launch(&[]).await;
        server
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running server").id()
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether this server runs its own private PostgreSQL.
    fn owns_database(&self) -> bool {
        !self.env.iter().any(|(k, _)| k == "DATABASE_URL")
    }

    /// Starts the process again on the same port and data (after a kill),
    /// with `extra` settings for this start only.
    pub async fn restart(&mut self, extra: &[(&str, String)]) -> Duration {
        assert!(self.child.is_none(), "restart of a running server");
        let started = Instant::now();
        self.launch(extra).await;
        started.elapsed()
    }

    async fn launch(&mut self, extra: &[(&str, String)]) {
        let mut env = self.env.clone();
        for (key, value) in extra {
            env.retain(|(k, _)| k != key);
            env.push((key.to_string(), value.clone()));
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the server log");
        let child = concert_command(&env)
            .arg("serve")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start concert serve");
        self.child = Some(child);
        self.starts += 1;
        let options = Options {
            timeout: Duration::from_secs(2),
            ..Options::default()
        };
        let client = Client::new(&[self.base()], ADMIN, options).expect("a client");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(ready) = client.readiness().await {
                if ready.status == 200 {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!(
                    "{} exited during start-up ({status}); log:\n{}",
                    self.name,
                    tail(&self.log, 40)
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready within 90 s; log:\n{}",
                self.name,
                tail(&self.log, 40)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The exit status once the process has ended by itself (it is then forgotten).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().ok().flatten().is_none())
    }

    /// SIGKILL, then waits until the process and (when it owns one) its
    /// private PostgreSQL are gone, so the next start finds the data free.
    pub async fn kill9(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let postmaster = self.owns_database().then(|| postmaster_pid(&self.data_dir));
        kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("SIGKILL");
        child.wait().expect("reap the killed server");
        if let Some(Some(pid)) = postmaster {
            // The parent-death signal asks PostgreSQL for a fast shutdown.
            let deadline = Instant::now() + Duration::from_secs(30);
            while alive(pid) {
                assert!(
                    Instant::now() < deadline,
                    "PostgreSQL {pid} outlived its killed parent"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// SIGTERM (graceful stop), waiting up to 30 s for the exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.terminate_within(Duration::from_secs(30)).await
    }

    /// SIGTERM, waiting up to `patience` for the exit.
    pub async fn terminate_within(&mut self, patience: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("a running server");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                if self.owns_database() {
                    wait_postgres_gone(&self.data_dir, Duration::from_secs(30));
                }
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not stop within {patience:?} of SIGTERM; log:\n{}",
                    self.name,
                    tail(&self.log, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.owns_database() {
                // A test that failed while PostgreSQL was stopped must not leave it stopped.
                signal_postgres(&self.data_dir, Signal::SIGCONT);
            }
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                eprintln!("--- end of {} log ---\n{}", self.name, tail(&self.log, 30));
            }
        }
    }
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
