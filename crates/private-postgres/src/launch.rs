//! Spawning the server on its endpoint and waiting until it accepts
//! connections: the first start, and each restart on the same data after it
//! died (PostgreSQL's crash recovery replays the WAL before it accepts any).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::binaries::Binaries;
use super::cluster::{clear_stale_lock, log_header, log_tail};
use super::connect::{await_ready, run_blocking, Readiness};
use super::endpoint::Endpoint;
use super::error::{io_err, PrivatePostgresError, Result};
use super::leftovers;
use super::process::{die_with_parent, ServerProcess};
use super::run_as::{check_cluster_access, RunAs};
use super::{PrivatePostgres, READY_TIMEOUT, SERVER_SETTINGS};

/// How long backends of a killed postmaster get to notice its death and exit
/// (they do within milliseconds when idle) before they are stopped by force.
const LEFTOVER_GRACE: Duration = Duration::from_secs(5);

/// What starts the server: its binaries, its user and its log.
pub(super) struct Launcher {
    pub(super) binaries: Binaries,
    pub(super) run_as: RunAs,
    pub(super) log: File,
}

impl PrivatePostgres {
    /// Spawns the server on `self.endpoint` and waits until it accepts connections.
    pub(super) fn launch(&mut self) -> Result<()> {
        let url = self.database_url();
        let launcher = self
            .launcher
            .as_mut()
            .expect("an attached server is never launched");
        let log_start = log_header(
            &mut launcher.log,
            &self.pgdata,
            &self.log_path,
            &launcher.binaries,
            &url,
        )?;
        let server = spawn_server(self, self.launcher.as_ref().expect("checked above"))?;
        let shared = Arc::clone(&server.shared);
        self.server = Some(server);
        let admin = self.connect_options("postgres")?;
        match run_blocking(await_ready(admin, shared, READY_TIMEOUT))? {
            Readiness::Ready => Ok(()),
            Readiness::Exited(status) => {
                // Reaps the thread; a start that failed is the error to tell.
                let _ = self.stop_server();
                Err(PrivatePostgresError::Exited {
                    status,
                    log: self.log_path.clone(),
                    tail: log_tail(&self.log_path, log_start),
                })
            }
            Readiness::TimedOut(last_error) => {
                let tail = log_tail(&self.log_path, log_start);
                let _ = self.stop_server();
                Err(PrivatePostgresError::NotReady {
                    secs: READY_TIMEOUT.as_secs(),
                    last_error,
                    log: self.log_path.clone(),
                    tail,
                })
            }
        }
    }

    /// Starts the server again on the same data and endpoint after it died:
    /// the old one's leftover processes are stopped first, then PostgreSQL's
    /// crash recovery brings back every committed transaction.
    pub(super) fn restart(&mut self) -> Result<()> {
        if let Some(old) = self.server.take() {
            old.join();
        }
        if !leftovers::wait_gone(&self.pgdata, LEFTOVER_GRACE) {
            leftovers::stop(&self.pgdata, Duration::from_secs(1))?;
        }
        if let Endpoint::Socket { dir, port } = &self.endpoint {
            clear_stale_lock(&dir.join(format!(".s.PGSQL.{port}.lock")), &self.pgdata)?;
        }
        clear_stale_lock(&self.pgdata.join("postmaster.pid"), &self.pgdata)?;
        super::disk::ensure_room(&self.data_dir)?;
        if let Some(launcher) = &self.launcher {
            check_cluster_access(&self.pgdata, &launcher.run_as)?;
        }
        self.launch()
            .map_err(|e| super::disk::explain(e, &self.data_dir))
    }

    /// The pid of the running server, if any.
    pub(super) fn server_pid(&self) -> Option<i32> {
        self.server.as_ref().map(|s| s.pid.as_raw())
    }
}

fn spawn_server(pg: &PrivatePostgres, launcher: &Launcher) -> Result<ServerProcess> {
    let binaries = &launcher.binaries;
    let mut cmd = Command::new(&binaries.postgres);
    cmd.arg("-D").arg(&pg.pgdata);
    match &pg.endpoint {
        Endpoint::Socket { dir, port } => {
            cmd.arg("-p").arg(port.to_string());
            cmd.arg("-k").arg(dir);
            cmd.arg("-c").arg("listen_addresses=");
        }
        Endpoint::Tcp { port } => {
            cmd.arg("-p").arg(port.to_string());
            cmd.arg("-c").arg("listen_addresses=127.0.0.1");
            cmd.arg("-c").arg("unix_socket_directories=");
        }
    }
    for (name, value) in SERVER_SETTINGS {
        cmd.arg("-c").arg(format!("{name}={value}"));
    }
    // Before crash recovery PostgreSQL fsyncs every file of the cluster, one
    // by one: seconds of a restart here. One syncfs() of the file system
    // flushes the same data (PostgreSQL 14 on, Linux only).
    let major: u32 = binaries
        .version
        .as_deref()
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if cfg!(target_os = "linux") && major >= 14 {
        cmd.arg("-c").arg("recovery_init_sync_method=syncfs");
    }
    let out = launcher
        .log
        .try_clone()
        .map_err(io_err("duplicating the log file handle"))?;
    let err = launcher
        .log
        .try_clone()
        .map_err(io_err("duplicating the log file handle"))?;
    cmd.current_dir(&pg.pgdata)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group: a Ctrl-C in our terminal is ours to handle
        // (we then stop the server), not the server's.
        .process_group(0);
    launcher.run_as.apply(&mut cmd);
    die_with_parent(&mut cmd, Signal::SIGINT);
    ServerProcess::spawn(cmd).map_err(io_err(format!("starting {}", binaries.postgres.display())))
}
