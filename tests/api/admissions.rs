//! Admission: active tokens time out and the next waiting are admitted, two
//! instances never admit beyond the limit, a ticket is not admitted ahead
//! of an entry numbered before it that is still committing, and a round of
//! admissions is stored whole or not at all.

use std::time::Duration;

use futures::future::join_all;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{
    eventually, spawn_app_on, spawn_app_with, store_as_another_writer, test_config,
};

#[tokio::test]
async fn active_tokens_time_out_and_the_next_waiting_are_admitted() {
    let mut config = test_config();
    config.queue_active_max = 1;
    config.queue_active_ttl_secs = 2;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    let first = app.active_user(&concert.concert_id).await;
    let (_, second) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    let second = second["token"].as_str().unwrap().to_string();

    eventually("the first token times out", || async {
        let now = app
            .get_json("/queue/tokens/current", Some(&first.token))
            .await;
        now["status"] == "expired"
    })
    .await;

    let first_now = app
        .get_json("/queue/tokens/current", Some(&first.token))
        .await;
    assert_eq!(first_now["status"], "expired");
    app.wait_until_active(&second).await;
    let second_now = app.get_json("/queue/tokens/current", Some(&second)).await;
    assert_eq!(second_now["position"], 0);
    assert!(second_now["expires_at"].is_string());
}

#[tokio::test]
async fn two_service_instances_on_one_database_never_admit_beyond_the_limit() {
    let mut config = test_config();
    config.queue_active_max = 5;
    config.scheduler_interval_ms = 10;
    let first = spawn_app_with(config.clone()).await;
    let second = spawn_app_on(first.pool.clone(), config).await;
    let concert = first.create_concert(1, 5, 1000).await;

    let entries = (0..40).map(|n| {
        let app = if n % 2 == 0 { &first } else { &second };
        app.enter_queue(Uuid::new_v4(), &concert.concert_id)
    });
    join_all(entries).await;
    let admitted = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from events where event_type = 'TicketAdmitted'",
        )
        .fetch_one(&first.pool)
        .await
        .unwrap()
    };
    eventually("five tokens are admitted", || async {
        admitted().await >= 5
    })
    .await;
    // Both schedulers keep ticking; give them time to over-admit if they could.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let admitted: i64 =
        sqlx::query_scalar("select count(*) from events where event_type = 'TicketAdmitted'")
            .fetch_one(&first.pool)
            .await
            .unwrap();
    assert_eq!(admitted, 5);
}

/// Entries through several instances take their numbers in one order and
/// commit in another. A ticket is not admitted ahead of an entry numbered
/// before it that is still committing; one stuck for good (its instance
/// killed) is passed over after a short wait.
#[tokio::test]
async fn a_ticket_waits_for_an_entry_numbered_before_it_to_commit() {
    let mut config = test_config();
    config.queue_active_max = 3;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    app.active_user(&concert.concert_id).await;
    // The number an entry in flight took, its ticket not committed.
    sqlx::query("update queue_lines set issued = issued + 1 where concert_id = $1::uuid")
        .bind(&concert.concert_id)
        .execute(&app.pool)
        .await
        .unwrap();
    let entered = std::time::Instant::now();
    let (_, behind) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    let behind = behind["token"].as_str().unwrap().to_string();

    // Two places are free, and it waits for the entry ahead of it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let now = app.get_json("/queue/tokens/current", Some(&behind)).await;
    assert_eq!(
        (now["status"].as_str(), now["position"].as_i64()),
        (Some("waiting"), Some(1))
    );

    app.wait_until_active(&behind).await;
    let waited = entered.elapsed();
    let wait = concert::projections::admissions::UNCOMMITTED_AHEAD_WAIT;
    assert!(
        waited >= wait.to_std().unwrap() - Duration::from_millis(200),
        "admitted after {waited:?}, past an entry committing"
    );
}

/// A round of admissions is one commit. Cut mid-commit, it admits none, and
/// the next round admits the whole line at once: no ticket goes in ahead of
/// an older one. Before, a round of more than 64 went through several
/// batches, and a later batch committed while an earlier one failed.
#[tokio::test]
async fn a_round_of_admissions_cut_mid_commit_admits_none_and_the_next_admits_all() {
    const LINE: usize = 100;
    let mut config = test_config();
    config.queue_active_max = LINE as u32;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    // The test leads the scheduler while the line forms: no round yet.
    let mut leader = app.pool.acquire().await.unwrap();
    sqlx::query("select pg_advisory_lock($1)")
        .bind(concert::scheduler::LEADER_LOCK)
        .execute(&mut *leader)
        .await
        .unwrap();
    for _ in 0..LINE {
        let (status, _) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
        assert_eq!(status, 201);
    }
    // Another writer appends to the oldest ticket and does not commit yet:
    // the round's append waits for it.
    let oldest: Uuid = sqlx::query_scalar(
        "select ticket_id from queue_tickets where concert_id = $1::uuid order by entry_no limit 1",
    )
    .bind(&concert.concert_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let now = chrono::Utc::now();
    let admission = json!({"TicketAdmitted": {
        "admitted_at": now, "expires_at": now + chrono::Duration::minutes(10)}});
    let mut other = app.pool.begin().await.unwrap();
    let stream = ("QueueTicket", oldest.to_string());
    store_as_another_writer(&mut other, (stream.0, &stream.1, 2), &admission, "Admit").await;
    sqlx::query("select pg_advisory_unlock($1)")
        .bind(concert::scheduler::LEADER_LOCK)
        .execute(&mut *leader)
        .await
        .unwrap();

    let cut = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
              where datname = current_database() and pid <> pg_backend_pid()
                and wait_event_type = 'Lock' and query like 'insert into events%') cut",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
            > 0
    };
    eventually("the round waits for the other writer, and is cut", cut).await;
    // Whatever of the round was not waiting would have committed by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let admitted = admissions_stored(&app.pool).await;
    other.rollback().await.unwrap();
    eventually("the next round admits the line", || async {
        admissions_stored(&app.pool).await.0 == LINE as i64
    })
    .await;

    assert_eq!(admitted, (0, 0), "(admissions, commits) of the cut round");
    assert_eq!(admissions_stored(&app.pool).await, (LINE as i64, 1));
    let report = crate::audit::audit(&app.pool).await;
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}

/// The admissions stored, and in how many commits.
async fn admissions_stored(pool: &sqlx::PgPool) -> (i64, i64) {
    sqlx::query_as(
        "select count(*), count(distinct transaction_id) from events where event_type = 'TicketAdmitted'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}
