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
//! Clients connect through a unix socket in the data folder (only the socket's
//! owner and root may use it) when its path is short enough, else through TCP
//! on a free loopback port. Authentication is `trust`: see the caveat on TCP in
//! [`PrivatePostgres::url_for`].

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{Gid, Pid, Uid, User};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};

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
/// How long a fast shutdown may take before we escalate.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait after SIGQUIT, then after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// How many free loopback ports to try when another process grabs ours.
const TCP_ATTEMPTS: usize = 5;
/// How many lines of postgres.log to quote in errors.
const LOG_TAIL_LINES: usize = 40;
/// Server settings for a booking service on a small box. Durability stays on.
const SERVER_SETTINGS: &[(&str, &str)] = &[
    ("max_connections", "200"),
    ("shared_buffers", "256MB"),
    ("fsync", "on"),
    ("synchronous_commit", "on"),
    ("full_page_writes", "on"),
    // trust authentication: only the socket's owner (and root) may connect.
    ("unix_socket_permissions", "0700"),
];

/// Why the private server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PrivatePostgresError {
    /// Neither `initdb` nor `postgres` could be found.
    #[error(
        "no PostgreSQL server binaries (initdb, postgres) found on PATH or under \
         /usr/lib/postgresql/*/bin; install them with `apt-get install postgresql`"
    )]
    NoBinaries,
    /// The existing cluster was made by another major version than the binaries found.
    #[error(
        "the cluster in {} is PostgreSQL {cluster} but the server binaries found are \
         PostgreSQL {found}; install PostgreSQL {cluster} \
         (`apt-get install postgresql-{cluster}`) or move {} away",
        .pgdata.display(), .pgdata.display()
    )]
    VersionMismatch {
        /// The cluster's folder.
        pgdata: PathBuf,
        /// Major version in its PG_VERSION.
        cluster: String,
        /// Major version of the binaries found.
        found: String,
    },
    /// Running as root, but no unprivileged user to run PostgreSQL as.
    #[error(
        "running as root, but there is neither a `postgres` nor a `nobody` user to run \
         PostgreSQL as (it refuses to run as root); create one with `adduser --system postgres`"
    )]
    NoUser,
    /// A parent of the data folder cannot be entered by the user PostgreSQL runs as.
    #[error(
        "PostgreSQL runs as user {user}, who cannot enter {} (mode {mode:o}) to reach {}; \
         run `chmod o+x {}` or choose a data folder elsewhere",
        .dir.display(), .data_dir.display(), .dir.display()
    )]
    Untraversable {
        /// The folder that cannot be entered.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The user PostgreSQL runs as.
        user: String,
        /// The data folder asked for.
        data_dir: PathBuf,
    },
    /// `pgdata` exists and holds something other than a cluster.
    #[error("{} exists but is not a PostgreSQL cluster (no PG_VERSION); move it away", .0.display())]
    NotACluster(PathBuf),
    /// A live server already uses this data folder.
    #[error("another PostgreSQL server (pid {pid}) is already using {}; stop it first", .path.display())]
    AlreadyRunning {
        /// The other server's process id.
        pid: i32,
        /// The cluster folder or socket it uses.
        path: PathBuf,
    },
    /// A file system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// `initdb` failed.
    #[error("initdb failed ({status}):\n{output}")]
    InitDb {
        /// How it exited.
        status: String,
        /// What it printed.
        output: String,
    },
    /// The server exited before accepting connections.
    #[error("PostgreSQL exited during startup ({status}); end of {}:\n{tail}", .log.display())]
    Exited {
        /// How it exited.
        status: String,
        /// The server log.
        log: PathBuf,
        /// The log's last lines from this start.
        tail: String,
    },
    /// The server did not accept connections in time.
    #[error(
        "PostgreSQL did not accept connections within {secs} s (last error: {last_error}); \
         end of {}:\n{tail}",
        .log.display()
    )]
    NotReady {
        /// The timeout.
        secs: u64,
        /// The last connection error.
        last_error: String,
        /// The server log.
        log: PathBuf,
        /// The log's last lines from this start.
        tail: String,
    },
    /// The server runs, but creating or reaching the `concert` database failed.
    #[error("could not set up database `{DATABASE}`: {0}")]
    Database(#[source] sqlx::Error),
}

type Result<T, E = PrivatePostgresError> = std::result::Result<T, E>;

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> PrivatePostgresError {
    let context = context.into();
    move |source| PrivatePostgresError::Io { context, source }
}

