//! A database fault: every connection of the service severed
//! (`pg_terminate_backend`) mid-load. The service answers `503 unavailable` at
//! worst, recovers by itself, and the audit passes afterwards.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use concert_client::{QueueToken, Reservation};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use crate::db_frozen::REQUEST_TIMEOUT;
use crate::harness::{self, Api, Server, Workdir};
use crate::workload::{check_answered_commands, start_workers, unended_holds, Shared, RETRY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn severed_database_connections_mid_load_are_503_at_worst_and_heal() {
    let _turn = harness::serial().await;
    let started = Instant::now();
    let work = Workdir::new("sever");
    let settings = [
        ("CONCERT_HOLD_TTL_SECS", "2".to_string()),
        ("CONCERT_QUEUE_ACTIVE_MAX", "1000".to_string()),
        (
            "CONCERT_REQUEST_TIMEOUT_SECS",
            REQUEST_TIMEOUT.as_secs().to_string(),
        ),
    ];
    let mut server = Server::start(&work, "sever", &settings).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    let shared = Shared::on_new_concert(api, 3000, 1000, false).await;
    let workers = start_workers(&shared, 4);

    let killer = PgPoolOptions::new()
        .max_connections(1)
        .connect(&work.database_url())
        .await
        .expect("connect to the private PostgreSQL");
    // For four seconds, sever every connection that is in the middle of a
    // statement or a transaction, as often as the killer can; and now and
    // then every connection, idle ones included.
    let (mut severed, mut mid_transaction) = (0, 0);
    let until = Instant::now() + Duration::from_secs(4);
    let mut round = 0;
    while Instant::now() < until {
        round += 1;
        let everything = round % 50 == 0;
        let killed: i64 = sqlx::query_scalar(
            "select count(*) filter (where pg_terminate_backend(pid)) from pg_stat_activity
             where datname = 'concert' and pid <> pg_backend_pid() and backend_type = 'client backend'
               and ($1 or state in ('active', 'idle in transaction'))",
        )
        .bind(everything)
        .fetch_one(&killer)
        .await
        .expect("terminate the service's connections");
        severed += killed;
        if !everything {
            mid_transaction += killed;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    killer.close().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    shared.stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.expect("a worker panicked");
    }
    assert!(
        server.running(),
        "the service died when its connections were cut"
    );
    assert!(severed > 0, "no connection was severed");

    // Healed by itself: a whole booking succeeds at once.
    let api = &shared.api;
    let user = Uuid::new_v4();
    api.user_token(user).await;
    let healed = Instant::now();
    let entered = api.enter(user, shared.concert_id, RETRY).await.unwrap();
    let QueueToken { token, .. } = entered.json("queue entry", &[200, 201]).unwrap();
    assert_eq!(
        api.wait_admitted(&token, RETRY).await.as_deref(),
        Some("active")
    );
    let charged = api.client.charge(user, 5000, None).await.unwrap();
    assert_eq!(charged.status, 200, "{}", charged.text());
    let seats = api
        .free_seats(&token, shared.concert_id, shared.date_id, 10)
        .await
        .unwrap();
    let held = api.client.hold(&token, seats[0].seat_id).await.unwrap();
    let reservation: Reservation = held.json("hold", &[201]).unwrap();
    let paid = api
        .client
        .pay(&token, reservation.reservation_id, None)
        .await
        .unwrap();
    assert_eq!(paid.status, 201, "{}", paid.text());
    let heal_ms = healed.elapsed().as_millis();

    // Read models lost with a severed connection are caught up by the scheduler.
    let deadline = Instant::now() + Duration::from_secs(12);
    loop {
        let ready = api.client.readiness().await.unwrap();
        if ready.status == 200 && harness::projection_lag(&ready) == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "read models still behind: {}",
            ready.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // every hold lapses
    let status = server.terminate().await;
    assert!(status.success(), "stopped with {status}");

    let (code, audit) = harness::audit(&work.data(), 1000).await;
    assert_eq!(code, 0, "concert audit failed:\n{audit}");
    let log = harness::events(&work.data()).await;
    let journal = shared.journal.lock().unwrap();
    let mut violations = check_answered_commands(&journal, &log);
    violations.extend(unended_holds(&log));
    violations.extend(log.invariant_violations());
    assert!(violations.is_empty(), "{violations:#?}");
    let stats = &shared.api.stats;
    println!("{}", stats.summary());
    harness::report_figures(
        "db_severed",
        json!({
            "connections_severed": severed,
            "severed_mid_statement_or_transaction": mid_transaction,
            "http": stats.to_json(),
            "holds": journal.holds.len(),
            "payments": journal.payments.len(),
            "full_booking_after_healing_ms": heal_ms,
            "events": log.events.len(),
            "violations": stats.oddities().len(),
            "seconds": started.elapsed().as_secs_f64(),
        }),
    );
    assert!(
        stats.oddities().is_empty(),
        "answers other than 2xx, 4xx problems or 503 problems: {:#?}",
        stats.oddities()
    );
}
