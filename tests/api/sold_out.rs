//! A token's body says `sold_out` once no seat of a date still ahead is free
//! or held: the people still in line learn that waiting can buy nothing.
//! A held seat may come back, so it still counts as left.

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    eventually, json_of, spawn_app_with, test_config, TestApp, User, ADMIN_TOKEN,
};

async fn current(app: &TestApp, token: &str) -> Value {
    json_of(&app.api.current_token(token).await.unwrap())
}

async fn sold_out(app: &TestApp, token: &str) -> bool {
    current(app, token).await["sold_out"]
        .as_bool()
        .expect("sold_out is a boolean")
}

/// Holds `seat_id` for the user, and charges enough to pay for it.
async fn hold_funded(app: &TestApp, user: &User, seat_id: &str) -> Value {
    let held = app.hold(user, seat_id).await;
    assert_eq!(held.status, StatusCode::CREATED);
    app.fund(user.user_id, 1_000).await;
    json_of(&held)
}

#[tokio::test]
async fn the_line_is_told_once_every_seat_is_sold_and_not_while_one_is_only_held() {
    let mut config = test_config();
    config.queue_active_max = 2;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 2, 1_000).await;
    let (first, second) = (
        app.active_user(&concert.concert_id).await,
        app.active_user(&concert.concert_id).await,
    );
    let (_, waiting) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    let waiting = waiting["token"].as_str().unwrap().to_string();
    assert_eq!(current(&app, &waiting).await["status"], "waiting");
    assert!(!sold_out(&app, &waiting).await);

    let seats = app.free_seats(&first, &concert, 0).await;
    let first_hold = hold_funded(&app, &first, &seats[0].seat_id.to_string()).await;
    let second_hold = hold_funded(&app, &second, &seats[1].seat_id.to_string()).await;
    // Both seats held, neither sold: a hold may still lapse.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(!sold_out(&app, &waiting).await);
    let reservation = |hold: &Value| hold["reservation_id"].as_str().unwrap().to_string();
    assert_eq!(app.pay(&first, &reservation(&first_hold)).await.status, 201);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(!sold_out(&app, &waiting).await, "one seat is still held");
    assert_eq!(
        app.pay(&second, &reservation(&second_hold)).await.status,
        201
    );

    // Within a tenth of a second, though "a seat is left" was read just
    // before and would otherwise be answered for a second: a sale makes it
    // stale.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sold_out(&app, &waiting).await);
    // Every body of the shape says it: a spent token's, and a new entry's.
    assert!(sold_out(&app, &first.token).await);
    let (status, entered) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(entered["sold_out"], true);
}

#[tokio::test]
async fn a_concert_whose_last_date_has_begun_is_sold_out() {
    let app = spawn_app_with(test_config()).await;
    let body = json!({"title": "Matinee", "dates": [
        {"starts_at": (Utc::now() + chrono::Duration::seconds(2)).to_rfc3339(), "seats": 3, "price": 1_000},
        {"starts_at": (Utc::now() - chrono::Duration::days(1)).to_rfc3339(), "seats": 3, "price": 1_000}]});
    let response = app.post("/concerts", Some(ADMIN_TOKEN), body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let concert_id = response.json::<Value>().await.unwrap()["concert_id"]
        .as_str()
        .unwrap()
        .to_string();
    let user = app.active_user(&concert_id).await;
    assert!(!sold_out(&app, &user.token).await);

    tokio::time::sleep(Duration::from_secs(2)).await;

    eventually("the concert is over", || async {
        sold_out(&app, &user.token).await
    })
    .await;
}
