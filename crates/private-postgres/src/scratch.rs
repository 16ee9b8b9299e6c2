//! Throwaway servers for test processes, each under `<temp dir>/<prefix>-<pid>`.
//!
//! A test binary keeps its server for as long as it runs, in a static that is
//! never dropped: without more, the server would be stopped by the
//! parent-death signal and its folder (a gigabyte or more after a busy run)
//! left behind on every run. So an `atexit` handler stops the servers and
//! removes their folders when the process exits, and a process killed before
//! that leaves a folder the next start of the same prefix removes.

use std::fs;
use std::path::Path;
use std::sync::{Mutex, Once};

use super::error::Result;
use super::leftovers::cluster_pids;
use super::owner::{self, start_time};
use super::PrivatePostgres;

/// The servers to stop at exit.
static SCRATCH: Mutex<Vec<PrivatePostgres>> = Mutex::new(Vec::new());
static AT_EXIT: Once = Once::new();

/// Starts a server in `<temp dir>/<prefix>-<pid>` that lives until the process
/// exits, and answers the URL of its `concert` database. Folders of the same
/// prefix whose process is gone are removed first.
pub fn start_scratch(prefix: &str) -> Result<String> {
    let temp = std::env::temp_dir();
    remove_abandoned(&temp, prefix);
    let dir = temp.join(format!("{prefix}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let server = PrivatePostgres::start(&dir)?;
    let url = server.database_url();
    AT_EXIT.call_once(|| {
        // SAFETY: atexit only stores the pointer to a plain `extern "C" fn()`,
        // called once by `exit`; a panic in it would abort, not unwind.
        if unsafe { nix::libc::atexit(stop_scratch_servers) } != 0 {
            tracing::warn!("could not register the scratch servers' clean-up at exit");
        }
    });
    lock().push(server);
    Ok(url)
}

fn lock() -> std::sync::MutexGuard<'static, Vec<PrivatePostgres>> {
    SCRATCH
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

extern "C" fn stop_scratch_servers() {
    for server in std::mem::take(&mut *lock()) {
        let dir = server.data_dir().to_path_buf();
        // At exit: nobody is left to tell of a server that had to be killed.
        let _ = server.stop();
        let _ = fs::remove_dir_all(dir);
    }
}

/// Removes the `<prefix>-<pid>` folders under `parent` that no live process
/// owns and no server runs in.
fn remove_abandoned(parent: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(prefix)?.strip_prefix('-'))
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        if is_abandoned(&dir, pid) {
            tracing::info!(folder = %dir.display(), "removing an earlier test run's PostgreSQL folder");
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

fn is_abandoned(dir: &Path, pid: i32) -> bool {
    let owner_alive = match owner::read(dir) {
        Some(owner) => owner.alive(),
        // Not claimed yet (or never): the process the name gives decides.
        None => start_time(pid).is_some(),
    };
    !owner_alive && cluster_pids(&dir.join("pgdata")).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A pid no process has any more: a child that has been waited for.
    fn dead_pid() -> i32 {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        pid
    }

    #[test]
    fn only_folders_of_gone_processes_with_the_prefix_are_removed() {
        let parent = std::env::temp_dir().join(format!("concert-scratch-{}", std::process::id()));
        let _ = fs::remove_dir_all(&parent);
        let gone = parent.join(format!("run-{}", dead_pid()));
        let mine = parent.join(format!("run-{}", std::process::id()));
        let claimed_by_me = parent.join(format!("run-{}", dead_pid()));
        let other_prefix = parent.join(format!("runner-{}", dead_pid()));
        let not_a_pid = parent.join("run-latest");
        for dir in [&gone, &mine, &claimed_by_me, &other_prefix, &not_a_pid] {
            fs::create_dir_all(dir.join("pgdata")).unwrap();
        }
        owner::claim(&claimed_by_me, owner::Role::Tool).unwrap();

        remove_abandoned(&parent, "run");

        assert!(!gone.exists());
        for kept in [&mine, &claimed_by_me, &other_prefix, &not_a_pid] {
            assert!(kept.exists(), "{} was removed", kept.display());
        }
        fs::remove_dir_all(&parent).unwrap();
    }

    /// The child half of the next test: started only by it.
    #[test]
    #[ignore = "run by a_scratch_server_and_its_folder_are_gone_after_exit"]
    fn scratch_child() {
        let Ok(prefix) = std::env::var("CONCERT_SCRATCH_PREFIX") else {
            return;
        };
        start_scratch(&prefix).unwrap();
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        assert!(dir.join("pgdata").is_dir());
        println!("scratch server ran in {}", dir.display());
    }

    #[test]
    fn a_scratch_server_and_its_folder_are_gone_after_exit() {
        let prefix = format!("concert-scratch-child-{}", std::process::id());
        let output = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "scratch::tests::scratch_child",
                "--ignored",
                "--nocapture",
            ])
            .env("CONCERT_SCRATCH_PREFIX", &prefix)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let left: Vec<_> = fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("scratch server ran in"), "{stdout}");
    }
}
