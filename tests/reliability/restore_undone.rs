//! A restore that cannot finish leaves the store as it was: an archive of
//! another application on the same event store is refused before anything
//! changes, a copy the migrations fail on is undone (in a migrated store;
//! in a fresh database it is said to stay), and a restore stopped by
//! SIGTERM is rolled back, its store's schema put back.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection, PgPool};

use crate::backup::{data_env, path_str};
use crate::harness::{self, Api, Server, Workdir};

const PRICE: i64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_that_cannot_finish_leaves_the_store_as_it_was() {
    let _turn = harness::serial().await;
    let source = Workdir::new("undone-src");
    let (stadium, dirty) = stadium_and_dirty_copies(&source).await;
    let look_alike = look_alike_copy(&source).await;

    let target = Workdir::new("undone-dst");
    let env = data_env(&target.data());
    let (code, out, err) = harness::cli(&env, &["migrate"]).await;
    assert_eq!(code, 0, "{out}{err}");

    let (code, _, err) = harness::cli(&env, &["restore", path_str(&look_alike)]).await;
    assert_ne!(code, 0);
    assert!(err.contains("not of a concert store"), "{err}");

    let (code, _, err) = harness::cli(&env, &["restore", path_str(&dirty)]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("the restore was undone, the store is unchanged"),
        "{err}"
    );

    // Stopped while pg_restore writes the stadium's 50,000 seats.
    let run = harness::spawn_cli(&env, &["restore", path_str(&stadium)]);
    let started = Instant::now();
    until_pg_restore_runs(&target.data()).await;
    let pid = nix::unistd::Pid::from_raw(run.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let output = run.wait_with_output().await.unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    println!(
        "restore sent SIGTERM {:?} in: {}, {err}",
        started.elapsed(),
        output.status
    );
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("stopped by SIGTERM; the restore was rolled back"),
        "{err}"
    );

    // Still the migrated, empty store: its log reads (empty) without a
    // migration, it serves, and it takes the copy whole.
    let (code, out, err) = harness::cli(&env, &["events"]).await;
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let mut server = Server::start(&target, "undone-dst", &[]).await;
    let pool = PgPool::connect(&target.database_url()).await.unwrap();
    let (set_aside, tables, events): (bool, i64, i64) = sqlx::query_as(
        "select exists (select 1 from pg_namespace where nspname = 'concert_before_restore'),
                (select count(*) from pg_tables where schemaname = 'public'),
                (select count(*) from events)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    server.terminate().await;
    assert_eq!(
        (set_aside, tables, events),
        (false, concert::backup::STORE_TABLES.len() as i64, 0)
    );
    let (code, out, err) = harness::cli(&env, &["restore", path_str(&stadium)]).await;
    assert_eq!(code, 0, "{out}{err}");

    // Into a fresh database, whose schema is left as it is: the copy that
    // cannot be migrated stays, and the restore says so.
    let fresh = Workdir::new("undone-new");
    let env = data_env(&fresh.data());
    let (code, _, err) = harness::cli(&env, &["restore", path_str(&dirty)]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("the copy is restored, but the copy's schema cannot be brought up to date"),
        "{err}"
    );
}

/// Copies of a store with a 50,000-seat concert: as it is, and with its
/// last migration recorded as failed half-way, which no release migrates.
async fn stadium_and_dirty_copies(work: &Workdir) -> (PathBuf, PathBuf) {
    let mut server = Server::start(work, "stadium", &[]).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(60));
    api.create_concert(50_000, PRICE).await;
    server.terminate().await;
    let stadium = backup(work, "stadium").await;
    server.restart(&[]).await;
    sql(
        work,
        "update _sqlx_migrations set success = false
         where version = (select max(version) from _sqlx_migrations)",
    )
    .await;
    server.terminate().await;
    (stadium, backup(work, "dirty").await)
}

/// A copy of another application on the same event-sourcing libraries: an
/// event log, snapshots and migrations, and none of concert's read models.
async fn look_alike_copy(work: &Workdir) -> PathBuf {
    let other = Workdir::new("undone-other");
    let mut server = Server::start(&other, "other", &[]).await;
    let read_models: Vec<&str> = concert::backup::STORE_TABLES
        .into_iter()
        .filter(|table| !["events", "snapshots", "_sqlx_migrations"].contains(table))
        .collect();
    sql(
        &other,
        &format!("drop table {} cascade", read_models.join(", ")),
    )
    .await;
    server.terminate().await;
    let file = backup(&other, "look-alike").await;
    let kept = work.root.join("look-alike.dump");
    std::fs::copy(&file, &kept).unwrap();
    kept
}

async fn sql(work: &Workdir, statements: &str) {
    let mut conn = PgConnection::connect(&work.database_url()).await.unwrap();
    sqlx::raw_sql(statements).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

async fn backup(work: &Workdir, name: &str) -> PathBuf {
    let file = work.root.join(format!("{name}.dump"));
    let (code, out, err) =
        harness::cli(&data_env(&work.data()), &["backup", path_str(&file)]).await;
    assert_eq!(code, 0, "{out}{err}");
    file
}

/// Waits until a restore into the private server of `data_dir` runs
/// `pg_restore`, watching from another database so that the restore's
/// check for other sessions of its own does not see this one.
async fn until_pg_restore_runs(data_dir: &Path) {
    let url = format!(
        "postgres://postgres@localhost:5432/postgres?host={}",
        data_dir.display()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(mut conn) = PgConnection::connect(&url).await {
            loop {
                let running: bool = sqlx::query_scalar(
                    "select exists (select 1 from pg_stat_activity where application_name = 'pg_restore')",
                )
                .fetch_one(&mut conn)
                .await
                .unwrap();
                if running {
                    return;
                }
                assert!(Instant::now() < deadline, "pg_restore never ran");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the restore's server never came up");
}
