//! Crash at any point: a booking workload runs while the server is SIGKILLed
//! at random moments and restarted on the same data. Afterwards every
//! answered command is in the log, payments cut short were finished or
//! refunded, overdue holds were expired by the restarted scheduler, the audit
//! passes and the read models equal a fresh replay.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::harness::{self, Api, Log, Server, Workdir};
use crate::workload::{check_answered_commands, start_workers, unended_holds, Shared, RETRY};

const WORKERS: usize = 6;
const KILLS: usize = 4;
const HOLD_TTL_SECS: i64 = 3;
const ACTIVE_MAX: u32 = 1000;
const PRICE: i64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_no_answered_command() {
    let _turn = harness::serial().await;
    let started = Instant::now();
    let work = Workdir::new("crash");
    let settings = [
        ("CONCERT_HOLD_TTL_SECS", HOLD_TTL_SECS.to_string()),
        ("CONCERT_QUEUE_ACTIVE_MAX", ACTIVE_MAX.to_string()),
    ];
    let mut server = Server::start(&work, "crash", &settings).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    let shared = Shared::on_new_concert(api, 3000, PRICE, false).await;
    let workers = start_workers(&shared, WORKERS);

    let seed: u64 = rand::random();
    println!("crash test seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    // (killed at, ready again at) of each crash.
    let mut outages: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for kill in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1200..3500))).await;
        shared.faulty.store(false, Ordering::SeqCst);
        let killed_at = Utc::now();
        server.kill9().await;
        // Down for a moment: holds lapse meanwhile and the restart must expire them.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..1500))).await;
        // The second life stops every payment right after its debit (as a
        // crash there would) and does not recover them itself.
        let faulty = kill == 0;
        let extra: Vec<(&str, String)> = if faulty {
            vec![
                ("CONCERT_FAULT_STOP_AFTER_DEBIT", "true".into()),
                ("CONCERT_PAYMENT_RECOVERY_SECS", "600".into()),
            ]
        } else {
            Vec::new()
        };
        server.restart(&extra).await;
        shared.faulty.store(faulty, Ordering::SeqCst);
        outages.push((killed_at, Utc::now()));
    }
    // The last life runs the workload a little, then everything lapses.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    shared.stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.expect("a worker panicked");
    }
    let last_ready = outages.last().unwrap().1;
    tokio::time::sleep(Duration::from_secs(HOLD_TTL_SECS as u64 + 2)).await;

    // Every hold answered 201 reads expired or confirmed: none is left held past its deadline.
    let holds = shared.journal.lock().unwrap().holds.clone();
    let mut still_held = Vec::new();
    for hold in &holds {
        assert!(
            hold.until < Utc::now(),
            "the hold {} is still due",
            hold.reservation_id
        );
        let answer = shared
            .api
            .retry(RETRY, || {
                shared
                    .api
                    .client
                    .reservation(&hold.token, hold.reservation_id)
            })
            .await
            .expect("the reservation is readable");
        match (answer.status, harness::body(&answer)["status"].as_str()) {
            (200, Some("expired" | "confirmed")) => {}
            // The token was spent by a payment whose answer was lost: the log decides below.
            (401, _) => {}
            _ => still_held.push(format!("{} -> {}", hold.reservation_id, answer.text())),
        }
    }
    assert!(
        still_held.is_empty(),
        "holds past their deadline: {still_held:#?}"
    );
    let status = server.terminate().await;
    assert!(status.success(), "the last server stopped with {status}");

    let (code, audit) = harness::audit(&work.data(), ACTIVE_MAX).await;
    assert_eq!(code, 0, "concert audit failed:\n{audit}");
    let log = harness::events(&work.data()).await;
    // Every worker has finished: the journal is complete.
    let journal = std::mem::take(&mut *shared.journal.lock().unwrap());
    let mut missing = check_answered_commands(&journal, &log);
    missing.extend(unended_holds(&log));
    let (late, overdue_at_restart) = check_overdue_holds(&log, &outages, last_ready);
    missing.extend(late);
    missing.extend(log.invariant_violations());
    assert!(
        missing.is_empty(),
        "{} violations: {missing:#?}",
        missing.len()
    );
    let cut_recovered = journal.cut.len();
    let stats = &shared.api.stats;
    assert!(
        stats.oddities().is_empty(),
        "answers breaking the contract: {:#?}",
        stats.oddities()
    );

    let replay_identical = replay_matches_read_models(&work).await;
    let figures = json!({
        "crashes_survived": KILLS,
        "workers": WORKERS,
        "http": stats.to_json(),
        "answered_commands_checked": journal.entries.len() + journal.charges.len()
            + journal.plain_charges.len() + journal.holds.len() + journal.payments.len(),
        "queue_entries": journal.entries.len(),
        "charges": journal.charges.len() + journal.plain_charges.len(),
        "holds": journal.holds.len(),
        "payments": journal.payments.len(),
        "payments_cut_after_debit_and_recovered": cut_recovered,
        "events": log.events.len(),
        "hold_expired_events": log.count("HoldExpired"),
        "holds_due_while_down_expired_after_restart": overdue_at_restart,
        "refunds": log.count("Refunded"),
        "read_model_rows_compared_with_replay": replay_identical,
        "violations": 0,
        "seconds": started.elapsed().as_secs_f64(),
    });
    println!("{}", stats.summary());
    harness::report_figures("crash", figures);
    assert!(
        journal.holds.len() > 20 && journal.payments.len() > 10,
        "the workload did too little to prove anything: {} holds, {} payments",
        journal.holds.len(),
        journal.payments.len()
    );
}

