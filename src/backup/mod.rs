//! `concert backup` and `concert restore`: a consistent copy of the whole
//! store, made by PostgreSQL's own `pg_dump` (custom format) while the
//! service runs, and brought back by `pg_restore` into an empty store in one
//! transaction, so a failed restore changes nothing. Neither tool gets the
//! database's password on its command line, where any local user could read
//! it: see [`ToolConnection`].

mod dump;
mod load;
mod meter;
mod set_aside;
mod settle;
mod tool_url;

use std::path::PathBuf;

pub use dump::{backup, BackupReport};
pub use load::{restore, RestoreReport};
pub use set_aside::{STORE_FUNCTIONS, STORE_TABLES};
pub use tool_url::ToolConnection;

/// The advisory lock a restore holds for its whole run, and a backup shares
/// for its snapshot: a backup of a store being restored would copy a store
/// half made (or fail on tables not there yet), so each refuses the other.
pub const COPY_LOCK: i64 = 0x0063_6f70_795f_6c6b;

/// Why a backup or a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The PostgreSQL client tool is not installed.
    #[error("{0} not found on PATH or under /usr/lib/postgresql/*/bin; install it with `apt-get install postgresql-client`")]
    NoTool(&'static str),
    /// The database has no event log to copy.
    #[error("{}; no backup was written", crate::db::NO_STORE)]
    NoStore,
    /// The database could not be read or written.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Reading or writing a file, or running a tool, failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Stopped by a signal before the copy was complete.
    #[error("stopped by {0}; no backup was written")]
    Interrupted(&'static str),
    /// `pg_dump` failed.
    #[error("pg_dump failed ({status}); no backup was written:\n{stderr}")]
    DumpFailed {
        /// How it exited.
        status: String,
        /// What it printed.
        stderr: String,
    },
    /// The file is not a `pg_dump` archive, or one cut short.
    #[error("{} is not a readable backup (pg_restore cannot read it); nothing was changed:\n{detail}", .file.display())]
    Unreadable {
        /// The file.
        file: PathBuf,
        /// What pg_restore said.
        detail: String,
    },
    /// The archive is not of a concert store.
    #[error("{} is a PostgreSQL archive but not of a concert store (it lacks the event log, read models, snapshots or migrations of one); nothing was changed", .0.display())]
    NotAConcertBackup(PathBuf),
    /// The store already has events.
    #[error("refusing to restore: the store already holds {events} events; restore only into an empty store (a fresh CONCERT_DATA_DIR or an empty database)")]
    StoreNotEmpty {
        /// Events in the store.
        events: i64,
    },
    /// A restore into this store, or a replay's swap, held it for as many
    /// seconds as a backup waits.
    #[error("a restore into this store, or the swap that ends a replay, is running (waited {0} s); back it up once it is done")]
    RestoreRunning(u64),
    /// The backup's session was closed while it waited for a restore (whose
    /// own server stops when it ends) or a replay's swap.
    #[error("the server closed this backup's session while it waited for the restore or replay's swap (a restore's own PostgreSQL stops when the restore ends); nothing was written: run the backup again")]
    SessionClosedWhileWaiting,
    /// A backup of this store, another restore into it or a replay's swap
    /// is running (they share one lock).
    #[error("refusing to restore: a backup of this store, another restore into it or the swap that ends a replay is running; try again once it is done")]
    BackupRunning,
    /// Other sessions use the database.
    #[error("refusing to restore: {0} other sessions are connected to the database; stop the service first")]
    InUse(i64),
    /// Finishing the payments the copy caught half-way failed.
    #[error("the copy is restored, but finishing the payments it caught half-way failed: {0}; `concert serve` retries them")]
    Settle(String),
    /// Stopped by a signal before the restore was complete; undone.
    #[error("stopped by {0}; the restore was rolled back, the store is unchanged")]
    RestoreInterrupted(&'static str),
    /// The copy came in, but the migrations failed on it (one recorded as
    /// failed half-way in the copied store, or edited since it was applied).
    #[error("{}the copy's schema cannot be brought up to date: {error}", if *.undone { "the restore was undone, the store is unchanged: " } else { "the copy is restored, but " })]
    CopyNotMigrated {
        /// What the migrations said.
        error: String,
        /// Whether the store was put back as it was.
        undone: bool,
    },
    /// The restore failed, and the store's schema set aside could not be
    /// put back either.
    #[error("the restore failed, and the store's schema could not be put back ({error}): it is in schema concert_before_restore; put it back by hand with `drop schema public cascade; alter schema concert_before_restore rename to public`. What failed: {failed}")]
    NotPutBack {
        /// Why the restore failed (as its own error says it).
        failed: String,
        /// Why the put-back failed.
        error: String,
    },
    /// `pg_restore` failed; its transaction was rolled back.
    #[error(
        "the restore failed and was rolled back, the store is unchanged ({status}):\n{stderr}"
    )]
    RestoreFailed {
        /// How it exited.
        status: String,
        /// What it printed (last lines).
        stderr: String,
    },
}

/// Whether `connection`'s session took `COPY_LOCK` with `function`
/// (`pg_try_advisory_lock` or its `_shared` twin); it keeps it until closed.
async fn take_copy_lock(
    connection: &mut sqlx::PgConnection,
    function: &'static str,
) -> Result<bool, BackupError> {
    let taken = sqlx::query_scalar(&format!("select {function}($1)"))
        .bind(COPY_LOCK)
        .fetch_one(connection)
        .await?;
    Ok(taken)
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let context = context.into();
    move |source| BackupError::Io { context, source }
}

/// The last `n` lines of a tool's output.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
