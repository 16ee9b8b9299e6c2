//! The errors of starting the private server.

use std::io;
use std::path::PathBuf;

use super::DATABASE;

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
    /// The cluster folder belongs to another user, or has the wrong permissions.
    #[error(
        "PostgreSQL runs as user {user} and cannot use {}: it belongs to {owner} with permissions {mode:03o} \
         (it must be {user}'s, mode 0700); fix it with `chown -R {user} {} && chmod 700 {}`",
        .path.display(), .path.display(), .path.display()
    )]
    WrongOwner {
        /// The cluster folder.
        path: PathBuf,
        /// Its owner: the user's name and uid, or the uid alone.
        owner: String,
        /// Its permission bits.
        mode: u32,
        /// The user PostgreSQL runs as.
        user: String,
    },
    /// An existing data folder or cluster of another user's, not one to hand over.
    #[error(
        "not taking over {}: it belongs to {owner} and holds {holds}; an existing folder is \
         handed to PostgreSQL's user {user} only when it is the invoking user's. Give \
         CONCERT_DATA_DIR a folder of its own, or, if this is the one meant, run \
         `chown -R {user} {}`",
        .path.display(), .path.display()
    )]
    ForeignDataDir {
        /// The data folder.
        path: PathBuf,
        /// Its owner: the user's name and uid, or the uid alone.
        owner: String,
        /// What it holds, in a few names.
        holds: String,
        /// The user PostgreSQL runs as.
        user: String,
    },
    /// `pgdata` exists and holds something other than a cluster.
    #[error("{} exists but is not a PostgreSQL cluster (no PG_VERSION); move it away", .0.display())]
    NotACluster(PathBuf),
    /// A live `concert` serves this data folder (and supervises its server).
    #[error(
        "concert (pid {pid}) serves {} and supervises its PostgreSQL; stop that concert first \
         (SIGTERM), or let the tools (backup, events, audit) attach to it",
        .data_dir.display()
    )]
    Served {
        /// The serving `concert`'s process id.
        pid: i32,
        /// The data folder.
        data_dir: PathBuf,
    },
    /// Another `concert` is starting or stopping this data folder's server.
    #[error(
        "another concert is starting or running the PostgreSQL of {}; stop it first, \
         or let the tools (backup, events, audit) attach to it once it serves",
        .0.display()
    )]
    FolderBusy(PathBuf),
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
    /// The disk holding the data folder is full.
    #[error(
        "the disk holding {} is full ({} MiB free): {detail}; free some space and start again",
        .path.display(), .free / (1024 * 1024)
    )]
    DiskFull {
        /// The data folder.
        path: PathBuf,
        /// Bytes still free.
        free: u64,
        /// What failed for lack of space.
        detail: String,
    },
    /// A parent `concert` owns the server but it is not up within the wait.
    #[error("the private PostgreSQL server of {} (owned by concert pid {owner}) did not answer within {secs} s", .path.display())]
    NotAttached {
        /// The data folder.
        path: PathBuf,
        /// The owning `concert` process.
        owner: i32,
        /// How long we waited.
        secs: u64,
    },
    /// The server runs, but creating or reaching the `concert` database failed.
    #[error("could not set up database `{DATABASE}`: {0}")]
    Database(#[source] sqlx::Error),
}

pub(super) type Result<T, E = PrivatePostgresError> = std::result::Result<T, E>;

pub(super) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> PrivatePostgresError {
    let context = context.into();
    move |source| PrivatePostgresError::Io { context, source }
}
