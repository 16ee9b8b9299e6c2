//! Requests that give up (the request timeout) while their command waits for
//! the database: work still queued is dropped rather than done behind the
//! 503 its sender got, and a keyed hold that committed anyway is found by
//! its retry instead of being refused as someone else's.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{eventually, spawn_app_with, test_config, TestApp};

async fn impatient_app() -> TestApp {
    let mut config = test_config();
    config.request_timeout_secs = 1;
    spawn_app_with(config).await
}

#[tokio::test]
async fn a_charge_that_gave_up_while_queued_behind_its_wallet_is_not_made_later() {
    let app = impatient_app().await;
    let user = Uuid::new_v4();
    app.charge(user, 100).await;
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
    assert_eq!(in_batch.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(queued.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
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

#[tokio::test]
async fn a_keyed_hold_that_committed_after_its_request_gave_up_is_found_by_its_retry() {
    let app = impatient_app().await;
    let concert = app.create_concert(1, 10, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seat = app.first_free_seat(&user, &concert).await;
    let other_seat = app.free_seats(&user, &concert, 0).await[1]
        .seat_id
        .to_string();
    // Another session holds the date's free-seat counters: the hold's batch
    // waits on them past the request timeout, then commits.
    let mut blocker = app.pool.begin().await.unwrap();
    sqlx::query("select 1 from concert_date_free_seats where date_id = $1::uuid for update")
        .bind(&concert.date_ids[0])
        .execute(&mut *blocker)
        .await
        .unwrap();
    let hold = |seat: &str, key: &str| {
        app.client
            .post(format!("{}/api/v1/reservations", app.address))
            .bearer_auth(&user.token)
            .header("idempotency-key", key)
            .json(&json!({ "seat_id": seat }))
            .send()
    };
    let gave_up = hold(&seat, "hold-1").await.unwrap();
    assert_eq!(gave_up.status(), StatusCode::SERVICE_UNAVAILABLE);
    blocker.rollback().await.unwrap();
    eventually("the hold commits after its answer", || async {
        let status: String =
            sqlx::query_scalar("select status from seats where seat_id = $1::uuid")
                .bind(&seat)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        status == "held"
    })
    .await;

    let retried = hold(&seat, "hold-1").await.unwrap();
    assert_eq!(retried.status(), StatusCode::CREATED);
    let held: Value = retried.json().await.unwrap();
    assert_eq!(held["seat_id"], seat.as_str());
    assert_eq!(held["status"], "held");
    let reservation = held["reservation_id"].as_str().unwrap();
    let read_back = app
        .get_json(&format!("/reservations/{reservation}"), Some(&user.token))
        .await;
    assert_eq!(read_back["expires_at"], held["expires_at"]);
    // Again: the same answer. The key for another seat: refused.
    let again: Value = hold(&seat, "hold-1").await.unwrap().json().await.unwrap();
    assert_eq!(again, held);
    let reused = hold(&other_seat, "hold-1").await.unwrap();
    assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Without a key, the user's own held seat is refused as before.
    let unkeyed = app.hold(&user, &seat).await;
    assert_eq!(unkeyed.status, 409);
}
