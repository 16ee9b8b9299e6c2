//! A private PostgreSQL server under a data folder, for when no DATABASE_URL is given.
//!
//! [`PrivatePostgres::start`] finds the PostgreSQL server binaries, initialises a
//! cluster in `<data_dir>/pgdata` the first time (reusing it afterwards), starts
//! `postgres` as a child process of ours, waits until it accepts connections and
//! makes sure the `concert` database exists.
//!
//! The server lives exactly as long as we do:
//! * [`PrivatePostgres::stop`] (or dropping the value) asks for a fast shutdown
//!   (SIGINT) and waits for the server to exit;
//! * if our process dies without that (even by SIGKILL), the kernel sends the
//!   server SIGINT through the parent-death signal (Linux `PR_SET_PDEATHSIG`).
//!   That signal fires when the *thread* that spawned the child ends, so the
//!   server is spawned by a dedicated thread that waits for it and ends only
//!   after the server has exited.
//!
//! PostgreSQL refuses to run as root: when we are root, `initdb` and `postgres`
//! run as the `postgres` system user (or `nobody`), and the data folder is
//! handed to that user.
//!
//! Clients connect through a unix socket, never TCP: in the data folder when
//! its path is short enough, else in a fresh private folder under the
//! temporary folder. Authentication is `trust`: only the socket's owner and
//! root may use it.

use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use sqlx::postgres::PgConnectOptions;

mod attach;
mod binaries;
mod cluster;
mod connect;
mod disk;
mod endpoint;
mod error;
mod launch;
mod leftovers;
mod owner;
mod process;
mod run_as;
mod scratch;
mod supervisor;
mod tools;

use binaries::{read_cluster_version, Binaries};
use cluster::{clear_stale_lock, init_cluster};
use connect::{ensure_database, run_blocking};
use endpoint::{percent_encode, private_socket_dir, socket_endpoint, Endpoint};
pub use error::PrivatePostgresError;
use error::Result;
use launch::Launcher;
use owner::Role;
use process::ServerProcess;
use run_as::{
    check_cluster_access, chown_tree_if_foreign, open_log, prepare_data_dir, refuse_another_users,
    RunAs,
};
pub use scratch::start_scratch;
pub use supervisor::{supervise, GaveUp, ServerHealth, Supervised, Unclean};
pub use tools::server_tool;

/// The database the service uses.
const DATABASE: &str = "concert";
/// The cluster's superuser (`initdb -U`).
const SUPERUSER: &str = "postgres";
/// Port number when serving on a unix socket only (the socket dir is private,
/// so the usual number cannot clash with anything).
const SOCKET_PORT: u16 = 5432;
/// Unix socket paths must stay below this many bytes (the kernel's limit is 107).
const MAX_SOCKET_PATH: usize = 100;
/// How long the server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `serve` waits for a one-off command to finish with the folder's
/// server: a backup of a large store takes minutes.
const TOOL_WAIT: Duration = Duration::from_secs(30 * 60);
/// How long a fast shutdown may take before we escalate.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait after SIGQUIT, then after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// How many lines of postgres.log to quote in errors.
const LOG_TAIL_LINES: usize = 40;
/// Server settings for a booking service on a small box. Durability stays on.
const SERVER_SETTINGS: &[(&str, &str)] = &[
    ("max_connections", "200"),
    ("shared_buffers", "256MB"),
    ("fsync", "on"),
    ("synchronous_commit", "on"),
    ("full_page_writes", "on"),
    // A sale's tables grow by thousands of rows a second; plans made on the
    // statistics of a nearly empty table walk whole tables. Looking for
    // tables to analyze every 5 s instead of every minute keeps up.
    ("autovacuum_naptime", "5s"),
    // trust authentication: only the socket's owner (and root) may connect.
    ("unix_socket_permissions", "0700"),
];

/// A running private PostgreSQL server; stopped by [`PrivatePostgres::stop`] or on drop.
pub struct PrivatePostgres {
    data_dir: PathBuf,
    pgdata: PathBuf,
    log_path: PathBuf,
    endpoint: Endpoint,
    /// The socket's folder when it is not the data folder, removed at the stop.
    own_socket_dir: Option<PathBuf>,
    /// The data folder's lock while we run its server (`owner::lock_folder`).
    folder_lock: Option<nix::fcntl::Flock<std::fs::File>>,
    server: Option<ServerProcess>,
    /// What (re)starts the server; `None` when attached to another `concert`'s server.
    launcher: Option<Launcher>,
}

impl fmt::Debug for PrivatePostgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivatePostgres")
            .field("data_dir", &self.data_dir)
            .field("url", &self.database_url())
            .field("pid", &self.server.as_ref().map(|s| s.pid.as_raw()))
            .finish()
    }
}

