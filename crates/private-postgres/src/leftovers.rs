//! Processes of our cluster that outlived their parent: a postmaster whose
//! `concert` was SIGKILLed (stopped, so its parent-death signal is still
//! pending, or otherwise deaf to it), or backends of a postmaster that was
//! killed. PostgreSQL refuses to start while either holds the data folder,
//! so they are stopped first: a fast shutdown, then SIGQUIT, then SIGKILL.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::cluster::is_postgres;
use super::error::{PrivatePostgresError, Result};
use super::owner::{self, Owner};

/// Every PostgreSQL process working in `pgdata` (postmaster and children).
pub(super) fn cluster_pids(pgdata: &Path) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            is_postgres(pid)
                && owner::start_time(pid).is_some() // not a zombie
                && fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == pgdata)
        })
        .collect()
}

/// Before a start: stops the server a dead `concert` left running on this
/// data folder. A live owner's server, or one no `concert` owns, is refused.
pub(super) fn take_over(data_dir: &Path, pgdata: &Path) -> Result<()> {
    let running = cluster_pids(pgdata);
    let Some(&any) = running.first() else {
        return Ok(());
    };
    let recorded = owner::read(data_dir);
    if let Some(serving) = recorded.filter(|owner: &Owner| owner.alive() && !owner.is_me()) {
        return Err(PrivatePostgresError::Served {
            pid: serving.pid,
            data_dir: data_dir.to_path_buf(),
        });
    }
    let orphaned = recorded.is_some_and(|owner: Owner| !owner.alive());
    if !orphaned {
        return Err(PrivatePostgresError::AlreadyRunning {
            pid: postmaster_of(pgdata).unwrap_or(any),
            path: pgdata.to_path_buf(),
        });
    }
    tracing::warn!(
        pids = ?running,
        owner = recorded.map(|o| o.pid),
        "a PostgreSQL server left running by a concert that died uses this data folder; stopping it"
    );
    stop(pgdata, Duration::from_secs(30))
}

/// Stops every process of the cluster: SIGINT (fast shutdown; SIGCONT wakes
/// a stopped one) and `grace` to exit, then SIGQUIT, then SIGKILL.
pub(super) fn stop(pgdata: &Path, grace: Duration) -> Result<()> {
    let steps = [
        (Signal::SIGINT, grace),
        (Signal::SIGQUIT, Duration::from_secs(5)),
        (Signal::SIGKILL, Duration::from_secs(5)),
    ];
    for (signal, patience) in steps {
        let pids = cluster_pids(pgdata);
        if pids.is_empty() {
            return Ok(());
        }
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), signal);
            let _ = kill(Pid::from_raw(*pid), Signal::SIGCONT);
        }
        if wait_gone(pgdata, patience) {
            return Ok(());
        }
        tracing::warn!(pids = ?pids, %signal, "PostgreSQL processes still hold the data folder");
    }
    match cluster_pids(pgdata).first() {
        None => Ok(()),
        Some(&pid) => Err(PrivatePostgresError::AlreadyRunning {
            pid,
            path: pgdata.to_path_buf(),
        }),
    }
}

/// The live postmaster named by `pgdata/postmaster.pid`.
pub(super) fn postmaster_of(pgdata: &Path) -> Option<i32> {
    let text = fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    cluster_pids(pgdata).contains(&pid).then_some(pid)
}

/// Whether every process of the cluster is gone within `limit`.
pub(super) fn wait_gone(pgdata: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cluster_pids(pgdata).is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}