/// A hold whose deadline passed while the server was down was expired by the
/// scheduler soon after the restart.
fn check_overdue_holds(
    log: &Log,
    outages: &[(DateTime<Utc>, DateTime<Utc>)],
    last_ready: DateTime<Utc>,
) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut ends: HashMap<String, (&str, &Value)> = HashMap::new();
    for event in &log.events {
        let kind = event["event_type"].as_str().unwrap_or_default();
        if matches!(kind, "HoldExpired" | "HoldReleased" | "SeatSold") {
            let reservation = event["payload"][kind]["reservation_id"]
                .as_str()
                .unwrap()
                .to_string();
            ends.insert(reservation, (kind, event));
        }
    }
    let mut overdue_at_restart = 0;
    for (_, body) in log.of_type("SeatHeld") {
        let reservation = body["reservation_id"].as_str().unwrap();
        let until: DateTime<Utc> = serde_json::from_value(body["until"].clone()).unwrap();
        let Some((kind, end)) = ends.get(reservation) else {
            continue; // reported by `unended_holds`
        };
        // Deadlines that passed during an outage: the restarted scheduler expires them at once.
        for (killed, ready) in outages {
            if until > *killed && until < *ready && *kind == "HoldExpired" {
                overdue_at_restart += 1;
                let at: DateTime<Utc> = serde_json::from_value(end["recorded_at"].clone()).unwrap();
                if at > *ready + chrono::Duration::seconds(3) {
                    problems.push(format!(
                        "hold {reservation}, due {until} during an outage, expired only at {at} (ready at {ready})"
                    ));
                }
                if end["metadata"]["actor"] != "scheduler" {
                    problems.push(format!(
                        "hold {reservation} expired by {}",
                        end["metadata"]["actor"]
                    ));
                }
            }
        }
    }
    println!("holds that fell due while the server was down: {overdue_at_restart} (last restart {last_ready})");
    (problems, overdue_at_restart)
}

/// Dumps the read models, runs `concert replay`, and compares; returns the rows compared.
async fn replay_matches_read_models(work: &Workdir) -> usize {
    let data = work.data();
    let server = tokio::task::spawn_blocking(move || {
        concert::private_postgres::PrivatePostgres::start(&data).expect("start PostgreSQL")
    })
    .await
    .unwrap();
    let url = server.database_url();
    let pool = PgPool::connect(&url).await.expect("connect");
    let before = concert::replay::dump_read_models(&pool).await.unwrap();
    let (code, out, err) = harness::cli(&[("DATABASE_URL", url.clone())], &["replay"]).await;
    assert_eq!(code, 0, "concert replay failed: {out}{err}");
    let after = concert::replay::dump_read_models(&pool).await.unwrap();
    pool.close().await;
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap()
        .expect("a clean stop");
    let mut rows = 0;
    for ((table, rows_before), (_, rows_after)) in before.iter().zip(&after) {
        assert_eq!(
            rows_before, rows_after,
            "{table} differs from a fresh replay"
        );
        rows += rows_before.len();
    }
    rows
}
