//! Missing, forged, garbage, waiting, other-concert and admin tokens where a
//! queue token belongs, and queue or wrong tokens where the admin token belongs.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::{catalog, date, dates_path, free_seat_count, seats_path};
use crate::helpers::{
    assert_problem, assert_problem_for, spawn_app, spawn_app_with, test_config, User, ADMIN_TOKEN,
};

/// A token of the right shape, `<32 hex>.<64 hex>`, that the server never issued.
fn forged_token() -> String {
    let signature: String = (0..2)
        .map(|_| Uuid::new_v4().simple().to_string())
        .collect();
    format!("{}.{}", Uuid::new_v4().simple(), signature)
}

#[tokio::test]
async fn a_request_without_a_token_is_unauthorized() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seat_id = app.first_free_seat(&user, &concert).await;

    let response = app.get("/queue/tokens/current", None).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app.get(&dates_path(&concert), None).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app.get(&seats_path(&concert, 0), None).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app
        .post("/reservations", None, json!({"seat_id": seat_id}))
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app
        .get(&format!("/reservations/{}", Uuid::new_v4()), None)
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app
        .post("/payments", None, json!({"reservation_id": Uuid::new_v4()}))
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app
        .post(
            "/concerts",
            None,
            json!({"title": "x", "dates": [date(json!(1), json!(1))]}),
        )
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let stranger = Uuid::new_v4();
    let response = app
        .post(
            "/queue/tokens",
            None,
            json!({"user_id": stranger, "concert_id": concert.concert_id}),
        )
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app
        .get(&format!("/users/{}/balance", user.user_id), None)
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app
        .post(
            &format!("/users/{}/balance/charges", user.user_id),
            None,
            json!({"amount": 10}),
        )
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;

    assert_eq!(free_seat_count(&app, &user, &concert, 0).await, 5);
    assert_eq!(catalog(&app).await.len(), 1);
    assert_eq!(app.balance(user.user_id).await, 0);
    let entered: i64 =
        sqlx::query_scalar("select count(*) from events where event_type = 'QueueEntered'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(entered, 1, "only the active user entered the queue");
}

#[tokio::test]
async fn a_forged_token_of_the_right_shape_is_unauthorized() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seat_id = app.first_free_seat(&user, &concert).await;

    let forged = forged_token();
    assert_eq!(forged.len(), user.token.len());
    // The real ticket id with a made-up signature is no better.
    let (ticket_id, _) = user.token.split_once('.').unwrap();
    let resigned = format!("{ticket_id}.{}", forged.split_once('.').unwrap().1);
    for token in [forged, resigned] {
        let response = app.get("/queue/tokens/current", Some(&token)).await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
        let response = app.get(&dates_path(&concert), Some(&token)).await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
        let response = app
            .post("/reservations", Some(&token), json!({"seat_id": seat_id}))
            .await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    }
    assert_eq!(free_seat_count(&app, &user, &concert, 0).await, 5);
}

