//! A backup's file and a restore's claim on the store: overlapping backups
//! to one file each leave it whole (and readable by its owner only), a backup
//! stopped half way leaves nothing behind, and a backup and a restore of one
//! store refuse each other.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection, PgPool};

use crate::backup::{data_env, path_str};
use crate::harness::{self, Api, Server, Workdir};

const PRICE: i64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_to_one_file_at_once_each_leave_it_whole_readable_by_its_owner_only() {
    let _turn = harness::serial().await;
    let work = Workdir::new("overlap");
    let mut server = Server::start(&work, "overlap", &[]).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    api.create_concert(20_000, PRICE).await;
    let url = [("DATABASE_URL", work.database_url())];
    let folder = work.root.join("backups");
    std::fs::create_dir_all(&folder).unwrap();
    let file = folder.join("store.dump");

    // An overlapping cron job and a manual run: each writes a file of its
    // own and renames it whole (they shared one partial file before).
    let args = ["backup", path_str(&file)];
    let runs = (0..3).map(|_| harness::cli(&url, &args));
    for (code, out, err) in futures::future::join_all(runs).await {
        assert_eq!(code, 0, "{out}{err}");
    }
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the copy holds the signing keys: {mode:o}");
    assert_eq!(leftovers(&folder), ["store.dump"]);

    // Stopped half way: nothing is left but what was there.
    let stopped = folder.join("stopped.dump");
    let run = harness::spawn_cli(&url, &["backup", path_str(&stopped)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while leftovers(&folder).len() == 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let pid = nix::unistd::Pid::from_raw(run.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let output = run.wait_with_output().await.unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    println!("backup sent SIGTERM: {}, {err}", output.status);
    if output.status.success() {
        // The signal came after the rename: a whole file.
        assert_eq!(leftovers(&folder), ["stopped.dump", "store.dump"]);
    } else {
        assert!(err.contains("stopped by SIGTERM"), "{err}");
        assert_eq!(leftovers(&folder), ["store.dump"]);
    }
    server.terminate().await;

    let fresh = work.root.join("r");
    let (code, out, err) = harness::cli(&data_env(&fresh), &["restore", path_str(&file)]).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, audit) = harness::audit(&fresh, 100).await;
    assert_eq!(code, 0, "{audit}");
}

/// Runs `function` (`pg_advisory_lock`, its `_shared` twin or their
/// unlocks) on the store's copy lock, as a restore, a backup or the swap
/// that ends a replay takes it.
async fn on_copy_lock(connection: &mut PgConnection, function: &str) {
    sqlx::query(&format!("select {function}($1)"))
        .bind(concert::backup::COPY_LOCK)
        .execute(connection)
        .await
        .unwrap();
}

/// The names of the files in `folder`, sorted.
fn leftovers(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_and_a_restore_of_one_store_refuse_each_other() {
    let _turn = harness::serial().await;
    let work = Workdir::new("copylock");
    let mut server = Server::start(&work, "copylock", &[]).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    api.create_concert(20, PRICE).await;
    let url = work.database_url();
    let file = work.root.join("store.dump");
    let (code, out, err) = harness::cli(
        &[("DATABASE_URL", url.clone())],
        &["backup", path_str(&file)],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");

    // An empty database beside the store, as a restore's target.
    let admin = PgPool::connect(&url).await.unwrap();
    sqlx::query("create database copy_target")
        .execute(&admin)
        .await
        .unwrap();
    let target = url.replace("/concert", "/copy_target");
    let mut holder = PgConnection::connect(&target).await.unwrap();

    // While a restore holds the store, a backup of it is refused...
    on_copy_lock(&mut holder, "pg_advisory_lock").await;
    let copy = work.root.join("half.dump");
    let (code, _, err) = harness::cli(
        &[("DATABASE_URL", target.clone())],
        &["backup", path_str(&copy)],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("a restore into this store, or the swap that ends a replay, is running"),
        "{err}"
    );
    assert!(!copy.exists());
    on_copy_lock(&mut holder, "pg_advisory_unlock").await;

    // A lock held briefly, as the swap that ends a replay holds it, is
    // waited for: such a backup was refused at once.
    let mut swap = PgConnection::connect(&url).await.unwrap();
    on_copy_lock(&mut swap, "pg_advisory_lock").await;
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        on_copy_lock(&mut swap, "pg_advisory_unlock").await;
        swap
    });
    let waited = work.root.join("waited.dump");
    let (code, out, err) = harness::cli(
        &[("DATABASE_URL", url.clone())],
        &["backup", path_str(&waited)],
    )
    .await;
    release.await.unwrap().close().await.unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("waiting up to 10 s"), "{err}");
    assert!(waited.exists());

    // ...and while a backup reads it, a restore into it is refused.
    on_copy_lock(&mut holder, "pg_advisory_lock_shared").await;
    let (code, _, err) = harness::cli(
        &[("DATABASE_URL", target.clone())],
        &["restore", path_str(&file)],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("refusing to restore: a backup of this store"),
        "{err}"
    );
    on_copy_lock(&mut holder, "pg_advisory_unlock_shared").await;
    // The restore wants the store to itself: wait until the test's own
    // session is gone from the server, not just closed on this side.
    holder.close().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sessions: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity
             where datname = 'copy_target' and backend_type = 'client backend'",
        )
        .fetch_one(&admin)
        .await
        .unwrap();
        if sessions == 0 {
            break;
        }
        if Instant::now() > deadline {
            let lingering: Vec<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
                "select application_name, state, query from pg_stat_activity
                 where datname = 'copy_target' and backend_type = 'client backend'",
            )
            .fetch_all(&admin)
            .await
            .unwrap();
            panic!("{sessions} sessions linger: {lingering:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    admin.close().await;

    let (code, out, err) =
        harness::cli(&[("DATABASE_URL", target)], &["restore", path_str(&file)]).await;
    assert_eq!(code, 0, "{out}{err}");
    server.terminate().await;
}

/// A backup waiting for a restore whose server stops as the restore ends
/// (its session terminated, "administrator command") says to run it again;
/// it ended on PostgreSQL's raw error.
#[tokio::test]
async fn a_backup_whose_wait_ends_with_its_server_says_to_run_it_again() {
    let _turn = harness::serial().await;
    let work = Workdir::new("waitend");
    let mut server = Server::start(&work, "waitend", &[]).await;
    let url = work.database_url();
    let mut restore = PgConnection::connect(&url).await.unwrap();
    on_copy_lock(&mut restore, "pg_advisory_lock").await;
    let file = work.root.join("never.dump");
    let backup = harness::spawn_cli(
        &[("DATABASE_URL", url.clone())],
        &["backup", path_str(&file)],
    );

    // The backup's session, trying the copy lock.
    let deadline = Instant::now() + Duration::from_secs(10);
    let waiting: i32 = loop {
        let found: Option<i32> = sqlx::query_scalar(
            "select pid from pg_stat_activity
             where query like '%pg_try_advisory_lock_shared%' and pid <> pg_backend_pid()",
        )
        .fetch_optional(&mut restore)
        .await
        .unwrap();
        if let Some(pid) = found {
            break pid;
        }
        assert!(Instant::now() < deadline, "the backup never waited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    sqlx::query("select pg_terminate_backend($1)")
        .bind(waiting)
        .execute(&mut restore)
        .await
        .unwrap();

    let output = backup.wait_with_output().await.unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("run the backup again"), "{err}");
    assert!(!file.exists());
    server.terminate().await;
}
