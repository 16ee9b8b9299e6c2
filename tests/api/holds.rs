//! Holding seats: one holder at a time, and holds that lapse.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_problem, eventually, json_of, spawn_app, spawn_app_with, test_config};

#[tokio::test]
async fn a_hundred_users_holding_one_seat_at_once_give_exactly_one_hold() {
    let mut config = test_config();
    config.queue_active_max = 200;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 10, 1000).await;
    let users = join_all((0..100).map(|_| app.active_user(&concert.concert_id))).await;
    let seat_id = app.first_free_seat(&users[0], &concert).await;

    let responses = join_all(users.iter().map(|user| app.hold(user, &seat_id))).await;

    let mut won = 0;
    for response in responses {
        if response.status == StatusCode::CREATED {
            won += 1;
        } else {
            assert_problem(response, StatusCode::CONFLICT, "seat_unavailable").await;
        }
    }
    assert_eq!(won, 1);
    let events: i64 = sqlx::query_scalar(
        "select count(*) from events where aggregate_type = 'Seat' and aggregate_id = $1",
    )
    .bind(&seat_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(events, 1, "exactly one SeatHeld was stored");
}

#[tokio::test]
async fn holding_a_held_seat_is_a_409_problem() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 3, 1000).await;
    let (first, second) = (
        app.active_user(&concert.concert_id).await,
        app.active_user(&concert.concert_id).await,
    );
    let seat_id = app.first_free_seat(&first, &concert).await;
    assert_eq!(app.hold(&first, &seat_id).await.status, StatusCode::CREATED);

    let response = app.hold(&second, &seat_id).await;

    assert_problem(response, StatusCode::CONFLICT, "seat_unavailable").await;
}

#[tokio::test]
async fn a_hold_reads_back_exactly_as_it_was_answered() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 3, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seat_id = app.first_free_seat(&user, &concert).await;
    let held = json_of(&app.hold(&user, &seat_id).await);

    let read = app
        .get_json(
            &format!("/reservations/{}", held["reservation_id"].as_str().unwrap()),
            Some(&user.token),
        )
        .await;

    assert_eq!(read, held);
}

#[tokio::test]
async fn a_reservation_reads_with_its_holders_token_of_its_concert_and_not_of_another() {
    let app = spawn_app().await;
    let (concert, other) = (
        app.create_concert(1, 3, 1000).await,
        app.create_concert(1, 3, 1000).await,
    );
    let user = app.active_user(&concert.concert_id).await;
    let seat_id = app.first_free_seat(&user, &concert).await;
    let held = json_of(&app.hold(&user, &seat_id).await);
    let path = format!("/reservations/{}", held["reservation_id"].as_str().unwrap());
    let (_, entered) = app.enter_queue(user.user_id, &other.concert_id).await;
    let other_concerts_token = entered["token"].as_str().unwrap();

    let with_other = app.get(&path, Some(other_concerts_token)).await;
    let with_own = app.get(&path, Some(&user.token)).await;

    assert_problem(with_other, StatusCode::FORBIDDEN, "token_not_active").await;
    assert_eq!(with_own.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_lapsed_hold_frees_the_seat_reads_expired_and_cannot_be_paid() {
    let mut config = test_config();
    config.hold_ttl_secs = 1;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 3, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seat_id = app.first_free_seat(&user, &concert).await;
    let reservation: Value = json_of(&app.hold(&user, &seat_id).await);
    let reservation_id = reservation["reservation_id"].as_str().unwrap();
    assert_eq!(app.charge(user.user_id, 5000).await.status, StatusCode::OK);

    eventually("the scheduler frees the seat", || async {
        let seats = app.free_seats(&user, &concert, 0).await;
        seats.iter().any(|seat| seat.seat_id.to_string() == seat_id)
    })
    .await;

    let read = app
        .get_json(
            &format!("/reservations/{reservation_id}"),
            Some(&user.token),
        )
        .await;
    assert_eq!(read["status"], "expired");
    let seats = app.free_seats(&user, &concert, 0).await;
    assert!(
        seats.iter().any(|seat| seat.seat_id.to_string() == seat_id),
        "the seat is listed again"
    );
    let expired: i64 = sqlx::query_scalar(
        "select count(*) from events where event_type = 'HoldExpired' and aggregate_id = $1",
    )
    .bind(&seat_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(expired, 1, "the scheduler recorded HoldExpired once");
    let paid = app.pay(&user, reservation_id).await;
    assert_problem(paid, StatusCode::CONFLICT, "hold_expired").await;
    assert_eq!(app.balance(user.user_id).await, 5000);
}

#[tokio::test]
async fn an_expired_seat_can_be_held_again_by_someone_else() {
    let mut config = test_config();
    config.hold_ttl_secs = 1;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 1, 1000).await;
    let (first, second) = (
        app.active_user(&concert.concert_id).await,
        app.active_user(&concert.concert_id).await,
    );
    let seat_id = app.first_free_seat(&first, &concert).await;
    assert_eq!(app.hold(&first, &seat_id).await.status, StatusCode::CREATED);

    eventually("the lapsed seat can be held again", || async {
        app.hold(&second, &seat_id).await.status == StatusCode::CREATED
    })
    .await;
}