#[tokio::test]
async fn a_garbage_token_is_unauthorized() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let tampered = format!("{}0", user.token);
    // The same token with the last signature digit changed.
    let mut flipped = user.token.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == '0' { '1' } else { '0' });
    for token in [
        "garbage",
        "",
        ".",
        "a.b",
        "🎫",
        "' or 1=1 --",
        &tampered,
        &flipped,
        &"f".repeat(10_000),
    ] {
        let response = app.get("/queue/tokens/current", Some(token)).await;
        assert_problem_for(
            format!("token {token:?}"),
            response,
            StatusCode::UNAUTHORIZED,
            "token_invalid",
        )
        .await;
    }
    // Not a bearer token at all.
    for header in ["Basic dXNlcjpwYXNz", "Bearer", user.token.as_str()] {
        let response = app
            .client
            .get(app.url("/queue/tokens/current"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_problem_for(
            format!("header {header:?}"),
            response,
            StatusCode::UNAUTHORIZED,
            "token_invalid",
        )
        .await;
    }
}

#[tokio::test]
async fn a_waiting_token_is_not_active_for_dates_seats_holds_or_payments() {
    let mut config = test_config();
    config.queue_active_max = 1;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let first = app.active_user(&concert.concert_id).await;
    let waiting_user = Uuid::new_v4();
    let (status, body) = app.enter_queue(waiting_user, &concert.concert_id).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["status"], "waiting");
    let waiting = User {
        user_id: waiting_user,
        token: body["token"].as_str().unwrap().to_string(),
    };
    let seat_id = app.first_free_seat(&first, &concert).await;
    let response = app.charge(waiting_user, 100_000).await;
    assert_eq!(response.status, StatusCode::OK);

    let response = app.get(&dates_path(&concert), Some(&waiting.token)).await;
    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;
    let response = app
        .get(&seats_path(&concert, 0), Some(&waiting.token))
        .await;
    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;
    let response = app.hold(&waiting, &seat_id).await;
    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;
    let response = app.pay(&waiting, &Uuid::new_v4().to_string()).await;
    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;

    assert_eq!(free_seat_count(&app, &first, &concert, 0).await, 5);
    assert_eq!(app.balance(waiting_user).await, 100_000);
    let body = app
        .get_json("/queue/tokens/current", Some(&waiting.token))
        .await;
    assert_eq!(body["status"], "waiting");
}

#[tokio::test]
async fn a_token_of_another_concert_is_not_active_here() {
    let app = spawn_app().await;
    let here = app.create_concert(1, 5, 10_000).await;
    let elsewhere = app.create_concert(1, 5, 10_000).await;
    let local = app.active_user(&here.concert_id).await;
    let visitor = app.active_user(&elsewhere.concert_id).await;
    let seat_id = app.first_free_seat(&local, &here).await;

    let response = app.get(&dates_path(&here), Some(&visitor.token)).await;
    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;
    let response = app.get(&seats_path(&here, 0), Some(&visitor.token)).await;
    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;
    // A date of the other concert under this concert's path is no way round.
    let mixed = format!(
        "/concerts/{}/dates/{}/seats",
        here.concert_id, elsewhere.date_ids[0]
    );
    let response = app.get(&mixed, Some(&visitor.token)).await;
    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;
    let response = app.hold(&visitor, &seat_id).await;
    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;

    assert_eq!(free_seat_count(&app, &local, &here, 0).await, 5);
    assert_eq!(free_seat_count(&app, &visitor, &elsewhere, 0).await, 5);
}

#[tokio::test]
async fn the_admin_token_is_not_a_queue_token() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seat_id = app.first_free_seat(&user, &concert).await;

    let response = app.get("/queue/tokens/current", Some(ADMIN_TOKEN)).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app.get(&dates_path(&concert), Some(ADMIN_TOKEN)).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app.get(&seats_path(&concert, 0), Some(ADMIN_TOKEN)).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app
        .post(
            "/reservations",
            Some(ADMIN_TOKEN),
            json!({"seat_id": seat_id}),
        )
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app
        .post(
            "/payments",
            Some(ADMIN_TOKEN),
            json!({"reservation_id": Uuid::new_v4()}),
        )
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    assert_eq!(free_seat_count(&app, &user, &concert, 0).await, 5);
}

#[tokio::test]
async fn a_queue_token_is_not_an_admin_token() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let body = json!({"title": "Sneaky", "dates": [date(json!(5), json!(1))]});
    let response = app.post("/concerts", Some(&user.token), body).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    assert_eq!(catalog(&app).await.len(), 1);
}

#[tokio::test]
async fn a_wrong_admin_token_is_unauthorized() {
    let app = spawn_app().await;
    let wrong = [
        "wrong-admin-token".to_string(),
        format!("{ADMIN_TOKEN}x"),
        ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1].to_string(),
        ADMIN_TOKEN.to_uppercase(),
    ];
    for token in &wrong {
        let body = json!({"title": "Nope", "dates": [date(json!(5), json!(1))]});
        let response = app.post("/concerts", Some(token), body).await;
        assert_problem_for(
            format!("token {token:?}"),
            response,
            StatusCode::UNAUTHORIZED,
            "token_invalid",
        )
        .await;
    }
    assert!(catalog(&app).await.is_empty());
}
