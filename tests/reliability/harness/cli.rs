//! The binary's command-line tools (`audit`, `events --json`, `backup`,
//! `restore`, `replay`, ...) run as a test runs them, with no inherited
//! settings.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::log::Log;
use super::BIN;

/// A command for the binary with no inherited `CONCERT_*` or `DATABASE_URL`.
pub(super) fn concert_command(env: &[(String, String)]) -> Command {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("CONCERT_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            command.env_remove(&key);
        }
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.stdin(Stdio::null());
    command
}

/// Runs `concert <args>` with the given settings; returns (exit code, stdout, stderr).
pub async fn cli(env: &[(&str, String)], args: &[&str]) -> (i32, String, String) {
    let child = spawn_cli(env, args);
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("concert {args:?} took over 120 s"))
        .expect("run concert");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `cli` as user `nobody`, for what another user may not read; None when
/// the tests do not run as root (who may run it as nobody).
pub async fn cli_as_nobody(env: &[(&str, String)], args: &[&str]) -> Option<(i32, String, String)> {
    use std::os::unix::process::CommandExt;
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let nobody = nix::unistd::User::from_name("nobody").ok().flatten()?;
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let mut command = concert_command(&env);
    command.uid(nobody.uid.as_raw()).gid(nobody.gid.as_raw());
    let output = tokio::process::Command::from(command)
        .args(args)
        .output()
        .await
        .expect("run concert as nobody");
    Some((
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// Starts `concert <args>` with the given settings (`RUST_LOG=warn` unless
/// they say otherwise) and returns at once, for a test that signals it; its
/// output is piped.
pub fn spawn_cli(env: &[(&str, String)], args: &[&str]) -> tokio::process::Child {
    let env: Vec<(String, String)> = [("RUST_LOG".to_string(), "warn".to_string())]
        .into_iter()
        .chain(env.iter().map(|(k, v)| (k.to_string(), v.clone())))
        .collect();
    let mut command: tokio::process::Command = concert_command(&env).into();
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run concert")
}

/// `concert audit` on a stopped data folder (it starts the private server itself).
pub async fn audit(data_dir: &Path, queue_active_max: u32) -> (i32, String) {
    let (code, out, err) = cli(
        &[("CONCERT_DATA_DIR", data_dir.display().to_string())],
        &["audit", "--queue-active-max", &queue_active_max.to_string()],
    )
    .await;
    (code, format!("{out}{err}"))
}

/// Every event, from `concert events --json` on a stopped data folder.
pub async fn events(data_dir: &Path) -> Log {
    let (code, out, err) = cli(
        &[("CONCERT_DATA_DIR", data_dir.display().to_string())],
        &["events", "--json"],
    )
    .await;
    assert_eq!(code, 0, "concert events failed: {err}");
    Log::parse(&out)
}
