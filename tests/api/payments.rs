//! Paying for held seats (with an `Idempotency-Key`: `payment_keys.rs`).

use reqwest::StatusCode;
use serde_json::Value;

use uuid::Uuid;

use crate::helpers::{assert_problem, json_of, spawn_app, Concert, TestApp, User};

pub(crate) async fn held_seat(
    app: &TestApp,
    concert: &Concert,
    user: &User,
    index: usize,
) -> String {
    let seat_id = app.free_seats(user, concert, 0).await[index]
        .seat_id
        .to_string();
    let reservation: Value = json_of(&app.hold(user, &seat_id).await);
    reservation["reservation_id"].as_str().unwrap().to_string()
}

/// A user of a new concert (seats at 1,000) holding its first seat, with
/// 10,000 in the wallet: where most payments here start.
pub(crate) async fn ready_to_pay(app: &TestApp) -> (User, Uuid) {
    let concert = app.create_concert(1, 5, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let reservation_id = held_seat(app, &concert, &user, 0).await;
    app.fund(user.user_id, 10_000).await;
    (user, reservation_id.parse().unwrap())
}

#[tokio::test]
async fn paying_with_too_little_balance_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 150_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let reservation_id = held_seat(&app, &concert, &user, 0).await;
    app.fund(user.user_id, 100_000).await;

    let response = app.pay(&user, &reservation_id).await;
    // A queue token does not open the wallet: the refusal names the price,
    // not the balance.
    let problem = json_of(&response);

    assert_problem(
        response,
        StatusCode::PAYMENT_REQUIRED,
        "insufficient_balance",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("150000"));
    assert!(!problem.to_string().contains("100000"), "{problem}");
    assert_eq!(app.balance(user.user_id).await, 100_000);
    assert_eq!(app.reservation_status(&user, &reservation_id).await, "held");
    let token = app
        .get_json("/queue/tokens/current", Some(&user.token))
        .await;
    assert_eq!(token["status"], "active");
}

#[tokio::test]
async fn a_reservation_is_paid_once_and_paying_it_again_is_already_paid_whatever_the_token() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let reservation_id = held_seat(&app, &concert, &user, 0).await;
    app.fund(user.user_id, 10_000).await;
    assert_eq!(
        app.pay(&user, &reservation_id).await.status,
        StatusCode::CREATED
    );
    // With the token that paying spent: the second of two payments sent at
    // once reads it before or after the first spent it, and is told the
    // truth either way.
    let with_spent = app.pay(&user, &reservation_id).await;
    // With a new token, as the user may get to try again.
    let (_, again) = app.enter_queue(user.user_id, &concert.concert_id).await;
    let again = User {
        user_id: user.user_id,
        token: again["token"].as_str().unwrap().to_string(),
    };
    app.wait_until_active(&again.token).await;
    let with_new = app.pay(&again, &reservation_id).await;

    assert_problem(with_spent, StatusCode::CONFLICT, "already_paid").await;
    assert_problem(with_new, StatusCode::CONFLICT, "already_paid").await;
    assert_eq!(app.balance(user.user_id).await, 9_000);
}

#[tokio::test]
async fn a_keyed_retry_is_answered_its_receipt_only_with_a_token_of_the_reservations_concert() {
    let app = spawn_app().await;
    let (concert, elsewhere) = (
        app.create_concert(1, 5, 1000).await,
        app.create_concert(1, 5, 1000).await,
    );
    let user = app.active_user(&concert.concert_id).await;
    let reservation_id = held_seat(&app, &concert, &user, 0).await;
    app.fund(user.user_id, 10_000).await;
    let (_, other) = app.enter_queue(user.user_id, &elsewhere.concert_id).await;
    let other = other["token"].as_str().unwrap().to_string();
    app.wait_until_active(&other).await;
    let api = &app.api;
    let pay_with = |token: String| {
        let reservation_id = reservation_id.parse().unwrap();
        async move {
            api.pay(&token, reservation_id, Some("pay-for-the-seat"))
                .await
                .unwrap()
        }
    };

    let paid = pay_with(user.token.clone()).await;
    let from_elsewhere = pay_with(other).await;
    let retried = pay_with(user.token.clone()).await;

    assert_eq!(paid.status, StatusCode::CREATED);
    // As without the key: before, the stored receipt came first.
    assert_problem(from_elsewhere, StatusCode::FORBIDDEN, "token_not_active").await;
    assert_eq!((retried.status, &retried.body), (paid.status, &paid.body));
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
    app.fund(other.user_id, 10_000).await;

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
async fn a_genuine_token_of_a_ticket_not_stored_cannot_pay() {
    let app = spawn_app().await;
    let (user, reservation_id) = ready_to_pay(&app).await;
    // Signed with this database's secret, for a ticket that never entered a line.
    let signer = concert::tokens::TokenSigner::from_database(&app.pool)
        .await
        .unwrap();
    let stranger = User {
        user_id: user.user_id,
        token: signer.issue(concert::ids::TicketId::new()),
    };

    let response = app.pay(&stranger, &reservation_id.to_string()).await;

    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    assert_eq!(app.balance(user.user_id).await, 10_000);
    assert_eq!(
        app.reservation_status(&user, &reservation_id.to_string())
            .await,
        "held"
    );
}

#[tokio::test]
async fn a_token_of_another_concert_cannot_pay_and_spends_nothing() {
    let app = spawn_app().await;
    let (here, elsewhere) = (
        app.create_concert(1, 5, 1000).await,
        app.create_concert(1, 5, 1000).await,
    );
    let user = app.active_user(&here.concert_id).await;
    let (_, other) = app.enter_queue(user.user_id, &elsewhere.concert_id).await;
    let other = User {
        user_id: user.user_id,
        token: other["token"].as_str().unwrap().to_string(),
    };
    app.wait_until_active(&other.token).await;
    let reservation_id = held_seat(&app, &here, &user, 0).await;
    app.fund(user.user_id, 10_000).await;

    let response = app.pay(&other, &reservation_id).await;

    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;
    assert_eq!(app.balance(user.user_id).await, 10_000);
    assert_eq!(app.reservation_status(&user, &reservation_id).await, "held");
    for token in [&user.token, &other.token] {
        let standing = app.get_json("/queue/tokens/current", Some(token)).await;
        assert_eq!(standing["status"], "active", "{standing}");
    }
}
