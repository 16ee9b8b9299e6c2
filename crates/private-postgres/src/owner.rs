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
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::error::{io_err, PrivatePostgresError, Result};

/// The owner file's name inside the data folder.
const OWNER_FILE: &str = "concert.owner";
/// The file locked by the owner while it runs the folder's server.
const LOCK_FILE: &str = "concert.lock";

/// A process, named so that a reused pid is not mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Owner {
    pub(super) pid: i32,
    /// Start time of the process in clock ticks since boot (`/proc/<pid>/stat`, field 22).
    started: u64,
    pub(super) role: Role,
}

/// What the owner runs the server for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `concert serve`, for as long as it serves.
    Serve,
    /// A one-off command (`audit`, `backup`, ...), for as long as it runs.
    Tool,
}

impl Owner {
    /// This process.
    pub(super) fn me(role: Role) -> Option<Self> {
        let pid = std::process::id() as i32;
        Some(Owner {
            pid,
            started: start_time(pid)?,
            role,
        })
    }

    /// Whether this very process still runs.
    pub(super) fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.started)
    }

    pub(super) fn is_me(&self) -> bool {
        Owner::me(self.role).is_some_and(|me| me.pid == self.pid && me.started == self.started)
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
        // A file of an older release names no role: it served.
        role: match fields.next() {
            Some("tool") => Role::Tool,
            _ => Role::Serve,
        },
    })
}

/// Records this process as the owner (written aside, then renamed: never half a file).
pub(super) fn claim(data_dir: &Path, role: Role) -> Result<()> {
    let Some(me) = Owner::me(role) else {
        return Ok(()); // no /proc: ownership cannot be told apart anyway
    };
    let role = match role {
        Role::Serve => "serve",
        Role::Tool => "tool",
    };
    let staging = data_dir.join(format!("{OWNER_FILE}.tmp"));
    fs::write(&staging, format!("{} {} {role}\n", me.pid, me.started))
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

/// The lock a `concert` holds on a data folder for as long as it runs the
/// folder's server, from before the cluster is made: two started at once
/// both ran initdb in one folder and both failed, or one took over the
/// other's owner file and, failing, removed it. Released with the file.
pub(super) fn lock_folder(data_dir: &Path) -> Result<Flock<fs::File>> {
    let path = data_dir.join(LOCK_FILE);
    let file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .or_else(|_| fs::File::open(&path))
        .map_err(io_err(format!("opening {}", path.display())))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => Ok(locked),
        Err((_, Errno::EWOULDBLOCK)) => {
            let other = read(data_dir).filter(|owner| owner.alive() && !owner.is_me());
            Err(match other {
                Some(owner) => PrivatePostgresError::Served {
                    pid: owner.pid,
                    data_dir: data_dir.to_path_buf(),
                },
                None => PrivatePostgresError::FolderBusy(data_dir.to_path_buf()),
            })
        }
        Err((_, errno)) => Err(io_err(format!("locking {}", path.display()))(
            io::Error::from(errno),
        )),
    }
}

/// Waits, at most `most`, while a live one-off command owns the server of
/// `data_dir`: it stops that server when done, and a `serve` started
/// meanwhile (a restart during a nightly backup) was refused, the service
/// down until the command ended. Gives up at once on an owner that serves.
pub(super) fn wait_for_tools(data_dir: &Path, most: Duration) {
    let deadline = Instant::now() + most;
    let mut said = false;
    while let Some(tool) =
        read(data_dir).filter(|owner| owner.role == Role::Tool && owner.alive() && !owner.is_me())
    {
        if Instant::now() >= deadline {
            return;
        }
        if !said {
            tracing::warn!(pid = tool.pid, "a one-off concert command uses this data folder's PostgreSQL; waiting for it to finish");
            said = true;
        }
        std::thread::sleep(Duration::from_millis(100));
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
        claim(&dir, Role::Tool).unwrap();
        let owner = read(&dir).expect("an owner");
        assert!(owner.is_me() && owner.alive());
        assert_eq!(owner.role, Role::Tool);
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
