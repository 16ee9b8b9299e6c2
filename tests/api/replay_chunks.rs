//! `concert replay` applies the log in chunks with the projections'
//! set-based statements: runs of one aggregate type in which each stream's
//! events stand together. Logs whose streams' events stand in a row (a
//! wallet charged again and again, a seat held, lapsed and held again, a
//! ticket entered and admitted) rebuild the read models the service wrote
//! one batch at a time.

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::audit::until_a_hold_expired;
use crate::helpers::{json_of, spawn_app_with, test_config};

/// The longest run of consecutive events of one stream of `aggregate_type`
/// in the log's order.
async fn longest_run(pool: &PgPool, aggregate_type: &str) -> usize {
    concert::event_log::assign_positions(pool).await.unwrap();
    let log: Vec<(String, String)> =
        sqlx::query_as("select aggregate_type, aggregate_id from events order by position")
            .fetch_all(pool)
            .await
            .unwrap();
    let (mut longest, mut run) = (0, 0);
    for (at, stream) in log.iter().enumerate() {
        run = if at > 0 && log[at - 1] == *stream {
            run + 1
        } else {
            1
        };
        if stream.0 == aggregate_type {
            longest = longest.max(run);
        }
    }
    longest
}

#[tokio::test]
async fn a_replay_in_chunks_rebuilds_streams_whose_events_stand_in_a_row() {
    let mut config = test_config();
    config.hold_ttl_secs = 1;
    let app = spawn_app_with(config).await;

    // A wallet charged three times in a row, another, then the first again.
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    for (user, amount) in [
        (first, 100),
        (first, 200),
        (first, 300),
        (second, 50),
        (first, 5),
    ] {
        assert_eq!(app.charge(user, amount).await.status, 200);
    }

    // One seat held, lapsed, held again by another user and sold.
    let concert = app.create_concert(1, 4, 1000).await;
    let lapsing = app.active_user(&concert.concert_id).await;
    let seat = app.first_free_seat(&lapsing, &concert).await;
    assert_eq!(app.hold(&lapsing, &seat).await.status, 201);
    until_a_hold_expired(&app.pool).await;
    let buyer = app.active_user(&concert.concert_id).await;
    app.fund(buyer.user_id, 1000).await;
    let held: Value = json_of(&app.hold(&buyer, &seat).await);
    let reservation = held["reservation_id"].as_str().unwrap();
    assert_eq!(app.pay(&buyer, reservation).await.status, 201);

    // The log has the shapes this test is about.
    assert!(longest_run(&app.pool, "Wallet").await >= 3);
    assert!(longest_run(&app.pool, "QueueTicket").await >= 2);
    let before = concert::replay::dump_read_models(&app.pool).await.unwrap();

    let replayed = concert::replay::replay(&app.pool, &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(replayed.chain_breaks, 0, "a log the service wrote");

    let after = concert::replay::dump_read_models(&app.pool).await.unwrap();
    for ((table, rows_before), (_, rows_after)) in before.iter().zip(&after) {
        assert_eq!(rows_before, rows_after, "{table} differs after the replay");
    }
}