/// A running private PostgreSQL server; stopped by [`PrivatePostgres::stop`] or on drop.
pub struct PrivatePostgres {
    data_dir: PathBuf,
    pgdata: PathBuf,
    log_path: PathBuf,
    endpoint: Endpoint,
    server: Option<ServerProcess>,
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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    /// Unix socket `<dir>/.s.PGSQL.<port>`, no TCP.
    Socket { dir: PathBuf, port: u16 },
    /// `127.0.0.1:<port>`, no unix socket.
    Tcp { port: u16 },
}

impl PrivatePostgres {
    /// Initialises (first time) and starts a server whose data lives under `data_dir` (e.g. ./.concert -> ./.concert/pgdata), waits until it accepts connections, and makes sure database `concert` exists.
    pub fn start(data_dir: &Path) -> Result<Self, PrivatePostgresError> {
        let run_as = RunAs::decide()?;
        let data_dir = prepare_data_dir(data_dir, &run_as)?;
        let pgdata = data_dir.join("pgdata");
        let log_path = data_dir.join("postgres.log");

        let cluster_version = read_cluster_version(&pgdata)?;
        let binaries = Binaries::choose(&pgdata, cluster_version.as_deref())?;
        tracing::debug!(postgres = %binaries.postgres.display(), version = ?binaries.version, "found PostgreSQL binaries");

        let mut log = open_log(&log_path, &run_as)?;
        if cluster_version.is_none() {
            init_cluster(&data_dir, &pgdata, &binaries, &run_as, &mut log)?;
        } else if run_as.switch {
            chown_tree_if_foreign(&pgdata, &run_as)?;
        }

        let socket_endpoint = socket_endpoint(&data_dir);
        if let Some(Endpoint::Socket { dir, port }) = &socket_endpoint {
            clear_stale_lock(&dir.join(format!(".s.PGSQL.{port}.lock")), &pgdata)?;
        }
        clear_stale_lock(&pgdata.join("postmaster.pid"), &pgdata)?;

        let mut pg = PrivatePostgres {
            data_dir,
            pgdata,
            log_path,
            endpoint: Endpoint::Tcp { port: 0 },
            server: None,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            pg.endpoint = match &socket_endpoint {
                Some(endpoint) => endpoint.clone(),
                None => Endpoint::Tcp {
                    port: free_loopback_port()?,
                },
            };
            let log_start = log_header(&mut log, &pg, &binaries)?;
            let server = pg.spawn_server(&binaries, &run_as, &log)?;
            let shared = Arc::clone(&server.shared);
            pg.server = Some(server);
            let admin = pg.connect_options("postgres")?;
            match run_blocking(await_ready(admin, shared))? {
                Readiness::Ready => break,
                Readiness::Exited(status) => {
                    pg.shutdown(); // reaps the thread
                    let tail = log_tail(&pg.log_path, log_start);
                    let port_taken = tail.contains("could not bind")
                        || tail.contains("could not create any TCP/IP sockets");
                    if matches!(pg.endpoint, Endpoint::Tcp { .. })
                        && port_taken
                        && attempt < TCP_ATTEMPTS
                    {
                        tracing::debug!("loopback port taken meanwhile; trying another");
                        continue;
                    }
                    return Err(PrivatePostgresError::Exited {
                        status,
                        log: pg.log_path.clone(),
                        tail,
                    });
                }
                Readiness::TimedOut(last_error) => {
                    let tail = log_tail(&pg.log_path, log_start);
                    return Err(PrivatePostgresError::NotReady {
                        secs: READY_TIMEOUT.as_secs(),
                        last_error,
                        log: pg.log_path.clone(),
                        tail,
                    }); // dropping `pg` stops the server
                }
            }
        }

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

    /// A sqlx-compatible URL for database `db` on this server (unix socket dir via `?host=/abs/dir` when the socket path is short enough (<100 bytes), else `postgres://postgres@127.0.0.1:PORT/db`).
    ///
    /// Authentication is `trust`. Over the unix socket only its owner and root
    /// can connect; over TCP any local user could, so the TCP fallback is only
    /// meant for single-user machines (containers, CI, a developer's box).
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

    /// URL of the `concert` database.
    pub fn database_url(&self) -> String {
        self.url_for(DATABASE)
    }

    /// Stops the server cleanly (fast shutdown, SIGINT) and waits for it to exit.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn connect_options(&self, db: &str) -> Result<PgConnectOptions> {
        self.url_for(db)
            .parse()
            .map_err(|e: sqlx::Error| PrivatePostgresError::Io {
                context: format!("bad connection URL {}", self.url_for(db)),
                source: io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
            })
    }

