//! The private PostgreSQL's processes, seen from outside: its postmaster
//! and children, whether they live, and signals to all of them (a freeze
//! with SIGSTOP, a thaw with SIGCONT).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Whether a process is alive (a zombie counts as gone).
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The postmaster's pid, from the first line of `pgdata/postmaster.pid`.
pub fn postmaster_pid(data_dir: &Path) -> Option<i32> {
    fs::read_to_string(data_dir.join("pgdata/postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The postmaster and every process it started (backends, checkpointer, ...).
pub fn postgres_pids(data_dir: &Path) -> Vec<i32> {
    let Some(postmaster) = postmaster_pid(data_dir) else {
        return Vec::new();
    };
    let mut pids = vec![postmaster];
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|ppid| ppid.parse::<i32>().ok());
            if parent == Some(postmaster) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Sends `signal` to the whole PostgreSQL server of `data_dir`; returns how many processes.
pub fn signal_postgres(data_dir: &Path, signal: Signal) -> usize {
    let pids = postgres_pids(data_dir);
    if signal != Signal::SIGSTOP {
        // The postmaster first on SIGCONT.
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), signal);
        }
        return pids.len();
    }
    // The postmaster first, so it forks no new backend; then every child,
    // listed again until no new one appears (a fork may have raced the list).
    if let Some(postmaster) = postmaster_pid(data_dir) {
        let _ = kill(Pid::from_raw(postmaster), signal);
    }
    let mut stopped = std::collections::HashSet::new();
    loop {
        let fresh: Vec<i32> = postgres_pids(data_dir)
            .into_iter()
            .filter(|pid| !stopped.contains(pid))
            .collect();
        if fresh.is_empty() {
            return stopped.len().max(pids.len());
        }
        for pid in fresh {
            let _ = kill(Pid::from_raw(pid), signal);
            stopped.insert(pid);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `limit` for the postmaster of `data_dir` to be gone.
pub(super) fn wait_postgres_gone(data_dir: &Path, limit: Duration) {
    let Some(pid) = postmaster_pid(data_dir) else {
        return;
    };
    let deadline = Instant::now() + limit;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}
