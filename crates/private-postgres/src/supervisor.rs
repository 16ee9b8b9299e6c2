//! Supervision of the private server while `concert serve` runs: when the
//! postmaster dies (an out-of-memory kill, a crash), a thread restarts it on
//! the same data, after a pause that doubles with each death, and PostgreSQL's
//! crash recovery brings back every committed transaction. Meanwhile requests
//! get `503 unavailable` (the pool cannot connect) and `/readyz` says why; the
//! pool reconnects by itself afterwards. A server that keeps dying is not
//! restarted for ever: after [`MAX_DEATHS`] deaths within [`DEATH_WINDOW`]
//! the service stops and exits non-zero, for its own supervisor to act on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Killed, PrivatePostgres};

/// The first pause before a restart. Short, because crash recovery is what
/// brings the service back and it cannot start sooner; not zero, so that a
/// server dying at once is not restarted in a tight loop.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest pause: the pause doubles with each death in the window.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// Deaths (a crash, or a restart that failed) within [`DEATH_WINDOW`] after
/// which we give up: by then the cause is not transient (a full disk, a
/// broken data folder) and looping would only hide it. With the pauses above,
/// giving up takes about 8 s of backoff plus the failed starts.
pub const MAX_DEATHS: usize = 5;
/// The window in which deaths count against [`MAX_DEATHS`].
pub const DEATH_WINDOW: Duration = Duration::from_secs(60);
/// How often the supervisor looks for a stop request while the server runs.
const POLL: Duration = Duration::from_millis(100);

/// The supervised server's state, for `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct ServerHealth {
    /// Whether the server accepts connections.
    pub up: bool,
    /// Restarts so far.
    pub restarts: u64,
    /// Why it died last.
    pub last_cause: Option<String>,
    /// Since when it is down.
    pub down_since: Option<Instant>,
}

static HEALTH: Mutex<Option<ServerHealth>> = Mutex::new(None);

impl ServerHealth {
    /// The state of the supervised private server; `None` when there is none
    /// (the database is someone else's: `DATABASE_URL`).
    pub fn current() -> Option<ServerHealth> {
        HEALTH.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(change: impl FnOnce(&mut ServerHealth)) {
        let mut health = HEALTH.lock().unwrap_or_else(|e| e.into_inner());
        change(health.get_or_insert_with(ServerHealth::default));
    }
}

/// Why supervision ended without a stop request.
#[derive(Debug, thiserror::Error)]
#[error(
    "the private PostgreSQL server went down {deaths} times within {} s, each time \
     restarted or failing to restart: a cause that does not pass, so supervision gives \
     up (see {log}). Last cause: {cause}",
    DEATH_WINDOW.as_secs()
)]
pub struct GaveUp {
    /// Deaths within the window.
    pub deaths: usize,
    /// The last cause.
    pub cause: String,
    /// The server's log.
    pub log: String,
}

