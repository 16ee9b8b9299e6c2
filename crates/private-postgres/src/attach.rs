//! Reaching the server of another, live `concert` on the same data folder
//! (a tool such as `concert backup` next to `concert serve`): its endpoint is
//! in `postmaster.pid`, and while its supervisor restarts it we wait.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::connect::{await_ready, run_blocking, Readiness};
use super::endpoint::Endpoint;
use super::error::{PrivatePostgresError, Result};
use super::leftovers::postmaster_of;
use super::process::Shared;
use super::{PrivatePostgres, READY_TIMEOUT};

/// How long a tool waits in silence before it says it is waiting: a server
/// its supervisor restarts is back within about a second.
const SAY_WAITING_AFTER: Duration = Duration::from_secs(3);

/// A handle on the server `owner` runs for `data_dir`; stopping it leaves the server running.
pub(super) fn attach(data_dir: PathBuf, owner: i32) -> Result<PrivatePostgres> {
    let pgdata = data_dir.join("pgdata");
    let started = Instant::now();
    let deadline = started + READY_TIMEOUT;
    let mut said_waiting = false;
    loop {
        if let Some(endpoint) = postmaster_of(&pgdata).and_then(|_| read_endpoint(&pgdata)) {
            let pg = PrivatePostgres {
                log_path: data_dir.join("postgres.log"),
                data_dir: data_dir.clone(),
                pgdata: pgdata.clone(),
                endpoint,
                own_socket_dir: None,
                folder_lock: None,
                server: None,
                launcher: None,
            };
            let admin = pg.connect_options("postgres")?;
            let one_try = await_ready(admin, Arc::new(Shared::default()), Duration::ZERO);
            if let Readiness::Ready = run_blocking(one_try)? {
                tracing::debug!(url = %pg.database_url(), owner, "attached to the private server of a running concert");
                return Ok(pg);
            }
        }
        // A tool run by cron against a server that is frozen (a stopped
        // process, a stalled disk) would otherwise wait a minute in silence.
        if !said_waiting && started.elapsed() >= SAY_WAITING_AFTER {
            said_waiting = true;
            tracing::warn!(
                "the private PostgreSQL server of {} (owned by concert pid {owner}) does not answer; waiting up to {} s for it",
                data_dir.display(),
                READY_TIMEOUT.as_secs()
            );
        }
        if Instant::now() >= deadline {
            return Err(PrivatePostgresError::NotAttached {
                path: data_dir,
                owner,
                secs: READY_TIMEOUT.as_secs(),
            });
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// The endpoint a running server wrote to `postmaster.pid`: line 4 the port,
/// line 5 the socket folder (empty when it serves on TCP only).
fn read_endpoint(pgdata: &Path) -> Option<Endpoint> {
    let text = fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let port: u16 = lines.get(3)?.trim().parse().ok()?;
    match lines.get(4).map(|line| line.trim()) {
        Some(dir) if !dir.is_empty() => Some(Endpoint::Socket {
            dir: PathBuf::from(dir),
            port,
        }),
        _ => Some(Endpoint::Tcp { port }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_read_from_postmaster_pid() {
        let dir = std::env::temp_dir().join(format!("concert-attach-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let pid_file = "4242\n/x/pgdata\n1700000000\n5432\n/x\n\n  1234  5678\nready   \n";
        fs::write(dir.join("postmaster.pid"), pid_file).unwrap();
        assert_eq!(
            read_endpoint(&dir),
            Some(Endpoint::Socket {
                dir: PathBuf::from("/x"),
                port: 5432
            })
        );
        let tcp_only = "4242\n/x/pgdata\n1700000000\n40123\n\n127.0.0.1\n";
        fs::write(dir.join("postmaster.pid"), tcp_only).unwrap();
        assert_eq!(read_endpoint(&dir), Some(Endpoint::Tcp { port: 40123 }));
        fs::remove_dir_all(&dir).unwrap();
    }
}
