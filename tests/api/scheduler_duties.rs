//! The scheduler's duties hold each other up in nothing: a hold whose
//! expiry waits on a lock (rows a frozen transaction holds, until
//! PostgreSQL ends it) leaves the admissions to go on. Before, expiries,
//! admissions and payment recovery shared one round, and the round waited
//! on the lock, failed at `lock_timeout` and began again with the same
//! expiry: nobody was admitted while the lock was held. And holds lapse at
//! their deadline, not at the scheduler's next beat.

use std::time::{Duration, Instant};

use chrono::Utc;
use concert_client::Reservation;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{eventually, json_of, spawn_app_with, store_as_another_writer, test_config};

#[tokio::test]
async fn a_hold_expiry_waiting_on_a_lock_holds_no_admission_back() {
    let mut config = test_config();
    config.queue_active_max = 1;
    config.hold_ttl_secs = 2;
    config.queue_active_ttl_secs = 4;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    let first = app.active_user(&concert.concert_id).await;
    let seat = app.first_free_seat(&first, &concert).await;
    assert_eq!(app.hold(&first, &seat).await.status, 201);
    // Another writer appends the seat's next event and does not commit:
    // the hold's expiry, once due, waits for it.
    let next: i64 = sqlx::query_scalar(
        "select max(sequence) + 1 from events where aggregate_type = 'Seat' and aggregate_id = $1",
    )
    .bind(&seat)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let mut other = app.pool.begin().await.unwrap();
    let release = json!({"HoldReleased": {"reservation_id": Uuid::new_v4()}});
    store_as_another_writer(&mut other, ("Seat", &seat, next), &release, "Release").await;
    let (_, second) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    assert_eq!(second["status"], "waiting", "{second}");
    let second = second["token"].as_str().unwrap().to_string();
    eventually("the hold's expiry waits on the other writer", || {
        expiry_waiting(&app.pool)
    })
    .await;

    // The first token lapses (4 s): its place goes to the second while the
    // expiry still waits (for up to `lock_timeout`, 10 s, then again).
    let since = Instant::now();
    loop {
        let standing = json_of(&app.api.current_token(&second).await.unwrap());
        if standing["status"] == "active" {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(8),
            "the second token was not admitted while a hold's expiry waited: {standing}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        expiry_waiting(&app.pool).await,
        "the expiry stopped waiting before the admission"
    );

    // Once the other writer gives up, the hold's expiry is stored.
    other.rollback().await.unwrap();
    eventually("the hold's expiry is stored", || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from events where aggregate_id = $1 and event_type = 'HoldExpired'",
        )
        .bind(&seat)
        .fetch_one(&app.pool)
        .await
        .unwrap()
            == 1
    })
    .await;
}

/// The expiry is recorded at the hold's deadline: the seat is listed and
/// can be held again at once. Before, with a 5 s beat, it stayed taken for
/// up to 5 s past its deadline.
#[tokio::test]
async fn a_lapsed_hold_frees_its_seat_at_its_deadline_not_at_the_next_beat() {
    let mut config = test_config();
    config.scheduler_interval_ms = 5_000;
    config.hold_ttl_secs = 2;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    let first = app.active_user(&concert.concert_id).await;
    let second = app.active_user(&concert.concert_id).await;
    let seat = app.first_free_seat(&first, &concert).await;
    let held: Reservation = app.hold(&first, &seat).await.json("hold", &[201]).unwrap();

    let margin = chrono::Duration::milliseconds(400);
    let wait = (held.expires_at + margin - Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait).await;
    let listed = app.free_seats(&second, &concert, 0).await;
    assert!(
        listed.iter().any(|free| free.seat_id.to_string() == seat),
        "the seat was not listed {} ms after its hold's deadline",
        margin.num_milliseconds()
    );
    let again = app.hold(&second, &seat).await;
    assert_eq!(again.status, 201, "{}", again.text());
}

/// Whether an append waits on a lock.
async fn expiry_waiting(pool: &PgPool) -> bool {
    sqlx::query_scalar::<_, i64>(
        "select count(*) from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'
            and query like 'insert into events%'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
        > 0
}