/// Why supervision did not end with a clean stop.
#[derive(Debug, thiserror::Error)]
pub enum Unclean {
    #[error(transparent)]
    GaveUp(#[from] GaveUp),
    #[error(transparent)]
    Killed(#[from] Killed),
}

/// A private server under supervision.
pub struct Supervised {
    url: String,
    stop: Arc<AtomicBool>,
    gave_up: watch::Receiver<bool>,
    thread: JoinHandle<Result<(), Unclean>>,
}

impl Supervised {
    /// URL of the `concert` database (the same across restarts).
    pub fn database_url(&self) -> String {
        self.url.clone()
    }

    /// Turns true when supervision gave up: the service should stop.
    pub fn gave_up(&self) -> watch::Receiver<bool> {
        self.gave_up.clone()
    }

    /// Stops the server (fast shutdown) and the supervisor; `Err` if it had
    /// given up, or the server had to be killed.
    pub fn stop(self) -> Result<(), Unclean> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

/// Puts `server` under supervision by a thread of its own.
pub fn supervise(server: PrivatePostgres) -> Supervised {
    let url = server.database_url();
    let stop = Arc::new(AtomicBool::new(false));
    let (gave_up_tx, gave_up) = watch::channel(false);
    // The caller installs the metrics recorder first, or these counts are lost.
    metrics::counter!("concert_private_postgres_restarts_total").absolute(0);
    metrics::gauge!("concert_private_postgres_up").set(1.0);
    ServerHealth::set(|health| health.up = true);
    let thread_stop = Arc::clone(&stop);
    let thread = thread::Builder::new()
        .name("pg-supervisor".into())
        .spawn(move || {
            let outcome = run(server, &thread_stop);
            if matches!(outcome, Err(Unclean::GaveUp(_))) {
                let _ = gave_up_tx.send(true);
            }
            outcome
        })
        .expect("a thread for the PostgreSQL supervisor");
    Supervised {
        url,
        stop,
        gave_up,
        thread,
    }
}

fn run(mut pg: PrivatePostgres, stop: &AtomicBool) -> Result<(), Unclean> {
    let mut deaths: Vec<Instant> = Vec::new();
    loop {
        let Some(mut cause) = wait_for_death(&mut pg, stop) else {
            return Ok(pg.stop()?);
        };
        let died_at = Instant::now();
        metrics::gauge!("concert_private_postgres_up").set(0.0);
        loop {
            deaths.push(Instant::now());
            deaths.retain(|at| at.elapsed() < DEATH_WINDOW);
            ServerHealth::set(|health| {
                health.up = false;
                health.last_cause = Some(cause.clone());
                health.down_since.get_or_insert(died_at);
            });
            if deaths.len() >= MAX_DEATHS {
                tracing::error!(deaths = deaths.len(), %cause, "the private PostgreSQL server keeps going down; giving up");
                return Err(GaveUp {
                    deaths: deaths.len(),
                    cause,
                    log: pg.log_path.display().to_string(),
                }
                .into());
            }
            let backoff = backoff(deaths.len());
            tracing::error!(%cause, restart_in_ms = backoff.as_millis() as u64, "the private PostgreSQL server died; restarting it on the same data");
            if !pause(backoff, stop) {
                return Ok(pg.stop()?);
            }
            metrics::counter!("concert_private_postgres_restarts_total").increment(1);
            ServerHealth::set(|health| health.restarts += 1);
            match pg.restart() {
                Ok(()) => break,
                Err(error) => {
                    tracing::error!(%error, "restarting the private PostgreSQL server failed");
                    cause = error.to_string();
                }
            }
        }
        tracing::warn!(
            down_ms = died_at.elapsed().as_millis() as u64,
            pid = pg.server_pid(),
            "the private PostgreSQL server is back after crash recovery"
        );
        metrics::gauge!("concert_private_postgres_up").set(1.0);
        ServerHealth::set(|health| {
            health.up = true;
            health.down_since = None;
        });
    }
}

/// Waits until the server dies (`Some(cause)`) or a stop is requested
/// (`None`). A server whose socket file was removed (a cleaner of the
/// temporary folder, a hand) takes no new connection, and the service
/// answered `503` for ever once its pooled ones went: it is stopped, and so
/// restarted, which makes the socket again.
fn wait_for_death(pg: &mut PrivatePostgres, stop: &AtomicBool) -> Option<String> {
    loop {
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        let Some(server) = pg.server.as_ref() else {
            return Some("the server is not running".into());
        };
        if server.wait_exit(POLL) {
            let status = server.exit_status().unwrap_or_default();
            return Some(format!("postmaster pid {} exited ({status})", server.pid));
        }
        if let Some(socket) = pg.socket_file().filter(|socket| !socket.exists()) {
            let cause = format!(
                "its socket {} was removed while it ran, so no new connection could reach it",
                socket.display()
            );
            tracing::error!(%cause, "stopping the private PostgreSQL server to start it again");
            if let Err(killed) = pg.stop_server() {
                tracing::warn!(%killed, "the private PostgreSQL server had to be killed");
            }
            return Some(cause);
        }
    }
}

/// The pause before restart number `deaths` within the window.
fn backoff(deaths: usize) -> Duration {
    let doublings = deaths.saturating_sub(1).min(16) as u32;
    (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

/// Sleeps `length` unless a stop is requested (then `false`).
fn pause(length: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + length;
    while Instant::now() < until {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        thread::sleep(POLL.min(until - Instant::now()));
    }
    !stop.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_up_to_its_cap() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(4), Duration::from_secs(2));
        assert_eq!(backoff(10), MAX_BACKOFF);
    }
}
