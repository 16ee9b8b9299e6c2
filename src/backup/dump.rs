//! `concert backup <file>`: `pg_dump --format=custom` of the whole database,
//! streamed through us into `<file>.<pid>.partial` and renamed when complete.
//! Each run writes a partial file of its own, so two backups to one name
//! (an overlapping cron job and a manual run) each leave a whole file, the
//! later rename winning. The file is readable by its owner only: it holds
//! the service's signing keys (`server_secrets`).
//!
//! The dump reads one snapshot that we export from a repeatable-read
//! transaction kept open until pg_dump is done (`pg_export_snapshot` and
//! `pg_dump --snapshot`), so the last log position we report is read in the
//! very snapshot the file holds. Events committed but not yet positioned in
//! that snapshot are in the file too; they get the next positions when the
//! copy is restored, and are reported beside the position.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use sqlx::{Connection, PgConnection, Row};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::meter::Meter;
use super::{io_err, last_lines, BackupError, ToolConnection};
use crate::private_postgres::server_tool;

/// How long the snapshot's session is given to close.
const CLOSE_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a backup waits for the store's copy lock: long enough for the
/// swap that ends a replay (a second or two), not for a restore.
const HOLDER_WAIT_MOST: std::time::Duration = std::time::Duration::from_secs(10);
/// How often it tries the lock meanwhile.
const HOLDER_RETRY_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// What a finished backup holds.
#[derive(Debug, Clone)]
pub struct BackupReport {
    /// The file written.
    pub file: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// The highest log position in the copy.
    pub last_position: i64,
    /// Events in the copy committed but not yet positioned (positioned at restore).
    pub unpositioned: i64,
    /// Seconds it took.
    pub seconds: f64,
}

/// Writes a consistent copy of the database at `url` to `file`.
pub async fn backup(url: &str, file: &Path) -> Result<BackupReport, BackupError> {
    let file = &written_to(file)?;
    let pg_dump = server_tool("pg_dump").ok_or(BackupError::NoTool("pg_dump"))?;
    let mut meter = Meter::new("backup");
    let partial = partial_path(file);
    // A signal is listened for from the start: one that came while a frozen
    // database kept the backup waiting before pg_dump ran ended the process
    // without a word (exit 143). pg_dump, if it runs, is killed as its
    // handle drops.
    let copied = tokio::select! {
        copied = snapshot_copy(url, &pg_dump, &partial, &mut meter) => copied,
        signal = crate::server::stop_requested() => Err(BackupError::Interrupted(signal)),
    };
    if copied.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    meter.finish();
    let copied = copied?;
    if let Err(error) = tokio::fs::rename(&partial, file).await {
        // (Say, `file` is a folder.) A copy nobody can find is no use to keep.
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(io_err(format!(
            "renaming {} to {}",
            partial.display(),
            file.display()
        ))(error));
    }
    Ok(BackupReport {
        file: file.to_path_buf(),
        bytes: copied.bytes,
        last_position: copied.last_position,
        unpositioned: copied.unpositioned,
        seconds: meter.elapsed(),
    })
}

/// What `snapshot_copy` wrote to the partial file.
struct Copied {
    bytes: u64,
    last_position: i64,
    unpositioned: i64,
}

/// Exports a snapshot, reads the log's last position in it, and has
/// pg_dump copy it into `partial`.
async fn snapshot_copy(
    url: &str,
    pg_dump: &Path,
    partial: &Path,
    meter: &mut Meter,
) -> Result<Copied, BackupError> {
    let mut snapshot_holder = PgConnection::connect(url).await?;
    // Held by this session until it closes, after pg_dump is done.
    if !copy_lock_within(&mut snapshot_holder, HOLDER_WAIT_MOST).await? {
        return Err(BackupError::RestoreRunning(HOLDER_WAIT_MOST.as_secs()));
    }
    // After the lock: a restore under way into an empty store is what to say.
    if !crate::db::holds_a_store(&mut snapshot_holder).await? {
        return Err(BackupError::NoStore);
    }
    sqlx::query("begin isolation level repeatable read read only")
        .execute(&mut snapshot_holder)
        .await?;
    let snapshot: String = sqlx::query_scalar("select pg_export_snapshot()")
        .fetch_one(&mut snapshot_holder)
        .await?;
    let row = sqlx::query(
        "select coalesce(max(position), 0) as last, count(*) filter (where position is null) as unpositioned from events",
    )
    .fetch_one(&mut snapshot_holder)
    .await?;
    let last_position: i64 = row.try_get("last")?;
    let unpositioned: i64 = row.try_get("unpositioned")?;

    let written = dump(pg_dump, url, &snapshot, partial, meter).await;
    if written.is_err() {
        // First, before anything that could wait on a stuck database.
        let _ = tokio::fs::remove_file(partial).await;
    }
    // The snapshot only had to live as long as pg_dump read it; closing it
    // is not worth waiting on (the session ends with the process anyway).
    let _ = tokio::time::timeout(CLOSE_WITHIN, async {
        let _ = sqlx::query("rollback").execute(&mut snapshot_holder).await;
        let _ = snapshot_holder.close().await;
    })
    .await;
    Ok(Copied {
        bytes: written?,
        last_position,
        unpositioned,
    })
}

