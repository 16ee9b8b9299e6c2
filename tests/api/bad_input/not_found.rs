//! Ids that name nothing, or another user's reservation: 404, and nothing moved.

use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use super::free_seat_count;
use crate::helpers::{assert_problem, json_of, spawn_app};

#[tokio::test]
async fn queueing_for_an_unknown_concert_is_not_found() {
    let app = spawn_app().await;
    app.create_concert(1, 5, 10_000).await;
    let (status, body) = app
        .enter_queue(Uuid::new_v4(), &Uuid::new_v4().to_string())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["status"], 404);
}

#[tokio::test]
async fn dates_and_seats_of_an_unknown_date_are_not_found() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let path = format!(
        "/concerts/{}/dates/{}/seats",
        concert.concert_id,
        Uuid::new_v4()
    );
    let response = app.get(&path, Some(&user.token)).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn holding_an_unknown_seat_is_not_found() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let response = app.hold(&user, &Uuid::new_v4().to_string()).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    // A date id is not a seat id either.
    let response = app.hold(&user, &concert.date_ids[0]).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(free_seat_count(&app, &user, &concert, 0).await, 5);
}

#[tokio::test]
async fn an_unknown_reservation_is_not_found_and_paying_for_it_debits_nothing() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let response = app.charge(user.user_id, 50_000).await;
    assert_eq!(response.status, StatusCode::OK);

    let unknown = Uuid::new_v4().to_string();
    let response = app
        .get(&format!("/reservations/{unknown}"), Some(&user.token))
        .await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = app.pay(&user, &unknown).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    // A seat id is not a reservation id.
    let seat_id = app.first_free_seat(&user, &concert).await;
    let response = app.pay(&user, &seat_id).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;

    assert_eq!(app.balance(user.user_id).await, 50_000);
    assert_eq!(free_seat_count(&app, &user, &concert, 0).await, 5);
    let body = app
        .get_json("/queue/tokens/current", Some(&user.token))
        .await;
    assert_eq!(body["status"], "active");
}

#[tokio::test]
async fn another_users_reservation_is_not_found_for_reading_or_paying() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let holder = app.active_user(&concert.concert_id).await;
    let other = app.active_user(&concert.concert_id).await;
    let response = app.charge(other.user_id, 50_000).await;
    assert_eq!(response.status, StatusCode::OK);
    let seat_id = app.first_free_seat(&holder, &concert).await;
    let response = app.hold(&holder, &seat_id).await;
    assert_eq!(response.status, StatusCode::CREATED);
    let reservation: Value = json_of(&response);
    let reservation_id = reservation["reservation_id"].as_str().unwrap().to_string();

    let response = app
        .get(
            &format!("/reservations/{reservation_id}"),
            Some(&other.token),
        )
        .await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = app.pay(&other, &reservation_id).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;

    // Nothing moved: the other user kept their money and token, the holder their hold.
    assert_eq!(app.balance(other.user_id).await, 50_000);
    let body = app
        .get_json("/queue/tokens/current", Some(&other.token))
        .await;
    assert_eq!(body["status"], "active");
    let response = app
        .get(
            &format!("/reservations/{reservation_id}"),
            Some(&holder.token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "held");
    assert_eq!(free_seat_count(&app, &other, &concert, 0).await, 4);
}
