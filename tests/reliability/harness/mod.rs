//! Runs the real `concert` binary: each test gets a fresh folder under /tmp
//! holding the private PostgreSQL (`CONCERT_DATA_DIR`) and the servers' logs,
//! removed at the end.
//!
//! - `workdir`: the folder and free ports;
//! - `server`: `concert serve` started, killed, restarted and stopped;
//! - `postgres`: the private PostgreSQL's processes and signals to them;
//! - `cli`: the command-line tools (`audit`, `events --json`, `replay`, ...);
//! - `log`: the event log those print, and the invariant checks over it;
//! - `api`: the API's typed client (`concert-client`), users signed in
//!   through restarts, the retries and waits the tests need;
//! - `stats`: every answer of that client counted and checked;
//! - `freezing_proxy`: a path to the database that freezes on a statement.

mod api;
mod cli;
mod freezing_proxy;
mod log;
mod postgres;
mod server;
mod stats;
mod workdir;

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

pub use api::{body, projection_lag, Api};
pub use cli::{audit, cli, cli_as_nobody, events, spawn_cli};
pub use freezing_proxy::FreezingProxy;
pub use log::Log;
pub use postgres::{alive, postgres_pids, postmaster_pid, signal_postgres};
pub use server::{tail, Server};
pub use workdir::{free_port, Workdir};

/// The admin token every test server uses.
pub const ADMIN: &str = "reliability-admin-token";
/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_concert");

/// Tests of this binary run one at a time: they measure timeouts and each
/// starts PostgreSQL servers, which two cores cannot do in parallel reliably.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// Keeps a test's figures for RELIABILITY.md: printed, and written to
/// `<target tmp>/reliability-figures/<test>.json`.
pub fn report_figures(test: &str, figures: Value) {
    println!("FIGURES {test}: {figures}");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reliability-figures");
    let _ = fs::create_dir_all(&dir);
    let _ = fs::write(
        dir.join(format!("{test}.json")),
        serde_json::to_string_pretty(&figures).unwrap(),
    );
}