/// Whether the copy lock was shared with this session within `wait_most`,
/// saying on stderr once that it waits. A replay's swap (which waits in line
/// for a backup under way, so that backups cannot starve it) or a restore
/// holds it alone; a backup asked for during a swap was refused at once.
async fn copy_lock_within(
    holder: &mut PgConnection,
    wait_most: std::time::Duration,
) -> Result<bool, BackupError> {
    let since = std::time::Instant::now();
    let mut told = false;
    loop {
        match super::take_copy_lock(holder, "pg_try_advisory_lock_shared").await {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            // A restore's own server stops when the restore ends, and its
            // sessions with it: "terminating connection due to
            // administrator command", or a broken pipe on the next try.
            Err(BackupError::Database(error)) if told && session_closed(&error) => {
                return Err(BackupError::SessionClosedWhileWaiting)
            }
            Err(error) => return Err(error),
        }
        if since.elapsed() >= wait_most {
            return Ok(false);
        }
        if !told {
            told = true;
            crate::say_to_stderr!(
                "a restore into this store, or the swap that ends a replay, is running: waiting up to {} s for it",
                wait_most.as_secs()
            );
        }
        tokio::time::sleep(HOLDER_RETRY_EVERY).await;
    }
}

/// Whether `error` says the server ended the session.
fn session_closed(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(error) => error.code().as_deref() == Some("57P01"),
        _ => false,
    }
}

/// The file a backup to `file` replaces: `file`, or the file a link there
/// names. The copy is renamed into place, and a rename replaces a link, a
/// FIFO or a device node itself (as root, `/dev/stdout`): those are refused,
/// and a link is written through.
fn written_to(file: &Path) -> Result<PathBuf, BackupError> {
    let refused = |why: &str| {
        let error = std::io::Error::new(std::io::ErrorKind::InvalidInput, why.to_string());
        Err(io_err(format!("writing the backup to {}", file.display()))(
            error,
        ))
    };
    let Ok(link) = std::fs::symlink_metadata(file) else {
        return Ok(file.to_path_buf());
    };
    match std::fs::metadata(file) {
        Ok(target) if target.is_file() && link.file_type().is_symlink() => {
            std::fs::canonicalize(file).map_err(io_err(format!("following {}", file.display())))
        }
        Ok(target) if target.is_file() => Ok(file.to_path_buf()),
        Ok(_) => refused("it is not a regular file (a folder, FIFO or device); give a file's path"),
        Err(_) => refused("it is a link to nothing; give a file's path"),
    }
}

/// `<file>.<pid>.partial`: where this run's dump goes until it is complete;
/// `.concert-backup.<pid>.partial` beside it when that name would pass the
/// file system's limit (a 250-character name is a legal file's).
fn partial_path(file: &Path) -> PathBuf {
    let suffix = format!(".{}.partial", std::process::id());
    let name_len = file.file_name().map_or(0, |name| name.len());
    if name_len + suffix.len() > NAME_MAX {
        return file.with_file_name(format!(".concert-backup{suffix}"));
    }
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The longest file name (not path) Linux file systems take, in bytes.
const NAME_MAX: usize = 255;

/// Runs pg_dump on `snapshot`, copying its output to `path`; returns the bytes written.
async fn dump(
    pg_dump: &Path,
    url: &str,
    snapshot: &str,
    path: &Path,
    meter: &mut Meter,
) -> Result<u64, BackupError> {
    let mut out = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(io_err(format!("creating {}", path.display())))?;
    // `mode` only applies to a file it creates.
    out.set_permissions(std::fs::Permissions::from_mode(0o600))
        .await
        .map_err(io_err(format!("restricting {}", path.display())))?;
    // The password goes to its environment, not its command line.
    let connection = ToolConnection::new(url);
    let mut child = tokio::process::Command::from(connection.command(pg_dump))
        .arg("--format=custom")
        .arg(format!("--snapshot={snapshot}"))
        .arg("--no-password")
        .arg(format!("--dbname={}", connection.url))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(io_err(format!("running {}", pg_dump.display())))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut buffer = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = stdout
            .read(&mut buffer)
            .await
            .map_err(io_err("reading pg_dump's output"))?;
        if n == 0 {
            break;
        }
        out.write_all(&buffer[..n])
            .await
            .map_err(io_err(format!("writing {}", path.display())))?;
        bytes += n as u64;
        meter.bytes(bytes);
    }
    let status = child.wait().await.map_err(io_err("waiting for pg_dump"))?;
    let stderr = errors.await.unwrap_or_default();
    if !status.success() {
        return Err(BackupError::DumpFailed {
            status: status.to_string(),
            stderr: last_lines(&stderr, 20),
        });
    }
    // On disk before the rename makes it the backup.
    out.sync_all()
        .await
        .map_err(io_err(format!("syncing {}", path.display())))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_writes_through_a_link_and_refuses_what_is_not_a_file() {
        let folder =
            std::env::temp_dir().join(format!("concert-backup-target-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        let target = folder.join("target.dump");
        std::fs::write(&target, b"old").unwrap();
        let link = folder.join("latest.dump");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let dangling = folder.join("dangling.dump");
        std::os::unix::fs::symlink(folder.join("gone"), &dangling).unwrap();
        let fifo = folder.join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());

        assert_eq!(written_to(&link).unwrap(), target.canonicalize().unwrap());
        assert_eq!(written_to(&target).unwrap(), target);
        let new = folder.join("new.dump");
        assert_eq!(written_to(&new).unwrap(), new);
        for refused in [&fifo, &dangling, &folder] {
            assert!(written_to(refused).is_err(), "{}", refused.display());
        }
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn a_partial_file_name_stays_within_the_file_systems_limit() {
        let pid = std::process::id();
        let short = Path::new("/backups/nightly.dump");
        assert_eq!(
            partial_path(short),
            PathBuf::from(format!("/backups/nightly.dump.{pid}.partial"))
        );
        // A legal 250-byte name: its partial was refused as too long.
        let long = PathBuf::from(format!("/backups/{}.dump", "a".repeat(245)));
        let partial = partial_path(&long);
        assert_eq!(partial.parent(), long.parent());
        assert_eq!(
            partial.file_name().unwrap(),
            format!(".concert-backup.{pid}.partial").as_str()
        );
    }
}
