//! `concert backup` while a booking workload runs, and `concert restore`:
//! the copy restores into a fresh folder, passes the audit, and holds exactly
//! the log up to the position the backup reported (plus the events committed
//! just before its snapshot, which it reports too); a payment the copy caught
//! half way is settled by the restore.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::PgPool;

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

pub(crate) fn data_env(data_dir: &Path) -> Vec<(&'static str, String)> {
    vec![("CONCERT_DATA_DIR", data_dir.display().to_string())]
}

pub(crate) fn path_str(path: &Path) -> &str {
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
        .unwrap()
        .expect("a clean stop");
    let mut rows = 0;
    for ((table, before), (_, after)) in restored.iter().zip(&replayed) {
        assert_eq!(before, after, "{table} of the copy differs from a replay");
        rows += before.len();
    }
    (balances.into_iter().collect(), seats, rows)
}