impl PrivatePostgres {
    /// Initialises (first time) and starts a server whose data lives under `data_dir` (e.g. ./.concert -> ./.concert/pgdata), waits until it accepts connections, and makes sure database `concert` exists.
    ///
    /// A server left running by a `concert` that died is stopped first; one
    /// that a live `concert` (or anyone else) runs is refused.
    ///
    /// For `concert serve`: a one-off command running on the folder's server
    /// is waited for (`TOOL_WAIT` at most), as it stops the server when done.
    pub fn start(data_dir: &Path) -> Result<Self, PrivatePostgresError> {
        Self::start_as(data_dir, Role::Serve)
    }

    fn start_as(data_dir: &Path, role: Role) -> Result<Self, PrivatePostgresError> {
        let run_as = RunAs::decide()?;
        let data_dir = prepare_data_dir(data_dir, &run_as)?;
        if role == Role::Serve {
            owner::wait_for_tools(&data_dir, TOOL_WAIT);
        }
        disk::ensure_room(&data_dir)?;
        Self::start_prepared(data_dir, run_as, role)
    }

    /// Whether `data_dir` holds a cluster that [`PrivatePostgres::start`]
    /// would reuse (rather than initialise).
    pub fn holds_a_cluster(data_dir: &Path) -> bool {
        data_dir.join("pgdata").join("PG_VERSION").is_file()
    }

    /// For tools (`audit`, `backup`, ...): the server of the live `concert`
    /// that owns `data_dir` when there is one (left running when we are
    /// done), else a server of our own as [`PrivatePostgres::start`] gives.
    pub fn attach_or_start(data_dir: &Path) -> Result<Self, PrivatePostgresError> {
        if let Ok(dir) = std::fs::canonicalize(data_dir) {
            if let Some(owner) = owner::read(&dir).filter(|o| o.alive() && !o.is_me()) {
                return attach::attach(dir, owner.pid);
            }
        }
        Self::start_as(data_dir, Role::Tool)
    }

    fn start_prepared(data_dir: PathBuf, run_as: RunAs, role: Role) -> Result<Self> {
        let folder_lock = owner::lock_folder(&data_dir)?;
        let pgdata = data_dir.join("pgdata");
        let log_path = data_dir.join("postgres.log");

        if run_as.switch {
            // Before it is read, replaced (when empty) or handed over.
            refuse_another_users(&pgdata, &run_as)?;
        }
        let cluster_version = read_cluster_version(&pgdata)?;
        let binaries = Binaries::choose(&pgdata, cluster_version.as_deref())?;
        tracing::debug!(postgres = %binaries.postgres.display(), version = ?binaries.version, "found PostgreSQL binaries");

        let mut log = open_log(&log_path, &run_as)?;
        if cluster_version.is_none() {
            init_cluster(&data_dir, &pgdata, &binaries, &run_as, &mut log)
                .map_err(|e| disk::explain(e, &data_dir))?;
        } else if run_as.switch {
            chown_tree_if_foreign(&pgdata, &run_as)?;
        }

        check_cluster_access(&pgdata, &run_as)?;
        leftovers::take_over(&data_dir, &pgdata)?;
        let (endpoint, own_socket_dir) = match socket_endpoint(&data_dir) {
            Some(endpoint) => (endpoint, None),
            None => {
                let dir = private_socket_dir(&run_as)?;
                let endpoint = Endpoint::Socket {
                    dir: dir.clone(),
                    port: SOCKET_PORT,
                };
                (endpoint, Some(dir))
            }
        };
        if let Endpoint::Socket { dir, port } = &endpoint {
            clear_stale_lock(&dir.join(format!(".s.PGSQL.{port}.lock")), &pgdata)?;
        }
        clear_stale_lock(&pgdata.join("postmaster.pid"), &pgdata)?;
        // Claimed before the server starts, so a tool never takes it for an orphan.
        owner::claim(&data_dir, role)?;

        let mut pg = PrivatePostgres {
            data_dir,
            pgdata,
            log_path,
            endpoint,
            own_socket_dir,
            folder_lock: Some(folder_lock),
            server: None,
            launcher: Some(Launcher {
                binaries,
                run_as,
                log,
            }),
        };
        pg.launch()
            .map_err(|error| disk::explain(error, &pg.data_dir))?;

        let admin = pg.connect_options("postgres")?;
        let app = pg.connect_options(DATABASE)?;
        run_blocking(ensure_database(admin, app))?.map_err(PrivatePostgresError::Database)?;
        tracing::info!(
            pgdata = %pg.pgdata.display(),
            url = %pg.database_url(),
            pid = pg.server.as_ref().map(|s| s.pid.as_raw()),
            "private PostgreSQL server is ready"
        );
        Ok(pg)
    }

