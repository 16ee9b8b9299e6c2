//! Amounts and numbers: charges outside one won to a billion, fractions and
//! numbers no `i64` holds, and a wallet above a trillion won.

use reqwest::StatusCode;
use uuid::Uuid;

use super::{charged_user, post_raw};
use crate::helpers::{assert_problem, assert_problem_for, spawn_app};

#[tokio::test]
async fn charges_outside_one_to_a_billion_fail_validation_and_leave_the_balance() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    for amount in [0, -1, -1_000, 1_000_000_001, i64::MAX, i64::MIN] {
        let response = app.charge(user_id, amount).await;
        assert_problem_for(
            format!("amount {amount}"),
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    assert_eq!(app.balance(user_id).await, 1_000);
}

#[tokio::test]
async fn fractional_and_huge_numbers_are_not_money() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let path = format!("/users/{user_id}/balance/charges");
    for body in [
        r#"{"amount": 1e30}"#,
        r#"{"amount": 1.5}"#,
        r#"{"amount": 10.0}"#,
        r#"{"amount": 1e3}"#,
        r#"{"amount": 9223372036854775808}"#,
        r#"{"amount": 100000000000000000000000000000000}"#,
        r#"{"amount": -9223372036854775809}"#,
        // Beyond even a float: still well-formed JSON (RFC 8259 sets no limit).
        r#"{"amount": 1e400}"#,
        r#"{"amount": -1e400}"#,
    ] {
        let response = post_raw(&app, &path, Some(&token), "application/json", body).await;
        assert_problem_for(
            format!("body {body}"),
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    let digits = format!(r#"{{"amount": 1{}}}"#, "0".repeat(400));
    let response = post_raw(&app, &path, Some(&token), "application/json", digits).await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(app.balance(user_id).await, 1_000);
}

#[tokio::test]
async fn a_charge_above_a_trillion_won_in_the_wallet_fails_validation() {
    let app = spawn_app().await;
    let user_id = Uuid::new_v4();
    // Exactly 10^12 is allowed.
    for _ in 0..1_000 {
        let response = app.charge(user_id, 1_000_000_000).await;
        assert_eq!(response.status, StatusCode::OK);
    }
    assert_eq!(app.balance(user_id).await, 1_000_000_000_000);
    for amount in [1, 1_000_000_000] {
        let response = app.charge(user_id, amount).await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    assert_eq!(app.balance(user_id).await, 1_000_000_000_000);
}