    fn spawn_server(
        &self,
        binaries: &Binaries,
        run_as: &RunAs,
        log: &File,
    ) -> Result<ServerProcess> {
        let mut cmd = Command::new(&binaries.postgres);
        cmd.arg("-D").arg(&self.pgdata);
        match &self.endpoint {
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
        let out = log
            .try_clone()
            .map_err(io_err("duplicating the log file handle"))?;
        let err = log
            .try_clone()
            .map_err(io_err("duplicating the log file handle"))?;
        cmd.current_dir(&self.pgdata)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own process group: a Ctrl-C in our terminal is ours to handle
            // (we then stop the server), not the server's.
            .process_group(0);
        run_as.apply(&mut cmd);
        die_with_parent(&mut cmd, Signal::SIGINT);
        ServerProcess::spawn(cmd)
            .map_err(io_err(format!("starting {}", binaries.postgres.display())))
    }

    fn shutdown(&mut self) {
        let Some(server) = self.server.take() else {
            return;
        };
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
                    server.signal(Signal::SIGKILL);
                    if !server.wait_exit(KILL_TIMEOUT) {
                        tracing::error!(
                            pid = server.pid.as_raw(),
                            "PostgreSQL did not exit after SIGKILL"
                        );
                        return; // leave its thread be rather than hang
                    }
                }
            }
        }
        server.join();
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.shutdown();
    }
}

// ---------------------------------------------------------------------------
// The server process and the thread that owns it

