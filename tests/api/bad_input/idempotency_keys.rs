//! An `Idempotency-Key` that is not a key: empty, with spaces, too long, or
//! two of them.

use reqwest::StatusCode;
use serde_json::json;

use super::charged_user;
use crate::helpers::{assert_problem_for, spawn_app};

#[tokio::test]
async fn a_malformed_idempotency_key_is_a_bad_request_and_charges_nothing() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let path = format!("/users/{user_id}/balance/charges");
    for key in [String::new(), "has spaces".to_string(), "k".repeat(256)] {
        let response = app
            .client
            .post(app.url(&path))
            .bearer_auth(&token)
            .header("idempotency-key", key.as_str())
            .json(&json!({"amount": 10}))
            .send()
            .await
            .unwrap();
        assert_problem_for(
            format!("key {key:?}"),
            response,
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
    }
    assert_eq!(app.balance(user_id).await, 1_000);
}

#[tokio::test]
async fn two_idempotency_keys_are_a_bad_request_and_charge_nothing() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let path = format!("/users/{user_id}/balance/charges");
    // A proxy that reorders or merges headers would pick another key, and a
    // retry would charge again.
    let response = app
        .client
        .post(app.url(&path))
        .bearer_auth(&token)
        .header("idempotency-key", "first")
        .header("idempotency-key", "second")
        .json(&json!({"amount": 10}))
        .send()
        .await
        .unwrap();
    assert_problem_for("two keys", response, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_eq!(app.balance(user_id).await, 1_000);
}
