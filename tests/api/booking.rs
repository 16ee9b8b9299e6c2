//! The whole booking, as a user meets it.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{json_of, spawn_app, spawn_app_with, test_config, User};

#[tokio::test]
async fn a_user_queues_holds_pays_and_hands_the_place_to_the_next_in_line() {
    let mut config = test_config();
    config.queue_active_max = 1;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(2, 10, 150_000).await;

    // given: two users in the queue, only the first admitted
    let first = app.active_user(&concert.concert_id).await;
    let second_id = Uuid::new_v4();
    let (status, second) = app.enter_queue(second_id, &concert.concert_id).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(second["status"], "waiting");
    assert_eq!(second["position"], 0);
    assert!(second["estimated_wait_seconds"].as_i64().unwrap() > 0);
    let second_token = second["token"].as_str().unwrap().to_string();

    // when: the first one books
    let dates = app
        .get_json(
            &format!("/concerts/{}/dates", concert.concert_id),
            Some(&first.token),
        )
        .await;
    assert_eq!(dates["dates"].as_array().unwrap().len(), 2);
    assert_eq!(dates["dates"][0]["available_seats"], 10);
    let seats = app.free_seats(&first, &concert, 0).await;
    assert_eq!(seats.len(), 10);
    let seat_id = seats[3].seat_id.to_string();
    let held = app.hold(&first, &seat_id).await;
    assert_eq!(held.status, StatusCode::CREATED);
    let reservation: Value = json_of(&held);
    assert_eq!(reservation["status"], "held");
    assert_eq!(reservation["seat_no"], 4);
    assert_eq!(app.free_seats(&first, &concert, 0).await.len(), 9);
    assert_eq!(
        app.charge(first.user_id, 200_000).await.status,
        StatusCode::OK
    );
    let paid = app
        .pay(&first, reservation["reservation_id"].as_str().unwrap())
        .await;

    // then: the seat is sold, the money taken, the token spent, the next admitted
    assert_eq!(paid.status, StatusCode::CREATED);
    let payment: Value = json_of(&paid);
    assert_eq!(payment["status"], "completed");
    assert_eq!(payment["amount"], 150_000);
    assert_eq!(payment["balance"], 50_000);
    assert_eq!(app.balance(first.user_id).await, 50_000);
    let path = format!(
        "/reservations/{}",
        reservation["reservation_id"].as_str().unwrap()
    );
    let confirmed = app.get_json(&path, Some(&first.token)).await;
    assert_eq!(confirmed["status"], "confirmed");
    let token = app
        .get_json("/queue/tokens/current", Some(&first.token))
        .await;
    assert_eq!(token["status"], "expired");
    assert_eq!(
        app.get(
            &format!("/concerts/{}/dates", concert.concert_id),
            Some(&first.token)
        )
        .await
        .status(),
        401
    );
    app.wait_until_active(&second_token).await;
    let dates = app
        .get_json(
            &format!("/concerts/{}/dates", concert.concert_id),
            Some(&second_token),
        )
        .await;
    assert_eq!(dates["dates"][0]["available_seats"], 9);
}

#[tokio::test]
async fn the_catalog_lists_scheduled_concerts_publicly() {
    let app = spawn_app_with(test_config()).await;
    let concert = app.create_concert(1, 5, 1000).await;

    let body = app.get_json("/concerts", None).await;

    let listed = body["concerts"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["concert_id"], concert.concert_id.as_str());
    assert_eq!(listed[0]["title"], "Test Concert");
}

#[tokio::test]
async fn a_stadium_date_of_fifty_thousand_seats_is_created_in_one_request() {
    let app = spawn_app_with(test_config()).await;
    let started = std::time::Instant::now();

    let concert = app.create_concert(1, 50_000, 99_000).await;

    assert!(
        started.elapsed().as_secs() < 30,
        "took {:?}",
        started.elapsed()
    );
    let user = app.active_user(&concert.concert_id).await;
    let path = format!(
        "/concerts/{}/dates/{}/seats?after_seat_no=49990&limit=100",
        concert.concert_id, concert.date_ids[0]
    );
    let page = app.get_json(&path, Some(&user.token)).await;
    assert_eq!(page["seats"].as_array().unwrap().len(), 10);
    assert_eq!(page["seats"][9]["seat_no"], 50_000);
    assert_eq!(page["next_after_seat_no"], Value::Null);
}

#[tokio::test]
async fn dates_in_the_past_or_sold_out_are_not_bookable() {
    let app = spawn_app_with(test_config()).await;
    let past = chrono::Utc::now() - chrono::Duration::days(1);
    let future = chrono::Utc::now() + chrono::Duration::days(1);
    let body = serde_json::json!({"title": "Mixed", "dates": [
        {"starts_at": past, "seats": 5, "price": 10},
        {"starts_at": future, "seats": 1, "price": 10},
    ]});
    let created: Value = app
        .post("/concerts", Some(crate::helpers::ADMIN_TOKEN), body)
        .await
        .json()
        .await
        .unwrap();
    let concert_id = created["concert_id"].as_str().unwrap();
    let user = app.active_user(concert_id).await;

    let dates = app
        .get_json(&format!("/concerts/{concert_id}/dates"), Some(&user.token))
        .await;
    assert_eq!(dates["dates"].as_array().unwrap().len(), 1);
    let seat_path = format!(
        "/concerts/{concert_id}/dates/{}/seats",
        created["dates"][1]["date_id"].as_str().unwrap()
    );
    let seats = app.get_json(&seat_path, Some(&user.token)).await;
    assert_eq!(
        app.hold(&user, seats["seats"][0]["seat_id"].as_str().unwrap())
            .await
            .status,
        201
    );

    let dates = app
        .get_json(&format!("/concerts/{concert_id}/dates"), Some(&user.token))
        .await;
    assert_eq!(dates["dates"].as_array().unwrap().len(), 0);
}

/// A `201` says where its new resource is read (RFC 9110 §15.3.2): a
/// reservation at its own path, a queue token at the current token's.
#[tokio::test]
async fn a_created_token_and_reservation_say_where_they_are_read() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 3, 10_000).await;
    let user_id = Uuid::new_v4();
    let token = app.user_token(user_id).await;
    let entry = json!({"concert_id": concert.concert_id});
    let response = app.post("/queue/tokens", Some(&token), entry.clone()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()["location"],
        "/api/v1/queue/tokens/current"
    );
    let queue_token = response.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    // Entering again answers the same token: nothing new, no Location.
    let again = app.post("/queue/tokens", Some(&token), entry).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(again.headers().get("location").is_none());

    app.wait_until_active(&queue_token).await;
    let user = User {
        user_id,
        token: queue_token,
    };
    let seat_id = app.first_free_seat(&user, &concert).await;
    let response = app
        .post(
            "/reservations",
            Some(&user.token),
            json!({"seat_id": seat_id}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let held: Value = response.json().await.unwrap();
    let reservation_id = held["reservation_id"].as_str().unwrap();
    assert_eq!(location, format!("/api/v1/reservations/{reservation_id}"));
    let path = location.trim_start_matches("/api/v1");
    let read = app.get_json(path, Some(&user.token)).await;
    assert_eq!(read, held);
}
