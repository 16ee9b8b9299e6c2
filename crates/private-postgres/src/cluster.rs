//! Initialising the cluster, its log, and lock files left by a crash.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::binaries::Binaries;
use super::error::{io_err, PrivatePostgresError, Result};
use super::process::die_with_parent;
use super::run_as::RunAs;
use super::{LOG_TAIL_LINES, SUPERUSER};

/// Writes a header for this start to the log; returns the offset where it starts.
pub(super) fn log_header(
    log: &mut File,
    pgdata: &Path,
    log_path: &Path,
    binaries: &Binaries,
    url: &str,
) -> Result<u64> {
    let start = log
        .seek(SeekFrom::End(0))
        .map_err(io_err("seeking the log"))?;
    writeln!(
        log,
        "---- {} concert: starting {} on {} ({}) ----",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        binaries.postgres.display(),
        pgdata.display(),
        url,
    )
    .map_err(io_err(format!("writing {}", log_path.display())))?;
    Ok(start)
}

/// The last lines of the log written since `from`.
pub(super) fn log_tail(path: &Path, from: u64) -> String {
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
pub(super) fn init_cluster(
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

/// Refuses to start when a live server uses `pgdata`, and removes a lock file
/// (`postmaster.pid` or a socket's `.lock`) whose pid now belongs to an
/// unrelated live process (pid reuse after a crash, e.g. in containers), which
/// PostgreSQL itself would refuse. Lock files of dead pids are left to
/// PostgreSQL, which handles them (and checks its shared memory interlock).
pub(super) fn clear_stale_lock(lock: &Path, pgdata: &Path) -> Result<()> {
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
    // A zombie (exited, not yet reaped by a container's minimal init) holds
    // nothing, but PostgreSQL's own check (`kill(pid, 0)`) takes it for
    // alive and would refuse to start: its lock is removed here.
    if let Some(pid) = lock_pid.filter(|&pid| !is_zombie(pid)) {
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
pub(super) fn postgres_using(pgdata: &Path) -> Option<i32> {
    let entries = fs::read_dir("/proc").ok()?;
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|&pid| {
            is_postgres(pid)
                && fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == pgdata)
        })
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

pub(super) fn is_postgres(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| matches!(comm.trim(), "postgres" | "postmaster"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_of_a_zombie_postgres_is_removed() {
        let dir = std::env::temp_dir().join(format!("concert-zombie-{}", std::process::id()));
        let pgdata = dir.join("pgdata");
        fs::create_dir_all(&pgdata).unwrap();
        // A process named postgres that exits and is never reaped: a zombie,
        // as a postmaster killed with its concert is until init reaps it.
        let postgres = dir.join("postgres");
        fs::copy("/bin/true", &postgres).unwrap();
        let child = Command::new(&postgres).spawn().unwrap();
        let pid = child.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !is_zombie(pid) {
            assert!(std::time::Instant::now() < deadline, "{pid} never exited");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(is_postgres(pid));
        // The socket's lock lives beside pgdata, not in it.
        let lock = dir.join(".s.PGSQL.5432.lock");
        fs::write(&lock, format!("{pid}\n{}\n", dir.display())).unwrap();

        clear_stale_lock(&lock, &pgdata).unwrap();

        assert!(!lock.exists());
        drop(child);
        fs::remove_dir_all(&dir).unwrap();
    }
}