/// The server child, owned by a dedicated thread that spawned it (so the
/// parent-death signal stays armed) and that reaps it when it exits.
struct ServerProcess {
    pid: Pid,
    shared: Arc<Shared>,
    thread: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    /// `Some(description of the exit status)` once the child has been reaped.
    exited: Mutex<Option<String>>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Option<String>> {
        self.exited.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ServerProcess {
    fn spawn(mut cmd: Command) -> io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let (spawned_tx, spawned_rx) = mpsc::sync_channel::<io::Result<u32>>(1);
        let thread_shared = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("private-postgres".into())
            .spawn(move || {
                let mut child = match cmd.spawn() {
                    Ok(child) => child,
                    Err(e) => {
                        let _ = spawned_tx.send(Err(e));
                        return;
                    }
                };
                drop(cmd); // closes our copies of the log file handles
                let pid = Pid::from_raw(child.id() as i32);
                let _ = spawned_tx.send(Ok(child.id()));
                loop {
                    wait_for_exit_unreaped(pid);
                    // Reap under the lock, so that `signal` never targets a
                    // reaped (and possibly reused) pid.
                    let mut exited = thread_shared.lock();
                    match child.try_wait() {
                        Ok(Some(status)) => *exited = Some(status.to_string()),
                        Ok(None) => continue,
                        Err(e) => *exited = Some(format!("waiting for it failed: {e}")),
                    }
                    break;
                }
                thread_shared.changed.notify_all();
            })?;
        match spawned_rx.recv() {
            Ok(Ok(pid)) => Ok(ServerProcess {
                pid: Pid::from_raw(pid as i32),
                shared,
                thread,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(io::Error::other("the server thread ended unexpectedly")),
        }
    }

    fn exit_status(&self) -> Option<String> {
        self.shared.lock().clone()
    }

    fn signal(&self, signal: Signal) {
        let exited = self.shared.lock();
        if exited.is_none() {
            if let Err(e) = kill(self.pid, signal) {
                tracing::warn!(pid = self.pid.as_raw(), %signal, "could not signal PostgreSQL: {e}");
            }
        }
    }

    /// Whether the server exited within `timeout`.
    fn wait_exit(&self, timeout: Duration) -> bool {
        let guard = self.shared.lock();
        let (guard, _) = self
            .shared
            .changed
            .wait_timeout_while(guard, timeout, |exited| exited.is_none())
            .unwrap_or_else(|e| e.into_inner());
        guard.is_some()
    }

    fn join(self) {
        let _ = self.thread.join();
    }
}

/// Blocks until child `pid` has exited, without reaping it.
#[cfg(target_os = "linux")]
fn wait_for_exit_unreaped(pid: Pid) {
    use nix::sys::wait::{waitid, Id, WaitPidFlag};
    loop {
        match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Err(Errno::EINTR) => continue,
            Ok(_) => return,
            Err(_) => {
                // Should not happen; avoid spinning.
                thread::sleep(Duration::from_millis(100));
                return;
            }
        }
    }
}

/// Polls instead where `waitid(WNOWAIT)` is missing.
#[cfg(not(target_os = "linux"))]
fn wait_for_exit_unreaped(_pid: Pid) {
    thread::sleep(Duration::from_millis(100));
}

/// Makes the child get `signal` when the thread that spawns it ends (Linux).
///
/// The closure runs in the child after std has switched uid/gid (a change of
/// credentials clears the parent-death signal, so the order matters).
fn die_with_parent(cmd: &mut Command, signal: Signal) {
    #[cfg(target_os = "linux")]
    {
        let parent = nix::unistd::getpid();
        // SAFETY: between fork and exec the closure only makes the
        // async-signal-safe syscalls prctl and getppid, and allocates nothing
        // (errors are built from raw OS error codes).
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(signal).map_err(io::Error::from)?;
                if nix::unistd::getppid() != parent {
                    // We died before the signal was armed.
                    return Err(io::Error::from_raw_os_error(nix::libc::ESRCH));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (cmd, signal);
    }
}

enum Readiness {
    Ready,
    Exited(String),
    TimedOut(String),
}

async fn await_ready(admin: PgConnectOptions, shared: Arc<Shared>) -> Readiness {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last_error: String;
    loop {
        if let Some(status) = shared.lock().clone() {
            return Readiness::Exited(status);
        }
        match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&admin)).await
        {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                return Readiness::Ready;
            }
            Ok(Err(e)) => last_error = e.to_string(),
            Err(_) => last_error = "connection attempt timed out".into(),
        }
        if Instant::now() >= deadline {
            return Readiness::TimedOut(last_error);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ensure_database(
    admin: PgConnectOptions,
    app: PgConnectOptions,
) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect_with(&admin).await?;
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(DATABASE)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        tracing::info!("creating database {DATABASE}");
        match conn
            .execute(format!("create database {DATABASE}").as_str())
            .await
        {
            Ok(_) => {}
            // duplicate_database: someone else was quicker.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e),
        }
    }
    conn.close().await?;
    // The URL we hand out must work.
    PgConnection::connect_with(&app).await?.close().await
}

/// Runs `fut` to completion on a throwaway current-thread runtime in a scoped
/// thread, so that this works with or without a surrounding tokio runtime.
fn run_blocking<F>(fut: F) -> Result<F::Output>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(io_err("building a tokio runtime"))?;
                Ok(runtime.block_on(fut))
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

// ---------------------------------------------------------------------------
// Binaries

#[derive(Debug, Clone)]
struct Binaries {
    initdb: PathBuf,
    postgres: PathBuf,
    /// Major version, e.g. "15" (None if `postgres -V` said something odd).
    version: Option<String>,
}

impl Binaries {
    /// The first binaries found; for an existing cluster, the first of its major version.
    fn choose(pgdata: &Path, cluster_version: Option<&str>) -> Result<Self> {
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
    fn find_all() -> Vec<Self> {
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

fn candidate_bin_dirs() -> Vec<PathBuf> {
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
fn versioned_dirs(parent: &Path, prefix: &str, sub: &str) -> Vec<PathBuf> {
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

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

/// "15" from `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`; "9.6" for 9.6.x.
fn major_version(postgres: &Path) -> Option<String> {
    let output = Command::new(postgres)
        .arg("-V")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    parse_major_version(&String::from_utf8_lossy(&output.stdout))
}

fn parse_major_version(version_output: &str) -> Option<String> {
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

fn read_cluster_version(pgdata: &Path) -> Result<Option<String>> {
    match fs::read_to_string(pgdata.join("PG_VERSION")) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(format!("reading {}/PG_VERSION", pgdata.display()))(
            e,
        )),
    }
}

// ---------------------------------------------------------------------------
// Users, folders and files

/// Whom initdb and postgres run as.
struct RunAs {
    uid: Uid,
    gid: Gid,
    name: String,
    /// Whether we are root and must switch to `uid`/`gid`.
    switch: bool,
}

impl RunAs {
    fn decide() -> Result<Self> {
        let euid = nix::unistd::geteuid();
        if !euid.is_root() {
            let name = User::from_uid(euid)
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| euid.to_string());
            return Ok(RunAs {
                uid: euid,
                gid: nix::unistd::getegid(),
                name,
                switch: false,
            });
        }
        let user = ["postgres", "nobody"]
            .into_iter()
            .find_map(|name| User::from_name(name).ok().flatten())
            .filter(|u| !u.uid.is_root())
            .ok_or(PrivatePostgresError::NoUser)?;
        Ok(RunAs {
            uid: user.uid,
            gid: user.gid,
            name: user.name,
            switch: true,
        })
    }

    fn apply(&self, cmd: &mut Command) {
        if self.switch {
            // std also drops root's supplementary groups (setgroups(0)).
            cmd.uid(self.uid.as_raw()).gid(self.gid.as_raw());
        }
    }

    fn chown(&self, path: &Path) -> Result<()> {
        std::os::unix::fs::lchown(path, Some(self.uid.as_raw()), Some(self.gid.as_raw())).map_err(
            io_err(format!("handing {} to user {}", path.display(), self.name)),
        )
    }

    /// Whether this user may enter a folder with this metadata.
    fn can_enter(&self, meta: &fs::Metadata) -> bool {
        let mode = meta.mode();
        if meta.uid() == self.uid.as_raw() {
            mode & 0o100 != 0
        } else if meta.gid() == self.gid.as_raw() {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        }
    }
}

/// Creates the data folder (mode 0700 if new), returns its canonical path, and
/// when we are root, hands it to the server's user and checks that user can reach it.
fn prepare_data_dir(data_dir: &Path, run_as: &RunAs) -> Result<PathBuf> {
    let abs = std::path::absolute(data_dir)
        .map_err(io_err(format!("resolving {}", data_dir.display())))?;
    if !abs.is_dir() {
        if let Some(parent) = abs.parent() {
            fs::create_dir_all(parent).map_err(io_err(format!("creating {}", parent.display())))?;
        }
        match fs::DirBuilder::new().mode(0o700).create(&abs) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && abs.is_dir() => {}
            Err(e) => return Err(io_err(format!("creating {}", abs.display()))(e)),
        }
    }
    let dir = fs::canonicalize(&abs).map_err(io_err(format!("resolving {}", abs.display())))?;
    if run_as.switch {
        for ancestor in dir.ancestors().skip(1) {
            let meta = fs::metadata(ancestor)
                .map_err(io_err(format!("inspecting {}", ancestor.display())))?;
            if !run_as.can_enter(&meta) {
                return Err(PrivatePostgresError::Untraversable {
                    dir: ancestor.to_path_buf(),
                    mode: meta.mode() & 0o7777,
                    user: run_as.name.clone(),
                    data_dir: dir,
                });
            }
        }
        let meta = fs::metadata(&dir).map_err(io_err(format!("inspecting {}", dir.display())))?;
        if meta.uid() != run_as.uid.as_raw() {
            run_as.chown(&dir)?;
        }
    }
    Ok(dir)
}

/// Hands `path` and everything under it to the server's user, if `path` isn't theirs yet.
fn chown_tree_if_foreign(path: &Path, run_as: &RunAs) -> Result<()> {
    let meta =
        fs::symlink_metadata(path).map_err(io_err(format!("inspecting {}", path.display())))?;
    if meta.uid() != run_as.uid.as_raw() {
        tracing::info!(path = %path.display(), user = %run_as.name, "handing the cluster to the server's user");
        chown_tree(path, run_as)?;
    }
    Ok(())
}

fn chown_tree(path: &Path, run_as: &RunAs) -> Result<()> {
    run_as.chown(path)?;
    let meta =
        fs::symlink_metadata(path).map_err(io_err(format!("inspecting {}", path.display())))?;
    if meta.is_dir() {
        let entries = fs::read_dir(path).map_err(io_err(format!("listing {}", path.display())))?;
        for entry in entries {
            let entry = entry.map_err(io_err(format!("listing {}", path.display())))?;
            chown_tree(&entry.path(), run_as)?;
        }
    }
    Ok(())
}

fn open_log(path: &Path, run_as: &RunAs) -> Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    if run_as.switch {
        run_as.chown(path)?;
    }
    Ok(file)
}

/// Writes a header for this start to the log; returns the offset where it starts.
fn log_header(log: &mut File, pg: &PrivatePostgres, binaries: &Binaries) -> Result<u64> {
    let start = log
        .seek(SeekFrom::End(0))
        .map_err(io_err("seeking the log"))?;
    writeln!(
        log,
        "---- {} concert: starting {} on {} ({}) ----",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        binaries.postgres.display(),
        pg.pgdata.display(),
        pg.database_url(),
    )
    .map_err(io_err(format!("writing {}", pg.log_path.display())))?;
    Ok(start)
}

/// The last lines of the log written since `from`.
fn log_tail(path: &Path, from: u64) -> String {
    let mut text = Vec::new();
    let read = File::open(path).and_then(|mut f| {
        f.seek(SeekFrom::Start(from))?;
        f.read_to_end(&mut text)
    });
    if let Err(e) = read {
        return format!("(could not read {}: {e})", path.display());
    }
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// Runs initdb into `pgdata.initdb`, then renames it to `pgdata`, so an
/// interrupted initdb never leaves a half-made cluster behind.
fn init_cluster(
    data_dir: &Path,
    pgdata: &Path,
    binaries: &Binaries,
    run_as: &RunAs,
    log: &mut File,
) -> Result<()> {
    if pgdata.exists() {
        let empty = fs::read_dir(pgdata)
            .map_err(io_err(format!("listing {}", pgdata.display())))?
            .next()
            .is_none();
        if !empty {
            return Err(PrivatePostgresError::NotACluster(pgdata.to_path_buf()));
        }
        fs::remove_dir(pgdata).map_err(io_err(format!("removing empty {}", pgdata.display())))?;
    }
    let staging = data_dir.join("pgdata.initdb");
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(io_err(format!(
            "removing the leftover {}",
            staging.display()
        )))?;
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(io_err(format!("creating {}", staging.display())))?;
    if run_as.switch {
        run_as.chown(&staging)?;
    }

    tracing::info!(pgdata = %pgdata.display(), "initialising a private PostgreSQL cluster");
    let mut cmd = Command::new(&binaries.initdb);
    cmd.arg("-D")
        .arg(&staging)
        .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C"]);
    // --no-instructions exists from PostgreSQL 14 on.
    let major: u32 = binaries
        .version
        .as_deref()
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(u32::MAX);
    if major >= 14 {
        cmd.arg("--no-instructions");
    }
    cmd.current_dir(data_dir).stdin(Stdio::null());
    run_as.apply(&mut cmd);
    die_with_parent(&mut cmd, Signal::SIGTERM); // initdb cleans up on SIGTERM
    let output = cmd
        .output()
        .map_err(io_err(format!("running {}", binaries.initdb.display())))?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let _ = writeln!(
        log,
        "---- {} concert: initdb {} ----\n{}",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        pgdata.display(),
        text.trim_end()
    );
    if !output.status.success() {
        let _ = fs::remove_dir_all(&staging);
        return Err(PrivatePostgresError::InitDb {
            status: output.status.to_string(),
            output: text.trim_end().to_string(),
        });
    }
    fs::rename(&staging, pgdata).map_err(io_err(format!(
        "renaming {} to {}",
        staging.display(),
        pgdata.display()
    )))?;
    if let Ok(dir) = File::open(data_dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// The unix socket endpoint in `data_dir`, if its path is short and plain enough.
fn socket_endpoint(data_dir: &Path) -> Option<Endpoint> {
    let socket = data_dir.join(format!(".s.PGSQL.{SOCKET_PORT}"));
    let bytes = data_dir.as_os_str().as_bytes();
    // unix_socket_directories is a comma-separated, optionally quoted list.
    let plain = !bytes.iter().any(|b| matches!(b, b',' | b'"' | b'\\'));
    (socket.as_os_str().len() < MAX_SOCKET_PATH && plain).then(|| Endpoint::Socket {
        dir: data_dir.to_path_buf(),
        port: SOCKET_PORT,
    })
}

fn free_loopback_port() -> Result<u16> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(io_err("finding a free loopback port"))
}

/// Refuses to start when a live server uses `pgdata`, and removes a lock file
/// (`postmaster.pid` or a socket's `.lock`) whose pid now belongs to an
/// unrelated live process (pid reuse after a crash, e.g. in containers), which
/// PostgreSQL itself would refuse. Lock files of dead pids are left to
/// PostgreSQL, which handles them (and checks its shared memory interlock).
fn clear_stale_lock(lock: &Path, pgdata: &Path) -> Result<()> {
    let text = match fs::read_to_string(lock) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(format!("reading {}", lock.display()))(e)),
    };
    if let Some(pid) = postgres_using(pgdata) {
        return Err(PrivatePostgresError::AlreadyRunning {
            pid,
            path: pgdata.to_path_buf(),
        });
    }
    let lock_pid = text
        .lines()
        .next()
        .and_then(|line| line.trim().parse::<i32>().ok())
        .map(|pid| pid.abs()) // socket locks of standalone backends hold -pid
        .filter(|&pid| pid > 0);
    if let Some(pid) = lock_pid {
        let alive = !matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH));
        if !alive {
            return Ok(());
        }
        if is_postgres(pid) && !lock.starts_with(pgdata) {
            // A live server (of another cluster) owns our socket.
            return Err(PrivatePostgresError::AlreadyRunning {
                pid,
                path: lock.to_path_buf(),
            });
        }
        if is_postgres(pid) && !Path::new("/proc").is_dir() {
            // Cannot tell which cluster it serves: assume ours.
            return Err(PrivatePostgresError::AlreadyRunning {
                pid,
                path: pgdata.to_path_buf(),
            });
        }
    }
    tracing::info!(lock = %lock.display(), "removing a stale PostgreSQL lock file");
    fs::remove_file(lock).map_err(io_err(format!("removing stale {}", lock.display())))
}

