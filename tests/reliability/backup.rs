//! `concert backup` while a booking workload runs, and `concert restore`:
//! the copy restores into a fresh folder, passes the audit, and holds exactly
//! the log up to the position the backup reported (plus the events committed
//! just before its snapshot, which it reports too). A store with events is
//! refused, and a corrupt or cut-short file changes nothing.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::harness::{self, Api, Log, Server, Workdir};
use crate::workload::{start_workers, Shared};

const WORKERS: usize = 6;
const HOLD_TTL_SECS: u64 = 3;
const ACTIVE_MAX: u32 = 1000;
const PRICE: i64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_during_a_workload_restores_to_the_position_it_reports() {
    let _turn = harness::serial().await;
    let started = Instant::now();
    let work = Workdir::new("backup");
    let settings = [
        ("CONCERT_HOLD_TTL_SECS", HOLD_TTL_SECS.to_string()),
        ("CONCERT_QUEUE_ACTIVE_MAX", ACTIVE_MAX.to_string()),
    ];
    let mut server = Server::start(&work, "backup", &settings).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    let shared = Shared::on_new_concert(api, 3000, PRICE, false).await;
    let workers = start_workers(&shared, WORKERS);
    tokio::time::sleep(Duration::from_secs(4)).await;

    // The backup attaches to the running service's private server.
    let file = work.root.join("store.dump");
    let backup_started = Instant::now();
    let (code, out, err) =
        harness::cli(&data_env(&work.data()), &["backup", path_str(&file)]).await;
    let backup_seconds = backup_started.elapsed().as_secs_f64();
    assert_eq!(code, 0, "concert backup failed: {out}{err}");
    let (position, unpositioned) = reported_position(&out);
    let bytes = std::fs::metadata(&file).expect("the backup file").len();
    assert!(out.contains(&format!("{bytes} bytes")), "{out}");
    println!("{out}");

    tokio::time::sleep(Duration::from_secs(2)).await;
    shared.stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.expect("a worker panicked");
    }
    let status = server.terminate().await;
    assert!(status.success(), "the server stopped with {status}");
    let original = harness::events(&work.data()).await;

    let fresh = work.root.join("r");
    let restore_started = Instant::now();
    let (code, out, err) = harness::cli(&data_env(&fresh), &["restore", path_str(&file)]).await;
    let restore_seconds = restore_started.elapsed().as_secs_f64();
    assert_eq!(code, 0, "concert restore failed: {out}{err}");
    println!("{out}");
    let (code, audit) = harness::audit(&fresh, ACTIVE_MAX).await;
    assert_eq!(code, 0, "concert audit of the copy failed:\n{audit}");
    let restored = harness::events(&fresh).await;

    // The copy holds the log up to `position`, plus the `unpositioned` events
    // committed before the snapshot: the same events, byte for byte. After
    // them come the events of payments the copy caught half-way, which the
    // restore finished or refunded as the scheduler would.
    let settled = settled_payments(&out);
    let by_key: HashMap<String, &Value> = original.events.iter().map(|e| (key(e), e)).collect();
    let (mut beyond, mut settling) = (0, 0);
    for event in &restored.events {
        let at = event["position"].as_i64().unwrap();
        if at > position + unpositioned {
            assert_eq!(event["metadata"]["actor"], "scheduler", "{event}");
            settling += 1;
            continue;
        }
        let theirs = by_key
            .get(&key(event))
            .unwrap_or_else(|| panic!("the copy has an event the log never had: {event}"));
        assert_eq!(
            without_position(event),
            without_position(theirs),
            "the event differs"
        );
        if at <= position {
            assert_eq!(
                theirs["position"], event["position"],
                "positions up to {position} are kept"
            );
        } else {
            beyond += 1;
        }
    }
    let expected = original
        .events
        .iter()
        .filter(|e| e["position"].as_i64().unwrap() <= position)
        .count();
    assert_eq!(
        restored.events.len(),
        expected + unpositioned as usize + settling
    );
    assert_eq!(beyond, unpositioned as usize);
    assert_eq!(settling > 0, settled > 0, "{out}");
    assert!(
        original.events.len() > expected + unpositioned as usize,
        "the workload went on after the backup"
    );

    // Balances and seats of the copy are those of the events it holds, and
    // its read models are what a replay of its log builds.
    let (balances, seats, replayed_rows) = read_models(&fresh).await;
    assert_eq!(balances, restored.balances(), "balances of the copy");
    let expected_seats = seat_states(&restored);
    for (seat, status) in &seats {
        let wanted = expected_seats.get(seat).map_or("free", String::as_str);
        assert_eq!(status, wanted, "seat {seat} of the copy");
    }
    harness::report_figures(
        "backup_restore",
        json!({
            "backup_bytes": bytes,
            "backup_seconds": backup_seconds,
            "restore_seconds": restore_seconds,
            "reported_position": position,
            "committed_unpositioned_in_snapshot": unpositioned,
            "payments_caught_half_way_and_settled": settled,
            "events_in_copy": restored.events.len(),
            "events_in_log_at_the_end": original.events.len(),
            "wallets_compared": balances.len(),
            "seats_compared": seats.len(),
            "read_model_rows_equal_to_a_replay": replayed_rows,
            "seconds": started.elapsed().as_secs_f64(),
        }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_a_backup_caught_half_way_are_settled_by_the_restore() {
    let _turn = harness::serial().await;
    let work = Workdir::new("halfway");
    // Every payment stops after its debit and nothing recovers it: the backup
    // catches them half-way for certain.
    let settings = [
        ("CONCERT_QUEUE_ACTIVE_MAX", ACTIVE_MAX.to_string()),
        ("CONCERT_FAULT_STOP_AFTER_DEBIT", "true".to_string()),
        ("CONCERT_PAYMENT_RECOVERY_SECS", "600".to_string()),
    ];
    let mut server = Server::start(&work, "halfway", &settings).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    let shared = Shared::on_new_concert(api, 500, PRICE, true).await;
    let workers = start_workers(&shared, 2);
    tokio::time::sleep(Duration::from_secs(3)).await;
    shared.stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.expect("a worker panicked");
    }
    let cut = shared.journal.lock().unwrap().cut.len();
    assert!(cut > 0, "no payment was cut after its debit");
    let file = work.root.join("store.dump");
    let (code, out, err) =
        harness::cli(&data_env(&work.data()), &["backup", path_str(&file)]).await;
    assert_eq!(code, 0, "{out}{err}");
    server.terminate().await;

    let fresh = work.root.join("r");
    let (code, out, err) = harness::cli(&data_env(&fresh), &["restore", path_str(&file)]).await;
    assert_eq!(code, 0, "{out}{err}");
    let settled = settled_payments(&out);
    assert!(
        settled >= cut,
        "{cut} payments cut, {settled} settled: {out}"
    );
    let (code, audit) = harness::audit(&fresh, ACTIVE_MAX).await;
    assert_eq!(code, 0, "concert audit of the copy failed:\n{audit}");
    let copy = harness::events(&fresh).await;
    let violations = copy.invariant_violations();
    assert!(violations.is_empty(), "{violations:#?}");
    println!(
        "{cut} payments cut after their debit; the restore settled {settled}: {} sold, {} refunded",
        copy.count("SeatSold"),
        copy.count("Refunded")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_store_with_events_and_a_bad_file_changes_nothing() {
    let _turn = harness::serial().await;
    let work = Workdir::new("refuse");
    let mut server = Server::start(&work, "refuse", &[]).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    api.create_concert(20, PRICE).await;
    // This one through DATABASE_URL: a database that is not concert's own.
    let file = work.root.join("store.dump");
    let url = [("DATABASE_URL", work.database_url())];
    let (code, out, err) = harness::cli(&url, &["backup", path_str(&file)]).await;
    assert_eq!(code, 0, "concert backup failed: {out}{err}");
    server.terminate().await;
    let before = harness::events(&work.data()).await.events.len();

    let (code, _, err) = harness::cli(&data_env(&work.data()), &["restore", path_str(&file)]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("refusing to restore: the store already holds"),
        "{err}"
    );
    assert_eq!(harness::events(&work.data()).await.events.len(), before);

    let fresh = work.root.join("r");
    let whole = std::fs::read(&file).unwrap();
    let garbage = work.root.join("garbage.dump");
    std::fs::write(&garbage, b"PGDMP but not really a backup").unwrap();
    let (code, _, err) = harness::cli(&data_env(&fresh), &["restore", path_str(&garbage)]).await;
    assert_ne!(code, 0);
    assert!(err.contains("is not a readable backup"), "{err}");
    // Cut early, pg_restore cannot read the table of contents; cut late, the
    // restore fails mid-data and its single transaction rolls back.
    for keep in [whole.len() / 2, whole.len() - 200] {
        let cut = work.root.join(format!("cut-{keep}.dump"));
        std::fs::write(&cut, &whole[..keep]).unwrap();
        let (code, _, err) = harness::cli(&data_env(&fresh), &["restore", path_str(&cut)]).await;
        assert_ne!(code, 0);
        assert!(
            err.contains("rolled back, the store is unchanged")
                || err.contains("is not a readable backup"),
            "{err}"
        );
        println!("file cut to {keep} of {} bytes: {err}", whole.len());
    }

    // Nothing changed: the fresh store is still empty and takes the whole file.
    let (code, out, err) = harness::cli(&data_env(&fresh), &["restore", path_str(&file)]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(harness::events(&fresh).await.events.len(), before);
    let (code, audit) = harness::audit(&fresh, 100).await;
    assert_eq!(code, 0, "{audit}");
}

/// A copy made by a release before a later migration, restored into a store
/// that `concert migrate` prepared: the copy comes in whole and the newer
/// migration applies on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_older_than_the_schema_restores_into_a_migrated_store() {
    let _turn = harness::serial().await;
    let work = Workdir::new("older");
    let mut server = Server::start(&work, "older", &[]).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    api.create_concert(20, PRICE).await;
    // The store as a release before migration 9 (served_settings) left it.
    let old = PgPool::connect(&work.database_url()).await.unwrap();
    sqlx::raw_sql("drop table served_settings; delete from _sqlx_migrations where version = 9")
        .execute(&old)
        .await
        .unwrap();
    old.close().await;
    server.terminate().await;
    let before = harness::events(&work.data()).await.events.len();
    let file = work.root.join("older.dump");
    let (code, out, err) =
        harness::cli(&data_env(&work.data()), &["backup", path_str(&file)]).await;
    assert_eq!(code, 0, "{out}{err}");

    let copy_work = Workdir::new("older-copy");
    let fresh = copy_work.data();
    let (code, out, err) = harness::cli(&data_env(&fresh), &["migrate"]).await;
    assert_eq!(code, 0, "{out}{err}");
    // A cut file first: the failed restore puts the migrated schema back.
    let whole = std::fs::read(&file).unwrap();
    let cut = work.root.join("cut.dump");
    std::fs::write(&cut, &whole[..whole.len() - 200]).unwrap();
    let (code, _, err) = harness::cli(&data_env(&fresh), &["restore", path_str(&cut)]).await;
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("rolled back, the store is unchanged"), "{err}");
    let mut copy = Server::start(&copy_work, "older-copy", &[]).await;
    let target = PgPool::connect(&copy_work.database_url()).await.unwrap();
    let (set_aside, events): (bool, i64) = sqlx::query_as(
        "select exists (select 1 from pg_namespace where nspname = 'concert_before_restore'),
                (select count(*) from events)",
    )
    .fetch_one(&target)
    .await
    .unwrap();
    target.close().await;
    copy.terminate().await;
    assert_eq!((set_aside, events), (false, 0));

    let (code, out, err) = harness::cli(&data_env(&fresh), &["restore", path_str(&file)]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(harness::events(&fresh).await.events.len(), before);
    let (code, audit) = harness::audit(&fresh, 100).await;
    assert_eq!(code, 0, "{audit}");
    // The copy serves, with every migration applied.
    let mut copy = Server::start(&copy_work, "older-copy-2", &[]).await;
    let api = Api::new(vec![copy.base()], Duration::from_secs(20));
    api.create_concert(5, PRICE).await;
    copy.terminate().await;
}

/// A copy taken between an entry's number and its ticket's commit holds the
/// number without a ticket; the restore records it unused, so the tickets
/// behind it keep their places in the copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_number_a_copy_holds_without_its_ticket_is_released_by_the_restore() {
    let _turn = harness::serial().await;
    let work = Workdir::new("numbers");
    let settings = [("CONCERT_QUEUE_ACTIVE_MAX", "1".to_string())];
    let mut server = Server::start(&work, "numbers", &settings).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    let (concert, _) = api.create_concert(5, PRICE).await;
    let token_of = |answer: Option<concert_client::Answer>| {
        let answer = answer.expect("entered");
        answer
            .json::<concert_client::QueueToken>("queue token", &[200, 201])
            .unwrap()
            .token
    };
    let first = token_of(
        api.enter(Uuid::new_v4(), concert, Duration::from_secs(10))
            .await,
    );
    assert_eq!(
        api.wait_admitted(&first, Duration::from_secs(10))
            .await
            .as_deref(),
        Some("active")
    );
    token_of(
        api.enter(Uuid::new_v4(), concert, Duration::from_secs(10))
            .await,
    );
    // The number an entry in flight took, its ticket not committed.
    let store = PgPool::connect(&work.database_url()).await.unwrap();
    sqlx::query("update queue_lines set issued = issued + 1 where concert_id = $1")
        .bind(concert)
        .execute(&store)
        .await
        .unwrap();
    store.close().await;
    let last = token_of(
        api.enter(Uuid::new_v4(), concert, Duration::from_secs(10))
            .await,
    );
    // Live, the entry in flight is still ahead of the last one.
    assert_eq!(position(&api, &last).await, 2);
    let file = work.root.join("numbers.dump");
    let (code, out, err) =
        harness::cli(&data_env(&work.data()), &["backup", path_str(&file)]).await;
    assert_eq!(code, 0, "{out}{err}");
    server.terminate().await;

    let copy_work = Workdir::new("numbers-copy");
    let (code, out, err) =
        harness::cli(&data_env(&copy_work.data()), &["restore", path_str(&file)]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("1 queue entry numbers the copy caught without their ticket were released"),
        "{out}"
    );
    let mut copy = Server::start(&copy_work, "numbers-copy", &settings).await;
    let api = Api::new(vec![copy.base()], Duration::from_secs(20));
    assert_eq!(position(&api, &last).await, 1);
    copy.terminate().await;
}

/// The waiting tokens ahead of `token`.
async fn position(api: &Api, token: &str) -> i64 {
    let answer = api.client.current_token(token).await.unwrap();
    answer
        .json::<concert_client::QueueToken>("queue status", &[200])
        .unwrap()
        .position
}

fn data_env(data_dir: &Path) -> Vec<(&'static str, String)> {
    vec![("CONCERT_DATA_DIR", data_dir.display().to_string())]
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// (position, unpositioned) from "last log position: P (U more events ...".
fn reported_position(out: &str) -> (i64, i64) {
    let rest = out
        .split_once("last log position: ")
        .unwrap_or_else(|| panic!("no position reported: {out}"))
        .1;
    let mut words = rest.split_whitespace();
    let position = words.next().unwrap().parse().unwrap();
    let unpositioned = words
        .next()
        .unwrap()
        .trim_start_matches('(')
        .parse()
        .unwrap();
    (position, unpositioned)
}

/// N from "N payments the copy caught half-way ...".
fn settled_payments(out: &str) -> usize {
    out.lines()
        .find(|line| line.contains("payments the copy caught half-way"))
        .and_then(|line| line.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no settled payments reported: {out}"))
}

fn key(event: &Value) -> String {
    format!(
        "{}/{}/{}",
        event["aggregate_type"], event["aggregate_id"], event["sequence"]
    )
}

fn without_position(event: &Value) -> Value {
    let mut event = event.clone();
    event.as_object_mut().unwrap().remove("position");
    event
}

/// Each seat's status by its events: held, free again, or sold.
fn seat_states(log: &Log) -> HashMap<String, String> {
    let mut states = HashMap::new();
    for event in &log.events {
        let status = match event["event_type"].as_str() {
            Some("SeatHeld") => "held",
            Some("HoldExpired" | "HoldReleased") => "free",
            Some("SeatSold") => "sold",
            _ => continue,
        };
        states.insert(Log::id(event).to_string(), status.to_string());
    }
    states
}

/// The copy's balances and seat statuses, read from its read models; checks
/// that `concert replay` rebuilds every read-model row the same and returns
/// how many rows it compared.
async fn read_models(data_dir: &Path) -> (HashMap<String, i64>, Vec<(String, String)>, usize) {
    let data = data_dir.to_path_buf();
    let server = tokio::task::spawn_blocking(move || {
        concert::private_postgres::PrivatePostgres::start(&data).expect("start PostgreSQL")
    })
    .await
    .unwrap();
    let url = server.database_url();
    let pool = PgPool::connect(&url).await.expect("connect");
    let balances: Vec<(String, i64)> =
        sqlx::query_as("select user_id::text, balance from balances")
            .fetch_all(&pool)
            .await
            .unwrap();
    let seats: Vec<(String, String)> = sqlx::query_as("select seat_id::text, status from seats")
        .fetch_all(&pool)
        .await
        .unwrap();
    let restored = concert::replay::dump_read_models(&pool).await.unwrap();
    let (code, out, err) = harness::cli(&[("DATABASE_URL", url)], &["replay"]).await;
    assert_eq!(code, 0, "concert replay failed: {out}{err}");
    let replayed = concert::replay::dump_read_models(&pool).await.unwrap();
    pool.close().await;
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    let mut rows = 0;
    for ((table, before), (_, after)) in restored.iter().zip(&replayed) {
        assert_eq!(before, after, "{table} of the copy differs from a replay");
        rows += before.len();
    }
    (balances.into_iter().collect(), seats, rows)
}

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
    sqlx::query("select pg_advisory_lock($1)")
        .bind(concert::backup::COPY_LOCK)
        .execute(&mut holder)
        .await
        .unwrap();
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
    sqlx::query("select pg_advisory_unlock($1)")
        .bind(concert::backup::COPY_LOCK)
        .execute(&mut holder)
        .await
        .unwrap();

    // ...and while a backup reads it, a restore into it is refused.
    sqlx::query("select pg_advisory_lock_shared($1)")
        .bind(concert::backup::COPY_LOCK)
        .execute(&mut holder)
        .await
        .unwrap();
    let (code, _, err) = harness::cli(
        &[("DATABASE_URL", target.clone())],
        &["restore", path_str(&file)],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("a backup of this store is running"), "{err}");
    sqlx::query("select pg_advisory_unlock_shared($1)")
        .bind(concert::backup::COPY_LOCK)
        .execute(&mut holder)
        .await
        .unwrap();
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