    /// A sqlx-compatible URL for database `db` on this server: its socket's
    /// folder as `?host=/abs/dir` (or `postgres://postgres@127.0.0.1:PORT/db`
    /// for a server an older release started on TCP).
    ///
    /// Authentication is `trust`: only the socket's owner and root can connect.
    pub fn url_for(&self, db: &str) -> String {
        let db = percent_encode(db.as_bytes());
        match &self.endpoint {
            Endpoint::Socket { dir, port } => format!(
                "postgres://{SUPERUSER}@localhost:{port}/{db}?host={}",
                percent_encode(dir.as_os_str().as_bytes())
            ),
            Endpoint::Tcp { port } => format!("postgres://{SUPERUSER}@127.0.0.1:{port}/{db}"),
        }
    }

    /// The unix socket the server listens on, when it listens on one.
    fn socket_file(&self) -> Option<PathBuf> {
        match &self.endpoint {
            Endpoint::Socket { dir, port } => Some(dir.join(format!(".s.PGSQL.{port}"))),
            Endpoint::Tcp { .. } => None,
        }
    }

    /// URL of the `concert` database.
    pub fn database_url(&self) -> String {
        self.url_for(DATABASE)
    }

    /// Stops the server cleanly (fast shutdown, SIGINT) and waits for it to
    /// exit; `Err` when it ignored that and SIGQUIT and had to be killed.
    pub fn stop(mut self) -> std::result::Result<(), Killed> {
        self.shutdown()
    }

    fn connect_options(&self, db: &str) -> Result<PgConnectOptions> {
        self.url_for(db)
            .parse()
            .map_err(|e: sqlx::Error| PrivatePostgresError::Io {
                context: format!("bad connection URL {}", self.url_for(db)),
                source: io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
            })
    }

    /// Stops the server if it runs, then gives up ownership of the data folder.
    fn shutdown(&mut self) -> std::result::Result<(), Killed> {
        let stopped = self.stop_server();
        if self.launcher.is_some() {
            owner::release(&self.data_dir);
        }
        self.folder_lock = None;
        if let Some(dir) = self.own_socket_dir.take() {
            // Empty once the server has stopped; left as it is otherwise.
            let _ = std::fs::remove_dir(dir);
        }
        stopped
    }

    /// Stops the server (fast shutdown, escalating) and reaps its thread.
    fn stop_server(&mut self) -> std::result::Result<(), Killed> {
        let Some(server) = self.server.take() else {
            return Ok(());
        };
        let mut killed = None;
        if server.exit_status().is_none() {
            tracing::info!(
                pid = server.pid.as_raw(),
                "stopping private PostgreSQL server"
            );
            server.signal(Signal::SIGINT);
            if !server.wait_exit(STOP_TIMEOUT) {
                tracing::warn!(
                    pid = server.pid.as_raw(),
                    "PostgreSQL ignored fast shutdown; sending SIGQUIT"
                );
                server.signal(Signal::SIGQUIT);
                if !server.wait_exit(KILL_TIMEOUT) {
                    tracing::warn!(
                        pid = server.pid.as_raw(),
                        "PostgreSQL ignored SIGQUIT; killing it"
                    );
                    // Each of its processes too: they run in groups of their
                    // own, and a postmaster killed alone left its backends
                    // behind (frozen), holding the data folder against the
                    // next start.
                    let processes = leftovers::cluster_pids(&self.pgdata);
                    server.signal(Signal::SIGKILL);
                    for pid in processes {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            Signal::SIGKILL,
                        );
                    }
                    killed = Some(Killed {
                        pid: server.pid.as_raw(),
                    });
                    if !leftovers::wait_gone(&self.pgdata, KILL_TIMEOUT) {
                        tracing::error!("PostgreSQL processes outlived SIGKILL");
                    }
                    if !server.wait_exit(KILL_TIMEOUT) {
                        tracing::error!(
                            pid = server.pid.as_raw(),
                            "PostgreSQL did not exit after SIGKILL"
                        );
                        // Leave its thread be rather than hang.
                        return Err(killed.expect("set above"));
                    }
                }
            }
        }
        server.join();
        killed.map_or(Ok(()), Err)
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Said in the log already; nobody is left to tell.
        let _ = self.shutdown();
    }
}

/// The server ignored a fast shutdown and SIGQUIT (frozen, or stuck on its
/// disk) and was killed with every process of its own: the service did not
/// stop cleanly, and says so by its exit code (it exited 0, and the backends
/// it left behind kept the next start out).
#[derive(Debug, thiserror::Error)]
#[error(
    "the private PostgreSQL server (pid {pid}) ignored its shutdown and was killed with its \
     processes; its next start recovers every committed transaction from its log"
)]
pub struct Killed {
    pub pid: i32,
}

#[cfg(test)]
mod tests;
