//! Which `concert` process owns the private server of a data folder.
//!
//! The owner writes `<data_dir>/concert.owner` (its pid and the start time the
//! kernel gives that pid) before it starts the server, and removes it after a
//! clean stop. A later `concert` reads it to tell three cases apart: the owner
//! lives (tools attach to its server; a second `serve` is refused), the owner
//! died without stopping its server (SIGKILL: the server is an orphan to stop),
//! or there is no owner (a server someone else started: never touched).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::error::{io_err, Result};

/// The owner file's name inside the data folder.
const OWNER_FILE: &str = "concert.owner";

/// A process, named so that a reused pid is not mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Owner {
    pub(super) pid: i32,
    /// Start time of the process in clock ticks since boot (`/proc/<pid>/stat`, field 22).
    started: u64,
}

impl Owner {
    /// This process.
    pub(super) fn me() -> Option<Self> {
        let pid = std::process::id() as i32;
        Some(Owner {
            pid,
            started: start_time(pid)?,
        })
    }

    /// Whether this very process still runs.
    pub(super) fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.started)
    }

    pub(super) fn is_me(&self) -> bool {
        Owner::me().as_ref() == Some(self)
    }
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(OWNER_FILE)
}

/// The recorded owner, if the file exists and reads well.
pub(super) fn read(data_dir: &Path) -> Option<Owner> {
    let text = fs::read_to_string(path(data_dir)).ok()?;
    let mut fields = text.split_whitespace();
    Some(Owner {
        pid: fields.next()?.parse().ok()?,
        started: fields.next()?.parse().ok()?,
    })
}

/// Records this process as the owner (written aside, then renamed: never half a file).
pub(super) fn claim(data_dir: &Path) -> Result<()> {
    let Some(me) = Owner::me() else {
        return Ok(()); // no /proc: ownership cannot be told apart anyway
    };
    let staging = data_dir.join(format!("{OWNER_FILE}.tmp"));
    fs::write(&staging, format!("{} {}\n", me.pid, me.started))
        .and_then(|()| fs::rename(&staging, path(data_dir)))
        .map_err(io_err(format!("writing {}", path(data_dir).display())))
}

/// Removes the owner file if it names this process.
pub(super) fn release(data_dir: &Path) {
    if read(data_dir).is_some_and(|owner| owner.is_me()) {
        if let Err(e) = fs::remove_file(path(data_dir)) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(file = %path(data_dir).display(), "could not remove the owner file: {e}");
            }
        }
    }
}

/// The process's start time, field 22 of `/proc/<pid>/stat` (after the `(comm)`).
pub(super) fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); a zombie is as good as gone.
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_file_names_this_process_until_released() {
        let dir = std::env::temp_dir().join(format!("concert-owner-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(read(&dir), None);
        claim(&dir).unwrap();
        let owner = read(&dir).expect("an owner");
        assert!(owner.is_me() && owner.alive());
        // The same pid with another start time is another process (pid reuse).
        let reused = Owner {
            started: owner.started + 1,
            ..owner
        };
        assert!(!reused.alive());
        release(&dir);
        assert_eq!(read(&dir), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
