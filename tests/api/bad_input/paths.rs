//! Paths that are not ids or not routes, and a route asked with the wrong method.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, spawn_app, ADMIN_TOKEN};

#[tokio::test]
async fn a_bad_uuid_in_a_path_is_a_bad_request() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let user_token = app.user_token(user.user_id).await;

    // The path is checked before the token: 400 with or without one.
    for token in [None, Some(user_token.as_str())] {
        let response = app.get("/users/not-a-uuid/balance", token).await;
        assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
        let response = app
            .post("/users/12345/balance/charges", token, json!({"amount": 10}))
            .await;
        assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
    }
    let response = app.get("/concerts/nope/dates", Some(&user.token)).await;
    assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
    let path = format!("/concerts/{}/dates/nope/seats", concert.concert_id);
    let response = app.get(&path, Some(&user.token)).await;
    assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
    let response = app
        .get("/reservations/'%20or%201=1", Some(&user.token))
        .await;
    assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
}

/// The audit's routes follow the same order: a malformed path or query is
/// `400` before the admin token is looked at. They checked the token first.
#[tokio::test]
async fn the_audit_routes_check_their_path_and_query_before_the_admin_token() {
    let app = spawn_app().await;
    for token in [None, Some(ADMIN_TOKEN)] {
        for path in [
            "/audit/streams/Concert/not-a-uuid",
            "/audit/events?limit=abc",
            "/audit/events?after=1.5",
        ] {
            let response = app.get(path, token).await;
            assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
        }
    }
    let response = app.get("/audit/events?limit=1", None).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
}

/// Digits beyond a number's type are a number out of range, as `limit=5001`
/// is: `422` once the token is checked, like every range, and `401` without
/// one. They were `422` before the token was looked at.
#[tokio::test]
async fn a_number_beyond_its_type_in_a_query_is_out_of_range_after_the_token_is_checked() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seats = super::seats_path(&concert, 0);
    for (path, token) in [
        (
            "/audit/events?limit=9223372036854775808".to_string(),
            ADMIN_TOKEN,
        ),
        (
            "/audit/events?after=-99999999999999999999".to_string(),
            ADMIN_TOKEN,
        ),
        (format!("{seats}?limit=99999999999999999999"), &user.token),
        (
            format!("{seats}?after_seat_no=-9223372036854775809"),
            &user.token,
        ),
    ] {
        for forged in [None, Some("forged")] {
            let response = app.get(&path, forged).await;
            assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
        }
        let response = app.get(&path, Some(token)).await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
}

#[tokio::test]
async fn a_long_bad_id_is_not_sent_back_whole() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let path = format!("/reservations/{}", "x".repeat(20_000));
    let response = app.get(&path, Some(&user.token)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.bytes().await.unwrap();
    assert!(body.len() < 2_000, "a {} byte answer", body.len());
}

#[tokio::test]
async fn an_unknown_route_is_not_found() {
    let app = spawn_app().await;
    for path in [
        "/nothing-here",
        "/concerts/extra/segments/here/too",
        "/users",
    ] {
        let response = app.get(path, None).await;
        assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    let response = app.get_root("/nowhere").await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = app.post("/no/such/route", None, json!({})).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_known_route_with_the_wrong_method_is_a_problem_with_a_code_of_the_contract() {
    let app = spawn_app().await;
    let response = app
        .client
        .delete(app.url("/concerts"))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::METHOD_NOT_ALLOWED, "bad_request").await;
}
