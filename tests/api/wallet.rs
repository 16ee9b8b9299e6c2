//! Wallets: charges, balances, and money under concurrency.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_problem, json_of, spawn_app, User};

#[tokio::test]
async fn a_user_never_charged_has_a_zero_balance() {
    let app = spawn_app().await;

    assert_eq!(app.balance(Uuid::new_v4()).await, 0);
}

#[tokio::test]
async fn charging_raises_the_balance() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();

    let first: Value = json_of(&app.charge(user, 50_000).await);
    let second: Value = json_of(&app.charge(user, 25_000).await);

    assert_eq!(first, json!({"user_id": user, "balance": 50_000}));
    assert_eq!(second["balance"], 75_000);
    assert_eq!(app.balance(user).await, 75_000);
}

#[tokio::test]
async fn concurrent_charges_each_answer_the_balance_they_left() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    app.user_token(user).await;

    // Amounts 1, 2, 4, ...: each running balance says which charges it includes.
    let answers = join_all((0..12).map(|bit| app.charge(user, 1 << bit))).await;

    let mut balances: Vec<i64> = answers
        .iter()
        .map(|answer| json_of(answer)["balance"].as_i64().unwrap())
        .collect();
    for (bit, balance) in balances.iter().enumerate() {
        assert_ne!(
            balance & (1 << bit),
            0,
            "{balance} leaves out its own charge"
        );
    }
    balances.sort_unstable();
    for pair in balances.windows(2) {
        // Each later balance includes every charge of an earlier one.
        assert_eq!(pair[0] & pair[1], pair[0], "balances {balances:?}");
        assert!(
            pair[0] < pair[1],
            "two charges answered one balance: {balances:?}"
        );
    }
    assert_eq!(balances.last(), Some(&4095));
    assert_eq!(app.balance(user).await, 4095);
}

#[tokio::test]
async fn a_retried_charge_with_the_same_idempotency_key_charges_once() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    let token = app.user_token(user).await;
    let send = |amount: i64| {
        app.client
            .post(app.url(&format!("/users/{user}/balance/charges")))
            .bearer_auth(&token)
            .header("idempotency-key", "charge-1")
            .json(&json!({"amount": amount}))
            .send()
    };

    let first: Value = send(1000).await.unwrap().json().await.unwrap();
    let retries = join_all((0..10).map(|_| send(1000))).await;

    for retry in retries {
        let retry = retry.unwrap();
        assert_eq!(retry.status(), StatusCode::OK);
        assert_eq!(retry.json::<Value>().await.unwrap(), first);
    }
    assert_eq!(app.balance(user).await, 1000);
}

#[tokio::test]
async fn a_key_reused_for_another_amount_is_refused_and_charges_nothing() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    let first = app.api.charge(user, 1000, Some("reused")).await.unwrap();
    assert_eq!(first.status, 200);

    let other = app.api.charge(user, 7, Some("reused")).await.unwrap();
    let retry = app.api.charge(user, 1000, Some("reused")).await.unwrap();

    assert_problem(other, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(retry.status, 200);
    assert_eq!(json_of(&retry), json_of(&first));
    assert_eq!(app.balance(user).await, 1000);
}

/// Both requests derive one charge id: the wallet must not take the second
/// amount's request for a retry of the first, answered as charged.
#[tokio::test]
async fn one_key_sent_with_two_amounts_at_once_charges_exactly_the_amount_it_answers() {
    let app = spawn_app().await;
    for round in 0..20 {
        let user = Uuid::new_v4();
        let key = format!("top-up-{round}");
        let amounts = [1000, 2000].repeat(6);
        let answers = join_all(
            amounts
                .iter()
                .map(|&amount| app.api.charge(user, amount, Some(&key))),
        )
        .await;

        let balance = app.balance(user).await;
        assert!(
            balance == 1000 || balance == 2000,
            "one charge, got {balance}"
        );
        for (amount, answer) in amounts.iter().zip(answers) {
            let answer = answer.unwrap();
            if *amount == balance {
                assert_eq!(answer.status, 200, "round {round}: the charged amount");
                assert_eq!(json_of(&answer)["balance"], balance);
            } else {
                assert_problem(
                    answer,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                )
                .await;
            }
        }
        let other = 3000 - balance;
        let retry = app.api.charge(user, other, Some(&key)).await.unwrap();
        assert_problem(retry, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(app.balance(user).await, balance);
    }
}

#[tokio::test]
async fn concurrent_charges_and_payments_on_one_wallet_leave_the_sum_of_their_events() {
    let app = spawn_app().await;
    let user_id = Uuid::new_v4();
    // A token pays once, so the user holds one seat in each of 25 concerts.
    let mut reservations = Vec::new();
    for _ in 0..25 {
        let concert = app.create_concert(1, 1, 1000).await;
        let (_, body) = app.enter_queue(user_id, &concert.concert_id).await;
        let user = User {
            user_id,
            token: body["token"].as_str().unwrap().to_string(),
        };
        app.wait_until_active(&user.token).await;
        let seat = app.first_free_seat(&user, &concert).await;
        let held: Value = json_of(&app.hold(&user, &seat).await);
        reservations.push((user, held["reservation_id"].as_str().unwrap().to_string()));
    }
    app.fund(user_id, 3000).await;

    let charges = join_all((0..25).map(|_| app.charge(user_id, 700)));
    let payments = join_all(
        reservations
            .iter()
            .map(|(user, reservation)| app.pay(user, reservation)),
    );
    let (charges, payments) = tokio::join!(charges, payments);

    assert!(charges.iter().all(|r| r.status == StatusCode::OK));
    let paid = payments
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count() as i64;
    for response in &payments {
        assert!(
            [StatusCode::CREATED, StatusCode::PAYMENT_REQUIRED]
                .iter()
                .any(|status| *status == response.status),
            "unexpected {}",
            response.status
        );
    }
    assert!(paid >= 3, "the first 3000 won pay for at least three seats");
    let (charged_sum, paid_sum, refunded_sum): (i64, i64, i64) = sqlx::query_as(
        "select coalesce(sum((payload->'Charged'->>'amount')::bigint), 0)::bigint,
                coalesce(sum((payload->'Paid'->>'amount')::bigint), 0)::bigint,
                coalesce(sum((payload->'Refunded'->>'amount')::bigint), 0)::bigint
         from events where aggregate_type = 'Wallet' and aggregate_id = $1",
    )
    .bind(user_id.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let balance = app.balance(user_id).await;
    assert_eq!(balance, charged_sum - paid_sum + refunded_sum);
    assert_eq!(balance, 3000 + 25 * 700 - 1000 * paid);
    let lowest: i64 = sqlx::query_scalar(
        "select min(coalesce(payload->'Charged'->>'balance', payload->'Paid'->>'balance', payload->'Refunded'->>'balance')::bigint)
         from events where aggregate_type = 'Wallet' and aggregate_id = $1",
    )
    .bind(user_id.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(lowest >= 0, "no event shows a negative balance");
}
