//! Amounts and numbers: charges outside one won to a billion, fractions and
//! numbers no `i64` holds, a wallet above a trillion won, and refusals that
//! name the range a number may take.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{charged_user, date, post_raw};
use crate::helpers::{assert_problem, assert_problem_for, spawn_app, ADMIN_TOKEN};

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

#[tokio::test]
async fn a_refused_number_is_told_the_range_it_may_take_not_a_machine_type_s() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let charges = format!("/users/{user_id}/balance/charges");
    let mut refusals = Vec::new();
    let four_hundred_digits = format!("1{}", "0".repeat(400));
    for amount in [
        "-5",
        "0",
        "1.5",
        "1e30",
        "\"5\"",
        "9223372036854775808",
        // Beyond every numeric type: serde_json stops before the range's rule.
        "1e400",
        "-1e400",
        &four_hundred_digits,
    ] {
        let body = format!(r#"{{"amount": {amount}}}"#);
        let response = post_raw(&app, &charges, Some(&token), "application/json", body).await;
        refusals.push((format!("amount {amount}"), response, "from 1 to 1000000000"));
    }
    for (case, seats, price, range) in [
        ("seats 0", json!(0), json!(10), "from 1 to 50000"),
        ("seats 1.5", json!(1.5), json!(10), "from 1 to 50000"),
        (
            "seats 2^32",
            json!(4_294_967_296u64),
            json!(10),
            "from 1 to 50000",
        ),
        ("price -1", json!(10), json!(-1), "from 1 to 1000000000"),
    ] {
        let body = json!({"title": "T", "dates": [date(seats, price)]});
        let response = app.post("/concerts", Some(ADMIN_TOKEN), body).await;
        refusals.push((case.to_string(), response, range));
    }
    for ttl in [json!(59), json!(86_401), json!("60")] {
        let path = format!("/users/{}/tokens", Uuid::new_v4());
        let response = app
            .post(&path, Some(ADMIN_TOKEN), json!({"ttl_secs": ttl}))
            .await;
        refusals.push((format!("ttl_secs {ttl}"), response, "from 60 to 86400"));
    }
    let path = format!("/users/{}/tokens", Uuid::new_v4());
    let body = r#"{"ttl_secs": 1e400}"#;
    let response = post_raw(&app, &path, Some(ADMIN_TOKEN), "application/json", body).await;
    refusals.push(("ttl_secs 1e400".into(), response, "from 60 to 86400"));

    for (case, response, range) in refusals {
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{case}"
        );
        let problem: Value = response.json().await.unwrap();
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("expected a whole number {range}")),
            "{case}: {detail}"
        );
        assert!(!detail.contains("9223372036854775807"), "{case}: {detail}");
        assert!(!detail.contains("4294967295"), "{case}: {detail}");
    }
    assert_eq!(app.balance(user_id).await, 1_000);
    assert!(super::catalog(&app).await.is_empty());
}
