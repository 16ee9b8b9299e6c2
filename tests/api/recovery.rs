//! Work cut short: payments stopped after the debit, and read-model updates
//! lost between a commit and its projection.

use std::time::Duration;

use concert::aggregates::{Wallet, WalletCommand};
use concert::ids::ChargeId;
use concert::money::Won;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{assert_problem, json_of, spawn_app_on, spawn_app_with, test_config};

/// Holds a seat and pays with a service that stops right after the debit.
async fn payment_cut_after_debit(hold_ttl_secs: u64) -> (sqlx::PgPool, Uuid, String, String) {
    let mut config = test_config();
    config.fault_stop_after_debit = true;
    config.hold_ttl_secs = hold_ttl_secs;
    config.payment_recovery_secs = 3600;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 3, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seat_id = app.first_free_seat(&user, &concert).await;
    app.fund(user.user_id, 5000).await;
    let held: Value = json_of(&app.hold(&user, &seat_id).await);
    let reservation_id = held["reservation_id"].as_str().unwrap().to_string();

    let cut = app.pay(&user, &reservation_id).await;

    assert_problem(cut, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert_eq!(app.balance(user.user_id).await, 4000, "the debit happened");
    (app.shutdown().await, user.user_id, seat_id, reservation_id)
}

#[tokio::test]
async fn a_payment_cut_after_the_debit_is_completed_on_restart() {
    let (pool, user_id, seat_id, reservation_id) = payment_cut_after_debit(300).await;

    let app = spawn_app_on(pool, test_config()).await;
    let mut status = String::new();
    for _ in 0..100 {
        status =
            sqlx::query_scalar("select status from reservations where reservation_id = $1::uuid")
                .bind(&reservation_id)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if status == "confirmed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert_eq!(status, "confirmed");
    assert_eq!(app.balance(user_id).await, 4000);
    let sold: i64 = sqlx::query_scalar(
        "select count(*) from events where event_type = 'SeatSold' and aggregate_id = $1",
    )
    .bind(&seat_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(sold, 1);
}

#[tokio::test]
async fn a_payment_whose_seat_cannot_be_confirmed_is_refunded() {
    let (pool, user_id, _seat_id, reservation_id) = payment_cut_after_debit(2).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;

    let app = spawn_app_on(pool, test_config()).await;
    let mut balance = 0;
    for _ in 0..300 {
        balance = app.balance(user_id).await;
        if balance == 5000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert_eq!(balance, 5000, "the wallet got its money back");
    let status: String =
        sqlx::query_scalar("select status from payments where reservation_id = $1::uuid")
            .bind(&reservation_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(status, "refunded");
    let refunds: i64 =
        sqlx::query_scalar("select count(*) from events where event_type = 'Refunded'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(refunds, 1);
}

#[tokio::test]
async fn events_whose_projection_was_lost_are_applied_on_start() {
    let app = spawn_app_with(test_config()).await;
    let pool = app.shutdown().await;
    let user_id = Uuid::new_v4();
    // A framework without projections commits events that no read model sees,
    // as when a process dies between the commit and the update.
    let bare = postgres_es::postgres_cqrs::<Wallet>(pool.clone(), vec![], ());
    for amount in [100, 250] {
        let charge = WalletCommand::Charge {
            charge_id: ChargeId::new(),
            amount: Won(amount),
        };
        bare.execute(&user_id.to_string(), charge).await.unwrap();
    }

    let app = spawn_app_on(pool, test_config()).await;

    assert_eq!(app.balance(user_id).await, 350);
    let charged: Value = json_of(&app.charge(user_id, 50).await);
    assert_eq!(charged["balance"], 400);
}

#[tokio::test]
async fn an_unreachable_database_is_a_503_problem_and_changes_nothing() {
    let app = spawn_app_with(test_config()).await;
    let user_id = Uuid::new_v4();
    app.fund(user_id, 100).await;
    let token = app.user_token(user_id).await;
    let options = (*app.pool.connect_options()).clone();
    app.pool.close().await;

    let balance = app
        .get(&format!("/users/{user_id}/balance"), Some(&token))
        .await;
    let charge = app.charge(user_id, 100).await;

    assert_problem(balance, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert_problem(charge, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    let pool = sqlx::PgPool::connect_with(options).await.unwrap();
    let balance: i64 = sqlx::query_scalar("select balance from balances where user_id = $1")
        .bind(user_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(balance, 100);
}
