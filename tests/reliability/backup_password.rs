//! A backup and a restore through a `DATABASE_URL` that holds a password:
//! `pg_dump` and `pg_restore` get the password through their environment
//! and never on a command line, which any local user can read (`ps`,
//! `/proc/<pid>/cmdline`). Each tool is held at a gate while it runs, so
//! that every process's command line is read while it is there.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection, PgPool};

use crate::backup::path_str;
use crate::harness::{self, Api, Server, Workdir};

/// A superuser that must give its password (the private server trusts its
/// own `postgres` user).
const ROLE: &str = "pw_operator";
/// Found in the password in every spelling.
const CORE: &str = "q7S3cretW9";
/// The password, with characters a URL must percent-encode.
const PASSWORD: &str = "a:q7S3cretW9/@%x";
/// As the URL spells it.
const ENCODED: &str = "a%3Aq7S3cretW9%2F%40%25x";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_and_a_restore_keep_the_password_off_every_command_line() {
    assert!(PASSWORD.contains(CORE) && ENCODED.contains(CORE));
    let _turn = harness::serial().await;
    let work = Workdir::new("pw");
    let mut server = Server::start(&work, "pw", &[]).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    api.create_concert(200, 1000).await;
    let url = work.database_url();
    let admin = PgPool::connect(&url).await.unwrap();
    for statement in [
        format!("create role {ROLE} superuser login password '{PASSWORD}'"),
        "create table backup_gate (id int)".to_string(),
        "create database pw_target".to_string(),
    ] {
        sqlx::query(&statement).execute(&admin).await.unwrap();
    }
    require_password(&work.data().join("pgdata/pg_hba.conf"), &admin).await;
    let no_password = url.replace("postgres://postgres@", &format!("postgres://{ROLE}@"));
    let mut refused = false;
    for _ in 0..100 {
        if PgConnection::connect(&no_password).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "{ROLE} still connects without its password");
    let with_password = url.replace(
        "postgres://postgres@",
        &format!("postgres://{ROLE}:{ENCODED}@"),
    );

    // pg_dump waits for the gate's table while the gate is shut.
    let mut gate = PgConnection::connect(&url).await.unwrap();
    sqlx::query("begin").execute(&mut gate).await.unwrap();
    sqlx::query("lock table backup_gate in access exclusive mode")
        .execute(&mut gate)
        .await
        .unwrap();
    let file = work.root.join("store.dump");
    let mut run = harness::spawn_cli(
        &[("DATABASE_URL", with_password.clone())],
        &["backup", path_str(&file)],
    );
    let pg_dump = wait_for_tool("pg_dump", &mut run).await;
    check_tool(
        pg_dump,
        "--dbname=postgres://pw_operator@localhost:5432/concert?host=",
    );
    sqlx::query("rollback").execute(&mut gate).await.unwrap();
    gate.close().await.unwrap();
    let output = run.wait_with_output().await.unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "concert backup failed: {err}");

    // pg_restore waits at its first DDL while the gate's file is there.
    let gate_file = work.root.join("restore.gate");
    fs::write(&gate_file, "shut").unwrap();
    let target = url.replace("/concert?", "/pw_target?");
    let mut setup = PgConnection::connect(&target).await.unwrap();
    sqlx::raw_sql(&format!(
        "create schema restore_gate;
         create function restore_gate.wait() returns event_trigger language plpgsql as $$
         begin
             -- pg_restore's own DDL, not the restore setting the empty schema aside.
             while pg_catalog.current_setting('application_name') = 'pg_restore'
                   and (select size from pg_catalog.pg_stat_file('{}', true)) is not null loop
                 perform pg_catalog.pg_sleep(0.05);
             end loop;
         end $$;
         create event trigger restore_gate on ddl_command_start execute function restore_gate.wait()",
        gate_file.display()
    ))
    .execute(&mut setup)
    .await
    .unwrap();
    // A restore refuses a database others are connected to.
    setup.close().await.unwrap();
    let target_with_password = with_password.replace("/concert?", "/pw_target?");
    let mut run = harness::spawn_cli(
        &[("DATABASE_URL", target_with_password)],
        &["restore", path_str(&file)],
    );
    let pg_restore = wait_for_tool("pg_restore", &mut run).await;
    check_tool(
        pg_restore,
        "--dbname=postgres://pw_operator@localhost:5432/pw_target?host=",
    );
    fs::remove_file(&gate_file).unwrap();
    let output = tokio::time::timeout(Duration::from_secs(120), run.wait_with_output())
        .await
        .expect("concert restore took over 120 s")
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "concert restore failed: {out}{err}"
    );
    let restored = PgPool::connect(&target).await.unwrap();
    let copied: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&restored)
        .await
        .unwrap();
    let original: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert!(copied > 0 && copied == original, "{copied} of {original}");
    restored.close().await;
    admin.close().await;
    server.terminate().await;
}

/// Puts lines first in `pg_hba.conf` that make `ROLE` give its password
/// (SCRAM) over the socket and TCP, and reloads the server's settings.
async fn require_password(hba: &Path, admin: &PgPool) {
    let rules = fs::read_to_string(hba).unwrap();
    fs::write(
        hba,
        format!("local all {ROLE} scram-sha-256\nhost all {ROLE} all scram-sha-256\n{rules}"),
    )
    .unwrap();
    sqlx::query("select pg_reload_conf()")
        .execute(admin)
        .await
        .unwrap();
}

/// Every process's command line, its arguments joined by spaces.
fn command_lines() -> Vec<(i32, String)> {
    let mut lines = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // Gone already, or a kernel thread (empty).
        if let Ok(bytes) = fs::read(entry.path().join("cmdline")) {
            let line = String::from_utf8_lossy(&bytes).replace('\0', " ");
            lines.push((pid, line.trim_end().to_string()));
        }
    }
    lines
}

/// Panics if any process's command line holds the password.
fn assert_no_password_on_a_command_line() {
    for (pid, line) in command_lines() {
        assert!(
            !line.contains(CORE),
            "process {pid} shows the password on its command line: {line}"
        );
    }
}

/// The pid of the `tool` that `run` started (not `pg_restore --list`),
/// once it is there; every command line is checked while waiting.
async fn wait_for_tool(tool: &str, run: &mut tokio::process::Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert_no_password_on_a_command_line();
        let found = command_lines().into_iter().find(|(_, line)| {
            let program = line.split(' ').next().unwrap_or("");
            program.ends_with(&format!("/{tool}")) && line.contains("--dbname=")
        });
        if let Some((pid, _)) = found {
            return pid;
        }
        if let Some(status) = run.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut stderr) = run.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = stderr.read_to_string(&mut err).await;
            }
            panic!("concert ended ({status}) before its {tool} was seen: {err}");
        }
        assert!(Instant::now() < deadline, "no {tool} within 60 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `pid` (a tool held at its gate) connects through a URL without the
/// password and has the password, decoded, in its environment; no command
/// line holds it.
fn check_tool(pid: i32, dbname: &str) {
    assert_no_password_on_a_command_line();
    let line = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let line = String::from_utf8_lossy(&line).replace('\0', " ");
    assert!(line.contains(dbname), "{line}");
    let environment = fs::read(format!("/proc/{pid}/environ")).unwrap();
    let expected = format!("PGPASSWORD={PASSWORD}");
    assert!(
        environment
            .split(|byte| *byte == 0)
            .any(|variable| variable == expected.as_bytes()),
        "{pid} has no PGPASSWORD of the decoded password"
    );
    println!("{line}");
}
