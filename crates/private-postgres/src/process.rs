//! The server process, and the thread that spawns it, keeps the parent-death
//! signal armed and reaps it.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The server child, owned by a dedicated thread that spawned it (so the
/// parent-death signal stays armed) and that reaps it when it exits.
pub(super) struct ServerProcess {
    pub(super) pid: Pid,
    pub(super) shared: Arc<Shared>,
    pub(super) thread: JoinHandle<()>,
}

#[derive(Default)]
pub(super) struct Shared {
    /// `Some(description of the exit status)` once the child has been reaped.
    pub(super) exited: Mutex<Option<String>>,
    pub(super) changed: Condvar,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Option<String>> {
        self.exited.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ServerProcess {
    pub(super) fn spawn(mut cmd: Command) -> io::Result<Self> {
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

    pub(super) fn exit_status(&self) -> Option<String> {
        self.shared.lock().clone()
    }

    pub(super) fn signal(&self, signal: Signal) {
        let exited = self.shared.lock();
        if exited.is_none() {
            if let Err(e) = kill(self.pid, signal) {
                tracing::warn!(pid = self.pid.as_raw(), %signal, "could not signal PostgreSQL: {e}");
            }
        }
    }

    /// Whether the server exited within `timeout`.
    pub(super) fn wait_exit(&self, timeout: Duration) -> bool {
        let guard = self.shared.lock();
        let (guard, _) = self
            .shared
            .changed
            .wait_timeout_while(guard, timeout, |exited| exited.is_none())
            .unwrap_or_else(|e| e.into_inner());
        guard.is_some()
    }

    pub(super) fn join(self) {
        let _ = self.thread.join();
    }
}

/// Blocks until child `pid` has exited, without reaping it.
#[cfg(target_os = "linux")]
pub(super) fn wait_for_exit_unreaped(pid: Pid) {
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
pub(super) fn wait_for_exit_unreaped(_pid: Pid) {
    thread::sleep(Duration::from_millis(100));
}

/// Makes the child get `signal` when the thread that spawns it ends (Linux).
///
/// The closure runs in the child after std has switched uid/gid (a change of
/// credentials clears the parent-death signal, so the order matters).
pub(super) fn die_with_parent(cmd: &mut Command, signal: Signal) {
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