/// The pid of a live PostgreSQL process working in `pgdata`, if any.
fn postgres_using(pgdata: &Path) -> Option<i32> {
    let entries = fs::read_dir("/proc").ok()?;
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|&pid| {
            is_postgres(pid)
                && fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == pgdata)
        })
}

fn is_postgres(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| matches!(comm.trim(), "postgres" | "postmaster"))
}

/// Percent-encodes everything but unreserved URL characters and `/`.
fn percent_encode(bytes: &[u8]) -> String {
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

#[cfg(test)]
impl PrivatePostgres {
    fn server_pid(&self) -> Option<i32> {
        self.server.as_ref().map(|s| s.pid.as_raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    /// A fresh folder under /tmp, removed afterwards.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let dir = PathBuf::from(format!(
                "/tmp/concert-pg-{tag}-{}-{nanos}",
                std::process::id()
            ));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn block_on<F: std::future::Future>(fut: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(fut)
    }

    fn alive(pid: i32) -> bool {
        // A zombie (not reaped by a container's init) counts as gone.
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            Err(_) => false,
        }
    }

    fn uid_of(pid: i32) -> u32 {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn restart_keeps_data() {
        let tmp = TempDir::new("restart");
        let data_dir = tmp.0.join(".concert");

        // Started by a thread that ends at once: the server must outlive it
        // (the parent-death signal is tied to the spawning thread).
        let dir = data_dir.clone();
        let pg = thread::spawn(move || PrivatePostgres::start(&dir).expect("first start"))
            .join()
            .unwrap();
        thread::sleep(Duration::from_millis(300));
        let url = pg.database_url();
        assert!(url.contains("/concert?host=/tmp/"), "{url}");
        let pid = pg.server_pid().unwrap();
        if nix::unistd::geteuid().is_root() {
            assert_ne!(uid_of(pid), 0, "the server must not run as root");
        }
        block_on(async {
            let mut conn = PgConnection::connect(&url).await.unwrap();
            conn.execute("create table seats (id int primary key, holder text not null)")
                .await
                .unwrap();
            conn.execute("insert into seats values (7, 'alice')")
                .await
                .unwrap();
            conn.close().await.unwrap();
        });
        pg.stop();
        assert!(!alive(pid), "stop() waits for the server to exit");
        assert!(
            !data_dir.join("pgdata/postmaster.pid").exists(),
            "clean shutdown"
        );

        let pg = PrivatePostgres::start(&data_dir).expect("second start");
        let holder: String = block_on(async {
            let mut conn = PgConnection::connect(&pg.database_url()).await.unwrap();
            sqlx::query_scalar("select holder from seats where id = 7")
                .fetch_one(&mut conn)
                .await
                .unwrap()
        });
        assert_eq!(holder, "alice");
        let pid = pg.server_pid().unwrap();
        drop(pg);
        assert!(!alive(pid), "drop stops the server");
        let log = fs::read_to_string(data_dir.join("postgres.log")).unwrap();
        assert!(
            log.contains("database system is ready to accept connections"),
            "{log}"
        );
    }

    #[test]
    fn long_data_dir_falls_back_to_tcp() {
        let tmp = TempDir::new("tcp");
        let data_dir = tmp.0.join("x".repeat(100));
        let pg = PrivatePostgres::start(&data_dir).expect("start");
        let url = pg.database_url();
        assert!(url.starts_with("postgres://postgres@127.0.0.1:"), "{url}");
        assert!(url.ends_with("/concert"), "{url}");
        let db: String = block_on(async {
            let mut conn = PgConnection::connect(&url).await.unwrap();
            sqlx::query_scalar("select current_database()::text")
                .fetch_one(&mut conn)
                .await
                .unwrap()
        });
        assert_eq!(db, "concert");
        pg.stop();
    }

    #[test]
    fn second_server_on_same_data_dir_is_refused() {
        let tmp = TempDir::new("twice");
        let pg = PrivatePostgres::start(&tmp.0).expect("start");
        match PrivatePostgres::start(&tmp.0) {
            Err(PrivatePostgresError::AlreadyRunning { pid, .. }) => {
                assert_eq!(Some(pid), pg.server_pid())
            }
            other => panic!("expected AlreadyRunning, got {other:?}"),
        }
        // The first server is unharmed.
        block_on(async {
            PgConnection::connect(&pg.database_url())
                .await
                .unwrap()
                .close()
                .await
                .unwrap();
        });
    }

    #[tokio::test]
    async fn starts_inside_a_tokio_runtime() {
        let tmp = TempDir::new("runtime");
        let pg = PrivatePostgres::start(&tmp.0).expect("start");
        let mut conn = PgConnection::connect(&pg.database_url()).await.unwrap();
        let one: i32 = sqlx::query_scalar("select 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(one, 1);
        conn.close().await.unwrap();
        pg.stop();
    }

    const HELPER_ENV: &str = "CONCERT_PRIVATE_PG_HELPER_DIR";

    /// Not a test by itself: the child process of `server_dies_with_its_parent`.
    #[test]
    fn parent_death_helper() {
        let Some(dir) = std::env::var_os(HELPER_ENV) else {
            return;
        };
        let dir = PathBuf::from(dir);
        let pg = PrivatePostgres::start(&dir.join("data")).expect("start");
        fs::write(dir.join("pid.tmp"), pg.server_pid().unwrap().to_string()).unwrap();
        fs::rename(dir.join("pid.tmp"), dir.join("pid")).unwrap();
        thread::sleep(Duration::from_secs(120)); // to be SIGKILLed meanwhile
    }

    #[test]
    fn server_dies_with_its_parent() {
        let tmp = TempDir::new("orphan");
        let test_name = format!(
            "{}::parent_death_helper",
            module_path!().split_once("::").unwrap().1
        );
        let mut helper = Command::new(std::env::current_exe().unwrap())
            .args([
                test_name.as_str(),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HELPER_ENV, &tmp.0)
            .stdin(Stdio::null())
            .stdout(File::create(tmp.0.join("helper.out")).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        let pid = loop {
            if let Ok(pid) = fs::read_to_string(tmp.0.join("pid")) {
                break pid.parse::<i32>().unwrap();
            }
            if let Some(status) = helper.try_wait().unwrap() {
                panic!("helper exited early ({status})");
            }
            assert!(Instant::now() < deadline, "helper did not start a server");
            thread::sleep(Duration::from_millis(50));
        };
        assert!(alive(pid));
        if nix::unistd::geteuid().is_root() {
            assert_ne!(uid_of(pid), 0, "the server must not run as root");
        }

        helper.kill().unwrap(); // SIGKILL: no destructors run
        helper.wait().unwrap();

        let deadline = Instant::now() + Duration::from_secs(30);
        while alive(pid) {
            assert!(
                Instant::now() < deadline,
                "postgres {pid} outlived its parent"
            );
            thread::sleep(Duration::from_millis(50));
        }
        let pgdata = tmp.0.join("data/pgdata");
        let deadline = Instant::now() + Duration::from_secs(10);
        while pgdata.join("postmaster.pid").exists() {
            assert!(
                Instant::now() < deadline,
                "postmaster.pid left behind: no clean shutdown"
            );
            thread::sleep(Duration::from_millis(50));
        }
        let log = fs::read_to_string(tmp.0.join("data/postgres.log")).unwrap();
        assert!(log.contains("received fast shutdown request"), "{log}");
    }

    #[test]
    fn urls() {
        let mut pg = PrivatePostgres {
            data_dir: PathBuf::from("/srv/my app"),
            pgdata: PathBuf::from("/srv/my app/pgdata"),
            log_path: PathBuf::from("/srv/my app/postgres.log"),
            endpoint: Endpoint::Socket {
                dir: PathBuf::from("/srv/my app+x"),
                port: 5432,
            },
            server: None,
        };
        assert_eq!(
            pg.database_url(),
            "postgres://postgres@localhost:5432/concert?host=/srv/my%20app%2Bx"
        );
        let opts: PgConnectOptions = pg.database_url().parse().unwrap();
        assert_eq!(opts.get_socket(), Some(&PathBuf::from("/srv/my app+x")));
        assert_eq!(opts.get_database(), Some("concert"));
        pg.endpoint = Endpoint::Tcp { port: 40123 };
        assert_eq!(
            pg.url_for("other"),
            "postgres://postgres@127.0.0.1:40123/other"
        );
        assert!(socket_endpoint(Path::new("/tmp/short")).is_some());
        assert!(socket_endpoint(&Path::new("/tmp").join("y".repeat(90))).is_none());
        assert!(socket_endpoint(Path::new("/tmp/a,b")).is_none());
    }

    #[test]
    fn versions() {
        let v = |s: &str| parse_major_version(s);
        assert_eq!(
            v("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n").as_deref(),
            Some("15")
        );
        assert_eq!(v("postgres (PostgreSQL) 17beta1").as_deref(), Some("17"));
        assert_eq!(v("postgres (PostgreSQL) 9.6.24").as_deref(), Some("9.6"));
        assert_eq!(v("nonsense"), None);
        let message = PrivatePostgresError::NoBinaries.to_string();
        assert!(!message.contains('\n') && message.contains("apt-get install postgresql"));
    }
}
