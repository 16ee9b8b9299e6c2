//! Paying for held seats.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_problem, json_of, spawn_app, Concert, TestApp, User};

async fn held_seat(app: &TestApp, concert: &Concert, user: &User, index: usize) -> String {
    let seat_id = app.free_seats(user, concert, 0).await[index]
        .seat_id
        .to_string();
    let reservation: Value = json_of(&app.hold(user, &seat_id).await);
    reservation["reservation_id"].as_str().unwrap().to_string()
}

/// The status the holder reads back for a reservation.
async fn reservation_status(app: &TestApp, user: &User, reservation_id: &str) -> String {
    let read = app
        .get_json(
            &format!("/reservations/{reservation_id}"),
            Some(&user.token),
        )
        .await;
    read["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn paying_with_too_little_balance_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 150_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let reservation_id = held_seat(&app, &concert, &user, 0).await;
    app.charge(user.user_id, 100_000).await;

    let response = app.pay(&user, &reservation_id).await;

    assert_problem(
        response,
        StatusCode::PAYMENT_REQUIRED,
        "insufficient_balance",
    )
    .await;
    assert_eq!(app.balance(user.user_id).await, 100_000);
    assert_eq!(
        reservation_status(&app, &user, &reservation_id).await,
        "held"
    );
    let token = app
        .get_json("/queue/tokens/current", Some(&user.token))
        .await;
    assert_eq!(token["status"], "active");
}

#[tokio::test]
async fn a_reservation_is_paid_once() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let reservation_id = held_seat(&app, &concert, &user, 0).await;
    app.charge(user.user_id, 10_000).await;
    assert_eq!(
        app.pay(&user, &reservation_id).await.status,
        StatusCode::CREATED
    );
    // The token is spent by paying; a new one lets the user try again.
    let (_, again) = app.enter_queue(user.user_id, &concert.concert_id).await;
    let again = User {
        user_id: user.user_id,
        token: again["token"].as_str().unwrap().to_string(),
    };
    app.wait_until_active(&again.token).await;

    let response = app.pay(&again, &reservation_id).await;

    assert_problem(response, StatusCode::CONFLICT, "already_paid").await;
    assert_eq!(app.balance(user.user_id).await, 9_000);
}

#[tokio::test]
async fn another_users_reservation_is_not_found() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 1000).await;
    let (owner, other) = (
        app.active_user(&concert.concert_id).await,
        app.active_user(&concert.concert_id).await,
    );
    let reservation_id = held_seat(&app, &concert, &owner, 0).await;
    app.charge(other.user_id, 10_000).await;

    let paid = app.pay(&other, &reservation_id).await;
    let read = app
        .get(
            &format!("/reservations/{reservation_id}"),
            Some(&other.token),
        )
        .await;

    assert_problem(paid, StatusCode::NOT_FOUND, "not_found").await;
    assert_problem(read, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.balance(other.user_id).await, 10_000);
}

#[tokio::test]
async fn a_retried_payment_with_the_same_idempotency_key_pays_once() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let reservation_id = held_seat(&app, &concert, &user, 0).await;
    app.charge(user.user_id, 10_000).await;
    let send = || {
        app.client
            .post(app.url("/payments"))
            .bearer_auth(&user.token)
            .header("idempotency-key", "pay-once")
            .json(&serde_json::json!({"reservation_id": reservation_id}))
            .send()
    };

    let first = send().await.unwrap();
    let (first_status, first_body): (_, Value) = (first.status(), first.json().await.unwrap());
    let retry = send().await.unwrap();
    let (retry_status, retry_body): (_, Value) = (retry.status(), retry.json().await.unwrap());

    assert_eq!(first_status, StatusCode::CREATED);
    assert_eq!((retry_status, retry_body), (first_status, first_body));
    assert_eq!(app.balance(user.user_id).await, 9_000);
}

#[tokio::test]
async fn a_genuine_token_of_a_ticket_not_stored_cannot_pay() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let reservation_id = held_seat(&app, &concert, &user, 0).await;
    app.charge(user.user_id, 10_000).await;
    // Signed with this database's secret, for a ticket that never entered a line.
    let signer = concert::tokens::TokenSigner::from_database(&app.pool)
        .await
        .unwrap();
    let stranger = User {
        user_id: user.user_id,
        token: signer.issue(concert::ids::TicketId::new()),
    };

    let response = app.pay(&stranger, &reservation_id).await;

    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    assert_eq!(app.balance(user.user_id).await, 10_000);
    assert_eq!(
        reservation_status(&app, &user, &reservation_id).await,
        "held"
    );
}
