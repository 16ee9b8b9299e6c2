//! Requests that give up (the request timeout) while their command waits for
//! the database: work still queued is dropped rather than done behind the
//! 503 its sender got, and a keyed hold that committed anyway is found by
//! its retry instead of being refused as someone else's.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_problem, eventually, spawn_app_with, test_config, TestApp, User};

async fn impatient_app(hold_ttl_secs: u64) -> TestApp {
    let mut config = test_config();
    config.request_timeout_secs = 1;
    config.hold_ttl_secs = hold_ttl_secs;
    spawn_app_with(config).await
}

#[tokio::test]
async fn a_charge_that_gave_up_while_queued_behind_its_wallet_is_not_made_later() {
    let app = impatient_app(300).await;
    let user = Uuid::new_v4();
    app.fund(user, 100).await;
    let token = app.user_token(user).await;
    // Another session holds the wallet's balance row: the next charge's batch
    // waits on it, and the one after waits for that batch.
    let mut blocker = app.pool.begin().await.unwrap();
    sqlx::query("select 1 from balances where user_id = $1 for update")
        .bind(user)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let charge = |amount: i64| {
        app.client
            .post(format!(
                "{}/api/v1/users/{user}/balance/charges",
                app.address
            ))
            .bearer_auth(&token)
            .json(&json!({ "amount": amount }))
            .send()
    };
    let (in_batch, queued) = tokio::join!(charge(10), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        charge(1000).await
    });
    for cut in [in_batch.unwrap(), queued.unwrap()] {
        assert_eq!(cut.status(), StatusCode::SERVICE_UNAVAILABLE);
        // Cut by the request's time limit, and answered with its
        // correlation id as every answer is.
        assert!(cut.headers().contains_key("x-correlation-id"));
    }
    blocker.rollback().await.unwrap();

    // The batch that was already committing commits; the charge still
    // queued behind it is dropped.
    eventually("the charge in the batch commits", || async {
        app.balance(user).await == 110
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.balance(user).await, 110);
    let charged: i64 = sqlx::query_scalar(
        "select count(*) from events where aggregate_type = 'Wallet' and aggregate_id = $1",
    )
    .bind(user.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(charged, 2);
}

/// Sends `POST /reservations` for `seat` with `key`, as `user`.
async fn keyed_hold(app: &TestApp, user: &User, seat: &str, key: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/api/v1/reservations", app.address))
        .bearer_auth(&user.token)
        .header("idempotency-key", key)
        .json(&json!({ "seat_id": seat }))
        .send()
        .await
        .unwrap()
}

/// A keyed hold of `seat` whose request gives up (503) while another
/// session holds the date's free-seat counters, and which commits once they
/// are let go: a hold made with no answer kept.
async fn hold_committed_after_giving_up(
    app: &TestApp,
    user: &User,
    date_id: &str,
    seat: &str,
    key: &str,
) {
    let mut blocker = app.pool.begin().await.unwrap();
    sqlx::query("select 1 from concert_date_free_seats where date_id = $1::uuid for update")
        .bind(date_id)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let gave_up = keyed_hold(app, user, seat, key).await;
    assert_eq!(gave_up.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(gave_up.headers()["retry-after"], "1");
    blocker.rollback().await.unwrap();
    eventually("the hold commits after its answer", || async {
        seat_status(app, seat).await == "held"
    })
    .await;
}

async fn seat_status(app: &TestApp, seat: &str) -> String {
    sqlx::query_scalar("select status from seats where seat_id = $1::uuid")
        .bind(seat)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_keyed_hold_that_committed_after_its_request_gave_up_is_found_by_its_retry() {
    let app = impatient_app(300).await;
    let concert = app.create_concert(1, 10, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seats = app.free_seats(&user, &concert, 0).await;
    let seat = seats[0].seat_id.to_string();
    hold_committed_after_giving_up(&app, &user, &concert.date_ids[0], &seat, "hold-1").await;

    let retried = keyed_hold(&app, &user, &seat, "hold-1").await;
    assert_eq!(retried.status(), StatusCode::CREATED);
    let held: Value = retried.json().await.unwrap();
    assert_eq!(held["seat_id"], seat.as_str());
    assert_eq!(held["status"], "held");
    let reservation = held["reservation_id"].as_str().unwrap();
    let read_back = app
        .get_json(&format!("/reservations/{reservation}"), Some(&user.token))
        .await;
    assert_eq!(read_back["expires_at"], held["expires_at"]);
    // Again: the same answer.
    let again: Value = keyed_hold(&app, &user, &seat, "hold-1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, held);
    // Without a key, the user's own held seat is refused as before.
    let unkeyed = app.hold(&user, &seat).await;
    assert_eq!(unkeyed.status, 409);
}

#[tokio::test]
async fn a_keyed_retry_after_its_hold_lapsed_holds_nothing_again() {
    let app = impatient_app(2).await;
    let concert = app.create_concert(1, 10, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seat = app.first_free_seat(&user, &concert).await;
    hold_committed_after_giving_up(&app, &user, &concert.date_ids[0], &seat, "late").await;
    eventually("the hold lapses", || async {
        seat_status(&app, &seat).await == "free"
    })
    .await;

    // The retry is told the hold it repeats lapsed; holding again would be
    // a hold the reservations never show, and the scheduler never expires.
    let retried = keyed_hold(&app, &user, &seat, "late").await;
    assert_problem(retried, StatusCode::CONFLICT, "hold_expired").await;
    assert_eq!(seat_status(&app, &seat).await, "free");
    let other = app.active_user(&concert.concert_id).await;
    assert_eq!(app.hold(&other, &seat).await.status, 201);
}

#[tokio::test]
async fn a_key_sent_for_another_seat_holds_that_seat_apart() {
    let app = impatient_app(300).await;
    let concert = app.create_concert(1, 10, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seats = app.free_seats(&user, &concert, 0).await;
    let (seat, other_seat) = (seats[0].seat_id.to_string(), seats[1].seat_id.to_string());
    hold_committed_after_giving_up(&app, &user, &concert.date_ids[0], &seat, "twice").await;

    // The key and the seat name a hold: this is a hold of its own (one
    // reservation never holds two seats), and the first is still the key's
    // for its seat.
    let elsewhere = keyed_hold(&app, &user, &other_seat, "twice").await;
    assert_eq!(elsewhere.status(), StatusCode::CREATED);
    let elsewhere: Value = elsewhere.json().await.unwrap();
    assert_eq!(elsewhere["seat_id"], other_seat.as_str());
    let first = keyed_hold(&app, &user, &seat, "twice").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["seat_id"], seat.as_str());
    assert_eq!(first["status"], "held");
    assert_ne!(first["reservation_id"], elsewhere["reservation_id"]);
}
